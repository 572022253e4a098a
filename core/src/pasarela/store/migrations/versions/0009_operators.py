"""Operator accounts, the console's session key and the operator audit log.

``operators`` (per merchant: name, role 1 viewer / 2 operator / 3 admin, the
password's argon2 hash, the session generation "sign out everywhere" moves on),
``console_keys`` (per merchant, the random key console sessions and CSRF tokens are
signed with) and ``operator_audit`` (who did what on what, when, from where, with
which outcome; detail masked). See :mod:`pasarela.store.operators`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("merchant", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("merchant", "name", name="pk_operators"),
    )
    op.create_table(
        "console_keys",
        sa.Column("merchant", sa.String(32), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("merchant", name="pk_console_keys"),
    )
    op.create_table(
        "operator_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("merchant", sa.String(32), nullable=False),
        sa.Column("at", _ts, nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_operator_audit"),
    )
    op.create_index("ix_operator_audit_merchant_at", "operator_audit", ["merchant", "at"])
    op.create_index("ix_operator_audit_merchant_operator_at", "operator_audit",
                    ["merchant", "operator", "at"])


def downgrade() -> None:
    op.drop_index("ix_operator_audit_merchant_operator_at", table_name="operator_audit")
    op.drop_index("ix_operator_audit_merchant_at", table_name="operator_audit")
    op.drop_table("operator_audit")
    op.drop_table("console_keys")
    op.drop_table("operators")
