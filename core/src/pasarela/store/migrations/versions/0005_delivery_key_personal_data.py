"""Webhook deliveries deduplicated per payment; the order's personal part sealed apart.

``webhook_deliveries`` gets ``payment_key`` (the payment id, ``""`` when the delivery
named no known payment) and its unique key becomes (provider, event_id, payment_key):
an event key that collides for another payment is applied to that payment instead of
being dropped as a duplicate. ``payments`` gets ``personal``: the customer, the
description and the metadata, sealed with the configured key (``[privacy] keys``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("payment_key", sa.String(26), nullable=False,
                                   server_default=""))
    deliveries = sa.table("webhook_deliveries", sa.column("payment_id", sa.String),
                          sa.column("payment_key", sa.String))
    op.execute(deliveries.update().where(deliveries.c.payment_id.is_not(None))
               .values(payment_key=deliveries.c.payment_id))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("uq_webhook_deliveries_provider_event_id", type_="unique")
        batch.create_unique_constraint(
            "uq_webhook_deliveries_provider_event_id_payment_key",
            ["provider", "event_id", "payment_key"])
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("personal", sa.Text(), nullable=True))


def downgrade() -> None:
    # Rows sealed with a key cannot be unsealed here: downgrading with sealed rows
    # would lose their personal data, so it is refused.
    bind = op.get_bind()
    sealed = bind.execute(sa.text("SELECT count(*) FROM payments WHERE personal IS NOT NULL"))
    if sealed.scalar_one():
        raise RuntimeError("payments hold sealed personal data; downgrade is refused")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("personal")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint("uq_webhook_deliveries_provider_event_id_payment_key",
                              type_="unique")
        batch.create_unique_constraint("uq_webhook_deliveries_provider_event_id",
                                       ["provider", "event_id"])
        batch.drop_column("payment_key")
