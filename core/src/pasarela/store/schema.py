"""The tables, in SQLAlchemy Core. Alembic migrations create them; keep both in step."""

from __future__ import annotations

import sqlalchemy as sa


__all__ = [
    "alerts",
    "audit_heads",
    "audit_pruned",
    "exchanges",
    "merchants",
    "metadata",
    "outbox",
    "payments",
    "refunds",
    "relay_cursors",
    "relay_deliveries",
    "routing_decisions",
    "transitions",
    "webhook_deliveries",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

_ts = sa.DateTime(timezone=True)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    # The merchant the payment belongs to ("": the implicit one); its idempotency
    # keys are its own (migration 0007).
    sa.Column("merchant", sa.String(32), nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("order_reference", sa.String(64), nullable=False, index=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("provider_reference", sa.String(128), nullable=True),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    sa.Column("expires_at", _ts, nullable=True),
    # When the resolver should next ask the provider (unknown / stale pending).
    sa.Column("next_check_at", _ts, nullable=True),
    sa.Column("check_attempts", sa.Integer, nullable=False, server_default="0"),
    # A job's lease: ``due_for_expiry`` hands a payment to one worker until then.
    sa.Column("claimed_until", _ts, nullable=True),
    sa.Column("next_action", sa.JSON, nullable=True),
    sa.Column("routing", sa.JSON, nullable=True),
    sa.Column("order", sa.JSON, nullable=True),
    # The order's personal part (customer, description, metadata) sealed with the
    # first ``[privacy] keys`` entry (a Fernet token; pasarela.store.sealing); NULL
    # when no key is configured (the order then keeps it) or after it was erased.
    sa.Column("personal", sa.Text, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    # The network the customer pays on (pagoefectivo, yape, a card's brand), and what
    # was charged when it differs from the price, with the rate as exact decimal text
    # (migration 0008).
    sa.Column("network", sa.String(32), nullable=True),
    sa.Column("charged_minor", sa.BigInteger, nullable=True),
    sa.Column("charged_currency", sa.String(3), nullable=True),
    sa.Column("fx_rate", sa.String(40), nullable=True),
    # The tip of the payment's evidence chain: its last record's position and hash.
    sa.Column("chain_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chain_hash", sa.String(64), nullable=False, server_default=""),
    # Keyed hashes (HMAC-SHA256 under a key derived from the newest [privacy] key) of
    # the customer's phone and document number, computed at write: what the console
    # searches by; never the values (migration 0010, pasarela.store.search).
    sa.Column("phone_hash", sa.String(64), nullable=True),
    sa.Column("document_hash", sa.String(64), nullable=True),
    sa.Index("ix_payments_provider_reference", "provider", "provider_reference"),
    sa.Index("ix_payments_status_expires_at", "status", "expires_at"),
    sa.Index("ix_payments_status_next_check_at", "status", "next_check_at"),
    sa.UniqueConstraint("merchant", "idempotency_key"),
    sa.Index("ix_payments_merchant_created_at", "merchant", "created_at"),
    # The console's searches and lists (migration 0010).
    sa.Index("ix_payments_merchant_phone_hash", "merchant", "phone_hash"),
    sa.Index("ix_payments_merchant_document_hash", "merchant", "document_hash"),
    sa.Index("ix_payments_merchant_provider_reference", "merchant", "provider_reference"),
    sa.Index("ix_payments_merchant_status_created_at", "merchant", "status", "created_at"),
    sa.Index("ix_payments_merchant_provider_created_at", "merchant", "provider",
             "created_at"),
)

#: Merchants created at run time (``pasarela.merchants.create``): the merchant's
#: configuration as JSON, sealed with ``[privacy] keys`` when any are configured.
merchants = sa.Table(
    "merchants",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("sealed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(26), sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("source", sa.String(24), nullable=False),
    sa.Column("target", sa.String(24), nullable=False),
    sa.Column("cause", sa.String(16), nullable=False),
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("event_id", sa.String(128), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", _ts, nullable=False),
    # The evidence chain (migration 0011; pasarela.store.chain): the record's position
    # in its payment's chain, the previous record's hash and its own (NULL: unchained).
    sa.Column("chain_seq", sa.Integer, nullable=True),
    sa.Column("chain_prev", sa.String(64), nullable=True),
    sa.Column("chain_hash", sa.String(64), nullable=True),
    sa.UniqueConstraint("payment_id", "seq"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column(
        "payment_id", sa.String(26), sa.ForeignKey("payments.id"), nullable=False, index=True
    ),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("provider_reference", sa.String(128), nullable=True),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("updated_at", _ts, nullable=False),
    # When the resolver should next ask the provider about a refund whose create answer
    # was lost (``Provider.get_refund``), and how many times it has asked.
    sa.Column("next_check_at", _ts, nullable=True),
    sa.Column("check_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_refunds_status_next_check_at", "status", "next_check_at"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(64), nullable=False),
    # NULL for rejected deliveries (forged, stale, malformed): those are logged,
    # never deduplicated.
    sa.Column("event_id", sa.String(255), nullable=True),
    sa.Column("event_type", sa.String(64), nullable=True),
    sa.Column("payment_id", sa.String(26), nullable=True, index=True),
    # The payment id, or "" for a delivery naming no known payment: the dedupe key's
    # third part (NULLs would never be equal, so a repeat could not be caught).
    sa.Column("payment_key", sa.String(26), nullable=False, server_default=""),
    # applied · ignored · unknown_payment · mismatch · rejected
    sa.Column("outcome", sa.String(24), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("received_at", _ts, nullable=False),
    # The evidence chain (migration 0011; pasarela.store.chain): the record's position
    # in its payment's chain, the previous record's hash and its own (NULL: unchained).
    sa.Column("chain_seq", sa.Integer, nullable=True),
    sa.Column("chain_prev", sa.String(64), nullable=True),
    sa.Column("chain_hash", sa.String(64), nullable=True),
    # One event key may name several payments (a provider's key that collides):
    # each is applied to its own payment; a repeat for the same payment is a duplicate.
    sa.UniqueConstraint("provider", "event_id", "payment_key"),
)

exchanges = sa.Table(
    "exchanges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(26), nullable=True, index=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(24), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("request_headers", sa.JSON, nullable=False),
    sa.Column("request_body", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("response_headers", sa.JSON, nullable=False),
    sa.Column("response_body", sa.Text, nullable=False),
    sa.Column("error", sa.String(64), nullable=True),
    sa.Column("started_at", _ts, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # The evidence chain (migration 0011; pasarela.store.chain): the record's position
    # in its payment's chain, the previous record's hash and its own (NULL: unchained).
    sa.Column("chain_seq", sa.Integer, nullable=True),
    sa.Column("chain_prev", sa.String(64), nullable=True),
    sa.Column("chain_hash", sa.String(64), nullable=True),
    # The digest of url, headers and bodies the hash covers (they may be erased).
    sa.Column("body_digest", sa.String(64), nullable=True),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # The event id: a ULID, stable across redeliveries.
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("payment_id", sa.String(26), nullable=False, index=True),
    sa.Column("type", sa.String(48), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("dispatched_at", _ts, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", _ts, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_pending", "dispatched_at", "next_attempt_at"),
)

routing_decisions = sa.Table(
    "routing_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(26), nullable=True, index=True),
    sa.Column("order_reference", sa.String(64), nullable=False),
    sa.Column("decision", sa.JSON, nullable=False),
    sa.Column("created_at", _ts, nullable=False),
)

#: The outbox scan of the relays (:mod:`pasarela.store.relays`) reads it by creation time.
sa.Index("ix_outbox_created_at", outbox.c.created_at)

# One row per relay: the newest outbox ``created_at`` it has queued, and the row its
# claims lock (one claim per relay at a time; the publishing runs in parallel).
relay_cursors = sa.Table(
    "relay_cursors",
    metadata,
    sa.Column("relay", sa.String(64), primary_key=True),
    sa.Column("watermark", _ts, nullable=True),
    sa.Column("updated_at", _ts, nullable=False),
)

# One row per (relay, outbox event): delivered once that relay's broker acknowledged it.
relay_deliveries = sa.Table(
    "relay_deliveries",
    metadata,
    sa.Column("relay", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(26), primary_key=True),
    sa.Column("payment_id", sa.String(26), nullable=False),
    sa.Column("created_at", _ts, nullable=False),
    sa.Column("delivered_at", _ts, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", _ts, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_relay_deliveries_pending", "relay", "delivered_at", "created_at", "event_id"),
    sa.Index("ix_relay_deliveries_payment", "relay", "payment_id", "created_at"),
)

#: Alerts (migration 0012; pasarela.engine.alerts): one row per time an alert fired,
#: kept after it resolved (the history). ``subject`` names what it is about
#: (``pagoefectivo``, ``pagoefectivo/cash``, ``outbox``); at most one row per
#: ``(merchant, kind, subject)`` is firing (``resolved_at`` NULL) at a time.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("merchant", sa.String(32), nullable=False, server_default=""),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("started_at", _ts, nullable=False),
    sa.Column("last_seen_at", _ts, nullable=False),
    sa.Column("resolved_at", _ts, nullable=True),
    sa.Index("ix_alerts_open", "resolved_at", "merchant", "kind", "subject"),
    sa.Index("ix_alerts_started_at", "started_at"),
)
#: The open payments only (a partial index: a payment leaves it when it finishes), with
#: what ``/metrics`` groups them by, so that the gauge reads the index alone.
_OPEN = sa.text("status IN ('pending', 'processing', 'unknown')")
sa.Index("ix_payments_open", payments.c.status, payments.c.merchant, payments.c.provider,
         payments.c.method, sqlite_where=_OPEN, postgresql_where=_OPEN)
#: The alerts' question "when did this provider last send a notification we took".
sa.Index("ix_webhook_deliveries_provider_received_at", webhook_deliveries.c.provider,
         webhook_deliveries.c.received_at)

#: The store's chain heads (``pasarela audit seal``; pasarela.store.audit): each folds
#: the hashes of the records written since the previous one, in id order per table,
#: and is chained to it; ``signature`` (Ed25519, optional) is over ``hash``.
audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", _ts, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("records", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("upto_exchange", sa.BigInteger, nullable=False),
    sa.Column("upto_transition", sa.BigInteger, nullable=False),
    sa.Column("upto_delivery", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.Text, nullable=True),
    sa.Column("public_key", sa.Text, nullable=True),
)

#: Ranges of a payment's chain removed by retention (``[audit] keep``), summarised by
#: their hashes so that the chain still verifies: positions ``first_seq..last_seq``,
#: the hash before the first and the hash of the last.
audit_pruned = sa.Table(
    "audit_pruned",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("payment_id", sa.String(26), nullable=False, index=True),
    sa.Column("first_seq", sa.Integer, nullable=False),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_prev", sa.String(64), nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("first_kind", sa.String(16), nullable=False),
    sa.Column("first_at", _ts, nullable=False),
    sa.Column("last_at", _ts, nullable=False),
    sa.Column("pruned_at", _ts, nullable=False),
)
