"""Outbox rows written straight into a store's database, for the relay tests: the
relays read the outbox, whatever transition wrote it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from ulid import ULID

from pasarela.store.schema import outbox


def write_events(url: str, *, payments: int, per_payment: int, start: int = 0,
                 at: datetime | None = None) -> list[dict[str, object]]:
    """*payments* x *per_payment* events, each payment's in order (interleaved across
    payments, as a busy shop writes them); returns the rows in write order."""
    base = at or datetime.now(UTC)
    rows: list[dict[str, object]] = []
    n = 0
    for step in range(per_payment):
        for p in range(start, start + payments):
            created = base + timedelta(microseconds=n)
            n += 1
            rows.append({
                "id": str(ULID.from_datetime(created)), "payment_id": f"pay{p:023d}",
                "type": ("payment.pending", "payment.succeeded", "payment.refunded",
                         "payment.expired")[step % 4],
                "payload": {"order_reference": f"ord-{p}", "provider": "fake",
                            "status": "succeeded", "amount": {"minor": 1000 + p,
                                                              "currency": "PEN"},
                            "step": step},
                "created_at": created, "next_attempt_at": created, "attempts": 0,
            })
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for i in range(0, len(rows), 2000):
                conn.execute(sa.insert(outbox), rows[i:i + 2000])
    finally:
        engine.dispose()
    return rows
