"""Refunds: all or part of a succeeded payment, never more than was captured.

:func:`refund` is a generator of steps like the payment operations
(:mod:`~pasarela.engine.payments`). The amount is reserved before any I/O, a
pending refund and a version bump in one transaction, so a concurrent refund of
the same payment conflicts instead of refunding twice; the provider's
confirmation then moves the payment through
:func:`pasarela.engine.transitions.settle_refund`.

A refund whose outcome is unknown (its create's answer was lost) or that the
provider left pending stays ``pending`` and gets a next check on the resolver's
schedule (:data:`pasarela.retry.RESOLVER`): :func:`pasarela.engine.jobs.resolve_due`
asks the provider (:func:`check_refund`, ``Operation.GET_REFUND``). Every answer of a
provider about a refund, the create's and the check's, is written by
:func:`apply_refund`: the refund becomes ``succeeded`` or ``failed`` only when the
provider says so.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import attrs
from ulid import ULID

from pasarela.engine import transitions
from pasarela.engine.calls import may_have_acted, run_flow
from pasarela.engine.context import Service
from pasarela.engine.steps import Steps
from pasarela.errors import (
    ErrorCode,
    ProviderError,
    RefundError,
    UnknownOutcomeError,
    ValidationError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import Operation, Provider, ProviderRefund
from pasarela.retry import RESOLVER


__all__ = ["apply_refund", "check_refund", "refund", "takes_refund_params"]


def takes_refund_params(adapter: Provider) -> bool:
    """Whether *adapter*'s ``refund`` takes ``params=`` (or any keyword)."""
    kind = type(adapter)
    known = _TAKES_PARAMS.get(kind)
    if known is None:
        try:
            found = list(inspect.signature(kind.refund).parameters.values())
        except (TypeError, ValueError):
            found = []
        known = _TAKES_PARAMS[kind] = any(
            p.name == "params" or p.kind is inspect.Parameter.VAR_KEYWORD for p in found)
    return known


_TAKES_PARAMS: dict[type[Provider], bool] = {}


def refund(service: Service, payment_id: str, amount: Money | None, *,
           reason: str = "", params: Mapping[str, Any] | None = None) -> Steps[Refund]:
    """Refund *amount* of a succeeded payment (``None``: all that is left).

    *params* go to the provider's ``refund(..., params=)`` (dLocal: ``bank``, where a
    cash refund is paid), only when there are any; a provider whose ``refund`` takes
    no ``params`` refuses them with a ``ValidationError`` before anything is written.

    Returns the refund as the provider left it: ``succeeded`` (the payment is then
    ``partially_refunded`` or ``refunded``), or ``pending``. A refund the provider
    refused is kept as ``failed``; one whose outcome is unknown stays ``pending``.
    """
    payment = service.own(payment_id)
    if payment.status not in (Status.SUCCEEDED, Status.PARTIALLY_REFUNDED):
        raise RefundError(
            f"payment {payment_id} is {payment.status.value}; only succeeded payments "
            "can be refunded", code=ErrorCode.REFUND_NOT_ALLOWED, payment_id=payment_id,
        )
    adapter = service.provider_of(payment)
    if not adapter.supports(Operation.REFUND):
        unsupported = adapter.unsupported(Operation.REFUND)
        unsupported.payment_id = payment_id
        raise unsupported
    extra: dict[str, Any] = {}
    if params:
        if not takes_refund_params(adapter):
            raise ValidationError(f"{adapter.account} takes no refund parameters "
                                  f"({', '.join(sorted(params))})", field="params",
                                  payment_id=payment_id)
        extra["params"] = dict(params)
    currency = payment.amount.currency
    pending = sum(r.amount.minor for r in service.store.refunds_for(payment_id)
                  if r.status is RefundStatus.PENDING)
    want = amount if amount is not None else payment.refundable - Money(pending, currency)
    if not isinstance(want, Money):
        raise ValidationError("must be Money", field="amount", payment_id=payment_id)
    if want.currency != currency:
        raise ValidationError(f"must be in {currency}", field="amount", payment_id=payment_id)
    if want.minor <= 0:
        raise ValidationError("must be greater than zero", field="amount",
                              payment_id=payment_id)
    if want.minor + pending > payment.refundable.minor:
        raise RefundError(
            f"refund of {want} exceeds what can still be refunded "
            f"({Money(payment.refundable.minor - pending, want.currency)})",
            code=ErrorCode.REFUND_EXCEEDS_CAPTURE, payment_id=payment_id,
        )
    pending_refund = Refund(id=str(ULID()), payment_id=payment_id, amount=want,
                            status=RefundStatus.PENDING, created_at=service.clock(),
                            reason=reason)
    # Reserve before any I/O, atomically: the pending refund and a version bump in
    # one transaction, so a concurrent refund conflicts instead of double refunding.
    payment = service.store.update_payment(payment_id, expected_version=payment.version,
                                           refund=pending_refund)
    exchanges: list[Exchange] = []
    try:
        result = yield from run_flow(
            adapter, Operation.REFUND,
            lambda: adapter.refund(payment, want, refund_id=pending_refund.id, reason=reason,
                                   **extra),
            payment_id=payment_id, record=exchanges.append, sleep_scale=service.sleep_scale,
        )
    except ProviderError as exc:
        service.store.record_exchanges(exchanges)
        if isinstance(exc, UnknownOutcomeError) or may_have_acted(exc):
            # An unknown refund (its answer lost, or a server fault that says nothing of
            # what was done) stays pending; the resolver asks the provider about it.
            _schedule_first_check(service, pending_refund)
        else:
            service.store.save_refund(attrs.evolve(pending_refund, status=RefundStatus.FAILED))
        raise
    done = apply_refund(service, payment, pending_refund, result, Cause.API,
                        exchanges=exchanges)
    if done.status is RefundStatus.PENDING:
        _schedule_first_check(service, done)
    return done


