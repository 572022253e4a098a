"""The durable store: SQLAlchemy Core over SQLite (WAL) or PostgreSQL (psycopg 3).

Every method is one short database transaction; none is held across network I/O.
The one function that changes a payment's status is :meth:`Store.transition` (see
:mod:`pasarela.store.payments`). Datetimes go in and come out timezone-aware, in
UTC (a naive datetime is refused). Jobs that several processes may run at once
claim rows (see :mod:`pasarela.store.outbox`).

:class:`Store` is composed of one class per concept, each in its module:
:class:`~pasarela.store.payments.Payments`, :class:`~pasarela.store.refunds.Refunds`,
:class:`~pasarela.store.deliveries.Deliveries`,
:class:`~pasarela.store.evidence.Evidence`, :class:`~pasarela.store.outbox.Outbox`
and :class:`~pasarela.store.personal.PersonalData` (sealing again, erasure) and
:class:`~pasarela.store.search.Search` (the operator console's searches and lists),
:class:`~pasarela.store.operators.Operators` (the console's accounts and audit log),
all over :class:`~pasarela.store._base.StoreBase` (the engine, the write lock, the
transactions and their error mapping). Mixins rather than a class that delegates:
the store is one object with one set of methods (what callers, the
:class:`~pasarela.store.writer.PaymentWriter` protocol and tests see), each
concept's SQL lives in its own file, and no method exists twice (once to do the
work, once to forward to it). The parts hold no state of their own; the base holds
it all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pasarela.store.audit import AuditTrail
from pasarela.store.batch import WriteBatch
from pasarela.store.deliveries import Deliveries
from pasarela.store.evidence import Evidence
from pasarela.store.merchants import Merchants
from pasarela.store.operators import Operators
from pasarela.store.outbox import Outbox
from pasarela.store.payments import Payments
from pasarela.store.personal import PersonalData
from pasarela.store.refunds import Refunds
from pasarela.store.relays import Relays
from pasarela.store.search import Search
from pasarela.store.values import Delivery, OutboxEvent
from pasarela.store.writer import PaymentWriter


__all__ = ["Delivery", "OutboxEvent", "Store"]


class Store(Payments, Refunds, Deliveries, Evidence, Outbox, PersonalData, Relays,
            Merchants, Search, Operators, AuditTrail):
    """Persistence for payments and their evidence. Thread-safe; one per process.

    With ``sqlite://`` (in memory) every call is serialised on the one connection;
    it suits tests and single-threaded scripts, not a server.
    """

    @contextmanager
    def batch(self) -> Iterator[WriteBatch]:
        """One write transaction for many payments' changes, written at its end
        (see :mod:`pasarela.store.batch`). An exception rolls everything back;
        ``ConcurrencyConflictError`` from the flush means another process got there
        first: apply the items one by one."""
        with self._begin(write=True) as conn:
            batch = WriteBatch(self, conn)
            yield batch
            batch.flush()


#: mypy checks here that a Store is a PaymentWriter (the batch checks itself).
_WRITER: type[PaymentWriter] = Store
