"""Dedupe is keyed by provider, event key and payment: one event key that collides
for two payments applies to both, recorded and logged as a collision; a true repeat
(same event, same payment) is still deduplicated. Both paths (one delivery at a
time, and the group-commit batch), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store.schema import webhook_deliveries
from pasarela.testing.fake import FakeGateway, sign_fake_webhook
from pasarela.testing.helpers import capture_events


def _event(gateway: FakeGateway, event_id: str, reference: str,
           status: str = "succeeded") -> tuple[dict[str, str], bytes]:
    body = json.dumps({"id": event_id, "type": f"payment.{status}",
                       "data": {"id": reference, "status": status, "amount": 14990,
                                "currency": "PEN"}}).encode()
    return sign_fake_webhook(body, gateway.webhook_secret, int(gateway.clock().timestamp())), body


def _pay(pasarela: Pasarela, ref: str) -> tuple[str, str]:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe")
    payment = pasarela.pay(Order(reference=ref, amount=Money.of("149.90", "PEN"),
                                 customer=customer),
                           method="cash", idempotency_key=f"key-{ref}")
    assert payment.provider_reference
    return payment.id, payment.provider_reference


def _deliveries(pasarela: Pasarela) -> list[tuple[str | None, str, str]]:
    t = webhook_deliveries
    with pasarela.store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.payment_id, t.c.outcome, t.c.detail)
                            .where(t.c.event_id == "evt-shared").order_by(t.c.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batch"])
def test_an_event_key_shared_by_two_payments_applies_to_both(
    pasarela: Pasarela, gateway: FakeGateway, batched: bool
) -> None:
    first, first_ref = _pay(pasarela, "pedido-a")
    second, second_ref = _pay(pasarela, "pedido-b")
    one, two = _event(gateway, "evt-shared", first_ref), _event(gateway, "evt-shared", second_ref)

    with capture_events() as events:
        if batched:
            replies = pasarela.handle_webhooks([("fake", *one), ("fake", *two), ("fake", *two)])
        else:
            replies = [pasarela.handle_webhook("fake", *d) for d in (one, two, two)]

    assert [getattr(r, "status_code", r) for r in replies] == [200, 200, 200]
    assert pasarela.get(first).status is Status.SUCCEEDED
    assert pasarela.get(second).status is Status.SUCCEEDED
    rows = _deliveries(pasarela)
    assert [(pid, outcome) for pid, outcome, _ in rows] == [(first, "applied"),
                                                           (second, "applied")]
    assert rows[0][2] == ""
    assert rows[1][2] == f"collision: event key also delivered for {first}"
    collisions = [e for e in events if e["event"] == "webhook_event_collision"]
    assert len(collisions) == 1
    assert collisions[0]["log_level"] == "warning"
    assert collisions[0]["payment_id"] == second
    assert collisions[0]["other_payments"] == first


def test_a_true_repeat_is_still_deduplicated(pasarela: Pasarela, gateway: FakeGateway) -> None:
    payment_id, ref = _pay(pasarela, "pedido-c")
    delivery = _event(gateway, "evt-shared", ref)
    for _ in range(3):
        assert pasarela.handle_webhook("fake", *delivery).status_code == 200
    replies = pasarela.handle_webhooks([("fake", *delivery)] * 2)
    assert [getattr(r, "status_code", r) for r in replies] == [200, 200]
    assert [(pid, outcome) for pid, outcome, _ in _deliveries(pasarela)] == [
        (payment_id, "applied")]
    history = pasarela.get(payment_id).history
    assert [(t.target, t.applied) for t in history if t.event_id == "evt-shared"] == [
        (Status.SUCCEEDED, True)]


def test_an_event_first_seen_for_no_payment_applies_once_the_payment_is_known(
    pasarela: Pasarela, gateway: FakeGateway
) -> None:
    """A delivery naming no known payment is recorded under no payment: its repeat
    is a duplicate, and it does not hide the event from a payment found later."""
    unknown = _event(gateway, "evt-shared", "fp_999999")
    assert pasarela.handle_webhook("fake", *unknown).status_code == 200
    assert pasarela.handle_webhook("fake", *unknown).status_code == 200
    payment_id, ref = _pay(pasarela, "pedido-d")
    assert pasarela.handle_webhook("fake", *_event(gateway, "evt-shared", ref)).status_code == 200
    assert pasarela.get(payment_id).status is Status.SUCCEEDED
    assert [(pid, outcome) for pid, outcome, _ in _deliveries(pasarela)] == [
        (None, "unknown_payment"), (payment_id, "applied")]
