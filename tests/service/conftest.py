"""Fixtures for the service tests: a clock, the fake gateway, pasarelas over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import EventRecorder as Observer
from pasarela.testing.helpers import ManualClock as Clock


def make_order(ref: str, amount: str = "149.90", **kw: Any) -> Order:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos",
                 customer=customer, **kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(clock: Clock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def observer() -> Observer:
    return Observer()


def _config(url: str, overrides: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"store": {"url": url}, "providers": {"fake": {"max_retries": 0}},
                              "events": {"dispatch": "worker"}}
    config.update(overrides)
    return config


@pytest.fixture
def make_sync(
    sqlite_url: str, gateway: FakeGateway, clock: Clock, observer: Observer
) -> Iterator[Callable[..., Pasarela]]:
    """Build sync pasarelas over the fake gateway (SQLite unless ``url=`` is given)."""
    opened: list[Pasarela] = []

    def build(*, url: str | None = None, plugins: tuple[object, ...] = (),
              transport: Any = None, **overrides: Any) -> Pasarela:
        store_url = url or sqlite_url
        p = Pasarela(_config(store_url, overrides), plugins=[FakePlugin(), observer, *plugins],
                     load_entrypoints=False, transport=transport or gateway.transport(),
                     clock=clock, store=Store(store_url, upgrade=True))
        p.service.sleep_scale = 0
        opened.append(p)
        return p

    yield build
    for p in opened:
        p.close()


@pytest.fixture
async def make_async(
    sqlite_url: str, gateway: FakeGateway, clock: Clock, observer: Observer
) -> Any:
    """Build async pasarelas over the fake gateway (closed after the test)."""
    opened: list[AsyncPasarela] = []

    def build(*, url: str | None = None, plugins: tuple[object, ...] = (),
              transport: Any = None, **overrides: Any) -> AsyncPasarela:
        store_url = url or sqlite_url
        p = AsyncPasarela(_config(store_url, overrides),
                          plugins=[FakePlugin(), observer, *plugins], load_entrypoints=False,
                          transport=transport or gateway.transport(), clock=clock,
                          store=Store(store_url, upgrade=True))
        p.service.sleep_scale = 0
        opened.append(p)
        return p

    yield build
    for p in opened:
        await p.aclose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
