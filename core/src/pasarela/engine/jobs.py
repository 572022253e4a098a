"""Background jobs, as steps: the expiry sweep and the resolver.

- :func:`expire_due`: a pending payment past ``expires_at`` is first checked with
  the provider where it supports status (the customer may have paid at the last
  minute), then expired; the ``payment.expired`` event lets the host release stock.
  Providers that answer for many payments at once (``Operation.GET_MANY``) are asked
  in chunks of their ``get_many_limit``, and each chunk is applied in one write batch
  (:meth:`pasarela.store.Store.batch`: one transaction for the chunk).
- :func:`resolve_due`: unknown and stale pending payments, and pending refunds
  (whose create's answer was lost, or that the provider left pending), are asked
  about again on a backoff schedule (:data:`pasarela.retry.RESOLVER`); time alone
  never fails an unknown payment or a pending refund.

When the resolver has asked through its whole schedule (:data:`RESOLVER_CHECKS`
checks, :func:`exhausted`) and the provider has still not said, the payment stays
``unknown`` (the refund ``pending``) and needs an operator: ``pasarela doctor`` and
the dashboard list it (:func:`pasarela.store.queries.needing_operator`). It is still
asked about, at the schedule's longest wait, so that a provider's late answer applies
on its own. A payment or refund whose provider cannot be asked (no status operation,
the provider no longer configured) needs an operator at once.

Several processes may run them at once: the store claims rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL).

With merchants, the deployment's context meets every merchant's payments: each one is
handled in its merchant's context (:meth:`~pasarela.engine.context.Service.scope`,
built on first use), with that merchant's account. A pass takes at most
``per_merchant`` payments of any one merchant (default: a fifth of the batch), so one
merchant's backlog does not hold another's expiry or checks back until it is worked
through. A merchant whose configuration is broken has its payments left for the next
pass (logged as ``merchant_unavailable``), and the others go on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from pasarela.engine import refunds, transitions
from pasarela.engine.calls import run_flow
from pasarela.engine.context import Service
from pasarela.engine.payments import sync
from pasarela.engine.steps import Steps
from pasarela.errors import (
    ConcurrencyConflictError,
    ConfigurationError,
    NotFoundError,
    PasarelaError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.logs import get_logger
from pasarela.model import Payment, Refund, RefundStatus
from pasarela.provider import Operation, Provider, ProviderPayment
from pasarela.retry import RESOLVER
from pasarela.store import WriteBatch


__all__ = ["RESOLVER_CHECKS", "exhausted", "expire_due", "resolve_due"]

log = get_logger("pasarela")

#: Payments per write batch when none is asked about (no provider question to chunk by).
_BATCH = 500

#: Checks after which the resolver's schedule is exhausted: one per wait of
#: :data:`pasarela.retry.RESOLVER` (30 s, 2 min, 10 min, 1 h, 6 h: about 7 h 12 min of
#: asking). Past it an unknown payment or a pending refund needs an operator, and is
#: asked about every :data:`_CAP` (the schedule's last wait) from then on.
RESOLVER_CHECKS: Final = len(RESOLVER.schedule)
_CAP: Final = RESOLVER.delay(RESOLVER_CHECKS)


def exhausted(check_attempts: int) -> bool:
    """Whether the resolver has asked *check_attempts* times: its whole schedule, the
    one rule for "needs an operator" (the doctor and the dashboard use it)."""
    return check_attempts >= RESOLVER_CHECKS


def _share(service: Service, limit: int, per_merchant: int | None) -> int | None:
    """How many of one merchant's payments a pass of *limit* takes: *per_merchant*, or
    a fifth of the batch when the deployment has merchants (none: no cap)."""
    if per_merchant is not None:
        return max(1, per_merchant)
    return max(1, limit // 5) if service.lookup is not None else None


def _scoped(service: Service, payment: Payment) -> Service | None:
    """The context of *payment*'s merchant, or None (logged) when that merchant's
    configuration is broken: its payments wait for the next pass."""
    try:
        return service.scope(payment.provider)
    except ConfigurationError as exc:
        log.error("merchant_unavailable", payment_id=payment.id, provider=payment.provider,
                  detail=str(exc)[:300])
        return None


def expire_due(service: Service, *, limit: int = 500,
               per_merchant: int | None = None) -> Steps[int]:
    """Expire pending payments whose time has run out. Returns how many expired.

    The due payments are claimed (leased), then grouped: those whose provider answers
    ``GET_MANY`` are asked in chunks and each chunk is applied in one write batch;
    those whose provider answers only ``GET`` are asked and expired one by one; those
    that cannot be asked (no provider reference, no status operation, a provider no
    longer configured) are expired in write batches. A ``GET_MANY`` that fails, or a
    batch that cannot commit, falls back to the one-by-one path for its chunk.
    """
    now = service.clock()
    many: dict[str, list[Payment]] = {}
    scopes: dict[str, tuple[Service, Provider]] = {}
    one: list[tuple[Service, Payment]] = []
    unasked: list[Payment] = []
    for payment in service.store.due_for_expiry(
            now=now, limit=limit, per_merchant=_share(service, limit, per_merchant)):
        scoped = _scoped(service, payment)
        if scoped is None:
            continue
        adapter = scoped.providers.get(payment.provider)
        if adapter is None or not payment.provider_reference:
            unasked.append(payment)
        elif adapter.supports(Operation.GET_MANY):
            many.setdefault(payment.provider, []).append(payment)
            scopes[payment.provider] = (scoped, adapter)
        elif adapter.supports(Operation.GET):
            one.append((scoped, payment))
        else:
            unasked.append(payment)
    expired = 0
    for name, payments in many.items():
        scoped, adapter = scopes[name]
        size = max(1, adapter.get_many_limit)
        for start in range(0, len(payments), size):
            expired += yield from _expire_asked(scoped, adapter, payments[start:start + size])
    for start in range(0, len(unasked), _BATCH):
        expired += yield from _expire_batch(service, unasked[start:start + _BATCH], {}, ())
    for scoped, payment in one:
        expired += yield from _expire_one(scoped, payment)
    return expired


def _expire_asked(service: Service, adapter: Provider, chunk: Sequence[Payment]) -> Steps[int]:
    """Ask the provider about *chunk* in one ``get_many`` flow, then apply it in a batch."""
    exchanges: list[Exchange] = []
    try:
        reports = yield from run_flow(
            adapter, Operation.GET_MANY, lambda: adapter.get_many(chunk), payment_id=None,
            record=exchanges.append, sleep_scale=service.sleep_scale)
    except PasarelaError as exc:
        log.warning("expiry_check_many_failed", provider=adapter.account, size=len(chunk),
                    code=str(exc.code))
        service.store.record_exchanges(exchanges)
        return (yield from _expire_each(service, chunk))
    silent = sum(1 for p in chunk if p.provider_reference not in reports)
    if silent:
        log.warning("expiry_check_silent", provider=adapter.account, size=len(chunk),
                    silent=silent)
    return (yield from _expire_batch(service, chunk, reports, exchanges))


def _expire_batch(service: Service, chunk: Sequence[Payment],
                  reports: Mapping[str, ProviderPayment],
                  exchanges: Sequence[Exchange]) -> Steps[int]:
    """Apply *reports* and expire what is still pending, in one write batch; on a
    conflict (another process changed one of them first) go one by one instead."""
    try:
        with service.store.batch() as batch:
            batch.record_exchanges(exchanges)
            expired = _apply_batch(service, batch, chunk, reports)
    except ConcurrencyConflictError as exc:
        log.warning("expiry_batch_fallback", size=len(chunk), detail=str(exc)[:300])
        service.store.record_exchanges(exchanges)  # they went with the rollback
        return (yield from _expire_each(service, chunk))
    return expired


def _apply_batch(service: Service, batch: WriteBatch, chunk: Sequence[Payment],
                 reports: Mapping[str, ProviderPayment]) -> int:
    """The batch's part: each payment as it is now (locked on PostgreSQL), the
    provider's report applied (a paid one succeeds), and expired if still pending.

    "Still pending" from the provider for a payment still pending here tells nothing
    the expiry does not overwrite (its next check, its next action), so it is not
    written first: the payment is expired as one that could not be asked about.
    """
    expired = 0
    for locked in batch.adopt(chunk):
        current = locked
        reported = reports.get(current.provider_reference or "")
        if reported is not None and not (reported.status is Status.PENDING
                                         and current.status is Status.PENDING):
            current = transitions.apply_report(service, current, reported, Cause.JOB,
                                               writer=batch)
        if current.status is Status.PENDING:
            current = transitions.move(service, current, Status.EXPIRED, Cause.JOB,
                                       provider_confirmed=False, reason="expires_at passed",
                                       changes={"next_check_at": None}, writer=batch)
        if current.status is Status.EXPIRED:
            expired += 1
    return expired


def _expire_each(service: Service, chunk: Sequence[Payment]) -> Steps[int]:
    expired = 0
    for payment in chunk:
        expired += yield from _expire_one(service.scope(payment.provider), payment)
    return expired


def _expire_one(service: Service, payment: Payment) -> Steps[int]:
    """One payment: asked about (where its provider can say), then expired if pending."""
    adapter = service.providers.get(payment.provider)
    current = payment
    if adapter is not None and adapter.supports(Operation.GET) and payment.provider_reference:
        try:
            current = yield from sync(service, payment.id, cause=Cause.JOB)
        except PasarelaError as exc:
            log.warning("expiry_check_failed", payment_id=payment.id,
                        provider=payment.provider, code=str(exc.code))
            current = service.store.get_payment(payment.id)
    if current.status is Status.PENDING:
        current = transitions.move(service, current, Status.EXPIRED, Cause.JOB,
                                   provider_confirmed=False, reason="expires_at passed",
                                   changes={"next_check_at": None})
    return 1 if current.status is Status.EXPIRED else 0


def resolve_due(service: Service, *, limit: int = 500,
                per_merchant: int | None = None) -> Steps[int]:
    """Ask providers about unknown and stale pending payments, about payments whose
    create was interrupted (still ``created`` past its grace), and about pending
    refunds (:func:`resolve_refunds_due`). Returns how many settled (payments and
    refunds)."""
    now = service.clock()
    settled = 0
    platform = service
    for payment in platform.store.due_for_check(
            now=now, limit=limit, per_merchant=_share(platform, limit, per_merchant)):
        scoped = _scoped(platform, payment)
        if scoped is None:
            continue
        service = scoped
        adapter = service.providers.get(payment.provider)
        if payment.status is Status.UNKNOWN and (adapter is None
                                                 or not adapter.supports(Operation.GET)):
            # Nobody can be asked: an operator's now, looked at again at the cap.
            tries = max(payment.check_attempts + 1, RESOLVER_CHECKS)
            _needs_operator("payment", payment.id, payment.provider, tries)
            service.store.update_payment(payment.id, expected_version=payment.version,
                                         next_check_at=now + _CAP, check_attempts=tries)
            continue
        try:
            current = yield from sync(service, payment.id, cause=Cause.JOB)
        except PasarelaError as exc:
            log.warning("resolve_failed", payment_id=payment.id, provider=payment.provider,
                        code=str(exc.code))
            current = service.store.get_payment(payment.id)
        if current.status is Status.CREATED:
            # The create was interrupted (the process died mid-call) and the provider did
            # not say what became of it: unknown, asked about on the resolver's schedule
            # and listed for an operator; never failed by the passing of time.
            current = transitions.move(
                service, current, Status.UNKNOWN, Cause.JOB, provider_confirmed=False,
                reason="the create was interrupted; the provider has not said what it made",
                changes={"next_check_at": now + RESOLVER.delay(1)})
            continue
        if current.status in (Status.UNKNOWN, Status.PENDING, Status.PROCESSING):
            tries = current.check_attempts + 1
            wait = RESOLVER.delay(tries + 1)
            if current.status is Status.UNKNOWN and tries == RESOLVER_CHECKS:
                _needs_operator("payment", payment.id, payment.provider, tries)
            service.store.update_payment(payment.id, expected_version=current.version,
                                         next_check_at=now + wait, check_attempts=tries)
        else:
            settled += 1
    settled += yield from resolve_refunds_due(platform, now=now, limit=limit,
                                              per_merchant=per_merchant)
    return settled


def resolve_refunds_due(service: Service, *, now: datetime | None = None,
                        limit: int = 500, per_merchant: int | None = None) -> Steps[int]:
    """Ask providers about pending refunds whose next check has come
    (``Operation.GET_REFUND``) and apply each answer through the one refund write path
    (:func:`pasarela.engine.refunds.apply_refund`): ``succeeded`` refunds the payment,
    ``failed`` frees the amount, ``pending`` (the provider has not said, or does not
    know the refund yet) is asked again on the schedule. Returns how many settled.

    Fair across merchants as the payments' passes are: at most *per_merchant* (default:
    a fifth of the batch when the deployment has merchants) of any one merchant's
    refunds per pass."""
    at = now if now is not None else service.clock()
    settled = 0
    for check in service.store.due_refund_checks(
            now=at, limit=limit, per_merchant=_share(service, limit, per_merchant)):
        settled += yield from _resolve_refund(service, check.refund, check.check_attempts,
                                              at)
    return settled


def _resolve_refund(service: Service, pending: Refund, attempts: int,
                    now: datetime) -> Steps[int]:
    tries = attempts + 1
    try:
        payment = service.store.get_payment(pending.payment_id)
    except NotFoundError:  # pragma: no cover - a refund's payment is never deleted
        return 0
    scoped = _scoped(service, payment)
    if scoped is None:
        return 0
    service = scoped
    adapter = service.providers.get(payment.provider)
    if adapter is None or not adapter.supports(Operation.GET_REFUND):
        # The provider cannot be asked: an operator's now (the refund stays pending).
        tries = max(tries, RESOLVER_CHECKS)
        _needs_operator("refund", pending.id, payment.provider, tries)
        service.store.schedule_refund_check(pending.id, next_check_at=now + _CAP,
                                            check_attempts=tries)
        return 0
    try:
        current = yield from refunds.check_refund(service, payment, pending)
    except PasarelaError as exc:
        log.warning("refund_resolve_failed", refund_id=pending.id, payment_id=payment.id,
                    provider=payment.provider, code=str(exc.code))
        current = pending
    if current.status is RefundStatus.PENDING:
        if tries == RESOLVER_CHECKS:
            _needs_operator("refund", pending.id, payment.provider, tries)
        service.store.schedule_refund_check(pending.id,
                                            next_check_at=now + RESOLVER.delay(tries + 1),
                                            check_attempts=tries)
        return 0
    service.store.schedule_refund_check(pending.id, next_check_at=None, check_attempts=tries)
    log.info("refund_resolved", refund_id=pending.id, payment_id=payment.id,
             provider=payment.provider, status=current.status.value)
    return 1


def _needs_operator(kind: str, item_id: str, provider: str, tries: int) -> None:
    log.warning("needs_operator", kind=kind, id=item_id, provider=provider,
                checks=tries)
