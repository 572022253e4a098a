"""Run in a spawned process by the concurrency tests: opens its own Store."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

from pasarela.lifecycle import Status
from pasarela.model import Payment
from pasarela.money import Money
from pasarela.store import Store


def create_with_key(url: str, key: str) -> tuple[str, bool]:
    """Create a payment with *key*; return (the payment id, whether this call inserted)."""
    now = datetime.now(UTC)
    with Store(url) as store:
        payment = Payment(
            id=str(ULID()), order_reference="pedido-mp", idempotency_key=key, provider="fake",
            method="cash", amount=Money(14990, "PEN"), status=Status.CREATED, version=1,
            created_at=now, updated_at=now,
        )
        stored, inserted = store.create_payment(payment, fingerprint="fp")
        return stored.id, inserted
