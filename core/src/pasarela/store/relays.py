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

import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pasarela.store._base import StoreBase
from pasarela.store._rows import from_db, to_db, utc_now
from pasarela.store._writes import dialect_insert
from pasarela.store.driver import execute
from pasarela.store.schema import outbox, relay_cursors, relay_deliveries
from pasarela.store.values import OutboxEvent


__all__ = ["Relays"]

_d = relay_deliveries

#: ``Relays._among`` on SQLite: the ids of a JSON array, each looked up in the key.
_SQLITE_AMONG: Final = (
    "relay_deliveries.rowid IN (SELECT d.rowid FROM json_each(:relay_ids) AS j "
    "CROSS JOIN relay_deliveries AS d WHERE d.relay = :relay_name AND d.event_id = j.value)")
_SQLITE_UNDELIVERED: Final = (
    "relay_deliveries.rowid IN (SELECT d.rowid FROM json_each(:relay_ids) AS j "
    "CROSS JOIN relay_deliveries AS d WHERE d.relay = :relay_name AND d.event_id = j.value "
    "AND d.delivered_at IS NULL)")

_earlier = _d.alias("earlier")
#: The due events of relay ``_relay`` at ``_at`` that are the first undelivered of
#: their payment, earliest first, ``_limit`` at most, with their outbox columns.
_CLAIM: Final = (
    sa.select(_d.c.event_id, _d.c.attempts, outbox.c.payment_id, outbox.c.type,
              outbox.c.payload, outbox.c.created_at)
    .join_from(_d, outbox, outbox.c.id == _d.c.event_id)
    .where(_d.c.relay == sa.bindparam("_relay"), _d.c.delivered_at.is_(None),
           _d.c.next_attempt_at <= sa.bindparam("_at", type_=_d.c.next_attempt_at.type),
           ~sa.exists().where(
               _earlier.c.relay == _d.c.relay,
               _earlier.c.payment_id == _d.c.payment_id,
               _earlier.c.delivered_at.is_(None),
               sa.or_(_earlier.c.created_at < _d.c.created_at,
                      sa.and_(_earlier.c.created_at == _d.c.created_at,
                              _earlier.c.event_id < _d.c.event_id))))
    .order_by(_d.c.created_at, _d.c.event_id)
    .limit(sa.bindparam("_limit", type_=sa.Integer))
)
#: :data:`_CLAIM` on PostgreSQL: the rows taken are locked, the locked ones skipped.
_CLAIM_LOCKED: Final = _CLAIM.with_for_update(skip_locked=True, of=_d)