def check_refund(service: Service, payment: Payment, pending: Refund) -> Steps[Refund]:
    """Ask the provider about a *pending* refund of *payment* (``GET_REFUND``) and apply
    its answer (:func:`apply_refund`); the refund as it now is. A provider that cannot
    be asked raises :class:`~pasarela.errors.UnsupportedError`; a failed call raises
    its :class:`~pasarela.errors.ProviderError` and writes only the exchanges."""
    adapter = service.provider_of(payment)
    if not adapter.supports(Operation.GET_REFUND):
        unsupported = adapter.unsupported(Operation.GET_REFUND)
        unsupported.payment_id = payment.id
        raise unsupported
    exchanges: list[Exchange] = []
    try:
        reported = yield from run_flow(
            adapter, Operation.GET_REFUND, lambda: adapter.get_refund(payment, pending),
            payment_id=payment.id, record=exchanges.append, sleep_scale=service.sleep_scale,
        )
    except ProviderError:
        service.store.record_exchanges(exchanges)
        raise
    return apply_refund(service, payment, pending, reported, Cause.JOB, exchanges=exchanges)


def apply_refund(service: Service, payment: Payment, pending: Refund,
                 reported: ProviderRefund, cause: Cause, *,
                 exchanges: list[Exchange]) -> Refund:
    """Write what the provider says of *pending*, a refund of *payment*: ``succeeded``
    moves the payment (refunded or partially refunded) through
    :func:`pasarela.engine.transitions.settle_refund`, with the refund and the
    *exchanges* in one transaction; ``failed`` (which frees the amount it held) and
    ``pending`` save the refund and the reference the provider gave. The refund as
    the provider left it."""
    done = attrs.evolve(pending, status=reported.status,
                        provider_reference=reported.reference or pending.provider_reference)
    if done.status is RefundStatus.SUCCEEDED:
        transitions.settle_refund(service, payment, done, cause, exchanges=exchanges)
    elif done != pending:
        service.store.save_refund(done)
        service.store.record_exchanges(exchanges)
    else:
        service.store.record_exchanges(exchanges)
    return done


def _schedule_first_check(service: Service, pending: Refund) -> None:
    service.store.schedule_refund_check(
        pending.id, next_check_at=service.clock() + RESOLVER.delay(1), check_attempts=0)
