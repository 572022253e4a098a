"""Cost analysis fixtures: payments, refunds and settlement lines planted in a store
(both backends) as the engine and reconciliation would have left them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.reconcile_schema import settlement_lines
from pasarela.store.schema import payments, refunds


NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def order_dict(ref: str, minor: int, currency: str = "PEN") -> dict[str, Any]:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    return Order(reference=ref, amount=Money(minor, currency), description="Audífonos",
                 customer=customer).to_dict()


class Planter:
    """Writes rows straight into the tables, with ids of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ids = itertools.count(1)

    def payment(self, provider: str, method: str, minor: int, at: datetime, *,
                currency: str = "PEN", status: str = "succeeded", fee: int | None = None,
                chargeback: bool = False, keep_order: bool = False) -> str:
        n = next(self._ids)
        pid = f"P{n:025d}"
        with self.store.engine.begin() as conn:
            conn.execute(sa.insert(payments).values(
                id=pid, idempotency_key=f"k{n}", fingerprint="0" * 64,
                order_reference=f"o{n}", provider=provider, method=method,
                provider_reference=f"r{n}", amount_minor=minor, currency=currency,
                refunded_minor=0, status=status, version=3, created_at=at, updated_at=at,
                check_attempts=0, routing={"provider": provider},
                order=order_dict(f"o{n}", minor, currency) if keep_order else None))
            if fee is not None or chargeback:
                conn.execute(sa.insert(settlement_lines).values(
                    run_key="run", line_key=f"l{n}", content_hash="0" * 32, line_no=n,
                    provider=provider, provider_reference=f"r{n}", amount_minor=minor,
                    currency=currency, fee_minor=fee,
                    status="chargeback" if chargeback else "paid", occurred_at=at,
                    payment_id=pid, matched_by="reference", category="matched",
                    created_at=at))
        return pid

    def refund(self, payment_id: str, minor: int, at: datetime, *, currency: str = "PEN",
               status: str = "succeeded") -> None:
        n = next(self._ids)
        with self.store.engine.begin() as conn:
            conn.execute(sa.insert(refunds).values(
                id=f"R{n:025d}", payment_id=payment_id, amount_minor=minor,
                currency=currency, status=status, created_at=at, updated_at=at))


@pytest.fixture
def plant(store: Store) -> Planter:
    return Planter(store)
