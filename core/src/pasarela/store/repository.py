"""The durable store: SQLAlchemy Core over SQLite (WAL) or PostgreSQL (psycopg 3).

Every method is one short database transaction; none is held across network I/O.
The one function that changes a payment's status is :meth:`Store.transition`: it
checks the expected version (optimistic concurrency), bumps it, appends the
transition and writes the outbox event, all in the same transaction, together with
whatever evidence rows the caller passes (exchanges, a webhook delivery, a refund).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from pasarela.flows import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment, Refund, Transition


__all__ = ["Delivery", "OutboxEvent", "Store"]


@attrs.frozen(kw_only=True)
class Delivery:
    """A webhook delivery to record (``event_id`` None for a rejected one)."""

    provider: str
    event_id: str | None
    event_type: str | None
    outcome: str  # applied · ignored · unknown_payment · rejected · duplicate
    detail: str = ""
    payment_id: str | None = None


@attrs.frozen(kw_only=True)
class OutboxEvent:
    """A committed lifecycle event waiting to reach the observer hooks."""

    id: str
    payment_id: str
    type: str
    payload: Mapping[str, Any]
    created_at: datetime
    attempts: int


class Store:
    """Persistence for payments and their evidence. Thread-safe; one per process."""

    def __init__(self, url: str, *, upgrade: bool | None = None) -> None:
        """Connect to *url* (``sqlite:///pasarela.db`` or ``postgresql+psycopg://...``).

        ``postgresql://`` URLs are rewritten to use psycopg 3. SQLite gets WAL mode,
        a busy timeout and foreign keys on every connection. *upgrade* runs the
        Alembic migrations to head; its default is True for SQLite (the embedded
        store upgrades itself) and False for PostgreSQL (``pasarela db upgrade``).
        """
        raise NotImplementedError

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        raise NotImplementedError

    def upgrade(self) -> None:
        """Run Alembic migrations to head."""
        raise NotImplementedError

    def ping(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- payments --------------------------------------------------------------

    def create_payment(self, payment: Payment, *, fingerprint: str) -> tuple[Payment, bool]:
        """Insert *payment* (status ``created``) keyed by its idempotency key.

        Returns ``(payment, True)`` when inserted. When the key exists already,
        returns ``(existing, False)`` if the stored fingerprint equals
        *fingerprint*, and raises ``IdempotencyConflictError`` otherwise. Safe under
        any number of concurrent callers with one key (the unique constraint
        decides; the losers read the winner's row).
        """
        raise NotImplementedError

    def get_payment(self, payment_id: str, *, history: bool = False) -> Payment:
        """The payment, with its transitions when *history*; ``NotFoundError`` if none."""
        raise NotImplementedError

    def find_payment(
        self,
        *,
        provider: str | None = None,
        provider_reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment | None:
        raise NotImplementedError

    def update_payment(self, payment_id: str, *, expected_version: int, **changes: Any) -> Payment:
        """Change non-status fields (``provider_reference``, ``next_action``,
        ``expires_at``, ``routing``, ``next_check_at``, ``check_attempts``,
        ``error_code``, ``error_message``) with a version check and bump.

        ``ConcurrencyConflictError`` if the version moved on.
        """
        raise NotImplementedError

    def transition(
        self,
        payment_id: str,
        *,
        expected_version: int,
        target: Status,
        cause: Cause,
        event_type: str,
        reason: str = "",
        event_id: str | None = None,
        changes: Mapping[str, Any] | None = None,
        exchanges: Sequence[Exchange] = (),
        delivery: Delivery | None = None,
        refund: Refund | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Payment:
        """Apply one status change, atomically.

        In one transaction: ``UPDATE payments SET status, version = version + 1,
        updated_at, **changes WHERE id = ? AND version = expected_version``
        (``ConcurrencyConflictError`` when no row matched); insert the transition
        (next ``seq``, ``applied=True``); insert an outbox row of *event_type* with
        a new ULID id and *payload* (default: the payment's public fields); insert
        the *exchanges*, the *delivery* and upsert the *refund*. The caller has
        already checked the lifecycle table. Returns the new payment.
        """
        raise NotImplementedError

    def record_ignored(
        self,
        payment_id: str,
        *,
        source: Status,
        target: Status,
        cause: Cause,
        reason: str,
        event_id: str | None = None,
        exchanges: Sequence[Exchange] = (),
        delivery: Delivery | None = None,
    ) -> None:
        """Append a transition with ``applied=False`` (a duplicate or stale report)
        and the evidence rows, without touching the payment or its version."""
        raise NotImplementedError

    def record_exchanges(self, exchanges: Iterable[Exchange]) -> None:
        raise NotImplementedError

    def exchanges_for(self, payment_id: str) -> list[dict[str, Any]]:
        """The recorded (redacted) exchanges of a payment, oldest first."""
        raise NotImplementedError

    def history(self, payment_id: str) -> list[Transition]:
        raise NotImplementedError

    # --- refunds ---------------------------------------------------------------

    def refunds_for(self, payment_id: str) -> list[Refund]:
        raise NotImplementedError

    def save_refund(self, refund: Refund) -> None:
        """Insert or update a refund row by id (outside a status change)."""
        raise NotImplementedError

    # --- webhooks --------------------------------------------------------------

    def seen_delivery(self, provider: str, event_id: str) -> bool:
        raise NotImplementedError

    def record_delivery(self, delivery: Delivery) -> bool:
        """Insert a delivery; False when (provider, event_id) was recorded already."""
        raise NotImplementedError

    # --- outbox ----------------------------------------------------------------

    def claim_outbox(self, *, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        """Undispatched events due at *now*, oldest first. On PostgreSQL rows are
        claimed with ``FOR UPDATE SKIP LOCKED`` and their ``next_attempt_at`` pushed
        forward (a lease) so concurrent dispatchers do not take the same rows."""
        raise NotImplementedError

    def mark_dispatched(self, event_ids: Sequence[str], *, now: datetime) -> None:
        raise NotImplementedError

    def mark_failed(self, event_id: str, *, error: str, retry_at: datetime) -> None:
        raise NotImplementedError

    def outbox_lag(self, *, now: datetime) -> tuple[int, float]:
        """(undispatched count, age in seconds of the oldest undispatched event)."""
        raise NotImplementedError

    # --- jobs ------------------------------------------------------------------

    def due_for_expiry(self, *, now: datetime, limit: int = 500) -> list[Payment]:
        """Pending payments whose ``expires_at`` has passed."""
        raise NotImplementedError

    def due_for_check(self, *, now: datetime, limit: int = 500) -> list[Payment]:
        """Unknown (and pending) payments whose ``next_check_at`` has passed."""
        raise NotImplementedError

    # --- routing ---------------------------------------------------------------

    def record_decision(
        self, *, order_reference: str, payment_id: str | None, decision: Mapping[str, Any]
    ) -> None:
        raise NotImplementedError