class Relays(StoreBase):
    """The relays' part of :class:`~pasarela.store.Store`."""

    #: How far before its watermark a relay looks again for outbox events to queue.
    relay_rescan: ClassVar[timedelta] = timedelta(minutes=10)
    #: Events queued by one claim from which the table's statistics are refreshed
    #: (PostgreSQL ``ANALYZE``) before the claim selects its batch.
    relay_analyze_after: ClassVar[int] = 1000
    #: On SQLite, how often a claim looks at the whole rescan margin again rather than
    #: at the outbox rows added since this store last queued (see ``_queue``).
    relay_rescan_every: ClassVar[float] = 60.0

    @property
    def _relay_seen(self) -> dict[str, tuple[int, float]]:
        """Per relay, this store's (highest outbox rowid queued through, monotonic time
        of the last look at the whole rescan margin); SQLite only."""
        try:
            return self.__relay_seen
        except AttributeError:
            self.__relay_seen: dict[str, tuple[int, float]] = {}
            return self.__relay_seen

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
            looked = self._queue(conn, relay, watermark)
            # The outbox's columns come with the claim (one statement, not a second
            # lookup by id): an event is claimed only with its outbox row.
            claimed = execute(conn, _CLAIM if self._sqlite else _CLAIM_LOCKED,
                              {"_relay": relay, "_at": at, "_limit": limit})
            if claimed:
                conn.execute(sa.update(_d).where(self._among(
                    relay, [row["event_id"] for row in claimed]))
                    .values(next_attempt_at=at + lease))
        if looked is not None and self._sqlite:  # committed: the rows up to it are queued
            self._relay_seen[relay] = looked
        return [
            OutboxEvent(id=row["event_id"], payment_id=row["payment_id"], type=row["type"],
                        payload=row["payload"], created_at=from_db(row["created_at"]),
                        attempts=row["attempts"])
            for row in claimed
        ]

    def _among(self, relay: str, event_ids: Sequence[str], *,
               undelivered: bool = False) -> sa.ColumnElement[bool] | sa.TextClause:
        """The rows of *relay* whose ``event_id`` is one of *event_ids* (and, when
        *undelivered*, not delivered yet). The ids are bound as one array, not one
        parameter each (a batch's 500 ids are not rendered into every statement): a JSON
        array on SQLite, each of its ids looked up in the primary key (CROSS JOIN keeps
        that order; SQLite would otherwise walk every undelivered row of the relay by the
        pending index), ``= ANY`` on PostgreSQL."""
        if self._sqlite:
            return sa.text(_SQLITE_UNDELIVERED if undelivered else _SQLITE_AMONG).bindparams(
                relay_ids=json.dumps(list(event_ids)), relay_name=relay)
        among = sa.and_(_d.c.relay == relay, _d.c.event_id == sa.any_(
            sa.bindparam("relay_ids", list(event_ids), type_=postgresql.ARRAY(sa.String))))
        return sa.and_(among, _d.c.delivered_at.is_(None)) if undelivered else among

    def _queue(self, conn: sa.Connection, relay: str, watermark: datetime | None
               ) -> tuple[int, float] | None:
        """Queue for *relay* the outbox events since *watermark* (less the rescan
        margin) it has not queued; move the watermark to the newest event.

        On SQLite, writers run one at a time, so an outbox row committed after this
        store's last queueing of *relay* has a higher rowid than every row there was
        then: only those rows are looked at (the same rows the whole margin would add:
        the others of the margin were queued then, as the watermark never goes back),
        and the whole margin again at most every :attr:`relay_rescan_every`. Returns
        what to remember of this (``_relay_seen``) once the transaction committed."""
        newest = conn.execute(sa.select(sa.func.max(outbox.c.created_at))).scalar_one()
        if newest is None:
            return None
        queued = sa.exists().where(_d.c.relay == relay, _d.c.event_id == outbox.c.id)
        source = sa.select(sa.literal(relay, sa.String(64)), outbox.c.id, outbox.c.payment_id,
                           outbox.c.created_at, outbox.c.created_at).where(~queued)
        seen = self._relay_seen.get(relay) if self._sqlite and watermark is not None else None
        top = 0
        if self._sqlite:
            top = conn.execute(sa.text("SELECT max(rowid) FROM outbox")).scalar_one()
        now = time.monotonic()
        if (seen is not None and watermark is not None and seen[0] <= top
                and now - seen[1] < self.relay_rescan_every):
            # The rowid walks the table; "+" keeps SQLite off the created_at index.
            source = source.where(
                sa.literal_column("outbox.rowid") > seen[0],
                sa.literal_column("+outbox.created_at", outbox.c.created_at.type)
                > watermark - self.relay_rescan)
            looked = (top, seen[1])
        else:
            if watermark is not None:
                source = source.where(outbox.c.created_at > watermark - self.relay_rescan)
            looked = (top, now)
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
        return looked

    def mark_relayed(self, relay: str, event_ids: Sequence[str], *, now: datetime) -> None:
        """Mark *event_ids* delivered by *relay* (its broker acknowledged them)."""
        if not event_ids:
            return
        at = to_db(now, "now")
        with self._begin(write=True) as conn:
            conn.execute(sa.update(_d).where(self._among(relay, event_ids, undelivered=True))
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
