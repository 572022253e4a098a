"""The payment operations, written once as generators of steps.

:func:`options`, :func:`pay`, :func:`confirm`, :func:`sync` and :func:`cancel`
work on the engine's context (:class:`~pasarela.engine.context.Service`). Each
operation that talks to a provider is a generator of
:mod:`~pasarela.engine.steps`, driven by the sync API with ``httpx.Client`` and by
the async API with ``httpx.AsyncClient``: one implementation, two drivers. Store
calls happen between steps, each its own short transaction; none is held across
network I/O. Every status change goes through :mod:`~pasarela.engine.transitions`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

import attrs
from ulid import ULID

from pasarela.engine import transitions
from pasarela.engine.calls import may_have_acted, run_flow
from pasarela.engine.context import Service
from pasarela.engine.steps import Steps
from pasarela.errors import (
    AuthenticationError,
    ConcurrencyConflictError,
    DeclinedError,
    ErrorCode,
    IllegalTransitionError,
    PaymentInProgressError,
    ProviderError,
    ProviderUnavailableError,
    UnknownOutcomeError,
    UnsupportedError,
    ValidationError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.logs import get_logger
from pasarela.model import Method, Order, Payment, as_method, check_storable_text
from pasarela.money import Money
from pasarela.provider import (
    CreateRequest,
    Flow,
    Operation,
    Provider,
    ProviderPayment,
    collected_by,
)
from pasarela.retry import RESOLVER
from pasarela.routing import Decision


__all__ = ["CREATE_GRACE", "Option", "cancel", "confirm", "extend", "options", "pay",
           "released_key", "sync"]

log = get_logger("pasarela")
_NETWORK_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")


@attrs.frozen(kw_only=True)
class Option:
    """One way to pay an order, as a checkout page would offer it."""

    method: Method
    available: bool
    provider: str | None = None
    display_name: str | None = None
    expires_at: datetime | None = None
    fee: Money | None = None
    reason: str = ""
    #: The network the chosen provider runs the method on (None for a card: its brand
    #: is known from the card), and the line that says so for people.
    network: str | None = None
    label: str = ""

    def label_in(self, language: str) -> str:
        """:attr:`label` in *language* (``es`` or ``en``)."""
        if not self.available or self.display_name is None:
            return ""
        return collected_by(self.method, self.network, self.display_name, language=language)


def options(service: Service, order: Order) -> list[Option]:
    """Which ways to pay *order*: provider, network, expiry, fee and why, per method."""
    if not isinstance(order, Order):
        raise ValidationError("must be an Order", field="order")
    now = service.clock()
    out: list[Option] = []
    for method in Method:
        decision = service.decide(order, method)
        if decision.provider is None:
            out.append(Option(method=method, available=False, reason=decision.reason))
            continue
        adapter = service.providers[decision.provider]
        expiry = adapter.expiry()
        network = adapter.default_network(method)
        out.append(Option(
            method=method, available=True, provider=decision.provider,
            display_name=adapter.display_name,
            expires_at=order.expires_at or (now + expiry if expiry else None),
            fee=decision.fee, reason=decision.reason, network=network,
            label=collected_by(method, network, adapter.display_name),
        ))
    return out


# --- pay ----------------------------------------------------------------------------


def _fingerprint(order: Order, method: Method, provider: str | None,
                 network: str | None = None) -> str:
    order_data = order.to_dict()
    if order_data.get("expires_at") is None:
        order_data.pop("expires_at")
    data = {"order": order_data, "method": method.value, "provider": provider}
    if network is not None:
        data["network"] = network
    raw = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


def pay(
    service: Service,
    order: Order,
    *,
    method: Method | str,
    provider: str | None = None,
    idempotency_key: str,
    params: Mapping[str, Any] | None = None,
    network: str | None = None,
) -> Steps[Payment]:
    """Start a payment; returns it pending (with its next action), or settled.

    The idempotency key is stored before any I/O: the same key returns the same
    payment. A candidate provider that refuses the order's fields, or provably
    created nothing, gives way to the next one (the same payment, attempt counted).
    *network* asks for a network (``yape``): only providers that take the method on
    it are candidates, and ``network`` routing conditions match it. The payment
    records its network: *network*, else what its provider declares for the method,
    else what the provider's answer says (a card's brand).
    """
    if not isinstance(order, Order):
        raise ValidationError("must be an Order", field="order")
    if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
        raise ValidationError("must be 1 to 255 characters", field="idempotency_key")
    check_storable_text(idempotency_key, "idempotency_key")
    how = as_method(method)
    if network is not None and (not isinstance(network, str)
                                or not _NETWORK_RE.match(network)):
        raise ValidationError("must be a network name: 1 to 32 of a-z, 0-9 and _",
                              field="network")
    fingerprint = _fingerprint(order, how, provider, network)
    decision = service.decide(order, how, provider, network=network)
    if decision.provider is None:
        replayed = _replay(service, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed
        raise UnsupportedError(f"no provider can take {how.value} for this order: "
                               f"{decision.reason}",
                               code=_unsupported_code(service, decision, order, how),
                               provider=provider)
    candidates = list(decision.candidates)
    now = service.clock()
    payment_id = str(ULID())
    params = dict(params or {})

    def attempt(name: str) -> tuple[Provider, CreateRequest]:
        adapter = service.providers[name]
        expiry = adapter.expiry()
        return adapter, CreateRequest(
            payment_id=payment_id, idempotency_key=idempotency_key, order=order,
            method=how, amount=order.amount,
            expires_at=order.expires_at or (now + expiry if expiry else None),
            params=params, network=network or adapter.default_network(how),
        )

    # Bad input: a typed error naming the field, and nothing written. A provider
    # whose field rules refuse the order is skipped (nothing was sent to it).
    refusals: list[ProviderError] = []
    while True:
        adapter, request = attempt(candidates[0])
        try:
            adapter.check_request(request)
            break
        except ProviderError as exc:
            refusals.append(exc)
            if len(candidates) == 1:
                replayed = _replay(service, idempotency_key, fingerprint)
                if replayed is not None:
                    return replayed
                raise refusals[0] from None
            candidates.pop(0)
    base = decision.to_dict()
    routing = _attempt_routing(base, decision, candidates[0], 1, refusals)
    draft = Payment(
        id=payment_id, order_reference=order.reference, idempotency_key=idempotency_key,
        provider=adapter.account, method=how, amount=order.amount, status=Status.CREATED,
        version=1, created_at=now, updated_at=now, expires_at=request.expires_at,
        routing=routing, order=order, network=network or adapter.default_network(how),
        # Were this call to die mid-create, the resolver finds the payment then.
        next_check_at=now + CREATE_GRACE,
    )
    # The key is stored before any I/O; the same key returns the same payment.
    for _ in range(5):
        payment, inserted = service.store.create_payment(draft, fingerprint=fingerprint,
                                                         decision=routing)
        if inserted:
            break
        existing = _existing(service, payment.id, idempotency_key)
        if existing is not None:
            return existing
        # That payment's create was refused and released the key meanwhile: take it.
    else:
        raise ConcurrencyConflictError(
            f"idempotency_key: {idempotency_key!r} kept changing hands; try again")
    if service.on_decision is not None:
        service.on_decision(routing)
    log.info("payment_created", payment_id=payment.id, provider=adapter.account,
             method=how.value)
    number = 1
    while True:
        can_fail_over = len(candidates) > 1
        try:
            result = yield from _call(service, adapter, Operation.CREATE, payment,
                                      partial(adapter.create, request),
                                      can_fail_over=can_fail_over)
        except ProviderError as exc:
            # The breaker counts faults of the provider, not refusals of our data.
            fault = isinstance(exc, ProviderUnavailableError | AuthenticationError)
            service.router.record_outcome(adapter.account, how, ok=not fault)
            if not (exc.created_nothing and can_fail_over):
                raise
            # Provably nothing at this provider: the next candidate, same payment.
            log.warning("payment_failover", payment_id=payment.id, provider=adapter.account,
                        code=str(exc.code))
            refusals.append(exc)
            candidates.pop(0)
            number += 1
            adapter, request = attempt(candidates[0])
            routing = _attempt_routing(base, decision, adapter.account, number, refusals)
            payment = service.store.update_payment(
                payment.id, expected_version=payment.version, provider=adapter.account,
                routing=routing, expires_at=request.expires_at,
                network=network or adapter.default_network(how))
            service.store.record_decision(order_reference=order.reference,
                                          payment_id=payment.id, decision=routing)
            continue
        service.router.record_outcome(adapter.account, how,
                                      ok=result.status is not Status.UNKNOWN)
        return result


def _unsupported_code(service: Service, decision: Decision, order: Order,
                      method: Method) -> ErrorCode:
    """The code of the first skipped candidate's reason (a method by default)."""
    for name in decision.skipped:
        adapter = service.providers.get(name)
        unfit = None if adapter is None else adapter.ineligibility(order, method)
        if unfit is not None:
            return unfit.code
    return ErrorCode.UNSUPPORTED_METHOD


