"""Metrics scrape cost: ``GET /metrics`` over a store of 1,000,000 payments.

The store holds *count* payments, 99.4 % of them finished (succeeded, failed,
expired) and the rest open (pending and unknown), 1,000 undispatched outbox events
and 20 alerts firing. One scrape is everything ``/metrics`` does: this process's
counters and histograms (no table read) and the store gauges, each read by an index
(open payments, the outbox backlog, the alerts firing). Beside it, in the same run,
the scrape as it was before (a ``GROUP BY`` over the whole payments table and the
recorded exchanges), so the ratio says what the indexed gauges saved.

    .venv/bin/python bench/bench_metrics.py [--count N] [--postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from harness import goal, report, rounds, scaled


#: One scrape of the store gauges at 1,000,000 payments, median of rounds.
SCRAPE_BUDGET_MS = 50.0
CHUNK = 20_000
BASE = datetime(2026, 10, 1, tzinfo=UTC)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _status(i: int) -> str:
    if i % 1000 < 5:
        return "pending"
    if i % 1000 == 5:
        return "unknown"
    return ("succeeded", "succeeded", "succeeded", "failed", "expired")[i % 5]


def create_store(url: str, count: int) -> None:
    from pasarela.store import Store
    from pasarela.store.schema import alerts, outbox, payments

    store = Store(url, upgrade=True)
    try:
        with store.engine.begin() as conn:
            for start in range(0, count, CHUNK):
                rows = []
                for i in range(start, min(count, start + CHUNK)):
                    at = BASE + timedelta(seconds=i)
                    rows.append({
                        "id": f"P{i:025d}", "merchant": "" if i % 3 else "bodega",
                        "idempotency_key": f"k{i}", "fingerprint": "0" * 64,
                        "order_reference": f"o{i}",
                        "provider": ("pagoefectivo", "culqi", "stripe")[i % 3]
                        if i % 3 else "bodega.pagoefectivo",
                        "method": ("cash", "wallet", "card")[i % 3],
                        "provider_reference": f"r{i}", "amount_minor": 1000 + i % 9000,
                        "currency": "PEN", "refunded_minor": 0, "status": _status(i),
                        "version": 2, "created_at": at, "updated_at": at,
                        "check_attempts": 5 if _status(i) == "unknown" else 0})
                conn.execute(sa.insert(payments), rows)
            conn.execute(sa.insert(outbox), [
                {"id": f"E{i:025d}", "payment_id": f"P{i * 997 % count:025d}",
                 "type": "payment.succeeded", "payload": {}, "created_at": BASE,
                 "next_attempt_at": BASE, "attempts": 0} for i in range(1000)])
            conn.execute(sa.insert(alerts), [
                {"merchant": "", "kind": "notifications_silent", "subject": f"acct{i}",
                 "severity": "critical", "value": 1.0, "threshold": 0.0, "message": "",
                 "started_at": BASE, "last_seen_at": BASE} for i in range(20)])
            if store.dialect == "postgresql":
                conn.exec_driver_sql("ANALYZE")
    finally:
        store.close()


def _time(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - started) * 1000)
    return out


def measure(url: str, count: int, label: str) -> bool:
    from prometheus_client import CollectorRegistry, generate_latest

    from pasarela.store import Store, queries
    from pasarela.web.metrics import LATENCY_BUCKETS, ProcessMetrics, StoreCollector

    store = Store(url)
    try:
        registry = CollectorRegistry()
        ProcessMetrics(registry, store).start()
        registry.register(StoreCollector(store))
        text = generate_latest(registry).decode()
        open_total = sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
                         if line.startswith("pasarela_payments_open{"))
        expected_open = sum(1 for i in range(count) if _status(i) in ("pending", "unknown"))
        ok_values = open_total == expected_open
        report(f"metrics {label}: open payments gauge", f"{open_total:,.0f}",
               f"{expected_open:,}", ok_values)

        def before() -> None:  # the scrape as it was: GROUP BY over every payment
            queries.metrics(store, exchanges_after=0, bounds=LATENCY_BUCKETS)
            store.outbox_lag(now=datetime.now(UTC))

        n = rounds(7)
        generate_latest(registry)  # warm the cache as a scraper would
        now_ms = _time(lambda: generate_latest(registry), n)
        old_ms = _time(before, max(3, n // 2))
        ok = goal(f"metrics scrape {label}, {count:,} payments", now_ms, unit=" ms",
                  at_most=SCRAPE_BUDGET_MS,
                  detail=f"full GROUP BY before: {statistics.median(old_ms):,.0f} ms, "
                         f"{statistics.median(old_ms) / statistics.median(now_ms):,.0f}x")
        return ok and ok_values
    finally:
        store.close()


def bench_metrics(count: int, *, postgres: bool) -> bool:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'metrics.db'}"
        made = time.perf_counter()
        create_store(url, count)
        print(f"       data: {count:,} payments in {time.perf_counter() - made:.1f} s")
        ok &= measure(url, count, "SQLite")
    if postgres:
        schema = f"bench_metrics_{int(time.time())}"
        engine = sa.create_engine(POSTGRES)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = sa.engine.make_url(POSTGRES).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        try:
            made = time.perf_counter()
            create_store(url, count)
            print(f"       data: {count:,} payments on PostgreSQL in "
                  f"{time.perf_counter() - made:.1f} s")
            ok &= measure(url, count, "PostgreSQL")
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            engine.dispose()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=scaled(1_000_000))
    parser.add_argument("--postgres", action="store_true",
                        help="also on the local PostgreSQL (a schema made and dropped)")
    args = parser.parse_args(argv)
    return 0 if bench_metrics(args.count, postgres=args.postgres) else 1


if __name__ == "__main__":
    raise SystemExit(main())
