"""Mercado Pago signs the ``data.id`` of the notification URL's query string: the ASGI
app hands the query to the adapter, which checks the signature over it (the body's
``data.id`` only when the URL has none), and refuses a body naming another payment.

Signatures here are computed with ``hmac`` over the manifest written out by hand, not
with the adapter's signing code."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pasarela_mercadopago
import pytest

from pasarela import AsyncPasarela
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.schema import webhook_deliveries
from pasarela.web.app import create_app


pytestmark = pytest.mark.anyio
REQUEST_ID = "0f4c3c1e-5b7e-4a39-9d61-6a1f6c2d9e10"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def shop(served: Any, tmp_path: Path) -> AsyncIterator[AsyncPasarela]:
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = {"store": {"url": url},
              "providers": {"mercadopago": {**served.settings(), "max_retries": 0}}}
    app = AsyncPasarela(config, plugins=[pasarela_mercadopago], load_entrypoints=False,
                        store=Store(url, upgrade=True))
    app.service.sleep_scale = 0
    try:
        yield app
    finally:
        await app.aclose()


@asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def signed(secret: str, data_id: str, ts: int) -> dict[str, str]:
    text = f"id:{data_id};request-id:{REQUEST_ID};ts:{ts};"
    v1 = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "x-signature": f"ts={ts},v1={v1}",
            "x-request-id": REQUEST_ID}


def notification(data: dict[str, Any]) -> bytes:
    return json.dumps({"id": 99001, "live_mode": False, "type": "payment",
                       "action": "payment.updated", "api_version": "v1",
                       "data": data}).encode()


async def pending(shop: AsyncPasarela, reference: str) -> Any:
    order = Order(reference=reference, amount=Money.of("149.90", "PEN"),
                  description="Audífonos",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe", document=("DNI", "45678912")))
    return await shop.pay(order, method="cash", idempotency_key=reference)


async def test_the_signature_covers_the_query_data_id(shop: AsyncPasarela, served: Any) -> None:
    payment = await pending(shop, "pedido-q1")
    secret = served.sandbox.webhook_secret
    ts = int(datetime.now(UTC).timestamp())
    ref = payment.provider_reference
    async with client_for(create_app(shop)) as client:
        # Signed over the URL's data.id; the body carries none (only the URL's counts).
        ok = await client.post(f"/webhooks/mercadopago?data.id={ref}&type=payment",
                               headers=signed(secret, ref, ts), content=notification({}))
        # The same signature without the query: the body has no data.id to check it over.
        bare = await client.post("/webhooks/mercadopago", headers=signed(secret, ref, ts),
                                 content=notification({}))
    assert ok.status_code == 200, ok.text
    assert bare.status_code == 400
    with shop.store.engine.connect() as conn:
        rows = conn.execute(webhook_deliveries.select()).all()
    # The refused one is kept as a rejection naming no payment.
    assert [row.payment_id for row in rows if row.payment_id] == [payment.id]


async def test_a_body_naming_another_payment_than_the_signed_query_is_refused(
        shop: AsyncPasarela, served: Any) -> None:
    first = await pending(shop, "pedido-q2")
    other = await pending(shop, "pedido-q3")
    secret = served.sandbox.webhook_secret
    ts = int(datetime.now(UTC).timestamp())
    ref = first.provider_reference
    async with client_for(create_app(shop)) as client:
        forged = await client.post(
            f"/webhooks/mercadopago?data.id={ref}&type=payment",
            headers=signed(secret, ref, ts),
            content=notification({"id": other.provider_reference}))
    assert forged.status_code == 400
    with shop.store.engine.connect() as conn:
        rows = conn.execute(webhook_deliveries.select()).all()
    assert [row.payment_id for row in rows if row.payment_id] == []
