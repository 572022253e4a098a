"""Fixtures for the engine tests: a clock, the fake gateway, a pasarela over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pasarela.api import Pasarela
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import EventRecorder, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gateway(clock: ManualClock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def observer() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def pasarela(store_url: str, gateway: FakeGateway, clock: ManualClock,
             observer: EventRecorder) -> Iterator[Pasarela]:
    """A sync pasarela over the fake gateway, on SQLite and on PostgreSQL; lifecycle
    events reach *observer* as soon as each operation commits."""
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}},
              "events": {"dispatch": "inline"}}
    p = Pasarela(config, plugins=[FakePlugin(), observer], load_entrypoints=False,
                 transport=gateway.transport(), clock=clock,
                 store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()
