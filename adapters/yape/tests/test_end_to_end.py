"""End to end through ``pasarela.Pasarela``: both flows, webhooks, refunds, faults.

The sandbox runs on loopback; for the QR flow its webhook reaches the core's own
webhook server (``pasarela.web.app``) on loopback too, which fetches the order from the
sandbox before applying anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pasarela_yape
import pytest
from pasarela_yape import YapeProvider

from pasarela.api import Pasarela
from pasarela.errors import DeclinedError
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.next_action import ApproveInWallet, OpenCheckout
from pasarela.testing.helpers import EventRecorder as Observer
from pasarela.web.app import create_app as webhook_app


@pytest.fixture
def observer() -> Observer:
    return Observer()


@pytest.fixture
def make(tmp_path: Path, sandbox: Any, h: Any, observer: Observer
         ) -> Iterator[Callable[..., Pasarela]]:
    opened: list[Pasarela] = []

    def build(clock: Callable[[], Any] | None = None, **yape: Any) -> Pasarela:
        table = {"public_key": h.PK, "secret_key": h.SK, "base_url": sandbox.url,
                 "timeout": 5.0, "max_retries": 0, **yape}
        config = {"store": {"url": f"sqlite:///{tmp_path / 'pasarela.db'}"},
                  "providers": {"yape": table}}
        pasarela = Pasarela.from_config(config, plugins=[pasarela_yape, observer],
                                        load_entrypoints=False, clock=clock)
        opened.append(pasarela)
        return pasarela

    yield build
    for pasarela in opened:
        pasarela.close()


@pytest.fixture
def pasarela(make: Callable[..., Pasarela]) -> Pasarela:
    return make()


def sandbox_count(sandbox: Any, what: str) -> int:
    return int(sandbox.http.get("/_control").json()["counts"][what])


# --- approval code -----------------------------------------------------------------------


def test_pay_with_the_approval_code(pasarela: Pasarela, sandbox: Any, h: Any,
                                    observer: Observer) -> None:
    assert isinstance(pasarela.providers["yape"], YapeProvider)
    payment = pasarela.pay(h.order("149.90"), method="wallet", idempotency_key="k-1",
                           phone="900000001", code="425251")
    assert payment.status is Status.SUCCEEDED
    assert payment.provider == "yape"
    assert payment.provider_reference.startswith("chr_test_")
    again = pasarela.pay(h.order("149.90"), method="wallet", idempotency_key="k-1",
                         phone="900000001", code="425251")
    assert again.id == payment.id
    assert sandbox_count(sandbox, "charges") == 1  # one provider call for one key
    assert "payment.succeeded" in observer.types()


def test_options_offer_yape_for_wallets(pasarela: Pasarela, h: Any) -> None:
    wallet = next(o for o in pasarela.options(h.order()) if o.method.value == "wallet")
    assert wallet.available
    assert wallet.provider == "yape"
    assert wallet.display_name == "Yape / Plin"
    too_much = next(o for o in pasarela.options(h.order("500.01"))
                    if o.method.value == "wallet")
    assert not too_much.available


def test_pending_then_confirm(pasarela: Pasarela, h: Any) -> None:
    payment = pasarela.pay(h.order(), method="wallet", idempotency_key="k-2")
    assert payment.status is Status.PENDING
    assert isinstance(payment.next_action, ApproveInWallet)
    assert pasarela.sync(payment.id).status is Status.PENDING
    confirmed = pasarela.confirm(payment.id, phone="900000001", code="111111")
    assert confirmed.status is Status.SUCCEEDED
    assert confirmed.provider_reference.startswith("chr_test_")


def test_wrong_code_at_confirm_keeps_it_pending_with_a_spanish_message(
    pasarela: Pasarela, h: Any
) -> None:
    payment = pasarela.pay(h.order(), method="wallet", idempotency_key="k-3")
    with pytest.raises(DeclinedError) as info:
        pasarela.confirm(payment.id, phone="900000003", code="111111")
    assert info.value.code == "invalid_code"
    assert "código de aprobación" in info.value.customer_message("es")
    assert pasarela.get(payment.id).status is Status.PENDING  # the customer may retry
    done = pasarela.confirm(payment.id, phone="900000001", code="425251")
    assert done.status is Status.SUCCEEDED


def test_wrong_code_up_front_fails_with_a_spanish_message(pasarela: Pasarela, h: Any) -> None:
    failed = pasarela.pay(h.order(), method="wallet", idempotency_key="k-3b",
                          phone="900000003", code="111111")
    assert failed.status is Status.FAILED
    assert failed.error_code == "invalid_code"
    assert "código de aprobación" in failed.customer_message("es")


def test_insufficient_funds_fails(pasarela: Pasarela, h: Any) -> None:
    payment = pasarela.pay(h.order(), method="wallet", idempotency_key="k-4",
                           phone="900000002", code="425251")
    assert payment.status is Status.FAILED
    assert payment.error_code == "insufficient_funds"


def test_partial_then_full_refund(pasarela: Pasarela, h: Any, observer: Observer) -> None:
    payment = pasarela.pay(h.order("100.00"), method="wallet", idempotency_key="k-5",
                           phone="900000001", code="425251")
    first = pasarela.refund(payment.id, Money.of("30.00", "PEN"), reason="duplicado")
    assert first.status is RefundStatus.SUCCEEDED
    assert first.provider_reference.startswith("ref_test_")
    assert pasarela.get(payment.id).status is Status.PARTIALLY_REFUNDED
    rest = pasarela.refund(payment.id)
    assert rest.amount == Money.of("70.00", "PEN")
    done = pasarela.get(payment.id)
    assert done.status is Status.REFUNDED
    assert done.refunded == Money.of("100.00", "PEN")
    assert {"payment.partially_refunded", "payment.refunded"} <= set(observer.types())


def test_charge_timeout_is_unknown_then_resolved(make: Callable[..., Pasarela], sandbox: Any,
                                                 h: Any) -> None:
    pasarela = make(timeout=0.3)
    sandbox.fault("POST /v2/charges", "hang_after")
    payment = pasarela.pay(h.order(), method="wallet", idempotency_key="k-6",
                           phone="900000001", code="425251")
    assert payment.status is Status.UNKNOWN
    assert payment.provider_reference is None
    resolved = pasarela.sync(payment.id)
    assert resolved.status is Status.SUCCEEDED
    assert resolved.provider_reference.startswith("chr_test_")


# --- QR orders, webhooks ------------------------------------------------------------------------


@pytest.fixture
def webhooks(pasarela: Pasarela, sandbox: Any, serve: Any) -> Any:
    """The core's webhook server for *pasarela*, with the sandbox delivering to it."""
    served = serve(webhook_app(pasarela))
    sandbox.config(webhook_url=f"{served.url}/webhooks/yape")
    return served


