"""Statements on an open write transaction that :class:`~pasarela.store.Store` and
:class:`~pasarela.store.WriteBatch` both run: the dialect's INSERT (for its ON
CONFLICT clauses), the payment's row lock, the next transition number, a delivery's
insert (a duplicate is a :class:`~pasarela.errors.ConcurrencyConflictError`), the
exchanges' insert and a refund's upsert. Private to the store; public names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError, NotFoundError
from pasarela.exchange import Exchange
from pasarela.model import Refund
from pasarela.store._rows import (
    INSERT_DELIVERY,
    LOCK_PAYMENT,
    LOCK_PAYMENT_FOR_UPDATE,
    NEXT_SEQ,
    Row,
    delivery_values,
    exchange_values,
    refund_values,
)
from pasarela.store.schema import exchanges, refunds


if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from pasarela.store.values import Delivery


__all__ = [
    "REFUND_MUTABLE",
    "dialect_insert",
    "duplicate_delivery",
    "insert_delivery",
    "insert_exchanges",
    "lock_payment",
    "next_seq",
    "stale_version",
    "upsert_refund",
]

#: The refund columns an upsert may change (with ``updated_at``).
REFUND_MUTABLE = ("amount_minor", "currency", "status", "reason", "provider_reference")


def dialect_insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's ON CONFLICT clauses (imported on first use)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

        return sqlite_insert(table)
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    return pg_insert(table)


def stale_version(payment_id: str, version: int, expected_version: int
                  ) -> ConcurrencyConflictError:
    return ConcurrencyConflictError(
        f"payment {payment_id} is at version {version}, not {expected_version}: "
        "another writer changed it first; reload and retry"
    )


def duplicate_delivery(delivery: Delivery) -> ConcurrencyConflictError:
    return ConcurrencyConflictError(
        f"duplicate delivery: {delivery.provider} event {delivery.event_id!r} was "
        "recorded already; nothing was applied"
    )


def lock_payment(conn: sa.Connection, payment_id: str, expected_version: int | None) -> Row:
    """Read (and on PostgreSQL lock, ``FOR UPDATE``) the payment's status and version;
    ``NotFoundError`` when there is none, ``ConcurrencyConflictError`` when its
    version is not *expected_version* (None: any)."""
    query = LOCK_PAYMENT if conn.dialect.name == "sqlite" else LOCK_PAYMENT_FOR_UPDATE
    row = conn.execute(query, {"_id": payment_id}).first()
    if row is None:
        raise NotFoundError(f"no payment {payment_id!r}")
    if expected_version is not None and row.version != expected_version:
        raise stale_version(payment_id, row.version, expected_version)
    return row


def next_seq(conn: sa.Connection, payment_id: str) -> int:
    """The number of the payment's next transition."""
    return int(conn.execute(NEXT_SEQ, {"_id": payment_id}).scalar_one())


def insert_delivery(conn: sa.Connection, delivery: Delivery, *, payment_id: str | None,
                    now: datetime) -> None:
    """Insert *delivery*; one recorded already raises ``ConcurrencyConflictError``
    (the caller's transaction then rolls back)."""
    try:
        conn.execute(INSERT_DELIVERY, delivery_values(delivery, payment_id, now))
    except sa.exc.IntegrityError as exc:
        raise duplicate_delivery(delivery) from exc


def insert_exchanges(conn: sa.Connection, items: Iterable[Exchange], *,
                     payment_id: str | None) -> None:
    rows = [exchange_values(exchange, payment_id) for exchange in items]
    if rows:
        conn.execute(sa.insert(exchanges), rows)


def upsert_refund(conn: sa.Connection, refund: Refund, *, now: datetime) -> None:
    """Insert *refund*, or update its mutable columns when its id exists."""
    values = refund_values(refund, now)
    stmt = dialect_insert(conn.dialect.name, refunds).values(**values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[refunds.c.id],
            set_={name: values[name] for name in (*REFUND_MUTABLE, "updated_at")},
        )
    )
