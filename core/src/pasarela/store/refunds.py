"""Refunds: a payment's refunds, and saving one outside a status change (a
transition or ``update_payment`` upserts one in its own transaction)."""

from __future__ import annotations

import sqlalchemy as sa

from pasarela.model import Refund
from pasarela.store._base import StoreBase
from pasarela.store._rows import refund_from_row, utc_now
from pasarela.store._writes import lock_payment, upsert_refund
from pasarela.store.schema import refunds


__all__ = ["Refunds"]


class Refunds(StoreBase):
    """The refunds part of :class:`~pasarela.store.Store`."""

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