def test_qr_paid_from_plin_through_the_webhook(pasarela: Pasarela, sandbox: Any, h: Any,
                                               webhooks: Any, observer: Observer) -> None:
    payment = pasarela.pay(h.order("25.00"), method="wallet", idempotency_key="k-7", flow="qr")
    assert payment.status is Status.PENDING
    assert isinstance(payment.next_action, OpenCheckout)
    assert payment.next_action.settings["order"] == payment.provider_reference
    assert payment.next_action.script_url == f"{sandbox.url}/checkout-js"
    assert payment.expires_at is not None
    reference = payment.provider_reference
    assert reference.startswith("ord_test_")
    sandbox.config(duplicate_webhooks=1)
    sandbox.post(f"/orders/{reference}/pay", wallet="plin")
    deliveries = sandbox.webhooks()
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    paid = pasarela.get(payment.id)
    assert paid.status is Status.SUCCEEDED
    assert observer.types().count("payment.succeeded") == 1  # the duplicate changed nothing
    assert sum(1 for t in paid.history if t.target is Status.SUCCEEDED and t.applied) == 1


def test_a_forged_paid_event_changes_nothing(pasarela: Pasarela, sandbox: Any,
                                             h: Any) -> None:
    payment = pasarela.pay(h.order("25.00"), method="wallet", idempotency_key="k-8", flow="qr")
    order = {"object": "order", "id": payment.provider_reference, "amount": 2500,
             "currency_code": "PEN", "state": "paid"}
    forged = json.dumps({"object": "event", "id": "evt_test_forged", "type":
                         "order.status.changed", "creation_date": 1, "data": json.dumps(order)})
    reply = pasarela.handle_webhook("yape", {"content-type": "application/json"},
                                    forged.encode())
    assert reply.status_code == 200
    assert pasarela.get(payment.id).status is Status.PENDING  # Culqi says: still pending


