"""The console's search at 1,000,000 payments, on SQLite and PostgreSQL.

The payments are generated here (nothing is kept in the repository) and bulk-loaded:
``executemany`` in one transaction on SQLite, ``COPY`` on PostgreSQL. Then each
search the console makes is timed through :meth:`Store.search_payments` (the store's
query, its keyset page of 50, the rows read): by a CIP in the one box (every
identifier tried), by order reference, by a customer's phone (its keyed hash), the
newest pending payments, a keyset page deep in one account's card payments, and an
amount range within a week. Budget: each under 50 ms (median of rounds); each line
says its ratio to the budget.

The payments are loaded once per process: ``bench/run.py`` runs this module in its
quiet pass and again in its busy pass, and the second pass searches the stores the
first one loaded (the searches only read). They are removed when the process ends.

``python bench/bench_console.py [--payments N] [--only sqlite|postgres]``
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_webhooks import postgres_schema
from harness import goal, rounds, scaled


PAYMENTS = 1_000_000
BUDGET_MS = 50.0
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPAN = timedelta(days=90)
ACCOUNTS = ("pagoefectivo", "yape", "stripe", "mercadopago")
METHODS = {"pagoefectivo": "cash", "yape": "wallet", "stripe": "card", "mercadopago": "card"}
STATUSES = ("succeeded",) * 60 + ("pending",) * 15 + ("expired",) * 15 + ("failed",) * 7 + (
    "unknown", "canceled", "refunded")
COLUMNS = ("id", "merchant", "idempotency_key", "fingerprint", "order_reference", "provider",
           "method", "provider_reference", "amount_minor", "currency", "refunded_minor",
           "status", "version", "created_at", "updated_at", "expires_at", "check_attempts",
           "network", "phone_hash", "document_hash")


def rows(count: int, digest: Callable[[str, str], str], seed: int = 7
         ) -> Iterator[tuple[Any, ...]]:
    """*count* payments, oldest first (ids in creation order, as ULIDs are)."""
    from ulid import ULID

    rng = random.Random(seed)
    step = SPAN / count
    start = NOW - SPAN
    for i in range(count):
        at = start + step * i
        account = ACCOUNTS[i % len(ACCOUNTS)]
        pid = str(ULID.from_datetime(at))
        phone = f"9{rng.randrange(10**8):08d}"
        yield (pid, "", f"key-{i}", "fp", f"pedido-{i}", account, METHODS[account],
               f"{10_000_000 + i}", rng.randrange(500, 100_000), "PEN", 0,
               rng.choice(STATUSES), 2, at, at, at + timedelta(days=2), 0,
               "pagoefectivo" if account == "pagoefectivo" else None,
               digest("phone", phone), digest("document", f"{40_000_000 + i}"))


def load(url: str, count: int, digest: Callable[[str, str], str]) -> float:
    """Bulk-load *count* payments into the (migrated) store at *url*; seconds taken."""
    import sqlalchemy as sa

    from pasarela.store import Store

    store = Store(url, upgrade=True)
    store.close()
    started = time.perf_counter()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            # A bulk load, not the store's durable writes: no journal while it runs.
            cursor.execute("PRAGMA journal_mode=OFF")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-200000")
            marks = ", ".join("?" * len(COLUMNS))
            insert = f"INSERT INTO payments ({', '.join(COLUMNS)}) VALUES ({marks})"  # noqa: S608
            batch: list[tuple[Any, ...]] = []
            for row in rows(count, digest):
                batch.append(tuple(v.isoformat(" ", "microseconds")[:26]
                                   if isinstance(v, datetime) else v for v in row))
                if len(batch) == 50_000:
                    cursor.executemany(insert, batch)
                    batch.clear()
            cursor.executemany(insert, batch)
            raw.commit()
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA journal_mode=WAL")
        else:
            with cursor.copy(f"COPY payments ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows(count, digest):
                    copy.write_row(row)
            raw.commit()
            cursor.execute("ANALYZE payments")
        raw.commit()
    finally:
        raw.close()
        engine.dispose()
    return time.perf_counter() - started


def searches(store: Any, count: int, digest_phone: str) -> dict[str, Callable[[], int]]:
    """Each search the console makes, as a function returning the rows found."""
    from pasarela.store import PaymentQuery

    rng = random.Random(3)

    def one(query: Callable[[], PaymentQuery], **kw: Any) -> Callable[[], int]:
        return lambda: len(store.search_payments(query(), limit=50, **kw).rows)

    middle = NOW - SPAN / 2
    deep = store.search_payments(PaymentQuery(provider="stripe", method="card"), limit=50,
                                 after=None)
    cursor = deep.after
    for _ in range(20):  # 1,000 rows in: a page far from the first
        cursor = store.search_payments(PaymentQuery(provider="stripe", method="card"),
                                       limit=50, after=cursor).after
    return {
        "by CIP (the one box)": one(lambda: PaymentQuery(
            text=str(10_000_000 + rng.randrange(count)))),
        "by order reference": one(lambda: PaymentQuery(
            order_reference=f"pedido-{rng.randrange(count)}")),
        "by phone (keyed hash)": lambda: len(store.search_payments(
            PaymentQuery(phone=digest_phone), limit=50).rows),
        "newest pending, page 1": one(lambda: PaymentQuery(statuses=("pending",))),
        "account + method, page 21 (keyset)": one(
            lambda: PaymentQuery(provider="stripe", method="card"), after=cursor),
        "amount range within a week": one(lambda: PaymentQuery(
            currency="PEN", min_minor=14_900, max_minor=15_900,
            created_from=middle, created_to=middle + timedelta(days=7))),
    }


#: Stores loaded in this process, by (database, payment count): their URL and the
#: sealer whose keyed hashes they hold (each pass of ``bench/run.py`` reuses them).
_LOADED: dict[tuple[str, int], tuple[str, Any]] = {}
#: Their temporary directories and schemas, removed when the process ends.
_KEEP = contextlib.ExitStack()
atexit.register(_KEEP.close)


def loaded(label: str, url: str, count: int) -> tuple[str, Any]:
    """The store at *url* loaded with *count* payments, or the one this process
    loaded already for *label* and *count*: its URL and sealer."""
    from pasarela.store.sealing import Sealer, new_key

    known = _LOADED.get((label, count))
    if known is not None:
        print(f"       {label}: {count:,} payments loaded earlier in this run, reused",
              flush=True)
        return known
    sealer = Sealer([new_key()])

    def digest(kind: str, value: str) -> str:
        return sealer.digests(kind, value)[0]

    seconds = load(url, count, digest)
    print(f"       {label}: {count:,} payments loaded in {seconds:.0f} s", flush=True)
    _LOADED[(label, count)] = url, sealer
    return url, sealer


def measure(label: str, url: str, sealer: Any, count: int) -> bool:
    from pasarela.store import PaymentQuery, Store

    # A phone the generator gave: the first payment's (the same seed, the same draws).
    rng = random.Random(7)
    phone = f"9{rng.randrange(10**8):08d}"
    store = Store(url, upgrade=False, sealer=sealer)
    ok = True
    try:
        if not store.search_payments(PaymentQuery(phone=phone)).rows:
            raise SystemExit("bench_console: the generated phone is not found")
        for name, search in searches(store, count, phone).items():
            search()  # warm the cache and the plan
            times = []
            for _ in range(rounds(5)):
                samples = []
                for _ in range(20):
                    started = time.perf_counter()
                    search()
                    samples.append((time.perf_counter() - started) * 1000)
                times.append(statistics.median(samples))
            ratio = statistics.median(times) / BUDGET_MS
            ok &= goal(f"console search {label}: {name}", times, unit=" ms",
                       at_most=BUDGET_MS, detail=f"{ratio:.2f}x the 50 ms budget")
    finally:
        store.close()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=scaled(PAYMENTS, 10_000))
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    ok = True
    if args.only != "postgres":
        url = _LOADED.get(("SQLite", args.payments), (None,))[0]
        if url is None:
            tmp = _KEEP.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite:///{Path(tmp) / 'console.db'}"
        ok &= measure("SQLite", *loaded("SQLite", url, args.payments), args.payments)
    if args.only != "sqlite":
        url = _LOADED.get(("PostgreSQL", args.payments), (None,))[0]
        if url is None:
            url = _KEEP.enter_context(postgres_schema())
        if url is not None:
            ok &= measure("PostgreSQL", *loaded("PostgreSQL", url, args.payments),
                          args.payments)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
