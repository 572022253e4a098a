"""Settlement lines: drop the index on (run_key, content_hash).

Reconciliation finds duplicate lines in memory (each run keeps the content digests of
its lines), so nothing reads by content hash any more, and keeping an index on a
random key was the costliest part of writing a large run's lines.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_settlement_lines_run_key_content_hash", table_name="settlement_lines")


def downgrade() -> None:
    op.create_index("ix_settlement_lines_run_key_content_hash", "settlement_lines",
                    ["run_key", "content_hash"])
