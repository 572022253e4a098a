"""Console search: keyed hashes of customers' phones and documents, search indexes,
reconciliation resolutions.

``payments`` gets ``phone_hash`` and ``document_hash`` (HMAC-SHA256 of the normalised
phone and document number under a key derived from the newest ``[privacy] keys``
entry; NULL without a key). Rows written before keep NULL until ``pasarela customers
rotate-key`` hashes them (it opens each sealed row anyway). Indexes for the console's
searches and keyset-paginated lists, all led by the merchant; and
``reconciliation_resolutions``: what an operator did about a difference (healed,
accepted with a note, refunded), by whom and when.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_payments_merchant_phone_hash", ["merchant", "phone_hash"]),
    ("ix_payments_merchant_document_hash", ["merchant", "document_hash"]),
    ("ix_payments_merchant_provider_reference", ["merchant", "provider_reference"]),
    ("ix_payments_merchant_status_created_at", ["merchant", "status", "created_at"]),
    ("ix_payments_merchant_provider_created_at", ["merchant", "provider", "created_at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("phone_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("document_hash", sa.String(64), nullable=True))
    for name, columns in _INDEXES:
        op.create_index(name, "payments", columns)
    op.create_table(
        "reconciliation_resolutions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("refund_id", sa.String(26), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_resolutions"),
        sa.UniqueConstraint("result_id", name="uq_reconciliation_resolutions_result_id"),
    )
    op.create_index("ix_reconciliation_results_run_key_id", "reconciliation_results",
                    ["run_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_reconciliation_results_run_key_id", "reconciliation_results")
    op.drop_table("reconciliation_resolutions")
    for name, _ in reversed(_INDEXES):
        op.drop_index(name, "payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("document_hash")
        batch.drop_column("phone_hash")
