"""Refunds: a payment's refunds, saving one outside a status change (a transition or
``update_payment`` upserts one in its own transaction), and the resolver's schedule
for pending refunds (``next_check_at``, ``check_attempts``: when to ask the provider
again about a refund whose answer was lost, and how many times it was asked)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, NamedTuple

import sqlalchemy as sa

from pasarela.errors import NotFoundError
from pasarela.model import Refund, RefundStatus
from pasarela.store._base import StoreBase
from pasarela.store._rows import Row, opt_from_db, opt_to_db, refund_from_row, to_db, utc_now
from pasarela.store._writes import lock_payment, upsert_refund
from pasarela.store.schema import payments, refunds


__all__ = ["RefundCheck", "Refunds"]


class RefundCheck(NamedTuple):
    """A pending refund the resolver is to ask about, with its schedule."""

    refund: Refund
    #: How many times the resolver has asked the provider about it.
    check_attempts: int
    #: When it is next asked (the claim's lease end, once claimed).
    next_check_at: datetime | None


class Refunds(StoreBase):
    """The refunds part of :class:`~pasarela.store.Store`."""

    #: How long :meth:`due_refund_checks` hands a refund to one resolver.
    refund_lease: ClassVar[timedelta] = timedelta(seconds=30)

    def refunds_for(self, payment_id: str) -> list[Refund]:
        """The payment's refunds, oldest first."""
        query = (
            sa.select(refunds)
            .where(refunds.c.payment_id == payment_id)
            .order_by(refunds.c.created_at, refunds.c.id)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [refund_from_row(row) for row in rows]

    def save_refund(self, refund: Refund) -> None:
        """Insert or update a refund row by id (outside a status change);
        ``NotFoundError`` when its payment does not exist."""
        with self._begin(write=True) as conn:
            lock_payment(conn, refund.payment_id, None)
            upsert_refund(conn, refund, now=utc_now())

    def refund_check(self, refund_id: str) -> RefundCheck:
        """The refund with its schedule; ``NotFoundError`` when there is none."""
        with self._begin() as conn:
            row = conn.execute(sa.select(refunds).where(refunds.c.id == refund_id)).first()
        if row is None:
            raise NotFoundError(f"no refund {refund_id!r}")
        return _check(row)

    def schedule_refund_check(self, refund_id: str, *, next_check_at: datetime | None,
                              check_attempts: int) -> None:
        """Set when the resolver next asks about the refund (None: never) and how many
        times it has asked; ``NotFoundError`` when there is no such refund."""
        values = {"next_check_at": opt_to_db(next_check_at, "next_check_at"),
                  "check_attempts": int(check_attempts)}
        with self._begin(write=True) as conn:
            done = conn.execute(sa.update(refunds).where(refunds.c.id == refund_id)
                                .values(**values))
            if done.rowcount != 1:
                raise NotFoundError(f"no refund {refund_id!r}")

    def due_refund_checks(self, *, now: datetime, limit: int = 500,
                          per_merchant: int | None = None) -> list[RefundCheck]:
        """Pending refunds whose ``next_check_at`` has passed, earliest first; with
        *per_merchant*, at most that many of any one merchant (its payment's), so that
        one merchant's backlog does not fill the batch.

        Claimed as :meth:`~pasarela.store.Store.due_for_check` claims payments
        (``FOR UPDATE SKIP LOCKED`` on PostgreSQL): ``next_check_at`` is pushed forward
        by :attr:`refund_lease`, and the resolver then sets the real next check.
        """
        at = to_db(now, "now")
        lease_end = at + self.refund_lease
        due = (refunds.c.status == RefundStatus.PENDING.value, refunds.c.next_check_at <= at)
        query = (
            sa.select(refunds)
            .where(*due, *_shares(due, per_merchant))
            .order_by(refunds.c.next_check_at, refunds.c.id)
            .limit(limit)
        )
        if not self._sqlite:
            query = query.with_for_update(skip_locked=True)
        with self._begin(write=True) as conn:
            rows = list(conn.execute(query).all())
            if rows:
                conn.execute(sa.update(refunds)
                             .where(refunds.c.id.in_([row.id for row in rows]))
                             .values(next_check_at=lease_end))
        return [_check(row)._replace(next_check_at=lease_end) for row in rows]


def _shares(due: tuple[sa.ColumnElement[bool], ...],
            per_merchant: int | None) -> list[sa.ColumnElement[bool]]:
    """With *per_merchant*: the condition keeping only each merchant's first
    *per_merchant* due refunds (by next check), the merchant being the payment's."""
    if per_merchant is None:
        return []
    ranked = (sa.select(refunds.c.id, sa.func.row_number().over(
        partition_by=payments.c.merchant,
        order_by=(refunds.c.next_check_at, refunds.c.id)).label("turn"))
        .select_from(refunds.join(payments, payments.c.id == refunds.c.payment_id))
        .where(*due).subquery())
    return [refunds.c.id.in_(sa.select(ranked.c.id).where(ranked.c.turn <= per_merchant))]


def _check(row: Row) -> RefundCheck:
    return RefundCheck(refund_from_row(row), int(row.check_attempts),
                       opt_from_db(row.next_check_at))
