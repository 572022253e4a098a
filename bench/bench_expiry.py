"""Expiry sweep: due pending payments expired through the lifecycle (SQLite).

Each due payment is first checked with its provider (the fake gateway, in process, so
the figure is pasarela's own cost: the gateway answers ``GET_MANY`` for up to 500
payments per request), then expired with its transition and outbox event, one write
batch per chunk. The goal: 100,000 due payments in under 4 s.

The payments are seeded once into a database file, and each round sweeps a fresh copy
of it (the gateway only answers questions, so one serves every round). With
``--count N`` that many payments are swept and the time for 100,000 is extrapolated
linearly (the sweep works in fixed batches). Without it, a sample of 10,000 is swept
first; when that projects to under three times the goal, the full 100,000 (times
``PASARELA_BENCH_SCALE``) are seeded and swept, else the sample's rounds are reported,
extrapolated.

``python bench/bench_expiry.py [--count N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from harness import goal, rounds, scaled
from ulid import ULID


BUDGET_S = 4.0
TARGET = 100_000
SAMPLE = 10_000


def seed(url: str, gateway: Any, count: int, now: datetime) -> None:
    auth = {"Authorization": "Bearer fake_sk_test_123"}
    rows: list[dict[str, Any]] = []
    for _ in range(count):
        payment_id = str(ULID())
        _, payload, _ = gateway.respond("POST", "/v1/payments", auth, json.dumps({
            "payment_id": payment_id, "reference": f"o-{payment_id}", "amount": 2500,
            "currency": "PEN", "method": "cash", "scenario": "pending",
            "expires_at": None}).encode())
        rows.append({
            "id": payment_id, "idempotency_key": f"k-{payment_id}", "fingerprint": "x",
            "order_reference": f"o-{payment_id}", "provider": "fake", "method": "cash",
            "provider_reference": json.loads(payload)["id"], "amount_minor": 2500,
            "currency": "PEN", "refunded_minor": 0, "status": "pending", "version": 2,
            "created_at": now - timedelta(days=2), "updated_at": now - timedelta(days=2),
            "expires_at": now - timedelta(hours=1), "check_attempts": 0,
        })
    from pasarela.store.schema import payments

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(payments), rows)
    engine.dispose()


def sweep(count: int, repeat: int = 1) -> list[float]:
    """Seed *count* due payments once, then sweep a fresh copy of them *repeat* times;
    each sweep's wall time in seconds."""
    import shutil

    from pasarela.api import Pasarela
    from pasarela.store import Store
    from pasarela.testing.fake import FakeGateway, FakePlugin, FakeProvider

    now = datetime.now(UTC)
    gateway = FakeGateway()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        seeded = f"sqlite:///{Path(tmp) / 'seeded.db'}"
        Store(seeded).close()
        seed(seeded, gateway, count, now)
        for r in range(repeat):
            db = Path(tmp) / f"expiry-{r}.db"
            shutil.copyfile(Path(tmp) / "seeded.db", db)
            url = f"sqlite:///{db}"
            config = {"store": {"url": url}, "providers": {"fake": {}},
                      "events": {"dispatch": "worker"}}
            gateway.calls.clear()
            with Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                          transport=gateway.transport()) as pasarela:
                start = time.perf_counter()
                expired = 0
                while True:
                    done = pasarela.expire_due()
                    expired += done
                    if not done:
                        break
                times.append(time.perf_counter() - start)
            assert expired == count, (expired, count)
            asked = [call for call in gateway.calls if call != ("POST", "/v1/payments")]
            # Every payment was asked about, in GET_MANY chunks (none one by one).
            chunks = -(-count // FakeProvider.get_many_limit)
            assert asked == [("POST", "/v1/payments/search")] * chunks, asked[:3]
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=None)
    args = parser.parse_args(argv if argv is not None else [])
    from pasarela.cli.output import configure_logging as configure

    configure(level=logging.WARNING)
    repeat = rounds(3)
    count = args.count or min(SAMPLE, scaled(TARGET))
    times = sweep(count, repeat if args.count else 1)
    full = scaled(TARGET)
    if args.count is None and min(times) / count * TARGET < 3 * BUDGET_S and full > count:
        count, times = full, sweep(full, repeat)
    elif args.count is None:
        times += sweep(count, repeat - 1)
    projected = [t / count * TARGET for t in times]
    how = "measured" if count >= TARGET else f"extrapolated from {count:,}"
    ok = goal(f"expiry sweep of {TARGET:,} due payments (SQLite, provider asked first)",
              projected, unit=" s", at_most=BUDGET_S,
              detail=f"{statistics.median(times) / count * 1e3:.3f} ms each, {how}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