def _replay(service: Service, idempotency_key: str, fingerprint: str) -> Payment | None:
    """The payment an earlier call with this key made, if any (checked for the
    same parameters), so a replay never fails where the first call succeeded."""
    existing = service.store.replay(idempotency_key, fingerprint,  # raises on a mismatch
                                    merchant=service.merchant)
    return None if existing is None else _existing(service, existing.id, idempotency_key)


def _existing(service: Service, payment_id: str, idempotency_key: str) -> Payment | None:
    """The payment an earlier call with the same key made; while that call is still
    creating it (status ``created``), a :class:`PaymentInProgressError` instead of a
    payment with nothing to show the customer; None when that create was refused and
    released the key since (the caller may take it)."""
    payment = service.get(payment_id)
    if payment.idempotency_key != idempotency_key:
        return None
    if payment.status is Status.CREATED:
        raise PaymentInProgressError(
            f"payment {payment_id} for this idempotency key is being created; ask again "
            "in a moment", payment_id=payment_id)
    return payment


#: How long a create may be in flight before the resolver asks the provider about it:
#: past every provider's timeout and retries, so only an interrupted create is left.
CREATE_GRACE: Final = timedelta(minutes=2)


def released_key(payment_id: str) -> str:
    """What a payment's idempotency key becomes when its create was refused before the
    provider executed it (authentication, field validation, connection refused): the key
    is free again, so the same key starts a new payment, as Stripe does. The failed
    payment keeps its history; its transition's reason names the key it released."""
    return f"released:{payment_id}"


