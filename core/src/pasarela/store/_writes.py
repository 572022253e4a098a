"""Statements on an open write transaction that :class:`~pasarela.store.Store` and
:class:`~pasarela.store.WriteBatch` both run: the dialect's INSERT (for its ON
CONFLICT clauses), the payment's row lock, the next transition number, a delivery's
insert (a duplicate is a :class:`~pasarela.errors.ConcurrencyConflictError`), the
exchanges' insert and a refund's upsert. Private to the store; public names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError, NotFoundError
from pasarela.exchange import Exchange
from pasarela.model import Refund
from pasarela.store._rows import (
    INSERT_DELIVERY,
    LOCK_PAYMENT,
    LOCK_PAYMENT_FOR_UPDATE,
    NEXT_SEQ,
    delivery_values,
    exchange_values,
    refund_values,
)
from pasarela.store.chain import Kind, link, link_all
from pasarela.store.driver import execute, executemany
from pasarela.store.schema import exchanges, payments, refunds, transitions


if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    from pasarela.store.values import Delivery


__all__ = [
    "CHAIN_TIP",
    "DELIVERY_LOCK_WAIT",
    "INSERT_EXCHANGES",
    "LOCK_NEXT",
    "REFUND_MUTABLE",
    "chain_alone",
    "chain_on",
    "dialect_insert",
    "duplicate_delivery",
    "insert_delivery",
    "insert_exchanges",
    "lock_chain",
    "lock_payment",
    "next_seq",
    "records",
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


#: SQLite's :func:`lock_payment` with the number of the payment's next transition.
LOCK_NEXT: Final = sa.select(
    *LOCK_PAYMENT.selected_columns,
    (sa.select(sa.func.coalesce(sa.func.max(transitions.c.seq), 0) + 1)
     .where(transitions.c.payment_id == payments.c.id)
     .scalar_subquery().label("next_seq")),
).where(payments.c.id == sa.bindparam("_id"))


def lock_payment(conn: sa.Connection, payment_id: str, expected_version: int | None, *,
                 with_seq: bool = False) -> Mapping[str, Any]:
    """Read (and on PostgreSQL lock, ``FOR UPDATE``) the payment's status, version and
    chain tip; ``NotFoundError`` when there is none, ``ConcurrencyConflictError`` when
    its version is not *expected_version* (None: any).

    *with_seq* adds ``next_seq``, the number of the payment's next transition: on
    SQLite in the same statement (its write transaction excludes every other writer
    already), on PostgreSQL read after the lock is taken (a statement's snapshot is
    taken before it waits for a row lock, so a count in the same statement could miss
    a transition committed meanwhile)."""
    sqlite = conn.dialect.name == "sqlite"
    query = (LOCK_NEXT if with_seq else LOCK_PAYMENT) if sqlite else LOCK_PAYMENT_FOR_UPDATE
    rows = execute(conn, query, {"_id": payment_id})
    if not rows:
        raise NotFoundError(f"no payment {payment_id!r}")
    row = rows[0]
    if expected_version is not None and row["version"] != expected_version:
        raise stale_version(payment_id, row["version"], expected_version)
    if with_seq and not sqlite:
        row["next_seq"] = next_seq(conn, payment_id)
    return row


def next_seq(conn: sa.Connection, payment_id: str) -> int:
    """The number of the payment's next transition."""
    return int(execute(conn, NEXT_SEQ, {"_id": payment_id})[0]["anon_1"])


INSERT_EXCHANGES: Final = sa.insert(exchanges)
#: ``UPDATE payments SET chain_seq, chain_hash``: a payment's new chain tip.
CHAIN_TIP: Final = (sa.update(payments).where(payments.c.id == sa.bindparam("_id"))
                    .values(chain_seq=sa.bindparam("_seq"), chain_hash=sa.bindparam("_hash")))
_LOCK_TIP: Final = sa.select(payments.c.chain_seq, payments.c.chain_hash).where(
    payments.c.id == sa.bindparam("_id"))


#: The most a delivery recorded on its own waits for its payment's row lock.
DELIVERY_LOCK_WAIT: Final = "2s"


def lock_chain(conn: sa.Connection, payment_id: str, *, wait: str | None = None
               ) -> tuple[int, str] | None:
    """The payment's chain tip (position, hash), its row locked on PostgreSQL (so two
    writers never fork its chain; SQLite's write transaction excludes the other
    writers); None when there is no such payment, or (with *wait*, a PostgreSQL
    interval) when its row stayed locked that long by another transaction."""
    if conn.dialect.name == "sqlite":
        row = conn.execute(_LOCK_TIP, {"_id": payment_id}).first()
    elif wait is None:
        row = conn.execute(_LOCK_TIP.with_for_update(), {"_id": payment_id}).first()
    else:
        conn.execute(sa.text(f"SET LOCAL lock_timeout = '{wait}'"))
        try:
            with conn.begin_nested():
                row = conn.execute(_LOCK_TIP.with_for_update(), {"_id": payment_id}).first()
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            row = None
        finally:
            conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
    return None if row is None else (int(row.chain_seq), row.chain_hash)


def chain_on(conn: sa.Connection, payment_id: str, tip: tuple[int, str],
             items: Iterable[tuple[Kind, dict[str, Any]]]) -> tuple[int, str]:
    """Chain *items* after the payment's *tip* and store its new tip; the new tip."""
    new = link_all(items, seq=tip[0], prev=tip[1])
    if new != tip:
        conn.execute(CHAIN_TIP, {"_id": payment_id, "_seq": new[0], "_hash": new[1]})
    return new


def chain_alone(kind: Kind, row: dict[str, Any]) -> None:
    """Hash a record of no payment (position 0, no previous record): the chain head
    folds it with the rest."""
    link(kind, row, seq=0, prev="")


def insert_delivery(conn: sa.Connection, delivery: Delivery, *, payment_id: str | None,
                    now: datetime, values: dict[str, Any] | None = None) -> None:
    """Insert *delivery* (its row *values* when built and chained already); one
    recorded already raises ``ConcurrencyConflictError`` (the caller's transaction
    then rolls back)."""
    try:
        conn.execute(INSERT_DELIVERY, values if values is not None
                     else delivery_values(delivery, payment_id, now))
    except sa.exc.IntegrityError as exc:
        raise duplicate_delivery(delivery) from exc


def insert_exchanges(conn: sa.Connection, items: Iterable[Exchange], *,
                     payment_id: str | None,
                     rows: list[dict[str, Any]] | None = None) -> None:
    """Insert the exchanges (their rows when built and chained already)."""
    if rows is None:
        rows = [exchange_values(exchange, payment_id) for exchange in items]
    if rows:
        executemany(conn, INSERT_EXCHANGES, rows)


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


def records(delivery: dict[str, Any] | None, exchanges: list[dict[str, Any]],
             step: dict[str, Any]) -> list[tuple[Kind, dict[str, Any]]]:
    """A write's evidence rows in chain order: the delivery, the exchanges, the step."""
    items: list[tuple[Kind, dict[str, Any]]] = [] if delivery is None else [
        ("delivery", delivery)]
    items += [("exchange", row) for row in exchanges]
    items.append(("transition", step))
    return items
