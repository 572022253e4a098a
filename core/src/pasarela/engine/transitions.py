"""The one path to a status change, for payments and their refunds.

No other code changes a payment's status. Each function here asks the lifecycle
table (:func:`pasarela.lifecycle.plan`) and then, through the *writer* (the store,
or a write batch that commits many payments at once), either

- applies the change: ``writer.transition`` bumps the version (optimistic
  concurrency) and writes the transition, its cause, its evidence (exchanges, the
  webhook delivery, the refund) and the outbox event in one database transaction;
- or records why it did not: a duplicate, stale or illegal report from a provider
  is written as an ignored transition with its evidence (``writer.record_ignored``)
  and never moves the payment, backwards or otherwise;
- or refuses: an illegal move asked for by the API or a job raises
  :class:`~pasarela.errors.IllegalTransitionError` and writes nothing.

On a concurrency conflict (another writer moved the payment first) the payment is
reloaded and planned again, so a retry applies cleanly and a report that has
become stale is ignored; a webhook delivery found recorded meanwhile is a repeat
and is not applied twice.

- :func:`move`: take *payment* to a status;
- :func:`apply_report`: apply what a provider says of a payment (its status, and
  the reference, next action, expiry and failure that come with it);
- :func:`settle_refund`: a refund the provider confirmed moves the payment to
  ``partially_refunded`` or ``refunded``, through the same table.

Each takes the engine context (:class:`~pasarela.engine.context.Service`) first and
writes through ``writer=`` (a :class:`~pasarela.store.PaymentWriter`: a write batch,
or by default the service's store, one transaction per change).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pasarela.engine import meters
from pasarela.engine.context import Service
from pasarela.errors import ConcurrencyConflictError, ErrorCode, IllegalTransitionError, RefundError
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Plan, Status, Verdict, plan
from pasarela.logs import get_logger
from pasarela.model import Payment, Refund
from pasarela.provider import ProviderPayment
from pasarela.retry import RESOLVER
from pasarela.store import Delivery, PaymentWriter


__all__ = ["apply_report", "move", "settle_refund"]

log = get_logger("pasarela")

# Plans made again after a concurrency conflict before giving up.
_ATTEMPTS = 5

# What a duplicate report may still teach (a poll that finds the status unchanged; an
# extended CIP, still pending, with its new expiry).
_ON_DUPLICATE = ("provider_reference", "next_action", "next_check_at", "network", "charged",
                 "fx_rate", "expires_at")

_SETTLED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELED, Status.EXPIRED)
_OPEN = (Status.PENDING, Status.PROCESSING, Status.UNKNOWN)


def move(
    service: Service,
    payment: Payment,
    target: Status,
    cause: Cause,
    *,
    provider_confirmed: bool,
    reason: str = "",
    changes: Mapping[str, Any] | None = None,
    exchanges: Sequence[Exchange] = (),
    delivery: Delivery | None = None,
    event_id: str | None = None,
    writer: PaymentWriter | None = None,
) -> Payment:
    """Take *payment* to *target* (with *changes* to other fields) and return it as
    it now is.

    *provider_confirmed* says the provider reported *target* (a report that the
    table does not allow is then recorded and ignored); without it the move is
    ours (the API, a job) and one the table does not allow raises
    :class:`~pasarela.errors.IllegalTransitionError`. A duplicate with no
    *delivery* (a poll that found nothing new) records only the *exchanges*, and
    keeps what it may still teach (reference, next action, next check).
    """
    out = service.store if writer is None else writer

    def attempt(current: Payment) -> Payment:
        planned = plan(current.status, target, cause=cause, provider_confirmed=provider_confirmed)
        if planned.verdict is Verdict.ILLEGAL and not provider_confirmed:
            raise IllegalTransitionError(
                f"payment {current.id} cannot go from {current.status.value} to "
                f"{target.value}", source=current.status.value, target=target.value,
                payment_id=current.id,
            )
        return _write(out, current, planned, cause, reason=reason, changes=changes,
                      exchanges=exchanges, delivery=delivery, event_id=event_id)

    return _retrying(out, payment, delivery, attempt)


def apply_report(
    service: Service,
    payment: Payment,
    reported: ProviderPayment,
    cause: Cause,
    *,
    exchanges: Sequence[Exchange] = (),
    delivery: Delivery | None = None,
    event_id: str | None = None,
    writer: PaymentWriter | None = None,
) -> Payment:
    """Apply what the provider reports of *payment* (as :func:`move`, provider
    confirmed): its status, and its reference, next action, expiry, network, charged
    amount and rate, and failure.

    A payment still open (pending, processing, unknown) is asked about again after
    the resolver's longest wait; a settled one is not asked about again.
    """
    changes: dict[str, Any] = {}
    if reported.reference and reported.reference != payment.provider_reference:
        changes["provider_reference"] = reported.reference
    if reported.next_action is not None:
        changes["next_action"] = reported.next_action
    if reported.expires_at is not None and reported.expires_at != payment.expires_at:
        changes["expires_at"] = reported.expires_at
    if reported.network is not None and reported.network != payment.network:
        changes["network"] = reported.network
    if reported.charged is not None and reported.charged != payment.charged:
        changes["charged"] = reported.charged
    if reported.fx_rate is not None and reported.fx_rate != payment.fx_rate:
        changes["fx_rate"] = reported.fx_rate
    if reported.failure_code or reported.failure_message:
        changes["error_code"] = reported.failure_code
        changes["error_message"] = reported.failure_message
    if reported.status in _OPEN:
        changes["next_check_at"] = service.clock() + RESOLVER.delay(len(RESOLVER.schedule))
    elif reported.status in _SETTLED:
        changes["next_check_at"] = None
    return move(service, payment, reported.status, cause, provider_confirmed=True,
                reason=reported.raw_status, changes=changes, exchanges=exchanges,
                delivery=delivery, event_id=event_id, writer=writer)


def settle_refund(
    service: Service,
    payment: Payment,
    refund: Refund,
    cause: Cause,
    *,
    exchanges: Sequence[Exchange] = (),
    delivery: Delivery | None = None,
    event_id: str | None = None,
    writer: PaymentWriter | None = None,
) -> Payment:
    """Apply *refund*, which the provider confirmed, to *payment*: its refunded
    amount grows and it moves to ``partially_refunded`` or ``refunded``, with the
    refund written in the same transaction.

    The move goes through the table like any other: a refund of a payment the
    table does not let refund (a failed one, one refunded in full already) is
    recorded as ignored and neither the refund nor the payment is written. A
    refund that would take more than was captured raises
    :class:`~pasarela.errors.RefundError` (``refund_exceeds_capture``).
    """
    out = service.store if writer is None else writer

    def attempt(current: Payment) -> Payment:
        refunded = current.refunded_amount.minor + refund.amount.minor
        target = (Status.REFUNDED if refunded >= current.amount.minor
                  else Status.PARTIALLY_REFUNDED)
        planned = plan(current.status, target, cause=cause, provider_confirmed=True)
        if planned.apply and refunded > current.amount.minor:
            raise RefundError("refunds would exceed the captured amount",
                              code=ErrorCode.REFUND_EXCEEDS_CAPTURE, payment_id=current.id)
        return _write(out, current, planned, cause, reason=f"refund {refund.id}",
                      changes={"refunded_minor": refunded}, exchanges=exchanges,
                      delivery=delivery, event_id=event_id, refund=refund)

    return _retrying(out, payment, delivery, attempt)


def _retrying(writer: PaymentWriter, payment: Payment, delivery: Delivery | None,
              attempt: Callable[[Payment], Payment]) -> Payment:
    """*attempt* on *payment*, reloaded and attempted again on a conflict."""
    for _ in range(_ATTEMPTS):
        try:
            return attempt(payment)
        except ConcurrencyConflictError:
            if delivery is not None and delivery.event_id and writer.seen_delivery(
                    delivery.provider, delivery.event_id, payment.id):
                return writer.get_payment(payment.id)  # a repeated delivery
            payment = writer.get_payment(payment.id)
    raise ConcurrencyConflictError(f"payment {payment.id} kept changing; try again",
                                   payment_id=payment.id)


def _write(
    writer: PaymentWriter,
    payment: Payment,
    planned: Plan,
    cause: Cause,
    *,
    reason: str,
    changes: Mapping[str, Any] | None,
    exchanges: Sequence[Exchange],
    delivery: Delivery | None,
    event_id: str | None,
    refund: Refund | None = None,
) -> Payment:
    """Write what *planned* says: the transition, or the ignored report."""
    if planned.apply:
        assert planned.event is not None
        moved = writer.transition(
            payment.id, expected_version=payment.version, target=planned.target, cause=cause,
            event_type=planned.event, reason=reason, event_id=event_id, changes=changes,
            exchanges=exchanges, delivery=delivery, refund=refund,
        )
        log.info("payment_transition", payment_id=payment.id, provider=payment.provider,
                 source=payment.status.value, target=planned.target.value, cause=cause.value)
        meters.transitioned(writer, moved, payment.status)
        return moved
    duplicate = planned.verdict is Verdict.DUPLICATE and refund is None
    if duplicate and delivery is None:
        # A poll that finds nothing new is evidence, not history.
        writer.record_exchanges(exchanges)
    else:
        writer.record_ignored(
            payment.id, source=payment.status, target=planned.target, cause=cause,
            reason=f"{planned.verdict.value}: {reason}".rstrip(": "), event_id=event_id,
            exchanges=exchanges, delivery=delivery,
        )
    extra = {k: v for k, v in (changes or {}).items() if k in _ON_DUPLICATE} if duplicate else {}
    if extra:
        return writer.update_payment(payment.id, expected_version=payment.version, **extra)
    return writer.get_payment(payment.id)
