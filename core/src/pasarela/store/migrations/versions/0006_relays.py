"""Outbox relays: per-relay delivery marks and each relay's scan position.

``relay_deliveries`` holds one row per (relay, outbox event): delivered only once
that relay's broker acknowledged the event, with its own attempts and backoff, so a
broker that is down delays its relay alone. ``relay_cursors`` holds one row per
relay: the newest outbox ``created_at`` it has queued (the scan restarts a margin
before it) and the row that serialises that relay's claims. ``outbox`` gets an index
on ``created_at`` for that scan.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "relay_cursors",
        sa.Column("relay", sa.String(64), nullable=False),
        sa.Column("watermark", ts, nullable=True),
        sa.Column("updated_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("relay", name="pk_relay_cursors"),
    )
    op.create_table(
        "relay_deliveries",
        sa.Column("relay", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=False),
        sa.Column("payment_id", sa.String(26), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("delivered_at", ts, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", ts, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("relay", "event_id", name="pk_relay_deliveries"),
    )
    op.create_index("ix_relay_deliveries_pending", "relay_deliveries",
                    ["relay", "delivered_at", "created_at", "event_id"])
    op.create_index("ix_relay_deliveries_payment", "relay_deliveries",
                    ["relay", "payment_id", "created_at"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ix_relay_deliveries_payment", table_name="relay_deliveries")
    op.drop_index("ix_relay_deliveries_pending", table_name="relay_deliveries")
    op.drop_table("relay_deliveries")
    op.drop_table("relay_cursors")
