"""Persistence: SQLAlchemy Core tables, Alembic migrations, the :class:`Store`, its
write batches and the reads everything outside the store makes
(:mod:`pasarela.store.queries`, :mod:`pasarela.store.settlements`).

No module outside this package touches a table: writes go through the
:class:`PaymentWriter` methods and the rest of :class:`Store`, reads through the
store's methods and its query modules."""

from __future__ import annotations

from pasarela.store._base import DATABASE_ERRORS, UNAVAILABLE
from pasarela.store.audit import ChainHead
from pasarela.store.batch import WriteBatch
from pasarela.store.chain import ChainRecord, ChainReport
from pasarela.store.personal import ERASED
from pasarela.store.repository import Store
from pasarela.store.search import DifferenceQuery, PaymentQuery
from pasarela.store.values import Delivery, OutboxEvent
from pasarela.store.writer import PaymentWriter


__all__ = [
    "DATABASE_ERRORS",
    "ERASED",
    "UNAVAILABLE",
    "ChainHead",
    "ChainRecord",
    "ChainReport",
    "Delivery",
    "DifferenceQuery",
    "OutboxEvent",
    "PaymentQuery",
    "PaymentWriter",
    "Store",
    "WriteBatch",
]
