"""Evidence: the provider exchanges (redacted requests and responses, with their
timing) and the routing decisions, as they were recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from pasarela.exchange import Exchange
from pasarela.store._base import StoreBase
from pasarela.store._rows import INSERT_DECISION, exchange_values, from_db, utc_now
from pasarela.store._writes import chain_alone, chain_on, insert_exchanges, lock_chain
from pasarela.store.schema import exchanges


__all__ = ["Evidence"]


class Evidence(StoreBase):
    """The exchanges and routing decisions part of :class:`~pasarela.store.Store`."""

    def record_exchanges(self, exchanges: Iterable[Exchange]) -> None:
        """Insert the exchanges (each keeps its own ``payment_id``), in one transaction."""
        rows = [exchange_values(e, None) for e in exchanges]
        if not rows:
            return
        with self._begin(write=True) as conn:
            if self.chained:
                by_payment: dict[str | None, list[dict[str, Any]]] = {}
                for row in rows:
                    by_payment.setdefault(row["payment_id"], []).append(row)
                # Payments in id order: two writers lock them in the same order.
                for pid in sorted(p for p in by_payment if p is not None):
                    tip = lock_chain(conn, pid)
                    if tip is None:  # no such payment (yet): a record of its own
                        by_payment.setdefault(None, []).extend(by_payment[pid])
                        continue
                    chain_on(conn, pid, tip, [("exchange", row) for row in by_payment[pid]])
                for row in by_payment.get(None, ()):
                    chain_alone("exchange", row)
            insert_exchanges(conn, (), payment_id=None, rows=rows)

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
