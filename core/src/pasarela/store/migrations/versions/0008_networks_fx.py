"""Networks and charged amounts: what a payment runs on, and what it charged.

``payments`` gets ``network`` (the network the customer pays on: ``pagoefectivo``,
``yape``, a card's brand; which the payment's provider collects), and
``charged_minor``/``charged_currency``/``fx_rate``: what the customer was charged
when it differs from the price (a PEN price charged in USD through dLocal) and the
rate applied, kept as exact decimal text. All nullable; existing rows keep NULL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("network", sa.String(32), nullable=True))
        batch.add_column(sa.Column("charged_minor", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("charged_currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("fx_rate", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("fx_rate")
        batch.drop_column("charged_currency")
        batch.drop_column("charged_minor")
        batch.drop_column("network")
