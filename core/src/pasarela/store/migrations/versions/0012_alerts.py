"""Alerts: alert state and history, and the indexes the detectors read by.

``alerts``: one row each time an alert fired (kind, merchant, subject, value,
threshold, message, when it started, was last seen and resolved); the open ones
(``resolved_at`` NULL) are the alerts firing now, the others their history. Indexes
``webhook_deliveries (provider, received_at)`` (the last notification taken from a
provider, without reading its history) and ``reconciliation_results (resolved,
provider)`` (the differences no one resolved yet); ``ix_payments_open``, a partial
index of the open payments (pending, processing, unknown) by status, merchant,
account and method: the ``/metrics`` gauge reads it alone, and a payment leaves it
when it finishes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("merchant", sa.String(32), nullable=False, server_default=""),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("last_seen_at", ts, nullable=False),
        sa.Column("resolved_at", ts, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_open", "alerts", ["resolved_at", "merchant", "kind", "subject"])
    op.create_index("ix_alerts_started_at", "alerts", ["started_at"])
    op.create_index("ix_webhook_deliveries_provider_received_at", "webhook_deliveries",
                    ["provider", "received_at"])
    op.create_index("ix_reconciliation_results_resolved_provider", "reconciliation_results",
                    ["resolved", "provider"])
    open_only = sa.text("status IN ('pending', 'processing', 'unknown')")
    op.create_index("ix_payments_open", "payments", ["status", "merchant", "provider", "method"],
                    sqlite_where=open_only, postgresql_where=open_only)


def downgrade() -> None:
    op.drop_index("ix_payments_open", "payments")
    op.drop_index("ix_reconciliation_results_resolved_provider", "reconciliation_results")
    op.drop_index("ix_webhook_deliveries_provider_received_at", "webhook_deliveries")
    op.drop_index("ix_alerts_started_at", "alerts")
    op.drop_index("ix_alerts_open", "alerts")
    op.drop_table("alerts")
