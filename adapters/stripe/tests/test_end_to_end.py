"""End to end through ``pasarela.Pasarela`` against the loopback sandbox.

Every exchange goes through a transport that checks it against Stripe's spec, and
webhooks are the sandbox's own signed deliveries fed to ``handle_webhook``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pasarela_stripe.sandbox import StripeSandbox as Sandbox

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.next_action import ConfirmCard


@pytest.fixture
def make(tmp_path: Path, sandbox: Sandbox, sandbox_key: str, webhook_secret: str,
         checking_transport: Any) -> Iterator[Callable[..., Pasarela]]:
    opened: list[Pasarela] = []

    def build(**settings: Any) -> Pasarela:
        config = {
            "store": {"url": f"sqlite:///{tmp_path}/pasarela-{len(opened)}.db"},
            "providers": {"stripe": {
                "api_key": sandbox_key, "base_url": sandbox.url,  # type: ignore[attr-defined]
                "webhook_secrets": [webhook_secret], "max_retries": 1, **settings,
            }},
        }
        p = Pasarela.from_config(config, transport=checking_transport)
        opened.append(p)
        return p

    yield build
    for p in opened:
        p.close()


@pytest.fixture
def pasarela(make: Callable[..., Pasarela]) -> Pasarela:
    return make()


def order(ref: str, amount: str = "149.90") -> Order:
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos")


def deliver(p: Pasarela, sandbox: Sandbox, intent_id: str,
            types: list[str] | None = None) -> list[int]:
    """Feed the sandbox's signed events about *intent_id* to ``handle_webhook``."""
    url = sandbox.url  # type: ignore[attr-defined]
    listed = httpx.get(f"{url}/_control/events", params={"object": intent_id}).json()
    codes = []
    for item in listed:
        if types is not None and item["type"] not in types:
            continue
        reply = p.handle_webhook("stripe", item["headers"], item["body"].encode())
        codes.append(reply.status_code)
    return codes


def events_in_order(sandbox: Sandbox, intent_id: str, types: list[str]) -> list[dict[str, Any]]:
    url = sandbox.url  # type: ignore[attr-defined]
    listed = httpx.get(f"{url}/_control/events", params={"object": intent_id}).json()
    by_type = {item["type"]: item for item in listed}
    return [by_type[t] for t in types]


def test_card_payment_succeeds_and_webhooks_agree(pasarela: Pasarela, sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-visa"), method="card", idempotency_key="e2e-visa",
                           payment_method="pm_card_visa")
    assert payment.provider == "stripe"
    assert payment.status is Status.SUCCEEDED
    assert payment.provider_reference in sandbox.account.intents
    intent = sandbox.account.intents[payment.provider_reference]
    assert intent["metadata"] == {"payment_id": payment.id, "order_reference": "e2e-visa"}
    assert intent["amount"] == 14990
    # the same key is the same payment, with no second call to Stripe
    again = pasarela.pay(order("e2e-visa"), method="card", idempotency_key="e2e-visa",
                         payment_method="pm_card_visa")
    assert again.id == payment.id
    assert len(sandbox.account.intents) == 1
    assert all(code == 200 for code in deliver(pasarela, sandbox, payment.provider_reference))
    assert all(code == 200 for code in deliver(pasarela, sandbox, payment.provider_reference))
    assert pasarela.get(payment.id).status is Status.SUCCEEDED


def test_declined_card_fails_with_its_code(pasarela: Pasarela, sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-declined"), method="card",
                           idempotency_key="e2e-declined",
                           payment_method="pm_card_chargeDeclinedInsufficientFunds")
    assert payment.status is Status.FAILED
    assert payment.error_code == "insufficient_funds"
    (intent,) = sandbox.account.intents.values()
    assert intent["status"] == "canceled"  # closed, so the failure is final at Stripe too
    assert intent["last_payment_error"]["decline_code"] == "insufficient_funds"


def test_three_d_secure_pending_then_succeeded_by_webhook(pasarela: Pasarela,
                                                          sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-3ds"), method="card", idempotency_key="e2e-3ds",
                           payment_method="pm_card_authenticationRequired",
                           return_url="https://tienda.pe/vuelta")
    assert payment.status is Status.PENDING
    action = payment.next_action
    assert isinstance(action, ConfirmCard)
    assert action.step == "authenticate"
    assert action.url is not None
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/payment_intents/{payment.provider_reference}/authenticate",
               json={"outcome": "succeed"})
    # deliveries arrive out of order: succeeded first, then the stale requires_action
    reference = payment.provider_reference
    assert reference is not None
    for item in events_in_order(sandbox, reference,
                                ["payment_intent.succeeded", "payment_intent.requires_action"]):
        reply = pasarela.handle_webhook("stripe", item["headers"], item["body"].encode())
        assert reply.status_code == 200
    assert pasarela.get(payment.id).status is Status.SUCCEEDED


