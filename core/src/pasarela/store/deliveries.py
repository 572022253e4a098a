"""Webhook deliveries: every one is recorded, unique per provider, event id and
payment (a rejected one, with no event id, is logged and never deduplicated; one
naming no known payment is keyed by ``""`` in the payment's place)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pasarela.store._base import StoreBase
from pasarela.store._rows import delivery_values, utc_now
from pasarela.store._writes import (
    CHAIN_TIP,
    DELIVERY_LOCK_WAIT,
    chain_alone,
    dialect_insert,
    lock_chain,
)
from pasarela.store.chain import link_all
from pasarela.store.schema import webhook_deliveries
from pasarela.store.values import Delivery


__all__ = ["Deliveries"]

_FOR_EVENT = (sa.select(webhook_deliveries.c.payment_key)
              .where(webhook_deliveries.c.provider == sa.bindparam("_provider"),
                     webhook_deliveries.c.event_id == sa.bindparam("_event_id")))
_RECORD: dict[str, Any] = {}  # by dialect


class Deliveries(StoreBase):
    """The webhook deliveries part of :class:`~pasarela.store.Store`."""

    def seen_delivery(self, provider: str, event_id: str,
                      payment_id: str | None = None) -> bool:
        """Whether *provider*'s event *event_id* was recorded: for *payment_id* when
        given, else for any payment (or none)."""
        keys = self.delivered_for(provider, event_id)
        return bool(keys) if payment_id is None else payment_id in keys

    def delivered_for(self, provider: str, event_id: str) -> frozenset[str]:
        """The payments *provider*'s event *event_id* was recorded for (``""`` for a
        delivery that named no known payment); empty when it never was."""
        with self._begin() as conn:
            return frozenset(conn.execute(_FOR_EVENT, {"_provider": provider,
                                                       "_event_id": event_id}).scalars())

    def record_delivery(self, delivery: Delivery) -> bool:
        """Insert a delivery; False when (provider, event_id, payment) was recorded
        already."""
        record = _RECORD.get(self.dialect)
        if record is None:
            record = _RECORD[self.dialect] = (
                dialect_insert(self.dialect, webhook_deliveries)
                .on_conflict_do_nothing(
                    index_elements=[webhook_deliveries.c.provider,
                                    webhook_deliveries.c.event_id,
                                    webhook_deliveries.c.payment_key])
                .returning(webhook_deliveries.c.id)
            )
        values = delivery_values(delivery, None, utc_now())
        with self._begin(write=True) as conn:
            pid = values["payment_id"]
            # A payment held by another transaction (a write batch of another server)
            # for longer than a moment: the delivery is chained on its own instead
            # (the chain heads still fold it), rather than waiting on that batch.
            tip = (lock_chain(conn, pid, wait=DELIVERY_LOCK_WAIT)
                   if self.chained and pid is not None else None)
            if tip is not None and pid is not None:
                new = link_all([("delivery", values)], seq=tip[0], prev=tip[1])
            elif self.chained:
                chain_alone("delivery", values)
            if conn.execute(record, values).first() is None:
                return False  # recorded already: the tip stays where it was
            if tip is not None:
                conn.execute(CHAIN_TIP, {"_id": pid, "_seq": new[0], "_hash": new[1]})
            return True
