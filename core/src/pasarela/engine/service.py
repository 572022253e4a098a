"""The payment operations, written once as generators of steps.

:class:`Service` holds the logic of ``pay``, ``confirm``, ``sync``, ``cancel``,
``refund`` and the application of a provider's report. Each operation that talks
to a provider is a generator of :mod:`pasarela.engine.flows` steps, driven by the sync
API with ``httpx.Client`` and by the async API with ``httpx.AsyncClient``: one
implementation, two drivers. Store calls happen between steps, each its own short
transaction; none is held across network I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import attrs
from ulid import ULID

from pasarela.engine.flows import Steps, run_flow
from pasarela.errors import (
    AuthenticationError,
    ConcurrencyConflictError,
    DeclinedError,
    ErrorCode,
    IllegalTransitionError,
    ProviderError,
    ProviderNotFoundError,
    ProviderUnavailableError,
    RefundError,
    UnknownOutcomeError,
    UnsupportedError,
    ValidationError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status, plan
from pasarela.logs import get_logger
from pasarela.model import Method, Order, Payment, Refund, RefundStatus, as_method
from pasarela.money import Money
from pasarela.provider import CreateRequest, Flow, Operation, Provider, ProviderPayment
from pasarela.retry import RESOLVER
from pasarela.routing import Decision, Router
from pasarela.store import Delivery, Store
from pasarela.store.batch import WriteBatch


__all__ = ["Option", "Service"]

log = get_logger("pasarela")

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


def _fingerprint(order: Order, method: Method, provider: str | None) -> str:
    order_data = order.to_dict()
    if order_data.get("expires_at") is None:
        order_data.pop("expires_at")
    data = {"order": order_data, "method": method.value, "provider": provider}
    raw = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(raw).hexdigest()


class Service:
    """The logic behind :class:`pasarela.Pasarela` and :class:`pasarela.AsyncPasarela`."""

    def __init__(
        self,
        *,
        store: Store,
        providers: Mapping[str, Provider],
        preference: tuple[str, ...] = (),
        router: Router | None = None,
        select_provider: Callable[[Order, Method, list[str]], str | None] | None = None,
        on_decision: Callable[[Mapping[str, Any]], object] | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep_scale: float = 1.0,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.router = router or Router.from_config(
            (), self.providers, clock=self.clock,
            preference=tuple(preference) + tuple(sorted(set(self.providers) - set(preference))),
        )
        self.select_provider = select_provider
        self.on_decision = on_decision
        self.sleep_scale = sleep_scale

    # --- lookups ------------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            installed = ", ".join(sorted(self.providers)) or "none"
            raise ProviderNotFoundError(
                f"no provider {name!r} is configured (configured: {installed})", path="provider"
            ) from None

    def get(self, payment_id: str) -> Payment:
        return self.store.get_payment(payment_id, history=True)

    # --- choosing -------------------------------------------------------------------

    def decide(self, order: Order, method: Method, provider: str | None = None) -> Decision:
        """The routing decision for *order* by *method*, with the plugin override."""
        if provider is not None:
            self.provider(provider)  # ProviderNotFoundError names what is configured
        decision = self.router.decide(order, method, requested_provider=provider)
        if provider is None and decision.provider is not None and self.select_provider:
            chosen = self.select_provider(order, method, list(decision.candidates))
            if chosen is not None and chosen != decision.provider:
                decision = decision.overridden(chosen, by="pasarela_select_provider")
        return decision

    def options(self, order: Order) -> list[Option]:
        """Which ways to pay *order*: provider, expiry, fee and why, per method."""
        if not isinstance(order, Order):
            raise ValidationError("must be an Order", field="order")
        now = self.clock()
        out: list[Option] = []
        for method in Method:
            decision = self.decide(order, method)
            if decision.provider is None:
                out.append(Option(method=method, available=False, reason=decision.reason))
                continue
            adapter = self.providers[decision.provider]
            expiry = adapter.expiry()
            out.append(Option(
                method=method, available=True, provider=decision.provider,
                display_name=adapter.display_name,
                expires_at=order.expires_at or (now + expiry if expiry else None),
                fee=decision.fee, reason=decision.reason,
            ))
        return out

    # --- pay ------------------------------------------------------------------------

    def pay(
        self,
        order: Order,
        *,
        method: Method | str,
        provider: str | None = None,
        idempotency_key: str,
        params: Mapping[str, Any] | None = None,
    ) -> Steps[Payment]:
        """Start a payment; returns it pending (with its next action), or settled."""
        if not isinstance(order, Order):
            raise ValidationError("must be an Order", field="order")
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255:
            raise ValidationError("must be 1 to 255 characters", field="idempotency_key")
        how = as_method(method)
        fingerprint = _fingerprint(order, how, provider)
        decision = self.decide(order, how, provider)
        if decision.provider is None:
            replayed = self._replay(idempotency_key, fingerprint)
            if replayed is not None:
                return replayed
            raise UnsupportedError(f"no provider can take {how.value} for this order: "
                                   f"{decision.reason}",
                                   code=self._unsupported_code(decision, order, how),
                                   provider=provider)
        candidates = list(decision.candidates)
        now = self.clock()
        payment_id = str(ULID())
        params = dict(params or {})

        def attempt(name: str) -> tuple[Provider, CreateRequest]:
            adapter = self.providers[name]
            expiry = adapter.expiry()
            return adapter, CreateRequest(
                payment_id=payment_id, idempotency_key=idempotency_key, order=order,
                method=how, amount=order.amount,
                expires_at=order.expires_at or (now + expiry if expiry else None),
                params=params,
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
                    replayed = self._replay(idempotency_key, fingerprint)
                    if replayed is not None:
                        return replayed
                    raise refusals[0] from None
                candidates.pop(0)
        base = decision.to_dict()
        routing = self._attempt_routing(base, decision, candidates[0], 1, refusals)
        draft = Payment(
            id=payment_id, order_reference=order.reference, idempotency_key=idempotency_key,
            provider=adapter.name, method=how, amount=order.amount, status=Status.CREATED,
            version=1, created_at=now, updated_at=now, expires_at=request.expires_at,
            routing=routing, order=order,
        )
        # The key is stored before any I/O; the same key returns the same payment.
        payment, inserted = self.store.create_payment(draft, fingerprint=fingerprint,
                                                      decision=routing)
        if not inserted:
            return self.get(payment.id)
        if self.on_decision is not None:
            self.on_decision(routing)
        log.info("payment_created", payment_id=payment.id, provider=adapter.name,
                 method=how.value)
        number = 1
        while True:
            can_fail_over = len(candidates) > 1
            try:
                result = yield from self._call(adapter, Operation.CREATE, payment,
                                               partial(adapter.create, request),
                                               can_fail_over=can_fail_over)
            except ProviderError as exc:
                # The breaker counts faults of the provider, not refusals of our data.
                fault = isinstance(exc, ProviderUnavailableError | AuthenticationError)
                self.router.record_outcome(adapter.name, how, ok=not fault)
                if not (exc.created_nothing and can_fail_over):
                    raise
                # Provably nothing at this provider: the next candidate, same payment.
                log.warning("payment_failover", payment_id=payment.id, provider=adapter.name,
                            code=str(exc.code))
                refusals.append(exc)
                candidates.pop(0)
                number += 1
                adapter, request = attempt(candidates[0])
                routing = self._attempt_routing(base, decision, adapter.name, number, refusals)
                payment = self.store.update_payment(
                    payment.id, expected_version=payment.version, provider=adapter.name,
                    routing=routing, expires_at=request.expires_at)
                self.store.record_decision(order_reference=order.reference,
                                           payment_id=payment.id, decision=routing)
                continue
            self.router.record_outcome(adapter.name, how,
                                       ok=result.status is not Status.UNKNOWN)
            return result

    def _unsupported_code(self, decision: Decision, order: Order, method: Method) -> ErrorCode:
        """The code of the first skipped candidate's reason (a method by default)."""
        for name in decision.skipped:
            adapter = self.providers.get(name)
            unfit = None if adapter is None else adapter.ineligibility(order, method)
            if unfit is not None:
                return unfit.code
        return ErrorCode.UNSUPPORTED_METHOD

    def _replay(self, idempotency_key: str, fingerprint: str) -> Payment | None:
        """The payment an earlier call with this key made, if any (checked for the
        same parameters), so a replay never fails where the first call succeeded."""
        existing = self.store.find_payment(idempotency_key=idempotency_key)
        if existing is None:
            return None
        self.store.create_payment(existing, fingerprint=fingerprint)  # raises on a mismatch
        return self.get(existing.id)

    @staticmethod
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

    def confirm(self, payment_id: str, params: Mapping[str, Any]) -> Steps[Payment]:
        """Complete a pending payment with what the customer gave (a wallet code...)."""
        payment = self.store.get_payment(payment_id)
        if payment.status not in (Status.PENDING, Status.CREATED):
            raise IllegalTransitionError(
                f"cannot confirm payment {payment_id} in state {payment.status.value}",
                source=payment.status.value, target="confirm", payment_id=payment_id,
            )
        adapter = self.provider(payment.provider)
        return (yield from self._call(adapter, Operation.CONFIRM, payment,
                                      lambda: adapter.confirm(payment, dict(params))))

    def _call(
        self,
        adapter: Provider,
        operation: Operation,
        payment: Payment,
        make_flow: Callable[[], Flow[ProviderPayment]],
        *,
        can_fail_over: bool = False,
    ) -> Steps[Payment]:
        exchanges: list[Exchange] = []
        try:
            reported = yield from run_flow(
                adapter, operation, make_flow, payment_id=payment.id,
                record=exchanges.append, sleep_scale=self.sleep_scale,
            )
        except UnknownOutcomeError as exc:
            log.warning("outcome_unknown", payment_id=payment.id, provider=adapter.name,
                        operation=operation.value)
            return self._move(payment, Status.UNKNOWN, Cause.API, reason=str(exc),
                              exchanges=exchanges, provider_confirmed=False, changes={
                                  "error_code": str(exc.code), "error_message": exc.message,
                                  "next_check_at": self.clock() + RESOLVER.delay(1),
                              })
        except DeclinedError as exc:
            if operation is Operation.CONFIRM and exc.code is ErrorCode.INVALID_CODE:
                # A mistyped or expired approval code: the customer may try again.
                self.store.record_exchanges(exchanges)
                exc.payment_id = payment.id
                raise
            changes: dict[str, Any] = {"error_code": str(exc.code), "error_message": exc.message}
            if exc.provider_reference and not payment.provider_reference:
                changes["provider_reference"] = exc.provider_reference
            return self._move(payment, Status.FAILED, Cause.API, reason=exc.message,
                              exchanges=exchanges, provider_confirmed=True, changes=changes)
        except ProviderError as exc:
            if operation is Operation.CREATE and exc.created_nothing and can_fail_over:
                self.store.record_exchanges(exchanges)  # the caller tries the next provider
            elif operation is Operation.CREATE:
                self._move(payment, Status.FAILED, Cause.API, reason=str(exc),
                           exchanges=exchanges, provider_confirmed=True, changes={
                               "error_code": str(exc.code), "error_message": exc.message,
                           })
            else:
                self.store.record_exchanges(exchanges)
            exc.payment_id = payment.id
            raise
        return self._apply_report(payment, reported, Cause.API, exchanges=exchanges)

    # --- applying what providers say --------------------------------------------

    def _apply_report(
        self,
        payment: Payment,
        reported: ProviderPayment,
        cause: Cause,
        *,
        exchanges: list[Exchange] | tuple[Exchange, ...] = (),
        delivery: Delivery | None = None,
        event_id: str | None = None,
        store: Store | WriteBatch | None = None,
    ) -> Payment:
        changes: dict[str, Any] = {}
        if reported.reference and reported.reference != payment.provider_reference:
            changes["provider_reference"] = reported.reference
        if reported.next_action is not None:
            changes["next_action"] = reported.next_action
        if reported.expires_at is not None and reported.expires_at != payment.expires_at:
            changes["expires_at"] = reported.expires_at
        if reported.failure_code or reported.failure_message:
            changes["error_code"] = reported.failure_code
            changes["error_message"] = reported.failure_message
        if reported.status in (Status.PENDING, Status.PROCESSING, Status.UNKNOWN):
            changes["next_check_at"] = self.clock() + RESOLVER.delay(len(RESOLVER.schedule))
        elif reported.status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELED,
                                 Status.EXPIRED):
            changes["next_check_at"] = None
        return self._move(payment, reported.status, cause, reason=reported.raw_status,
                          exchanges=exchanges, delivery=delivery, event_id=event_id,
                          provider_confirmed=True, changes=changes, store=store)

    def _move(
        self,
        payment: Payment,
        target: Status,
        cause: Cause,
        *,
        reason: str = "",
        exchanges: list[Exchange] | tuple[Exchange, ...] = (),
        delivery: Delivery | None = None,
        event_id: str | None = None,
        provider_confirmed: bool,
        changes: Mapping[str, Any] | None = None,
        refund: Refund | None = None,
        store: Store | WriteBatch | None = None,
    ) -> Payment:
        """The one path to a status change: plan with the table, then write once
        (through *store*: the service's store, or a write batch that commits many).

        On a concurrency conflict the payment is reloaded and the plan made again,
        so a retry applies cleanly and a report that has become stale is ignored.
        """
        writer = self.store if store is None else store
        for _ in range(5):
            decision = plan(payment.status, target, cause=cause,
                            provider_confirmed=provider_confirmed)
            if not decision.apply and decision.reason == "illegal" and not provider_confirmed:
                raise IllegalTransitionError(
                    f"payment {payment.id} cannot go from {payment.status.value} to "
                    f"{target.value}", source=payment.status.value, target=target.value,
                    payment_id=payment.id,
                )
            try:
                if not decision.apply:
                    extra = {k: v for k, v in (changes or {}).items()
                             if k in ("provider_reference", "next_action", "next_check_at")
                             and decision.reason == "duplicate"}
                    if decision.reason == "duplicate" and delivery is None:
                        # A poll that finds nothing new is evidence, not history.
                        writer.record_exchanges(exchanges)
                    else:
                        writer.record_ignored(
                            payment.id, source=payment.status, target=target, cause=cause,
                            reason=f"{decision.reason}: {reason}".rstrip(": "),
                            event_id=event_id, exchanges=exchanges, delivery=delivery,
                        )
                    if extra:
                        return writer.update_payment(payment.id,
                                                     expected_version=payment.version, **extra)
                    return writer.get_payment(payment.id)
                assert decision.event is not None
                moved = writer.transition(
                    payment.id, expected_version=payment.version, target=target, cause=cause,
                    event_type=decision.event, reason=reason, event_id=event_id,
                    changes=changes, exchanges=exchanges, delivery=delivery, refund=refund,
                )
                log.info("payment_transition", payment_id=payment.id, provider=payment.provider,
                         source=payment.status.value, target=target.value, cause=cause.value)
                return moved
            except ConcurrencyConflictError:
                if delivery is not None and delivery.event_id and writer.seen_delivery(
                        delivery.provider, delivery.event_id):
                    return writer.get_payment(payment.id)
                payment = writer.get_payment(payment.id)
        raise ConcurrencyConflictError(f"payment {payment.id} kept changing; try again")

    # --- sync / cancel ------------------------------------------------------------

    def sync(self, payment_id: str, *, cause: Cause = Cause.API) -> Steps[Payment]:
        """Ask the provider for the payment's status and apply it."""
        payment = self.store.get_payment(payment_id)
        adapter = self.provider(payment.provider)
        if not adapter.supports(Operation.GET):
            raise adapter.unsupported(Operation.GET)
        exchanges: list[Exchange] = []
        try:
            reported = yield from run_flow(adapter, Operation.GET, lambda: adapter.get(payment),
                                           payment_id=payment.id, record=exchanges.append,
                                           sleep_scale=self.sleep_scale)
        except ProviderError:
            self.store.record_exchanges(exchanges)
            raise
        return self._apply_report(payment, reported, cause, exchanges=exchanges)

    def cancel(self, payment_id: str) -> Steps[Payment]:
        payment = self.store.get_payment(payment_id)
        if payment.status not in (Status.PENDING, Status.CREATED):
            raise IllegalTransitionError(
                f"payment {payment_id} is {payment.status.value}; only pending payments can "
                "be canceled", source=payment.status.value, target="canceled",
                payment_id=payment_id,
            )
        adapter = self.provider(payment.provider)
        if not adapter.supports(Operation.CANCEL):
            raise adapter.unsupported(Operation.CANCEL)
        exchanges: list[Exchange] = []
        try:
            reported = yield from run_flow(adapter, Operation.CANCEL,
                                           lambda: adapter.cancel(payment),
                                           payment_id=payment.id, record=exchanges.append,
                                           sleep_scale=self.sleep_scale)
        except ProviderError:
            self.store.record_exchanges(exchanges)
            raise
        return self._apply_report(payment, reported, Cause.API, exchanges=exchanges)

    # --- refunds -------------------------------------------------------------------

    def refund(self, payment_id: str, amount: Money | None, *, reason: str = "") -> Steps[Refund]:
        """Refund all or part of a succeeded payment. Never more than was captured."""
        payment = self.store.get_payment(payment_id)
        if payment.status not in (Status.SUCCEEDED, Status.PARTIALLY_REFUNDED):
            raise RefundError(
                f"payment {payment_id} is {payment.status.value}; only succeeded payments "
                "can be refunded", code=ErrorCode.REFUND_NOT_ALLOWED,
            )
        adapter = self.provider(payment.provider)
        if not adapter.supports(Operation.REFUND):
            raise adapter.unsupported(Operation.REFUND)
        pending = sum(r.amount.minor for r in self.store.refunds_for(payment_id)
                      if r.status is RefundStatus.PENDING)
        want = amount if amount is not None else payment.refundable - Money(pending,
                                                                          payment.amount.currency)
        if not isinstance(want, Money):
            raise ValidationError("must be Money", field="amount")
        if want.currency != payment.amount.currency:
            raise ValidationError(f"must be in {payment.amount.currency}", field="amount")
        if want.minor <= 0:
            raise ValidationError("must be greater than zero", field="amount")
        if want.minor + pending > payment.refundable.minor:
            raise RefundError(
                f"refund of {want} exceeds what can still be refunded "
                f"({Money(payment.refundable.minor - pending, want.currency)})",
                code=ErrorCode.REFUND_EXCEEDS_CAPTURE,
            )
        now = self.clock()
        refund = Refund(id=str(ULID()), payment_id=payment_id, amount=want,
                        status=RefundStatus.PENDING, created_at=now, reason=reason)
        # Reserve before any I/O, atomically: the pending refund and a version bump in
        # one transaction, so a concurrent refund conflicts instead of double refunding.
        payment = self.store.update_payment(payment_id, expected_version=payment.version,
                                            refund=refund)
        exchanges: list[Exchange] = []
        try:
            result = yield from run_flow(
                adapter, Operation.REFUND,
                lambda: adapter.refund(payment, want, refund_id=refund.id, reason=reason),
                payment_id=payment_id, record=exchanges.append, sleep_scale=self.sleep_scale,
            )
        except ProviderError as exc:
            self.store.record_exchanges(exchanges)
            if not isinstance(exc, UnknownOutcomeError):  # an unknown refund stays pending
                self.store.save_refund(attrs.evolve(refund, status=RefundStatus.FAILED))
            raise
        refund = attrs.evolve(refund, status=result.status,
                              provider_reference=result.reference or refund.provider_reference)
        if refund.status is RefundStatus.SUCCEEDED:
            self._settle_refund(payment, refund, Cause.API, exchanges=exchanges)
        else:
            self.store.save_refund(refund)
            self.store.record_exchanges(exchanges)
        return refund

    def _settle_refund(
        self,
        payment: Payment,
        refund: Refund,
        cause: Cause,
        *,
        exchanges: list[Exchange] | tuple[Exchange, ...] = (),
        delivery: Delivery | None = None,
        event_id: str | None = None,
    ) -> Payment:
        for _ in range(5):
            refunded = payment.refunded_amount.minor + refund.amount.minor
            if refunded > payment.amount.minor:
                raise RefundError("refunds would exceed the captured amount",
                                  code=ErrorCode.REFUND_EXCEEDS_CAPTURE)
            target = (Status.REFUNDED if refunded == payment.amount.minor
                      else Status.PARTIALLY_REFUNDED)
            try:
                return self.store.transition(
                    payment.id, expected_version=payment.version, target=target, cause=cause,
                    event_type=f"payment.{target.value}", reason=f"refund {refund.id}",
                    event_id=event_id, changes={"refunded_minor": refunded},
                    exchanges=exchanges, delivery=delivery, refund=refund,
                )
            except ConcurrencyConflictError:
                if delivery is not None and delivery.event_id and self.store.seen_delivery(
                        delivery.provider, delivery.event_id):
                    return self.store.get_payment(payment.id)  # a repeated delivery
                payment = self.store.get_payment(payment.id)
        raise ConcurrencyConflictError(f"payment {payment.id} kept changing; try again")