def test_forged_webhook_is_refused_and_changes_nothing(pasarela: Pasarela,
                                                       sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-forged"), method="card", idempotency_key="e2e-forged")
    assert payment.status is Status.PENDING
    reference = payment.provider_reference
    assert reference is not None
    sandbox.account.confirm_intent(reference, {"payment_method": "pm_card_visa"},
                                   base_url="http://x")
    (item,) = events_in_order(sandbox, reference, ["payment_intent.succeeded"])
    forged = item["body"].replace('"amount_received": 14990', '"amount_received": 1')
    reply = pasarela.handle_webhook("stripe", item["headers"], forged.encode())
    assert 400 <= reply.status_code < 500
    assert pasarela.get(payment.id).status is Status.PENDING
    assert pasarela.handle_webhook("stripe", item["headers"],
                                   item["body"].encode()).status_code == 200
    assert pasarela.get(payment.id).status is Status.SUCCEEDED


def test_confirm_then_partial_then_full_refund(pasarela: Pasarela, sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-refund"), method="card", idempotency_key="e2e-refund")
    assert payment.status is Status.PENDING
    assert isinstance(payment.next_action, ConfirmCard)
    assert payment.next_action.step == "confirm"
    confirmed = pasarela.confirm(payment.id, payment_method="pm_card_mastercard")
    assert confirmed.status is Status.SUCCEEDED
    part = pasarela.refund(payment.id, Money.of("49.90", "PEN"), reason="requested_by_customer")
    assert part.amount == Money(4990, "PEN")
    assert part.status.value == "succeeded"
    assert pasarela.get(payment.id).status is Status.PARTIALLY_REFUNDED
    rest = pasarela.refund(payment.id)
    assert rest.amount == Money(10000, "PEN")
    after = pasarela.get(payment.id)
    assert after.status is Status.REFUNDED
    assert after.refunded_amount == Money(14990, "PEN")
    stripe_refunds = sorted(r["amount"] for r in sandbox.account.refunds.values())
    assert stripe_refunds == [4990, 10000]
    # Stripe's charge.refunded deliveries repeat what we know: nothing changes
    reference = payment.provider_reference
    assert reference is not None
    assert all(c == 200 for c in deliver(pasarela, sandbox, reference, ["charge.refunded"]))
    assert pasarela.get(payment.id).refunded_amount == Money(14990, "PEN")


def test_cancel_a_pending_card_payment(pasarela: Pasarela, sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-cancel"), method="card", idempotency_key="e2e-cancel")
    canceled = pasarela.cancel(payment.id)
    assert canceled.status is Status.CANCELED
    assert sandbox.account.intents[payment.provider_reference]["status"] == "canceled"


def test_sync_learns_what_a_lost_webhook_said(pasarela: Pasarela, sandbox: Sandbox) -> None:
    payment = pasarela.pay(order("e2e-sync"), method="card", idempotency_key="e2e-sync",
                           payment_method="pm_card_threeDSecure2Required")
    assert payment.status is Status.PENDING
    assert payment.provider_reference is not None
    sandbox.account.authenticate(payment.provider_reference, True)
    assert pasarela.sync(payment.id).status is Status.SUCCEEDED


def test_lost_answer_is_unknown_then_resolved_by_sync(make: Callable[..., Pasarela],
                                                      sandbox: Sandbox) -> None:
    p = make(timeout=0.2, max_retries=0)
    sandbox.knobs.update({"latency": 0.6})
    payment = p.pay(order("e2e-unknown"), method="card", idempotency_key="e2e-unknown",
                    payment_method="pm_card_visa")
    assert payment.status is Status.UNKNOWN
    assert payment.provider_reference is None
    sandbox.knobs.update({"latency": 0})
    resolved = p.sync(payment.id)  # found by its payment id in Stripe's search
    assert resolved.status is Status.SUCCEEDED
    assert resolved.provider_reference in sandbox.account.intents
    assert len(sandbox.account.intents) == 1


def test_rate_limited_create_is_retried(make: Callable[..., Pasarela], sandbox: Sandbox,
                                        wire: Any) -> None:
    p = make(max_retries=2)
    sandbox.knobs.update({"rate_limit_next": 1, "retry_after": 0})
    payment = p.pay(order("e2e-429"), method="card", idempotency_key="e2e-429",
                    payment_method="pm_card_visa")
    assert payment.status is Status.SUCCEEDED
    posts = [r for r in wire.requests if r.method == "POST"]
    assert [r.headers["idempotency-key"] for r in posts] == ["e2e-429", "e2e-429"]


def test_exchanges_are_recorded_without_secrets(pasarela: Pasarela, sandbox_key: str) -> None:
    payment = pasarela.pay(order("e2e-redact"), method="card", idempotency_key="e2e-redact")
    assert isinstance(payment.next_action, ConfirmCard)
    client_secret = payment.next_action.client_secret
    exchanges = pasarela.store.exchanges_for(payment.id)
    assert exchanges
    text = json.dumps(exchanges, default=str)
    assert "/v1/payment_intents" in text
    assert sandbox_key not in text
    assert client_secret not in text
