"""Two PagoEfectivo accounts (a PEN and a USD service id, each its own secret) side by
side against two sandbox instances: payments routed by currency, each notification
verified with its own account's secret (found from the payment before the signature
is checked) and refused with the other's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pasarela_pagoefectivo
import pytest
import sqlalchemy as sa
from pasarela_pagoefectivo.notifications import (
    EVENT_PAID,
    SIGNATURE_HEADER,
    build_notification,
    sign,
)
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, create_app

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.schema import webhook_deliveries
from pasarela.testing.helpers import ManualClock


PEN_SECRET = "pen-service-secret-key-for-tests"
USD_SECRET = "usd-service-secret-key-for-tests"


@pytest.fixture
def pen(pasarela_sandbox: Any) -> Iterator[Any]:
    served = pasarela_sandbox(create_app, seed=3, secret_key=PEN_SECRET, service_id=1028,
                              first_cip=10092757, webhook_retry_delay=0.05)
    yield served
    served.sandbox.courier.drain(timeout=10)


@pytest.fixture
def usd(pasarela_sandbox: Any) -> Iterator[Any]:
    served = pasarela_sandbox(create_app, seed=4, secret_key=USD_SECRET, service_id=2045,
                              first_cip=20451000, webhook_retry_delay=0.05)
    yield served
    served.sandbox.courier.drain(timeout=10)


def _table(served: Any, secret_var: str) -> dict[str, Any]:
    return {"type": "pagoefectivo", "environment": "sandbox", "base_url": served.url,
            "access_key": "env:PE_ACCESS_KEY", "secret_key": f"env:{secret_var}",
            "service_id": served.sandbox.service_id, "timeout": 2.0}


@pytest.fixture
def shop(pen: Any, usd: Any, pasarela_receiver: Any, tmp_path: Path) -> Iterator[Pasarela]:
    """One host with two PagoEfectivo accounts; both services notify one URL
    (``/webhooks/pe_pen``), as a merchant often configures them."""
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = {
        "store": {"url": url},
        "providers": {"pe_pen": _table(pen, "PE_PEN_SECRET"),
                      "pe_usd": _table(usd, "PE_USD_SECRET")},
        "routes": [
            {"name": "dollars", "when": {"currency": "USD"}, "use": ["pe_usd"]},
            {"name": "default", "use": ["pe_pen"]},
        ],
    }
    env = {"PE_ACCESS_KEY": DEFAULT_ACCESS_KEY, "PE_PEN_SECRET": PEN_SECRET,
           "PE_USD_SECRET": USD_SECRET}
    app = Pasarela(config, plugins=[pasarela_pagoefectivo], load_entrypoints=False,
                   clock=ManualClock(), env=env, store=Store(url, upgrade=True))
    app.service.sleep_scale = 0
    replies: list[int] = []

    def endpoint(headers: dict[str, str], body: bytes) -> int:
        reply = app.handle_webhook("pe_pen", headers, body)
        replies.append(reply.status_code)
        return reply.status_code

    pasarela_receiver.handler = endpoint
    for served in (pen, usd):
        served.control("POST", "/notification-url", json={"url": pasarela_receiver.url})
    app.replies = replies  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        for served in (pen, usd):
            served.sandbox.courier.wait(len(served.sandbox.courier.deliveries))
        app.close()


def deliveries(shop: Pasarela) -> list[tuple[str, str, str | None]]:
    t = webhook_deliveries
    with shop.store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.provider, t.c.outcome, t.c.payment_id)
                            .order_by(t.c.id)).all()
    return [(r.provider, r.outcome, r.payment_id) for r in rows]


def order(reference: str, amount: str, currency: str) -> Order:
    return Order(reference=reference, amount=Money.of(amount, currency), country="PE",
                 description="Pedido",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe", phone="+51 987 654 321",
                                   document=("DNI", "45678912")))


def test_two_accounts_take_payments_side_by_side(shop: Pasarela, pen: Any, usd: Any) -> None:
    soles = shop.pay(order("pedido-1", "149.90", "PEN"), method="cash", idempotency_key="k1")
    dollars = shop.pay(order("pedido-2", "40.00", "USD"), method="cash", idempotency_key="k2")
    assert (soles.provider, dollars.provider) == ("pe_pen", "pe_usd")
    # Each CIP was made by its own service (the sandboxes check service id and secret).
    assert int(soles.provider_reference or 0) in pen.sandbox.cips
    assert int(dollars.provider_reference or 0) in usd.sandbox.cips
    assert not set(pen.sandbox.cips) & set(usd.sandbox.cips)
    pen.control("POST", f"/cips/{soles.provider_reference}/pay")
    usd.control("POST", f"/cips/{dollars.provider_reference}/pay")
    pen.sandbox.courier.wait(1)
    usd.sandbox.courier.wait(1)
    assert shop.replies == [200, 200]  # type: ignore[attr-defined]
    assert shop.get(soles.id).status is Status.SUCCEEDED
    assert shop.get(dollars.id).status is Status.SUCCEEDED
    assert sorted(deliveries(shop)) == sorted([("pe_pen", "applied", soles.id),
                                               ("pe_usd", "applied", dollars.id)])


def _paid(payment: Any, currency: str, amount: str) -> bytes:
    return build_notification(EVENT_PAID, operation_number="77", cip=str(
        payment.provider_reference), amount=Money.of(amount, currency),
        transaction_code=payment.id)


@pytest.mark.parametrize("url_account", ["pe_pen", "pe_usd"])
def test_each_notification_verified_with_its_own_accounts_secret_only(
    shop: Pasarela, url_account: str,
) -> None:
    dollars = shop.pay(order("pedido-3", "40.00", "USD"), method="cash", idempotency_key="k3")
    body = _paid(dollars, "USD", "40.00")
    forged = shop.handle_webhook(url_account, {SIGNATURE_HEADER: sign(body, PEN_SECRET),
                                               "content-type": "application/json"}, body)
    assert forged.status_code == 400  # the PEN account's secret does not sign USD's CIP
    assert shop.get(dollars.id).status is Status.PENDING
    good = shop.handle_webhook(url_account, {SIGNATURE_HEADER: sign(body, USD_SECRET),
                                             "content-type": "application/json"}, body)
    assert good.status_code == 200
    assert shop.get(dollars.id).status is Status.SUCCEEDED


def test_a_pen_payment_refuses_the_usd_secret(shop: Pasarela) -> None:
    soles = shop.pay(order("pedido-4", "20.00", "PEN"), method="cash", idempotency_key="k4")
    body = _paid(soles, "PEN", "20.00")
    refused = shop.handle_webhook("pe_usd", {SIGNATURE_HEADER: sign(body, USD_SECRET)}, body)
    assert refused.status_code == 400
    assert shop.get(soles.id).status is Status.PENDING
    assert deliveries(shop) == [("pe_pen", "rejected", None)]
    assert shop.handle_webhook("pe_usd", {SIGNATURE_HEADER: sign(body, PEN_SECRET)},
                               body).status_code == 200
    assert shop.get(soles.id).status is Status.SUCCEEDED


def test_options_name_the_account(shop: Pasarela) -> None:
    options = shop.options(order("pedido-5", "40.00", "USD"))
    assert [o.provider for o in options if o.available] == ["pe_usd"]
