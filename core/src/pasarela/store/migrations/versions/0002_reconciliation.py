"""Reconciliation: settlement lines, reconciliation results, and an index on payments
for matching by amount and date.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "settlement_lines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("line_key", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_reference", sa.String(128), nullable=True),
        sa.Column("order_reference", sa.String(64), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("occurred_at", _ts, nullable=False),
        sa.Column("payment_id", sa.String(26), nullable=True),
        sa.Column("matched_by", sa.String(24), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_settlement_lines"),
        sa.UniqueConstraint("run_key", "line_key", name="uq_settlement_lines_run_key_line_key"),
    )
    op.create_index("ix_settlement_lines_run_key_content_hash", "settlement_lines",
                    ["run_key", "content_hash"])
    op.create_index("ix_settlement_lines_run_key_payment_id", "settlement_lines",
                    ["run_key", "payment_id"])
    op.create_index("ix_payments_amount_date", "payments",
                    ["provider", "currency", "amount_minor", "created_at"])

    op.create_table(
        "reconciliation_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("item_key", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("payment_id", sa.String(26), nullable=True),
        sa.Column("provider_reference", sa.String(128), nullable=True),
        sa.Column("order_reference", sa.String(64), nullable=True),
        sa.Column("expected", sa.String(128), server_default="", nullable=False),
        sa.Column("actual", sa.String(128), server_default="", nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("healed", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_results"),
        sa.UniqueConstraint("run_key", "item_key",
                            name="uq_reconciliation_results_run_key_item_key"),
    )
    op.create_index("ix_reconciliation_results_payment_id", "reconciliation_results",
                    ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_payments_amount_date", table_name="payments")
    op.drop_table("reconciliation_results")
    op.drop_table("settlement_lines")
