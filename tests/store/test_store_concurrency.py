"""Concurrent writers, on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ulid import ULID

from pasarela.errors import ConcurrencyConflictError
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment
from pasarela.store import Store
from pasarela.store import schema as t


PaymentFactory = Callable[..., Payment]


def run_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Call fn(0..n-1) from n threads released at once; results or exceptions, in order."""
    barrier = threading.Barrier(n)

    def call(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected and asserted on by the caller
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def test_fifty_threads_one_key_make_one_payment(
    store: Store, make_payment: PaymentFactory, rows: Callable[..., int]
) -> None:
    results = run_together(
        50,
        lambda i: store.create_payment(make_payment(idempotency_key="pedido-50"),
                                       fingerprint="fp"),
    )

    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(inserted for _, inserted in results) == 1
    assert len({payment.id for payment, _ in results}) == 1
    assert rows(store, t.payments) == 1


@pytest.mark.postgres
def test_four_processes_one_key_make_one_payment(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(postgres_schema_url, upgrade=True):
        pass
    # The spawned children unpickle the worker function by module name.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import store_process_worker

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        futures = [
            pool.submit(store_process_worker.create_with_key, postgres_schema_url, "pedido-mp")
            for _ in range(4)
        ]
        results = [f.result(timeout=60) for f in futures]

    assert sum(inserted for _, inserted in results) == 1
    assert len({pid for pid, _ in results}) == 1
    with Store(postgres_schema_url) as store, store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.payments)).scalar() == 1
    sys.modules.pop("store_process_worker", None)


def test_two_writers_one_version_one_wins_and_the_retry_applies(
    store: Store, created: Payment
) -> None:
    targets = [Status.PENDING, Status.PROCESSING]

    results = run_together(
        2,
        lambda i: store.transition(created.id, expected_version=1, target=targets[i],
                                   cause=Cause.API, event_type=f"payment.{targets[i]}"),
    )

    winners = [r for r in results if isinstance(r, Payment)]
    losers = [r for r in results if isinstance(r, ConcurrencyConflictError)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert winners[0].version == 2
    # The loser reloads and retries on the new version.
    fresh = store.get_payment(created.id)
    assert fresh == winners[0]
    retried = store.transition(fresh.id, expected_version=fresh.version, target=Status.SUCCEEDED,
                               cause=Cause.API, event_type="payment.succeeded")
    assert retried.version == 3
    assert [(s.seq, s.version, s.target) for s in store.history(created.id)] == [
        (1, 2, winners[0].status), (2, 3, Status.SUCCEEDED)
    ]


def test_ignored_reports_and_transitions_interleave_without_seq_clashes(
    store: Store, created: Payment
) -> None:
    def work(i: int) -> object:
        if i % 2:
            store.record_ignored(created.id, source=Status.CREATED, target=Status.CREATED,
                                 cause=Cause.WEBHOOK, reason="duplicate")
            return "ignored"
        for _ in range(50):  # optimistic retry loop, as the service does
            current = store.get_payment(created.id)
            try:
                store.transition(current.id, expected_version=current.version,
                                 target=Status.PROCESSING, cause=Cause.WEBHOOK,
                                 event_type="payment.processing")
            except ConcurrencyConflictError:
                continue
            return "applied"
        return "gave up"

    results = run_together(20, work)
    assert Counter(map(str, results)) == {"ignored": 10, "applied": 10}
    steps = store.history(created.id)
    assert [s.seq for s in steps] == list(range(1, 21))
    assert Counter(s.applied for s in steps) == {True: 10, False: 10}
    assert store.get_payment(created.id).version == 11


def test_outbox_claimed_exactly_once_by_three_dispatchers(store: Store) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.outbox), [
            {"id": str(ULID()), "payment_id": str(ULID()), "type": "payment.succeeded",
             "payload": {"n": n}, "created_at": now, "next_attempt_at": now, "attempts": 0}
            for n in range(300)
        ])
    claim_at = now + timedelta(seconds=1)

    def dispatcher(_: int) -> list[str]:
        mine: list[str] = []
        while batch := store.claim_outbox(now=claim_at, limit=7):
            mine.extend(event.id for event in batch)
            store.mark_dispatched([event.id for event in batch], now=claim_at)
        return mine

    claimed = run_together(3, dispatcher)

    flat = [event_id for batch in claimed for event_id in batch]
    assert len(flat) == 300
    assert len(set(flat)) == 300
    assert store.outbox_lag(now=claim_at) == (0, 0.0)


def test_sqlite_writers_from_two_stores_never_see_a_locked_database(
    sqlite_url: str, make_payment: PaymentFactory
) -> None:
    # Two Store objects on one file behave like two processes: only SQLite's own
    # locking (BEGIN IMMEDIATE and the busy timeout) keeps them apart.
    with Store(sqlite_url) as one, Store(sqlite_url) as two:
        def work(i: int) -> Payment:
            store = (one, two)[i % 2]
            payment, _ = store.create_payment(make_payment(), fingerprint="fp")
            return store.transition(payment.id, expected_version=1, target=Status.PENDING,
                                    cause=Cause.API, event_type="payment.pending")

        results = run_together(50, work)

        assert not [r for r in results if isinstance(r, Exception)]
        with one.engine.connect() as conn:
            assert conn.execute(
                sa.select(sa.func.count()).select_from(t.outbox)
            ).scalar() == 50
