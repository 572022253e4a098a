"""Data for the reconciliation benchmark: payments bulk-inserted into a SQLite store,
and a settlement CSV file that mostly agrees with them.

Payment *i* has id ``P<i>``, provider reference ``r<i>`` and an expected fee in
``routing``. Line *i* of the file settles payment *i*, except for a few planted
differences (one in every ``EVERY`` lines each): an amount that differs, a fee
that differs, a duplicate of the previous line, a reference nobody has (whose
payment is then missing at the provider).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from pasarela.store import Store
from pasarela.store.schema import payments


BASE = datetime(2026, 10, 1, tzinfo=UTC)
EVERY = 10_000
CHUNK = 20_000


def amount(i: int) -> int:
    return 1000 + (i * 7919) % 500_000


def fee(minor: int) -> int:
    commission = (minor * 35 + 500) // 1000 + 50
    return commission + (commission * 18 + 50) // 100


def window(count: int) -> tuple[datetime, datetime]:
    return BASE, BASE + timedelta(seconds=count + 1)


def _rows(start: int, stop: int) -> Iterator[dict[str, object]]:
    for i in range(start, stop):
        minor = amount(i)
        at = BASE + timedelta(seconds=i)
        yield {
            "id": f"P{i:025d}", "idempotency_key": f"k{i}", "fingerprint": "0" * 64,
            "order_reference": f"o{i}", "provider": "fake", "method": "cash",
            "provider_reference": f"r{i}", "amount_minor": minor, "currency": "PEN",
            "refunded_minor": 0, "status": "succeeded", "version": 3, "created_at": at,
            "updated_at": at, "check_attempts": 0,
            "routing": {"expected_fee": {"minor": fee(minor), "currency": "PEN"}},
        }


def create_payments(url: str, count: int) -> None:
    """A migrated store at *url* holding *count* succeeded payments (executemany in
    chunks of ``CHUNK``)."""
    store = Store(url, upgrade=True)
    try:
        with store.engine.begin() as conn:
            for start in range(0, count, CHUNK):
                conn.execute(sa.insert(payments), list(_rows(start, min(count, start + CHUNK))))
    finally:
        store.close()


def write_settlements(path: Path, count: int) -> dict[str, int]:
    """*count* lines settling the payments, with planted differences; their tally."""
    planted = {"amount_mismatch": 0, "fee_mismatch": 0, "duplicate": 0, "unknown": 0}
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("reference,amount,fee,status,paid_at\n")
        previous = ""
        for i in range(count):
            minor = amount(i)
            charged = fee(minor)
            reference = f"r{i}"
            kind = i % EVERY
            if kind == 1:
                minor += 100
                planted["amount_mismatch"] += 1
            elif kind == 2:
                charged += 250
                planted["fee_mismatch"] += 1
            elif kind == 4 and previous:
                fh.write(previous)
                planted["duplicate"] += 1
                continue
            elif kind == 5:
                reference = f"x{i}"
                planted["unknown"] += 1
            at = BASE + timedelta(seconds=i, minutes=30)
            line = (f"{reference},{minor // 100}.{minor % 100:02d},"
                    f"{charged // 100}.{charged % 100:02d},paid,{at.isoformat()}\n")
            fh.write(line)
            previous = line
    return planted
