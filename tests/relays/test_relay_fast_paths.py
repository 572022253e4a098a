"""The relay claim's fast paths held to the slow ones: on SQLite, a claim queues the
outbox rows added since this store last queued (by rowid) rather than the whole rescan
margin, and the marks bind a batch's ids as one array. Each queues and marks exactly
what the slow path does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pasarela.store import Store
from pasarela.store.schema import relay_deliveries
from tests.relays.outbox_rows import write_events


LEASE = timedelta(seconds=30)


def _queued(url: str, relay: str) -> dict[str, tuple[object, ...]]:
    """*relay*'s delivery rows, by event id (what was queued, marked, leased)."""
    d = relay_deliveries
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {row.event_id: (row.payment_id, row.created_at, row.delivered_at,
                                   row.attempts)
                    for row in conn.execute(sa.select(d).where(d.c.relay == relay))}
    finally:
        engine.dispose()


def test_queueing_since_the_last_rowid_queues_what_the_whole_margin_does(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = Store(sqlite_url, upgrade=True), Store(sqlite_url)
    monkeypatch.setattr(slow, "relay_rescan_every", -1.0)  # the whole margin, every claim
    statements: list[str] = []
    sa.event.listen(fast.engine, "before_cursor_execute",
                    lambda conn, cursor, sql, *args: statements.append(sql))
    now = datetime.now(UTC) + timedelta(seconds=5)
    claims: dict[str, list[list[str]]] = {"fast": [], "slow": []}

    def claim_both(limit: int = 7) -> None:
        for name, store in (("fast", fast), ("slow", slow)):
            batch = store.claim_relay(name, now=now, limit=limit, lease=LEASE)
            claims[name].append([e.id for e in batch])
            store.mark_relayed(name, [e.id for e in batch[::2]], now=now)

    try:
        write_events(sqlite_url, payments=6, per_payment=2)
        claim_both()
        statements.clear()
        claim_both()
        assert any("outbox.rowid >" in sql for sql in statements), "the fast path ran"
        # Committed late: stamped before the newest event seen, within the margin.
        write_events(sqlite_url, payments=3, per_payment=2, start=20,
                     at=datetime.now(UTC) - timedelta(minutes=3))
        claim_both()
        # Committed later than the margin: neither path queues it.
        write_events(sqlite_url, payments=1, per_payment=1, start=40,
                     at=datetime.now(UTC) - timedelta(minutes=30))
        write_events(sqlite_url, payments=4, per_payment=1, start=50)
        for _ in range(4):
            claim_both(limit=50)
        assert claims["fast"] == claims["slow"]
        fast_rows, slow_rows = _queued(sqlite_url, "fast"), _queued(sqlite_url, "slow")
        assert len(fast_rows) == 6 * 2 + 3 * 2 + 4
        assert fast_rows == slow_rows
    finally:
        fast.close()
        slow.close()


def test_a_store_that_did_not_queue_the_rows_looks_at_the_whole_margin(
        sqlite_url: str) -> None:
    first, second = Store(sqlite_url, upgrade=True), Store(sqlite_url)
    now = datetime.now(UTC) + timedelta(seconds=5)
    try:
        write_events(sqlite_url, payments=2, per_payment=1)
        assert len(first.claim_relay("r", now=now, limit=10, lease=LEASE)) == 2
        # Another process queues a late event for the same relay; each store still
        # sees every event the whole margin holds.
        write_events(sqlite_url, payments=1, per_payment=1, start=5,
                     at=datetime.now(UTC) - timedelta(minutes=2))
        assert len(second.claim_relay("r", now=now, limit=10, lease=LEASE)) == 1
        write_events(sqlite_url, payments=1, per_payment=1, start=9)
        assert len(first.claim_relay("r", now=now, limit=10, lease=LEASE)) == 1
        assert len(_queued(sqlite_url, "r")) == 4
    finally:
        first.close()
        second.close()


def test_marks_touch_only_the_given_undelivered_events_of_the_relay(
        store_factory: Callable[..., Store], store_url: str) -> None:
    store = store_factory()
    rows = write_events(store_url, payments=5, per_payment=1)
    ids = [str(r["id"]) for r in rows]
    now = datetime.now(UTC)
    for relay in ("a", "b"):
        assert len(store.claim_relay(relay, now=now, limit=10, lease=LEASE)) == 5
    store.mark_relayed("a", ids[:2], now=now)
    before = _queued(store_url, "a")
    # Again with a later time: the delivered keep their first mark, the others get it.
    store.mark_relayed("a", ids[:3], now=now + timedelta(hours=1))
    after = _queued(store_url, "a")
    assert [after[i] for i in ids[:2]] == [before[i] for i in ids[:2]]
    assert after[ids[2]][2] is not None
    assert before[ids[2]][2] is None
    assert all(after[i][2] is None for i in ids[3:])
    assert all(row[2] is None for row in _queued(store_url, "b").values())
    # The lease moved for exactly the claimed events of the relay.
    again = store.claim_relay("a", now=now, limit=10, lease=LEASE)
    assert again == []
    later = store.claim_relay("a", now=now + LEASE + timedelta(seconds=1), limit=10,
                              lease=LEASE)
    assert [e.id for e in later] == ids[3:]
