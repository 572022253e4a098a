"""The one write interface the engine applies provider reports through.

:class:`PaymentWriter` is what :class:`~pasarela.store.Store` (every call its own
transaction) and :class:`~pasarela.store.WriteBatch` (many payments' changes, one
transaction, written when the batch ends) both are; mypy checks both against it,
and the store conformance suite (``tests/store``) runs every rule on both.

The rules every writer keeps:

- a status changes only through :meth:`~PaymentWriter.transition`, which needs the
  payment's current version, bumps it, and writes the transition and its outbox
  event with the payment (and the exchanges, delivery and refund given with it);
- a stale version is a :class:`~pasarela.errors.ConcurrencyConflictError` that
  writes nothing; so is a delivery whose ``(provider, event_id, payment)`` was
  recorded already (:meth:`~PaymentWriter.record_delivery` answers False instead);
- bad input (a column that may not change, a naive datetime) is a
  :class:`~pasarela.errors.ValidationError` raised by the call, writing nothing;
- reads see the writer's own writes.

Where a batch differs, it says so: nothing it queues is visible to other
connections until it ends; it reads no histories and finds payments only by
provider and reference; and a delivery another process records after the batch
looked is only caught when the batch is written (the whole batch then rolls back
with ``ConcurrencyConflictError``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment, Refund
from pasarela.store.values import Delivery


__all__ = ["PaymentWriter"]


class PaymentWriter(Protocol):
    """What the engine calls on a store, or on a write batch (see the module docs)."""

    def get_payment(self, payment_id: str, *, history: bool = False) -> Payment:
        """The payment as this writer sees it; ``NotFoundError`` if none.
        *history* adds its transitions (a batch refuses it)."""
        ...

    def find_payment(
        self,
        *,
        provider: str | None = None,
        provider_reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment | None:
        """The payment matching every criterion given (the newest, if several); a
        batch finds by provider and reference only."""
        ...

    def seen_delivery(self, provider: str, event_id: str,
                      payment_id: str | None = None) -> bool:
        """Whether *provider*'s event *event_id* was recorded (by this writer too):
        for *payment_id* when given, else for any payment or none."""
        ...

    def delivered_for(self, provider: str, event_id: str) -> frozenset[str]:
        """The payment ids *provider*'s event *event_id* was recorded for (``""``:
        for no known payment); a delivery is unique per provider, event and payment."""
        ...

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
        """Change the payment's status to *target*, atomically with its version bump,
        the transition, the outbox event (*payload*, default the payment's public
        fields) and the evidence given; the payment after the change."""
        ...

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
        and the evidence, leaving the payment and its version alone."""
        ...

    def update_payment(
        self, payment_id: str, *, expected_version: int, refund: Refund | None = None,
        **changes: Any,
    ) -> Payment:
        """Change non-status fields with a version check and bump (and upsert
        *refund* with them); the payment after the change."""
        ...

    def record_delivery(self, delivery: Delivery) -> bool:
        """Record a delivery with no status change; False when it was recorded already."""
        ...

    def record_exchanges(self, exchanges: Iterable[Exchange]) -> None:
        """Record exchanges that changed nothing (a failed or idle provider call)."""
        ...