def _attempt_routing(base: Mapping[str, Any], decision: Decision, provider: str,
                     number: int, refusals: list[ProviderError]) -> dict[str, Any]:
    fee = decision.fees.get(provider)
    return {
        **base,
        "attempt": number,
        "provider": provider,
        "expected_fee": {"minor": fee.minor, "currency": fee.currency} if fee else None,
        "failed_attempts": [{"provider": e.provider, "code": str(e.code),
                             "message": e.message} for e in refusals],
    }


# --- confirm, sync, cancel ------------------------------------------------------------


def confirm(service: Service, payment_id: str, params: Mapping[str, Any]) -> Steps[Payment]:
    """Complete a pending payment with what the customer gave (a wallet code...)."""
    payment = service.own(payment_id)
    if payment.status not in (Status.PENDING, Status.CREATED):
        raise IllegalTransitionError(
            f"cannot confirm payment {payment_id} in state {payment.status.value}",
            source=payment.status.value, target="confirm", payment_id=payment_id,
        )
    adapter = service.provider_of(payment)
    return (yield from _call(service, adapter, Operation.CONFIRM, payment,
                             lambda: adapter.confirm(payment, dict(params))))


def _call(
    service: Service,
    adapter: Provider,
    operation: Operation,
    payment: Payment,
    make_flow: Callable[[], Flow[ProviderPayment]],
    *,
    can_fail_over: bool = False,
) -> Steps[Payment]:
    """A create or a confirm, and what its outcome makes of the payment: the
    provider's report applied, ``unknown`` when its answer was lost, ``failed`` on
    a decline (a mistyped approval code may be tried again)."""
    exchanges: list[Exchange] = []
    try:
        try:
            reported = yield from run_flow(
                adapter, operation, make_flow, payment_id=payment.id,
                record=exchanges.append, sleep_scale=service.sleep_scale,
            )
        except ProviderError as exc:
            if may_have_acted(exc):
                raise UnknownOutcomeError(
                    f"{exc.message} (the provider may have acted on it)", code=exc.code,
                    provider=exc.provider, provider_code=exc.provider_code) from exc
            raise
    except UnknownOutcomeError as exc:
        log.warning("outcome_unknown", payment_id=payment.id, provider=adapter.account,
                    operation=operation.value)
        return transitions.move(
            service, payment, Status.UNKNOWN, Cause.API, provider_confirmed=False,
            reason=str(exc), exchanges=exchanges, changes={
                "error_code": str(exc.code), "error_message": exc.message,
                "next_check_at": service.clock() + RESOLVER.delay(1),
            })
    except DeclinedError as exc:
        if operation is Operation.CONFIRM and exc.code is ErrorCode.INVALID_CODE:
            # A mistyped or expired approval code: the customer may try again.
            service.store.record_exchanges(exchanges)
            exc.payment_id = payment.id
            raise
        changes: dict[str, Any] = {"error_code": str(exc.code), "error_message": exc.message}
        if exc.provider_reference and not payment.provider_reference:
            changes["provider_reference"] = exc.provider_reference
        return transitions.move(service, payment, Status.FAILED, Cause.API,
                                provider_confirmed=True, reason=exc.message,
                                exchanges=exchanges, changes=changes)
    except ProviderError as exc:
        if operation is Operation.CREATE and exc.created_nothing and can_fail_over:
            service.store.record_exchanges(exchanges)  # the caller tries the next provider
        elif operation is Operation.CREATE:
            changes = {"error_code": str(exc.code), "error_message": exc.message}
            reason = str(exc)
            if exc.created_nothing:  # refused before executing: the key is free again
                changes["idempotency_key"] = released_key(payment.id)
                reason = f"{reason}; idempotency key {payment.idempotency_key!r} released"
            transitions.move(service, payment, Status.FAILED, Cause.API,
                             provider_confirmed=True, reason=reason, exchanges=exchanges,
                             changes=changes)
        else:
            service.store.record_exchanges(exchanges)
        exc.payment_id = payment.id
        raise
    return transitions.apply_report(service, payment, reported, Cause.API, exchanges=exchanges)


