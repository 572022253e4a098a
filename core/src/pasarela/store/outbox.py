"""The outbox and the jobs' claims.

Jobs that several processes may run at once claim rows: :meth:`Outbox.claim_outbox`,
:meth:`Outbox.due_for_expiry` and :meth:`Outbox.due_for_check` select with ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL (on SQLite, writers are serialised by ``BEGIN
IMMEDIATE``) and push a lease forward in the same transaction, so another worker
does not take the same rows until the lease runs out. :meth:`Outbox.lease_payment`
holds one payment the same way (the late-refund job).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

import attrs
import sqlalchemy as sa
from ulid import ULID

from pasarela.errors import NotFoundError
from pasarela.lifecycle import Status
from pasarela.model import Payment
from pasarela.store._base import StoreBase
from pasarela.store._rows import (
    CHECKED,
    GET_PAYMENT,
    INSERT_OUTBOX,
    Row,
    default_payload,
    from_db,
    payment_from_row,
    to_db,
    utc_now,
)
from pasarela.store.driver import bound, marks, read_payments
from pasarela.store.schema import outbox, payments
from pasarela.store.values import OutboxEvent


__all__ = ["Outbox", "event_ids"]

#: ULID's alphabet (Crockford's base32), two characters (ten bits) at a time.
_PAIRS: Final = tuple(a + b for a in "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
                      for b in "0123456789ABCDEFGHJKMNPQRSTVWXYZ")
_LOW: Final = (1 << 40) - 1


def _four(value: int) -> str:
    """The 40 low bits of *value* as eight ULID characters."""
    pairs = _PAIRS
    return (pairs[value >> 30 & 1023] + pairs[value >> 20 & 1023]
            + pairs[value >> 10 & 1023] + pairs[value & 1023])


def event_ids(now: datetime) -> Iterator[str]:
    """Outbox event ids for the events one write batch writes at *now*: ULIDs, as
    ``str(ULID())`` writes them, in ULID's monotonic form: the time part (*now*'s
    millisecond) written once, the random part drawn once (79 random bits, so that
    counting never overflows it) and counted up for each next id. Unique, and sorted
    in the order the events were written."""
    ms = int(now.timestamp() * 1000)
    head = _PAIRS[ms >> 40 & 1023] + _four(ms)
    drawn = int.from_bytes(os.urandom(10), "big") >> 1
    high, low = drawn >> 40, drawn & _LOW
    pairs = _PAIRS
    while True:
        middle = head + _four(high)
        while low <= _LOW:
            yield (middle + pairs[low >> 30] + pairs[low >> 20 & 1023]
                   + pairs[low >> 10 & 1023] + pairs[low & 1023])
            low += 1
        high, low = high + 1, 0


class Outbox(StoreBase):
    """The outbox and job-claims part of :class:`~pasarela.store.Store`."""

    #: How long a claimed outbox event stays invisible to other dispatchers.
    outbox_lease: ClassVar[timedelta] = timedelta(seconds=30)
    #: How long a payment handed out by ``due_for_expiry``/``due_for_check`` stays
    #: invisible to other workers.
    job_lease: ClassVar[timedelta] = timedelta(seconds=30)

    def _claim(self, query: sa.Select[Any], *, lease: Mapping[str, Any]) -> list[Row]:
        """Rows of *query* taken for this worker: selected (``FOR UPDATE SKIP LOCKED``
        on PostgreSQL) and their *lease* columns pushed forward, in one transaction,
        so concurrent workers never take the same rows."""
        table = query.get_final_froms()[0]
        assert isinstance(table, sa.Table)
        if not self._sqlite:
            query = query.with_for_update(skip_locked=True)
        with self._begin(write=True) as conn:
            rows = list(conn.execute(query).all())
            if rows:
                conn.execute(
                    sa.update(table).where(table.c.id.in_([row.id for row in rows]))
                    .values(**lease)
                )
        return rows

    # --- outbox ----------------------------------------------------------------

    def claim_outbox(self, *, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        """Undispatched events due at *now*, earliest due first. On PostgreSQL rows are
        claimed with ``FOR UPDATE SKIP LOCKED`` and their ``next_attempt_at`` pushed
        forward (a lease) so concurrent dispatchers do not take the same rows."""
        at = to_db(now, "now")
        rows = self._claim(
            sa.select(outbox)
            .where(outbox.c.dispatched_at.is_(None), outbox.c.next_attempt_at <= at)
            # In the index's order (a fresh event is due when it is created); by
            # created_at, every claim sorted the whole backlog.
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit),
            lease={"next_attempt_at": at + self.outbox_lease},
        )
        return [
            OutboxEvent(
                id=row.id,
                payment_id=row.payment_id,
                type=row.type,
                payload=row.payload,
                created_at=from_db(row.created_at),
                attempts=row.attempts,
            )
            for row in rows
        ]

    def announce(self, payment_id: str, event_type: str,
                 payload: Mapping[str, Any] | None = None) -> str:
        """Write an event about *payment_id* that no status change causes (one of
        :data:`pasarela.events.ANNOUNCEMENTS`) to the outbox, beside the payment's
        usual event fields and *payload*; dispatched like the transitions' events (at
        least once). Its id; ``NotFoundError`` when there is no such payment."""
        event_id = str(ULID())
        with self._begin(write=True) as conn:
            row = conn.execute(GET_PAYMENT, {"_id": payment_id}).first()
            if row is None:
                raise NotFoundError(f"no payment {payment_id!r}")
            payment = payment_from_row(row, sealer=self.sealer)
            now = utc_now()
            conn.execute(INSERT_OUTBOX, {
                "id": event_id, "payment_id": payment_id, "type": event_type,
                "payload": {**default_payload(payment), **(payload or {})},
                "created_at": now, "next_attempt_at": now, "attempts": 0,
            })
        return event_id

    def mark_dispatched(self, event_ids: Sequence[str], *, now: datetime) -> None:
        if not event_ids:
            return
        at = to_db(now, "now")
        with self._begin(write=True) as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(list(event_ids)), outbox.c.dispatched_at.is_(None))
                .values(dispatched_at=at)
            )

    def mark_failed(self, event_id: str, *, error: str, retry_at: datetime) -> None:
        with self._begin(write=True) as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == event_id)
                .values(
                    attempts=outbox.c.attempts + 1,
                    last_error=error,
                    next_attempt_at=to_db(retry_at, "retry_at"),
                )
            )

    def outbox_lag(self, *, now: datetime) -> tuple[int, float]:
        """(undispatched count, age in seconds of the oldest undispatched event)."""
        at = to_db(now, "now")
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.dispatched_at.is_(None)
        )
        with self._begin() as conn:
            count, oldest = conn.execute(query).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (at - from_db(oldest)).total_seconds())

    # --- jobs ------------------------------------------------------------------

    def due_for_expiry(self, *, now: datetime, limit: int = 500,
                       per_merchant: int | None = None) -> list[Payment]:
        """Pending payments whose ``expires_at`` has passed; with *per_merchant*, at
        most that many of any one merchant (the earliest of each), so that one
        merchant's backlog does not fill the batch.

        Claimed: each is leased (``claimed_until``) for :attr:`job_lease`, so
        another worker does not get it meanwhile; the version is not bumped.
        """
        at = to_db(now, "now")
        if self._sqlite and per_merchant is None:
            return self._claim_due_sqlite(at, limit)
        due = (payments.c.status == Status.PENDING.value, payments.c.expires_at <= at,
               sa.or_(payments.c.claimed_until.is_(None), payments.c.claimed_until <= at))
        rows = self._claim(
            sa.select(payments)
            .where(*due, *_shares(due, payments.c.expires_at, per_merchant))
            # By deadline only: the index's order. Adding the id would sort every
            # payment sharing a deadline (CIPs that all expire at midnight) per claim.
            .order_by(payments.c.expires_at)
            .limit(limit),
            lease={"claimed_until": at + self.job_lease},
        )
        return [payment_from_row(row, sealer=self.sealer) for row in rows]

    def _claim_due_sqlite(self, at: datetime, limit: int) -> list[Payment]:
        """``due_for_expiry``'s claim on SQLite, through the driver (the same query and
        lease; writers are serialised by ``BEGIN IMMEDIATE``)."""
        with self._begin(write=True) as conn:
            stamp = bound(conn, payments.c.expires_at, at)
            rows = read_payments(
                conn, "WHERE payments.status = ? AND payments.expires_at <= ? AND "
                "(payments.claimed_until IS NULL OR payments.claimed_until <= ?) "
                "ORDER BY payments.expires_at LIMIT ?",
                [Status.PENDING.value, stamp, stamp, limit], seq=False)
            if rows:
                ids = [row["id"] for row in rows]
                conn.exec_driver_sql(
                    f"UPDATE payments SET claimed_until = ? WHERE id IN ({marks(ids)})",  # noqa: S608
                    (bound(conn, payments.c.claimed_until, at + self.job_lease), *ids))
        return [payment_from_row(row, sealer=self.sealer) for row in rows]

    def due_for_check(self, *, now: datetime, limit: int = 500,
                      per_merchant: int | None = None) -> list[Payment]:
        """Unknown, pending and created payments whose ``next_check_at`` has passed (a
        payment still ``created`` then is one whose create was interrupted); with
        *per_merchant*, at most that many of any one merchant.

        Claimed: ``next_check_at`` is pushed forward by :attr:`job_lease` (the
        resolver then sets the real next check); the version is not bumped.
        """
        at = to_db(now, "now")
        lease_end = at + self.job_lease
        due = (payments.c.status.in_(CHECKED), payments.c.next_check_at <= at)
        rows = self._claim(
            sa.select(payments)
            .where(*due, *_shares(due, payments.c.next_check_at, per_merchant))
            .order_by(payments.c.next_check_at, payments.c.id)
            .limit(limit),
            lease={"next_check_at": lease_end},
        )
        return [attrs.evolve(payment_from_row(row, sealer=self.sealer),
                             next_check_at=lease_end) for row in rows]

    def lease_payment(self, payment_id: str, *, status: Status, now: datetime,
                      until: datetime) -> bool:
        """Hold *payment_id* for a job until *until*: True when it is in *status* and
        no lease runs at *now* (its ``claimed_until`` is then set to *until*, in one
        write transaction), False when another worker holds it or it is not in
        *status*. The version is not bumped.

        ``claimed_until`` is also the expiry sweep's lease, which it reads only for
        pending payments: a job holding payments in another status does not get in
        its way.
        """
        at = to_db(now, "now")
        update = (
            sa.update(payments)
            .where(payments.c.id == payment_id, payments.c.status == Status(status).value,
                   sa.or_(payments.c.claimed_until.is_(None), payments.c.claimed_until <= at))
            .values(claimed_until=to_db(until, "until"))
        )
        with self._begin(write=True) as conn:
            return conn.execute(update).rowcount == 1


def _shares(due: tuple[sa.ColumnElement[bool], ...], order: sa.ColumnElement[Any],
            per_merchant: int | None) -> list[sa.ColumnElement[bool]]:
    """With *per_merchant*: the condition keeping only each merchant's first
    *per_merchant* due payments (by *order*), for the worker's fairness between
    merchants."""
    if per_merchant is None:
        return []
    ranked = (sa.select(payments.c.id, sa.func.row_number().over(
        partition_by=payments.c.merchant, order_by=order).label("turn"))
        .where(*due).subquery())
    return [payments.c.id.in_(sa.select(ranked.c.id).where(ranked.c.turn <= per_merchant))]
