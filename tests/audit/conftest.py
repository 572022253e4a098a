"""Factories for the evidence chain tests (the ``store`` fixture, on SQLite and
PostgreSQL, lives in tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from ulid import ULID

from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment
from pasarela.money import Money
from pasarela.store import Delivery, Store


def new_payment(**overrides: Any) -> Payment:
    now = datetime.now(UTC)
    pid = str(ULID())
    values: dict[str, Any] = {
        "id": pid, "order_reference": f"pedido-{pid[-6:]}", "idempotency_key": f"key-{pid}",
        "provider": "fake", "method": "cash", "amount": Money.of("149.90", "PEN"),
        "status": Status.CREATED, "version": 1, "created_at": now, "updated_at": now,
    }
    values.update(overrides)
    return Payment(**values)


def new_exchange(payment_id: str | None, **overrides: Any) -> Exchange:
    values: dict[str, Any] = {
        "provider": "fake", "operation": "create", "payment_id": payment_id, "attempt": 1,
        "method": "POST", "url": "http://127.0.0.1:8801/v1/payments",
        "request_headers": {"content-type": "application/json", "authorization": "[redacted]"},
        "request_body": '{"amount": "149.90", "nombre": "Rosa Quispe"}',
        "status_code": 201, "response_headers": {"content-type": "application/json"},
        "response_body": '{"id": "cip-1"}', "error": None,
        "started_at": datetime.now(UTC), "duration_ms": 12.5,
    }
    values.update(overrides)
    return Exchange(**values)


def flow(store: Store) -> Payment:
    """A payment's realistic trail on *store*: created with its create exchange,
    pending, paid by a webhook delivery, a duplicate report ignored, a delivery of
    another kind and a refund's exchange; returns the payment."""
    payment, _ = store.create_payment(new_payment(), fingerprint="fp")
    store.record_exchanges([new_exchange(payment.id)])
    payment = store.transition(payment.id, expected_version=payment.version,
                               target=Status.PENDING, cause=Cause.API,
                               event_type="payment.pending",
                               changes={"provider_reference": "cip-1"})
    payment = store.transition(
        payment.id, expected_version=payment.version, target=Status.SUCCEEDED,
        cause=Cause.WEBHOOK, event_type="payment.succeeded", event_id="evt-1",
        delivery=Delivery(provider="fake", event_id="evt-1", event_type="paid",
                          outcome="applied"),
        exchanges=[new_exchange(payment.id, operation="get", method="GET",
                                request_body="")])
    store.record_ignored(payment.id, source=Status.SUCCEEDED, target=Status.SUCCEEDED,
                         cause=Cause.WEBHOOK, reason="duplicate", event_id="evt-1b",
                         delivery=Delivery(provider="fake", event_id="evt-1b",
                                           event_type="paid", outcome="ignored"))
    store.record_delivery(Delivery(provider="fake", event_id="evt-2", event_type="info",
                                   outcome="ignored", payment_id=payment.id))
    store.record_exchanges([new_exchange(payment.id, operation="refund")])
    return payment


def edit(store: Store, table: sa.Table, record_id: int, **values: Any) -> None:
    """Change a row behind the store's back (raw SQL, no store method)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == record_id).values(**values))
