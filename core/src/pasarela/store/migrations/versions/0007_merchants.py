"""Merchants: payments belong to one, idempotency keys are each merchant's own, and
merchants created at run time are kept.

``payments`` gets ``merchant`` (``""``, the implicit merchant, for every existing
row) and its unique idempotency key becomes (merchant, idempotency_key): two
merchants may use the same key for their own payments. An index on (merchant,
created_at) serves each merchant's listings. ``merchants`` holds the configuration of
merchants made with ``pasarela.merchants.create`` (sealed with ``[privacy] keys`` when
they are configured).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("merchant", sa.String(32), nullable=False,
                                   server_default=""))
        batch.drop_constraint("uq_payments_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_payments_merchant_idempotency_key",
                                       ["merchant", "idempotency_key"])
        batch.create_index("ix_payments_merchant_created_at", ["merchant", "created_at"])
    op.create_table(
        "merchants",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_merchants"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    others = bind.execute(sa.text("SELECT count(*) FROM payments WHERE merchant <> ''"))
    if others.scalar_one():
        raise RuntimeError("payments of merchants other than the implicit one exist; "
                           "downgrade is refused")
    op.drop_table("merchants")
    with op.batch_alter_table("payments") as batch:
        batch.drop_index("ix_payments_merchant_created_at")
        batch.drop_constraint("uq_payments_merchant_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_payments_idempotency_key", ["idempotency_key"])
        batch.drop_column("merchant")
