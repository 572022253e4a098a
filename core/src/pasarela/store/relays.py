"""Per-relay delivery marks: which outbox events each relay's broker acknowledged.

Each relay (a ``[[relays]]`` entry, by name) has its own queue over the one outbox:
``relay_deliveries`` rows, one per (relay, event), queued from the outbox as a claim
runs. :meth:`Relays.claim_relay` does, in one write transaction:

1. lock the relay's ``relay_cursors`` row (``SELECT ... FOR UPDATE`` on PostgreSQL;
   SQLite serialises writers with ``BEGIN IMMEDIATE``), so that the claims of one
   relay run one at a time in every process (the publishing does not: each worker
   publishes what it claimed, in parallel);
2. queue the outbox events created since the cursor's watermark, less
   :attr:`Relays.relay_rescan` (an event whose transaction committed late, with an
   older ``created_at``, is still seen), that the relay has not queued yet;
3. take the earliest due events (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) that are
   the first undelivered event of their payment, and push their ``next_attempt_at``
   forward by the lease: no other worker takes them meanwhile. A batch thus holds at
   most one event per payment, and a payment's next event is handed out only once
   the one before it was acknowledged: per-payment order, whatever the broker
   refuses and however the batch is published (a relay may publish it all at once).

Marks are per relay: a broker that is down delays its own relay only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar

import sqlalchemy as sa

from pasarela.store._base import StoreBase
from pasarela.store._rows import from_db, to_db, utc_now
from pasarela.store._writes import dialect_insert
from pasarela.store.schema import outbox, relay_cursors, relay_deliveries
from pasarela.store.values import OutboxEvent


__all__ = ["Relays"]

_d = relay_deliveries


class Relays(StoreBase):
    """The relays' part of :class:`~pasarela.store.Store`."""

    #: How far before its watermark a relay looks again for outbox events to queue.
    relay_rescan: ClassVar[timedelta] = timedelta(minutes=10)
    #: Events queued by one claim from which the table's statistics are refreshed
    #: (PostgreSQL ``ANALYZE``) before the claim selects its batch.
    relay_analyze_after: ClassVar[int] = 1000

    def claim_relay(self, relay: str, *, now: datetime, limit: int,
                    lease: timedelta) -> list[OutboxEvent]:
        """Queue new outbox events for *relay* and claim up to *limit* due ones (see
        the module's description), earliest first; ``attempts`` is the relay's own."""
        at = to_db(now, "now")
        with self._begin(write=True) as conn:
            conn.execute(
                dialect_insert(self.dialect, relay_cursors)
                .values(relay=relay, watermark=None, updated_at=utc_now())
                .on_conflict_do_nothing(index_elements=[relay_cursors.c.relay]))
            cursor = sa.select(relay_cursors.c.watermark).where(relay_cursors.c.relay == relay)
            if not self._sqlite:
                cursor = cursor.with_for_update()
            watermark = conn.execute(cursor).scalar_one()
            self._queue(conn, relay, watermark)
            earlier = _d.alias("earlier")
            blocked = sa.exists().where(
                earlier.c.relay == _d.c.relay,
                earlier.c.payment_id == _d.c.payment_id,
                earlier.c.delivered_at.is_(None),
                sa.or_(earlier.c.created_at < _d.c.created_at,
                       sa.and_(earlier.c.created_at == _d.c.created_at,
                               earlier.c.event_id < _d.c.event_id)),
            )
            query = (
                sa.select(_d.c.event_id, _d.c.attempts)
                .where(_d.c.relay == relay, _d.c.delivered_at.is_(None),
                       _d.c.next_attempt_at <= at, ~blocked)
                .order_by(_d.c.created_at, _d.c.event_id)
                .limit(limit)
            )
            if not self._sqlite:
                query = query.with_for_update(skip_locked=True, of=_d)
            claimed = conn.execute(query).all()
            if not claimed:
                return []
            ids = [row.event_id for row in claimed]
            attempts = {row.event_id: row.attempts for row in claimed}
            conn.execute(sa.update(_d).where(_d.c.relay == relay, _d.c.event_id.in_(ids))
                         .values(next_attempt_at=at + lease))
            rows = {row.id: row for row in conn.execute(
                sa.select(outbox).where(outbox.c.id.in_(ids)))}
        return [
            OutboxEvent(id=row.id, payment_id=row.payment_id, type=row.type,
                        payload=row.payload, created_at=from_db(row.created_at),
                        attempts=attempts[row.id])
            for row in (rows[i] for i in ids if i in rows)
        ]

    def _queue(self, conn: sa.Connection, relay: str, watermark: datetime | None) -> None:
        """Queue for *relay* the outbox events since *watermark* (less the rescan
        margin) it has not queued; move the watermark to the newest event."""
        newest = conn.execute(sa.select(sa.func.max(outbox.c.created_at))).scalar_one()
        if newest is None:
            return
        queued = sa.exists().where(_d.c.relay == relay, _d.c.event_id == outbox.c.id)
        source = sa.select(sa.literal(relay, sa.String(64)), outbox.c.id, outbox.c.payment_id,
                           outbox.c.created_at, outbox.c.created_at).where(~queued)
        if watermark is not None:
            source = source.where(outbox.c.created_at > watermark - self.relay_rescan)
        insert = sa.insert(_d).from_select(
            ["relay", "event_id", "payment_id", "created_at", "next_attempt_at"], source)
        if self._sqlite:
            conn.execute(insert)
        elif len(conn.execute(insert.returning(_d.c.event_id)).all()) >= \
                self.relay_analyze_after:
            # A burst queued at once: PostgreSQL's statistics still describe the table
            # as it was, and the claim's plan for the table as it was (a nested loop
            # over what it takes for a handful of rows) runs for seconds. Refresh them.
            conn.execute(sa.text("ANALYZE relay_deliveries"))
        conn.execute(sa.update(relay_cursors).where(relay_cursors.c.relay == relay)
                     .values(watermark=newest, updated_at=utc_now()))

    def mark_relayed(self, relay: str, event_ids: Sequence[str], *, now: datetime) -> None:
        """Mark *event_ids* delivered by *relay* (its broker acknowledged them)."""
        if not event_ids:
            return
        at = to_db(now, "now")
        with self._begin(write=True) as conn:
            conn.execute(sa.update(_d)
                         .where(_d.c.relay == relay, _d.c.event_id.in_(list(event_ids)),
                                _d.c.delivered_at.is_(None))
                         .values(delivered_at=at))

    def mark_relay_failed(self, relay: str, failures: Sequence[tuple[str, str, datetime]]
                          ) -> None:
        """Record failed attempts: (event id, error, when to try again) for *relay*."""
        if not failures:
            return
        with self._begin(write=True) as conn:
            for event_id, error, retry_at in failures:
                conn.execute(sa.update(_d)
                             .where(_d.c.relay == relay, _d.c.event_id == event_id)
                             .values(attempts=_d.c.attempts + 1, last_error=error[:500],
                                     next_attempt_at=to_db(retry_at, "retry_at")))

    def relay_lag(self, relay: str, *, now: datetime) -> tuple[int, float]:
        """(events not yet delivered by *relay*, age in seconds of the oldest), counting
        the outbox events it has not queued yet."""
        at = to_db(now, "now")
        delivered = sa.exists().where(_d.c.relay == relay, _d.c.event_id == outbox.c.id,
                                      _d.c.delivered_at.is_not(None))
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(~delivered)
        with self._begin() as conn:
            count, oldest = conn.execute(query).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (at - from_db(oldest)).total_seconds())
