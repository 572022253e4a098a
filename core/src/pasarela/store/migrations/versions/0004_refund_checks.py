"""Refunds: a next check time and a count of checks, so the resolver can ask the provider
about a refund whose create answer was lost (``get_refund``) on the payments' schedule.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("check_attempts", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_refunds_status_next_check_at", "refunds", ["status", "next_check_at"])


def downgrade() -> None:
    op.drop_index("ix_refunds_status_next_check_at", table_name="refunds")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("check_attempts")
        batch.drop_column("next_check_at")
