"""Evidence: the provider exchanges (redacted requests and responses, with their
timing) and the routing decisions, as they were recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from pasarela.exchange import Exchange
from pasarela.store._base import StoreBase
from pasarela.store._rows import INSERT_DECISION, from_db, utc_now
from pasarela.store._writes import insert_exchanges
from pasarela.store.schema import exchanges


__all__ = ["Evidence"]


class Evidence(StoreBase):
    """The exchanges and routing decisions part of :class:`~pasarela.store.Store`."""

    def record_exchanges(self, exchanges: Iterable[Exchange]) -> None:
        """Insert the exchanges (each keeps its own ``payment_id``), in one transaction."""
        rows = list(exchanges)
        if not rows:
            return
        with self._begin(write=True) as conn:
            insert_exchanges(conn, rows, payment_id=None)

    def exchanges_for(self, payment_id: str) -> list[dict[str, Any]]:
        """The recorded (redacted) exchanges of a payment, oldest first."""
        query = (
            sa.select(exchanges)
            .where(exchanges.c.payment_id == payment_id)
            .order_by(exchanges.c.started_at, exchanges.c.id)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            item = dict(row._mapping)
            item["started_at"] = from_db(row.started_at)
            item["request_headers"] = dict(row.request_headers or {})
            item["response_headers"] = dict(row.response_headers or {})
            out.append(item)
        return out

    def record_decision(
        self, *, order_reference: str, payment_id: str | None, decision: Mapping[str, Any]
    ) -> None:
        """Store a routing decision (the payment's, or one that made none)."""
        with self._begin(write=True) as conn:
            conn.execute(INSERT_DECISION, {
                "order_reference": order_reference, "payment_id": payment_id,
                "decision": dict(decision), "created_at": utc_now(),
            })