def test_malformed_delivery_is_refused(pasarela: Pasarela) -> None:
    reply = pasarela.handle_webhook("yape", {"content-type": "application/json"},
                                    b'{"object":"event","id":"evt_1","data":"{oops"}')
    assert reply.status_code == 400


def test_expired_qr_then_late_payment(pasarela: Pasarela, sandbox: Any, h: Any,
                                      webhooks: Any, observer: Observer) -> None:
    payment = pasarela.pay(h.order("25.00"), method="wallet", idempotency_key="k-9", flow="qr")
    sandbox.post(f"/orders/{payment.provider_reference}/expire")
    assert pasarela.get(payment.id).status is Status.EXPIRED
    sandbox.post(f"/orders/{payment.provider_reference}/pay", wallet="yape", late=True)
    assert pasarela.get(payment.id).status is Status.SUCCEEDED
    assert "payment.late_succeeded" in observer.types()


def test_lost_webhook_is_caught_by_sync(pasarela: Pasarela, sandbox: Any, h: Any,
                                        webhooks: Any) -> None:
    payment = pasarela.pay(h.order("25.00"), method="wallet", idempotency_key="k-10",
                           flow="qr")
    sandbox.config(lose_next_webhooks=1)
    sandbox.post(f"/orders/{payment.provider_reference}/pay", wallet="plin")
    assert pasarela.get(payment.id).status is Status.PENDING
    assert pasarela.sync(payment.id).status is Status.SUCCEEDED


def test_cancel_a_qr_payment(pasarela: Pasarela, h: Any, sandbox: Any) -> None:
    payment = pasarela.pay(h.order("25.00"), method="wallet", idempotency_key="k-11",
                           flow="qr")
    assert pasarela.cancel(payment.id).status is Status.CANCELED
    order = sandbox.http.get(f"/v2/orders/{payment.provider_reference}",
                             headers={"Authorization": f"Bearer {h.SK}"}).json()
    assert order["state"] == "deleted"


# --- a lost answer -------------------------------------------------------------------------


def test_a_lost_answer_stays_unknown_until_culqi_shows_the_charge(
    make: Callable[..., Pasarela], sandbox: Any, h: Any, clock: Any
) -> None:
    """The charge's answer is lost and Culqi's lists come back empty: past 10 minutes
    (and days) of clock the resolver keeps the payment unknown for an operator, never
    failed; when Culqi lists the charge (our payment id in its metadata), it applies."""
    pasarela = make(clock=clock, timeout=0.5)
    sandbox.fault("POST /v2/tokens/yape", "hang")
    payment = pasarela.pay(h.order("42.00"), method="wallet", idempotency_key="k-lost",
                           phone="900000001", code="425251")
    assert payment.status is Status.UNKNOWN
    for minutes in (11, 60, 60 * 24, 60 * 24 * 7):
        clock.offset = timedelta(minutes=minutes)
        pasarela.resolve_due()
        current = pasarela.get(payment.id)
        assert current.status is Status.UNKNOWN, minutes
    assert not any(t.target is Status.FAILED for t in current.history)
    # Culqi shows the charge after all (made with our payment id in its metadata)
    token = sandbox.http.post("/v2/tokens/yape", headers={"Authorization": f"Bearer {h.PK}"},
                              json={"amount": 4200, "number_phone": "900000001",
                                    "otp": "425251"}).json()["id"]
    charged = sandbox.http.post("/v2/charges", headers={"Authorization": f"Bearer {h.SK}"},
                                json={"amount": 4200, "currency_code": "PEN",
                                      "email": "rosa@example.pe", "source_id": token,
                                      "metadata": {"pasarela_payment_id": payment.id}})
    assert charged.status_code == 201
    clock.offset = timedelta(days=30)
    pasarela.resolve_due()
    settled = pasarela.get(payment.id)
    assert settled.status is Status.SUCCEEDED
    assert settled.provider_reference == charged.json()["id"]