def sync(service: Service, payment_id: str, *, cause: Cause = Cause.API) -> Steps[Payment]:
    """Ask the provider for the payment's status and apply it."""
    payment = service.own(payment_id)
    adapter = service.provider_of(payment)
    if not adapter.supports(Operation.GET):
        raise _unsupported(adapter, Operation.GET, payment)
    exchanges: list[Exchange] = []
    try:
        reported = yield from run_flow(adapter, Operation.GET, lambda: adapter.get(payment),
                                       payment_id=payment.id, record=exchanges.append,
                                       sleep_scale=service.sleep_scale)
    except ProviderError:
        service.store.record_exchanges(exchanges)
        raise
    return transitions.apply_report(service, payment, reported, cause, exchanges=exchanges)


def cancel(service: Service, payment_id: str) -> Steps[Payment]:
    """Cancel a pending payment at its provider; returns it as the provider left it."""
    payment = service.own(payment_id)
    if payment.status not in (Status.PENDING, Status.CREATED):
        raise IllegalTransitionError(
            f"payment {payment_id} is {payment.status.value}; only pending payments can "
            "be canceled", source=payment.status.value, target="canceled",
            payment_id=payment_id,
        )
    adapter = service.provider_of(payment)
    if not adapter.supports(Operation.CANCEL):
        raise _unsupported(adapter, Operation.CANCEL, payment)
    exchanges: list[Exchange] = []
    try:
        reported = yield from run_flow(adapter, Operation.CANCEL,
                                       lambda: adapter.cancel(payment),
                                       payment_id=payment.id, record=exchanges.append,
                                       sleep_scale=service.sleep_scale)
    except ProviderError:
        service.store.record_exchanges(exchanges)
        raise
    return transitions.apply_report(service, payment, reported, Cause.API, exchanges=exchanges)


def extend(service: Service, payment_id: str, until: datetime) -> Steps[Payment]:
    """Make a pending (or expired) payment payable until *until* at its provider
    (``Operation.EXTEND``: a CIP's new expiry); returns it as the provider reports it
    afterwards: the new ``expires_at``, and ``pending`` again when the provider
    revived an expired one (the lifecycle's expired → pending, on its word only)."""
    payment = service.own(payment_id)
    if payment.status not in (Status.PENDING, Status.EXPIRED):
        raise IllegalTransitionError(
            f"payment {payment_id} is {payment.status.value}; only a pending or expired "
            "payment's expiry can be moved", source=payment.status.value, target="extend",
            payment_id=payment_id,
        )
    if not isinstance(until, datetime) or until.tzinfo is None:
        raise ValidationError("must be a timezone-aware datetime", field="until")
    if until <= service.clock():
        raise ValidationError("must be in the future", field="until")
    adapter = service.provider_of(payment)
    if not adapter.supports(Operation.EXTEND):
        raise _unsupported(adapter, Operation.EXTEND, payment)
    exchanges: list[Exchange] = []
    try:
        reported = yield from run_flow(adapter, Operation.EXTEND,
                                       lambda: adapter.extend(payment, until),
                                       payment_id=payment.id, record=exchanges.append,
                                       sleep_scale=service.sleep_scale)
    except ProviderError:
        service.store.record_exchanges(exchanges)
        raise
    return transitions.apply_report(service, payment, reported, Cause.API, exchanges=exchanges)


def _unsupported(adapter: Provider, operation: Operation, payment: Payment) -> UnsupportedError:
    exc = adapter.unsupported(operation)
    exc.payment_id = payment.id
    return exc
