"""Three workers over 10,000 due payments on one PostgreSQL: each processed exactly once.

The payments are inserted directly (SQLAlchemy Core, one bulk insert) with their
counterparts at the fake gateway:

- 5,000 pending cash codes past expiry that nobody paid: checked with the provider
  (in GET_MANY searches), then expired;
- 3,000 pending cash codes past expiry paid at the last minute: the check finds
  them succeeded;
- 2,000 unknown card payments due for the resolver: one GET each finds them
  succeeded.

Three threads each run :func:`pasarela.engine.worker.run_worker` with a pasarela of their
own (own engine, own connections). Each payment must be claimed by one worker, asked
about once, moved by one applied transition, and its event dispatched once.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from ulid import ULID

from pasarela.api import Pasarela
from pasarela.engine.worker import run_worker
from pasarela.lifecycle import Status
from pasarela.store import Store
from pasarela.store.schema import outbox, payments, transitions
from pasarela.testing.fake import FakePlugin

from .conftest import Observer


pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXPIRE, LATE, UNKNOWN = 5_000, 3_000, 2_000
WORKERS = 3


def seed(url: str, gateway: Any, clock: Any) -> dict[str, str]:
    """Insert the payments and their gateway twins; returns {payment id: group}."""
    now = clock()
    auth = {"Authorization": "Bearer fake_sk_test_123"}
    rows: list[dict[str, Any]] = []
    groups: dict[str, str] = {}
    plan = [("expire", EXPIRE, "pending"), ("late", LATE, "succeed"),
            ("unknown", UNKNOWN, "succeed")]
    for group, count, scenario in plan:
        for _ in range(count):
            payment_id = str(ULID())
            method = "card" if group == "unknown" else "cash"
            status, payload, _ = gateway.respond("POST", "/v1/payments", auth, json.dumps({
                "payment_id": payment_id, "reference": f"o-{payment_id}", "amount": 2500,
                "currency": "PEN", "method": method, "scenario": scenario,
                "expires_at": None}).encode())
            assert status == 200
            reference = json.loads(payload)["id"]
            rows.append({
                "id": payment_id, "idempotency_key": f"k-{payment_id}", "fingerprint": "x",
                "order_reference": f"o-{payment_id}", "provider": "fake", "method": method,
                "provider_reference": None if group == "unknown" else reference,
                "amount_minor": 2500, "currency": "PEN", "refunded_minor": 0,
                "status": "unknown" if group == "unknown" else "pending", "version": 2,
                "created_at": now - timedelta(days=2), "updated_at": now - timedelta(days=2),
                "expires_at": now - timedelta(hours=1),
                "next_check_at": now - timedelta(minutes=1) if group == "unknown" else None,
                "check_attempts": 0,
            })
            groups[payment_id] = group
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(payments), rows)
    finally:
        engine.dispose()
    return groups


def test_three_workers_process_each_due_payment_once(postgres_schema_url, gateway, clock):
    # Durability is not under test here, concurrency is: skip the WAL flush per commit.
    url = sa.make_url(postgres_schema_url)
    options = f"{url.query['options']} -csynchronous_commit=off"
    postgres_schema_url = url.update_query_dict({"options": options}).render_as_string(
        hide_password=False)
    Store(postgres_schema_url, upgrade=True).close()
    groups = seed(postgres_schema_url, gateway, clock)
    gateway.calls.clear()
    claims: Counter[str] = Counter()
    claims_lock = threading.Lock()
    observer = Observer()
    locking: Counter[str] = Counter()

    def record_claims(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FOR UPDATE SKIP LOCKED" in statement:
            locking["outbox" if "FROM outbox" in statement else "payments"] += 1

    config = {"store": {"url": postgres_schema_url}, "providers": {"fake": {"max_retries": 0}},
              "events": {"dispatch": "worker"}}
    pasarelas = []
    for _ in range(WORKERS):
        p = Pasarela(config, plugins=[FakePlugin(), observer], load_entrypoints=False,
                     transport=gateway.transport(), clock=clock)
        p.service.sleep_scale = 0
        for name in ("due_for_expiry", "due_for_check"):
            claim = getattr(p.store, name)

            def counted(*args: Any, _claim: Any = claim, **kwargs: Any) -> Any:
                got = _claim(*args, **kwargs)
                with claims_lock:
                    claims.update(payment.id for payment in got)
                return got

            setattr(p.store, name, counted)
        sa.event.listen(p.store.engine, "before_cursor_execute", record_claims)
        pasarelas.append(p)

    stop = threading.Event()
    threads = [threading.Thread(target=run_worker, args=(p,),
                                kwargs={"interval": 0.05, "stop": stop}) for p in pasarelas]
    check = sa.create_engine(postgres_schema_url, poolclass=sa.pool.NullPool)
    try:
        for thread in threads:
            thread.start()
        open_states = [Status.PENDING.value, Status.UNKNOWN.value]
        for _ in range(2400):  # at most ~120 s, never reached when it works
            with check.connect() as conn:
                left = conn.execute(sa.select(sa.func.count()).select_from(payments)
                                    .where(payments.c.status.in_(open_states))).scalar_one()
                undispatched = conn.execute(sa.select(sa.func.count()).select_from(outbox)
                                            .where(outbox.c.dispatched_at.is_(None))).scalar_one()
            if left == 0 and undispatched == 0:
                break
            stop.wait(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        with check.connect() as conn:
            final = dict(conn.execute(sa.select(payments.c.id, payments.c.status)).all())
            moves = conn.execute(sa.select(transitions.c.payment_id, transitions.c.applied,
                                           transitions.c.source, transitions.c.target)).all()
            events = conn.execute(sa.select(outbox.c.id, outbox.c.dispatched_at)).all()
    finally:
        stop.set()
        check.dispose()
        for p in pasarelas:
            p.close()

    expected = {"expire": "expired", "late": "succeeded", "unknown": "succeeded"}
    assert Counter(final.values()) == Counter({"expired": EXPIRE, "succeeded": LATE + UNKNOWN})
    assert all(final[pid] == expected[group] for pid, group in groups.items())
    # The store claims with FOR UPDATE SKIP LOCKED, payments and outbox rows alike.
    assert locking["payments"] > 0
    assert locking["outbox"] > 0
    # Claimed by exactly one worker, exactly once.
    assert len(claims) == len(groups)
    assert set(claims.values()) == {1}
    # Asked about at the provider exactly once (one GET each, or in a search).
    gets = Counter(path.rsplit("/", 1)[-1] for method, path in gateway.calls if method == "GET")
    gets.update(gateway.searched)
    assert len(gets) == len(groups)
    assert set(gets.values()) == {1}
    # One applied transition each, nothing recorded as ignored.
    applied = Counter(pid for pid, was_applied, _, _ in moves if was_applied)
    assert len(applied) == len(groups)
    assert set(applied.values()) == {1}
    assert not [m for m in moves if not m.applied]
    # Every event dispatched, each to the observers exactly once.
    assert len(events) == len(groups)
    assert all(dispatched is not None for _, dispatched in events)
    seen = Counter(event.id for event in observer.events)
    assert len(seen) == len(groups)
    assert set(seen.values()) == {1}
