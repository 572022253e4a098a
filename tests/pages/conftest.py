"""Fixtures for the page tests: pasarelas over the fake gateway, apps with pages on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings, pay_link


SECRET = "page-secret-for-tests-0123456789"
ADMIN = "admin-token-for-tests-9876543210"


class Clock:
    """Business time the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_order(ref: str, amount: str = "149.90", description: str = "Audífonos inalámbricos",
               **kw: Any) -> Order:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description=description,
                 customer=customer, **kw)


def _config(url: str) -> dict[str, Any]:
    return {"store": {"url": url}, "providers": {"fake": {"max_retries": 0}},
            "events": {"dispatch": "worker"}}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(clock: Clock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def settings() -> PageSettings:
    return PageSettings(page_secret=SECRET, admin_token=ADMIN,
                        renew_url="https://tienda.example.pe/reintentar?pedido={order_reference}")


@pytest.fixture
async def pasarela(sqlite_url: str, gateway: FakeGateway, clock: Clock) -> AsyncIterator[Any]:
    p = AsyncPasarela(_config(sqlite_url), plugins=[FakePlugin()], load_entrypoints=False,
                      transport=gateway.transport(), clock=clock,
                      store=Store(sqlite_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    await p.aclose()


@pytest.fixture
def sync_pasarela(sqlite_url: str, gateway: FakeGateway, clock: Clock) -> Iterator[Pasarela]:
    p = Pasarela(_config(sqlite_url), plugins=[FakePlugin()], load_entrypoints=False,
                 transport=gateway.transport(), clock=clock, store=Store(sqlite_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


@asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def client(pasarela: AsyncPasarela, settings: PageSettings) -> AsyncIterator[
        httpx.AsyncClient]:
    async with client_for(create_app(pasarela, pages=settings)) as c:
        yield c


@pytest.fixture
def link(clock: Clock) -> Callable[..., str]:
    """The page link of a payment, as a host would build it (path and query only)."""
    def build(payment_id: str, ttl: timedelta = timedelta(days=2)) -> str:
        return pay_link(payment_id, SECRET, ttl, now=clock())

    return build


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
