"""Fixtures of the console's search, action and reconciliation tests: an async
pasarela over the fake gateway with a [privacy] key (phones are searchable), its app
with the console on, and helpers to sign in and read CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pasarela.api import AsyncPasarela
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.sealing import Sealer, new_key
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import EventRecorder
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings


SECRET = "page-secret-for-console-tests-012345"
ADMIN = "admin-token-for-console-tests-98765"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
KEY = new_key()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def order(ref: str, amount: str = "149.90", phone: str = "+51 987 654 321",
          document: str = "45678912") -> Order:
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe", phone=phone,
                                   document=("DNI", document)))


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(clock: Clock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
async def pasarela(store_url: str, gateway: FakeGateway, clock: Clock, recorder: EventRecorder
                   ) -> AsyncIterator[AsyncPasarela]:
    config: dict[str, Any] = {"store": {"url": store_url},
                              "providers": {"fake": {"max_retries": 0}},
                              "events": {"dispatch": "worker"},
                              "privacy": {"keys": [KEY]}}
    p = AsyncPasarela(config, plugins=[FakePlugin(), recorder], load_entrypoints=False,
                      transport=gateway.transport(), clock=clock,
                      store=Store(store_url, upgrade=True, sealer=Sealer.from_keys([KEY])))
    p.service.sleep_scale = 0
    yield p
    await p.aclose()


@pytest.fixture
async def client(pasarela: AsyncPasarela) -> AsyncIterator[httpx.AsyncClient]:
    settings = PageSettings(page_secret=SECRET, admin_token=ADMIN)
    app = create_app(pasarela, pages=settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
