"""The reconciliation tables, on the store's one :data:`~pasarela.store.schema.metadata`.

- ``settlement_lines``: every line a reconciliation run read (from a provider's API
  or a CSV file), keyed by ``(run_key, line_key)`` so that running the same
  reconciliation again writes nothing new. ``category`` is what the line came to
  (``matched``, ``duplicate``, ...); ``payment_id`` is the payment it matched.
- ``reconciliation_results``: one row per difference found (every category but
  ``matched``), keyed by ``(run_key, item_key)``: the line's key, or ``P<payment id>``
  for a payment the provider does not list (missing at the provider).

It also adds the index ``ix_payments_amount_date`` to ``payments`` (for matching by
amount and date). Migration ``0002`` creates them and ``0003`` drops the index on
``(run_key, content_hash)``; keep the migrations and this module in step.
"""

from __future__ import annotations

import sqlalchemy as sa

from pasarela.store.schema import metadata, payments


__all__ = ["payments_amount_date", "reconciliation_results", "settlement_lines"]

_ts = sa.DateTime(timezone=True)

settlement_lines = sa.Table(
    "settlement_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_key", sa.String(64), nullable=False),
    sa.Column("line_key", sa.String(64), nullable=False),
    sa.Column("content_hash", sa.String(32), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("provider_reference", sa.String(128), nullable=True),
    sa.Column("order_reference", sa.String(64), nullable=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("fee_minor", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("occurred_at", _ts, nullable=False),
    sa.Column("payment_id", sa.String(26), nullable=True),
    sa.Column("matched_by", sa.String(24), nullable=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    # No index on content_hash: a run finds duplicates in memory (see reconcile_match),
    # and an index on a random key is the costliest part of writing a million lines.
    sa.UniqueConstraint("run_key", "line_key"),
    sa.Index("ix_settlement_lines_run_key_payment_id", "run_key", "payment_id"),
)

#: Matching by amount and date looks payments up by provider, currency, amount and
#: creation time (the payments table is in schema.py; its reconciliation index is here).
payments_amount_date = sa.Index(
    "ix_payments_amount_date", payments.c.provider, payments.c.currency,
    payments.c.amount_minor, payments.c.created_at,
)

reconciliation_results = sa.Table(
    "reconciliation_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_key", sa.String(64), nullable=False),
    sa.Column("item_key", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=True),
    sa.Column("payment_id", sa.String(26), nullable=True),
    sa.Column("provider_reference", sa.String(128), nullable=True),
    sa.Column("order_reference", sa.String(64), nullable=True),
    sa.Column("expected", sa.String(128), nullable=False, server_default=""),
    sa.Column("actual", sa.String(128), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    # True when the difference needs no one: a payment healed through the lifecycle.
    sa.Column("resolved", sa.Boolean, nullable=False),
    sa.Column("healed", sa.Boolean, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.UniqueConstraint("run_key", "item_key"),
    sa.Index("ix_reconciliation_results_payment_id", "payment_id"),
)

#: The alerts count the differences no one resolved yet, per provider (migration 0012).
unresolved_differences = sa.Index(
    "ix_reconciliation_results_resolved_provider", reconciliation_results.c.resolved,
    reconciliation_results.c.provider,
)
