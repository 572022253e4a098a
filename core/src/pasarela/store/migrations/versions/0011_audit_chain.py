"""Evidence chain: record hashes, the payments' chain tips, chain heads, pruned ranges.

``exchanges``, ``transitions`` and ``webhook_deliveries`` get ``chain_seq`` (the
record's position in its payment's chain), ``chain_prev`` and ``chain_hash``;
``exchanges`` also ``body_digest`` (the digest of its URL, headers and bodies, which
erasure may scrub); ``payments`` gets its chain's tip (``chain_seq``,
``chain_hash``). New tables: ``audit_heads`` (the store's chain heads) and
``audit_pruned`` (ranges removed by retention, summarised by their hashes).

Rows written before this revision are chained here, payment by payment: its records
in time order (an exchange by its start, a transition by its time, a delivery by its
arrival; on a tie a delivery, then an exchange, then a transition, then by id),
with :mod:`pasarela.store.chain` (its canonical form is fixed: a later change to
it would be a new kind of record, never a new meaning of an old one). A record of
no payment is hashed on its own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op

from pasarela.store.chain import Kind, link, link_all


revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_RECORDS = ("exchanges", "transitions", "webhook_deliveries")
_KIND: dict[str, Kind] = {"exchanges": "exchange", "transitions": "transition",
                          "webhook_deliveries": "delivery"}
_TIME = {"exchanges": "started_at", "transitions": "at", "webhook_deliveries": "received_at"}
_ORDER = {"delivery": 0, "exchange": 1, "transition": 2}
_CHUNK = 500


def _chain_columns() -> list[sa.Column[Any]]:
    return [sa.Column("chain_seq", sa.Integer(), nullable=True),
            sa.Column("chain_prev", sa.String(64), nullable=True),
            sa.Column("chain_hash", sa.String(64), nullable=True)]


def upgrade() -> None:
    for name in _RECORDS:
        with op.batch_alter_table(name) as batch:
            for column in _chain_columns():
                batch.add_column(column)
            if name == "exchanges":
                batch.add_column(sa.Column("body_digest", sa.String(64), nullable=True))
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("chain_seq", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("chain_hash", sa.String(64), nullable=False,
                                   server_default=""))
    op.create_table(
        "audit_heads",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("records", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("upto_exchange", sa.BigInteger(), nullable=False),
        sa.Column("upto_transition", sa.BigInteger(), nullable=False),
        sa.Column("upto_delivery", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_heads"),
    )
    op.create_table(
        "audit_pruned",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(26), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_prev", sa.String(64), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("first_kind", sa.String(16), nullable=False),
        sa.Column("first_at", _TS, nullable=False),
        sa.Column("last_at", _TS, nullable=False),
        sa.Column("pruned_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_pruned"),
    )
    op.create_index("ix_audit_pruned_payment_id", "audit_pruned", ["payment_id"])
    _chain_existing(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_audit_pruned_payment_id", table_name="audit_pruned")
    op.drop_table("audit_pruned")
    op.drop_table("audit_heads")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("chain_hash")
        batch.drop_column("chain_seq")
    for name in reversed(_RECORDS):
        with op.batch_alter_table(name) as batch:
            if name == "exchanges":
                batch.drop_column("body_digest")
            for column in reversed(_chain_columns()):
                batch.drop_column(column.name)


def _tables(conn: sa.Connection) -> dict[str, sa.Table]:
    meta = sa.MetaData()
    return {name: sa.Table(name, meta, autoload_with=conn)
            for name in (*_RECORDS, "payments")}


def _chain_existing(conn: sa.Connection) -> None:
    """Chain every row that is not (see the module docs)."""
    tables = _tables(conn)
    pay = tables["payments"]
    if conn.execute(sa.select(sa.func.count()).select_from(pay)).scalar_one() == 0 and all(
            conn.execute(sa.select(sa.func.count()).select_from(tables[n])).scalar_one() == 0
            for n in _RECORDS):
        return  # a new store: nothing to chain
    after = ""
    while True:
        ids = list(conn.execute(sa.select(pay.c.id).where(pay.c.id > after)
                                .order_by(pay.c.id).limit(_CHUNK)).scalars())
        if not ids:
            break
        after = ids[-1]
        for pid in ids:
            items: list[tuple[Any, int, int, str, dict[str, Any]]] = []
            for name in _RECORDS:
                table = tables[name]
                for row in conn.execute(sa.select(table).where(table.c.payment_id == pid)):
                    values = dict(row._mapping)
                    kind = _KIND[name]
                    items.append((values[_TIME[name]], _ORDER[kind], values["id"], name,
                                  values))
            items.sort(key=lambda item: (_naive(item[0]), item[1], item[2]))
            tip = link_all([(_KIND[name], values) for *_, name, values in items],
                           seq=0, prev="")
            for *_, name, values in items:
                _write(conn, tables[name], values)
            if items:
                conn.execute(sa.update(pay).where(pay.c.id == pid)
                             .values(chain_seq=tip[0], chain_hash=tip[1]))
    # Records of no payment (or of one that is gone): each on its own.
    for name in _RECORDS:
        table = tables[name]
        for row in conn.execute(sa.select(table).where(table.c.chain_hash.is_(None))).all():
            values = dict(row._mapping)
            link(_KIND[name], values, seq=0, prev="")
            _write(conn, table, values)


def _naive(value: Any) -> Any:
    """A timestamp comparable with SQLite's naive UTC ones."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _write(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> None:
    names = ["chain_seq", "chain_prev", "chain_hash"]
    if "body_digest" in table.c:
        names.append("body_digest")
    conn.execute(sa.update(table).where(table.c.id == values["id"])
                 .values(**{n: values[n] for n in names}))
