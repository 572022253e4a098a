"""The sandbox notifies as Mercado Pago's webhooks do: a POST to the notification URL
with the payment named in its query (``?data.id=<payment id>&type=payment``, after any
query of the configured URL), signed over that ``data.id``; pasarela's web server hands
the query to the adapter, which checks the signature over it and settles the payment."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pasarela_mercadopago

from pasarela import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app


def test_a_notification_names_the_payment_in_its_query(served: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = {"store": {"url": url},
              "providers": {"mercadopago": {**served.settings(), "max_retries": 0}}}
    with Pasarela(config, plugins=[pasarela_mercadopago], load_entrypoints=False,
                  store=Store(url, upgrade=True)) as shop, \
            serve_app(create_app(shop)) as server:
        hooks = f"{server}/webhooks/mercadopago?source_news=webhooks"  # as MP advises
        served.sandbox.configure({"webhook_url": hooks})
        order = Order(reference="pedido-mp-1", amount=Money.of("149.90", "PEN"),
                      description="Audífonos", customer=Customer(
                          first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                          document=("DNI", "45678912")))
        payment = shop.pay(order, method="cash", idempotency_key="pedido-mp-1")
        assert payment.status is Status.PENDING
        served.control("POST", f"/payments/{payment.provider_reference}/pay")
        deadline = time.monotonic() + 10
        while shop.get(payment.id).status is not Status.SUCCEEDED:
            assert time.monotonic() < deadline, shop.get(payment.id).status
            time.sleep(0.05)
        settled = shop.get(payment.id)
        last = [t for t in settled.history if t.applied][-1]
        assert last.cause == "webhook"
    deliveries = [d for d in served.sandbox.courier.deliveries if d.url]
    assert deliveries
    for delivery in deliveries:
        parts = urlsplit(delivery.url)
        assert parts.path == "/webhooks/mercadopago"
        assert parse_qsl(parts.query) == [("source_news", "webhooks"),
                                          ("data.id", str(payment.provider_reference)),
                                          ("type", "payment")]
        assert delivery.status == "delivered"
