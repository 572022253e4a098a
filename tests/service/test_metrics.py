"""/metrics per merchant: every series of a merchant's payments carries its name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pasarela.api import AsyncPasarela
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock
from pasarela.web.app import create_app
from pasarela.web.metrics import labels_of


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def order(ref: str) -> Order:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    return Order(reference=ref, amount=Money.of("20.00", "PEN"), description="Polo",
                 customer=customer)


@pytest.fixture
async def world(store_url: str) -> AsyncIterator[tuple[AsyncPasarela, FakeGateway]]:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}},
              "events": {"dispatch": "worker"},
              "merchants": {"bodega": {"providers": {"fake": {"max_retries": 0}}}}}
    p = AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                      transport=gateway.transport(), clock=clock,
                      store=Store(store_url, upgrade=True))
    yield p, gateway
    await p.aclose()


def series(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


def test_labels_of_an_account():
    assert labels_of("bodega.pe_usd") == ("bodega", "pe_usd")
    assert labels_of("pagoefectivo") == ("", "pagoefectivo")


async def test_each_merchants_series_carry_its_name(world: Any):
    p, gateway = world
    app = create_app(p)
    mine = await p.merchants["bodega"].pay(order("m-1"), method="cash", idempotency_key="m-1")
    await p.pay(order("d-1"), method="cash", idempotency_key="d-1")
    headers, body = gateway.settle(mine.provider_reference)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        assert (await client.post("/webhooks/bodega.fake", headers=headers,
                                  content=body)).status_code == 200
        text = (await client.get("/metrics")).text
    moved = series(text, "pasarela_payment_transitions_total")
    assert {(dict(k)["merchant"], dict(k)["provider"], dict(k)["status"]): v
            for k, v in moved.items()} == {
        ("bodega", "fake", "pending"): 1, ("bodega", "fake", "succeeded"): 1,
        ("", "fake", "pending"): 1}
    waiting = series(text, "pasarela_payments_open")
    assert {(dict(k)["merchant"], dict(k)["status"]): v for k, v in waiting.items()} == {
        ("", "pending"): 1}
    lag = series(text, "pasarela_outbox_lag_events")
    assert {dict(k)["merchant"]: v for k, v in lag.items()} == {"": 3}  # the deployment's queue
    hooks = series(text, "pasarela_webhook_requests_total")
    assert {(dict(k)["merchant"], dict(k)["provider"], dict(k)["code"]): v
            for k, v in hooks.items()} == {("bodega", "fake", "200"): 1}
