"""Receiving provider webhooks: verify, dedupe, apply, then acknowledge.

:func:`handle_webhook` is the core path behind ``Pasarela.handle_webhook`` and the
ASGI app. It verifies the raw bytes (the adapter's pure ``parse_webhook``), skips
deliveries already recorded, fetches the object from the provider where the
provider signs nothing, checks amount and currency against the payment, applies
the reported status through the lifecycle (never backwards), and answers only after
the commit. Forged, stale or malformed deliveries get a 4xx, are recorded as
rejected, and change nothing.

:func:`handle_webhooks` takes many deliveries at once (the server hands it every
delivery that arrived while the previous batch was being written): the ones that
need no provider call are applied in one write batch (one transaction, one commit,
a few statements for all; :mod:`pasarela.store.batch`) through the same code as a
single delivery; the others, and all of them if the batch cannot commit, go one
by one through :func:`handle_webhook`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
from ulid import ULID

from pasarela.engine import transitions
from pasarela.engine.calls import run_flow
from pasarela.engine.context import Service
from pasarela.engine.steps import Steps
from pasarela.errors import NotFoundError, ProviderError, WebhookError
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.logs import get_logger
from pasarela.model import Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import (
    Operation,
    Provider,
    ProviderPayment,
    WebhookEvent,
    WebhookHeaders,
    WebhookReply,
)
from pasarela.registry import merchant_of
from pasarela.store import Delivery, PaymentWriter, WriteBatch


__all__ = ["Incoming", "handle_webhook", "handle_webhooks", "verifying_account"]

log = get_logger("pasarela")

_NOT_FOUND = WebhookReply(404, b'{"error":"unknown provider"}')


#: One delivery as received: the account's name from the URL, headers, raw body.
Incoming = tuple[str, Mapping[str, str], bytes]


def handle_webhook(
    service: Service, provider_name: str, headers: Mapping[str, str], body: bytes
) -> Steps[WebhookReply]:
    account = verifying_account(service, provider_name, headers, body)
    if account is None:
        return _NOT_FOUND
    adapter = service.providers[account]
    return (yield from _apply_parsed(service, account, _parse(service, adapter, headers, body)))


def verifying_account(service: Service, account: str, headers: Mapping[str, str],
                      body: bytes) -> str | None:
    """The account whose secrets verify a delivery to ``/webhooks/{account}``, or None
    when *account* is not configured or takes no webhooks.

    With one account of its provider (in its merchant) that is *account* itself. With
    several accounts of the provider in one merchant (two PagoEfectivo service ids,
    each its own secret, notifying one URL), the provider's
    :meth:`~pasarela.provider.Provider.webhook_hint` reads which payment the
    (unverified) body refers to; the payment is looked up among those accounts and its
    account verifies the delivery, with its own secrets only. A body that names no
    payment of theirs is verified by *account*. Another merchant's accounts are never
    considered.
    """
    adapter = service.providers.get(account)
    if adapter is None or not adapter.supports(Operation.WEBHOOK):
        return None
    kind, merchant = type(adapter), merchant_of(account)
    siblings = [name for name, other in service.providers.items()
                if type(other) is kind and name != account and merchant_of(name) == merchant]
    if not siblings:
        return account
    try:
        hint = kind.webhook_hint(_headers(headers), body)
    except Exception:  # an adapter's hint must not raise; if it does, no hint
        hint = None
    if hint is None:
        return account
    accounts = {account, *siblings}
    store = service.store
    if hint.payment_id:
        try:
            payment = store.get_payment(hint.payment_id)
        except (NotFoundError, ValueError):
            payment = None
        if payment is not None and payment.provider in accounts:
            return payment.provider
    if hint.provider_reference:
        for name in (account, *siblings):
            if store.find_payment(provider=name,
                                  provider_reference=hint.provider_reference) is not None:
                return name
    return account


def _parse(service: Service, adapter: Provider, headers: Mapping[str, str],
           body: bytes) -> list[WebhookEvent] | WebhookError:
    """The delivery's events, or why it is refused (the adapter's pure check).

    A body the adapter cannot read, whatever its parser raised (a JSON nested deeper
    than Python recurses, a field of the wrong type), is this delivery's own 400:
    never an error of the batch it arrived with.
    """
    try:
        return adapter.parse_webhook(_headers(headers), body, now=service.clock())
    except WebhookError as exc:
        return exc
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError,
            OverflowError) as exc:
        return WebhookError(f"{adapter.account}: unreadable delivery ({type(exc).__name__})",
                            provider=adapter.account)


def _headers(headers: Mapping[str, str]) -> WebhookHeaders:
    """*headers* as the adapter reads them: as given when they already are
    :class:`~pasarela.provider.WebhookHeaders` (the ASGI app builds them, query
    included; read-only, so the same object is as good as a copy), else a copy."""
    return headers if type(headers) is WebhookHeaders else WebhookHeaders(headers)


def _apply_parsed(service: Service, provider_name: str,
                  parsed: list[WebhookEvent] | WebhookError) -> Steps[WebhookReply]:
    """One delivery, already parsed, in transactions of its own."""
    adapter = service.providers[provider_name]
    if isinstance(parsed, WebhookError):
        service.store.record_delivery(_rejected(provider_name, parsed))
        return adapter.webhook_reply(parsed)
    for event in parsed:
        yield from _apply_event(service, provider_name, event, service.store)
    return adapter.webhook_reply(None)


def _rejected(provider_name: str, exc: WebhookError) -> Delivery:
    log.warning("webhook_rejected", provider=provider_name, code=str(exc.code))
    return Delivery(provider=provider_name, event_id=None, event_type=None, outcome="rejected",
                    detail=f"{exc.code}: {exc.message}"[:500])


def handle_webhooks(
    service: Service, deliveries: Sequence[Incoming]
) -> Steps[list[WebhookReply | Exception]]:
    """Each delivery's reply, or the exception it raised, in order (module docs)."""
    results: list[WebhookReply | Exception | None] = [None] * len(deliveries)
    parsed: dict[int, tuple[str, list[WebhookEvent] | WebhookError]] = {}
    batched: list[tuple[int, str, list[WebhookEvent]]] = []
    rejected: list[tuple[int, str, WebhookError]] = []
    for i, (named, headers, body) in enumerate(deliveries):
        account = verifying_account(service, named, headers, body)
        if account is None:
            results[i] = _NOT_FOUND
            continue
        name, adapter = account, service.providers[account]
        events = _parse(service, adapter, headers, body)
        parsed[i] = (name, events)
        if isinstance(events, WebhookError):
            rejected.append((i, name, events))
        elif all(_batchable(e) for e in events):
            batched.append((i, name, events))
    if batched or rejected:
        try:
            with service.store.batch() as batch:
                _apply_batch(service, batch, batched, rejected, results)
        except Exception as exc:
            # Another process recorded one of the deliveries first, the store is busy,
            # or one item raised: each then gets its own transaction and answer below.
            log.warning("webhook_batch_fallback", error=type(exc).__name__,
                        detail=str(exc)[:300], size=len(batched) + len(rejected))
            for i, *_ in (*batched, *rejected):
                results[i] = None
    out: list[WebhookReply | Exception] = []
    for i, done in enumerate(results):
        if done is not None:
            out.append(done)
            continue
        try:  # one by one (parsed once, above); the caller answers each on its own
            out.append((yield from _apply_parsed(service, *parsed[i])))
        except Exception as exc:
            out.append(exc)
    return out


def _batchable(event: WebhookEvent) -> bool:
    """Applied without I/O and through the payment lifecycle only (refunds go alone)."""
    return not event.verify_by_fetch and event.refund is None


def _apply_batch(
    service: Service, batch: WriteBatch, batched: Sequence[tuple[int, str, list[WebhookEvent]]],
    rejected: Sequence[tuple[int, str, WebhookError]],
    results: list[WebhookReply | Exception | None],
) -> None:
    by_provider: dict[str, tuple[set[str], set[str]]] = {}
    for _, name, events in batched:
        refs, ids = by_provider.setdefault(name, (set(), set()))
        refs.update(e.provider_reference for e in events if e.provider_reference)
        ids.update(e.event_id for e in events)
    for name, (refs, ids) in by_provider.items():
        batch.prefetch(name, references=refs, event_ids=ids)
    for i, name, exc in rejected:
        batch.record_delivery(_rejected(name, exc))
        results[i] = service.providers[name].webhook_reply(exc)
    for i, name, events in batched:
        for event in events:
            steps = _apply_event(service, name, event, batch)
            try:
                step = next(steps)
            except StopIteration:
                continue
            steps.close()
            raise RuntimeError(f"a batched webhook event asked for I/O: {step!r}")
        results[i] = service.providers[name].webhook_reply(None)


def _apply_event(
    service: Service, provider_name: str, event: WebhookEvent, store: PaymentWriter
) -> Steps[None]:
    # A delivery is unique per (provider, event key, payment), written in the same
    # transaction as its effect, so a repeat for the same payment rolls back. The
    # same key for another payment is applied to its own payment, and recorded and
    # logged as a collision. An unsigned event's repeat is looked for before its
    # fetch, to spare the provider a second one.
    payment = (store.find_payment(provider=provider_name,
                                  provider_reference=event.provider_reference)
               if event.provider_reference else None)
    if payment is None and event.payment_id:
        payment = _by_our_id(store, provider_name, event)
    others: list[str] = []
    if payment is not None:
        earlier = store.delivered_for(provider_name, event.event_id)
        if event.verify_by_fetch and payment.id in earlier:
            log.info("webhook_duplicate", provider=provider_name, event_id=event.event_id)
            return
        others = sorted(earlier - {payment.id, ""})
        if others and payment.id not in earlier:
            log.warning("webhook_event_collision", provider=provider_name,
                        event_id=event.event_id, payment_id=payment.id,
                        other_payments=",".join(others))
    collision = (f"collision: event key also delivered for {', '.join(others)}"
                 if others else "")

    def delivery(outcome: str, detail: str = "") -> Delivery:
        return Delivery(provider=provider_name, event_id=event.event_id, event_type=event.type,
                        outcome=outcome, detail="; ".join(d for d in (detail, collision) if d),
                        payment_id=payment.id if payment else None)

    if payment is None:
        log.warning("webhook_unknown_payment", provider=provider_name, event_type=event.type)
        store.record_delivery(delivery("unknown_payment",
                                       f"no payment with reference {event.provider_reference}"))
        return
    exchanges: list[Exchange] = []
    reported: ProviderPayment | None = None
    if event.verify_by_fetch:
        adapter = service.provider(provider_name)
        try:
            reported = yield from run_flow(adapter, Operation.GET, lambda: adapter.get(payment),
                                           payment_id=payment.id, record=exchanges.append,
                                           sleep_scale=service.sleep_scale)
        except ProviderError:
            store.record_exchanges(exchanges)
            raise  # not acknowledged: the provider will deliver again
        status: Status | None = reported.status
        amount = reported.amount
    else:
        status = event.status
        amount = event.amount
    if amount is not None and amount != payment.amount:
        log.warning("webhook_amount_mismatch", provider=provider_name, payment_id=payment.id)
        store.record_exchanges(exchanges)
        store.record_delivery(delivery("mismatch", f"event amount {amount} != {payment.amount}"))
        return
    if event.refund is not None and event.refund.status is RefundStatus.SUCCEEDED:
        _apply_refund(service, payment, event, delivery("applied"), exchanges)
        return
    if status is None:
        store.record_exchanges(exchanges)
        store.record_delivery(delivery("ignored", f"event type {event.type} carries no status"))
        return
    report = reported or ProviderPayment(status=status, reference=event.provider_reference,
                                         raw_status=event.type)
    transitions.apply_report(service, payment, report, Cause.WEBHOOK, exchanges=exchanges,
                             delivery=delivery("applied"), event_id=event.event_id,
                             writer=store)


def _by_our_id(
    store: PaymentWriter, provider_name: str, event: WebhookEvent
) -> Payment | None:
    """The payment the provider names by our id, if it is ours and has no other
    reference (its create's answer was lost: the event teaches us the reference)."""
    assert event.payment_id is not None
    try:
        payment = store.get_payment(event.payment_id)
    except NotFoundError:
        return None
    if payment.provider != provider_name or payment.provider_reference not in (
            None, event.provider_reference):
        return None
    return payment


def _unanswered(ours: list[Refund], amount: Money) -> Refund | None:
    waiting = [r for r in ours if r.status is RefundStatus.PENDING
               and r.provider_reference is None and r.amount == amount]
    return min(waiting, key=lambda r: (r.created_at, r.id), default=None)


def _apply_refund(
    service: Service, payment: Payment, event: WebhookEvent, delivery: Delivery,
    exchanges: list[Exchange],
) -> None:
    assert event.refund is not None
    report = event.refund
    ours = service.store.refunds_for(payment.id)
    known = {r.provider_reference: r for r in ours if r.provider_reference}
    refund = known.get(report.reference) if report.reference else None
    if refund is None and report.refund_id:
        # A refund whose create answer was lost has no reference yet: found by our id.
        refund = next((r for r in ours if r.id == report.refund_id), None)
    if refund is None and report.reference and report.amount is not None:
        # Nor our id (the provider does not echo it): the oldest of our pending refunds
        # of that amount still waiting for a reference is the one the provider made.
        refund = _unanswered(ours, report.amount)
    if refund is not None and refund.status is RefundStatus.SUCCEEDED:
        service.store.record_exchanges(exchanges)
        service.store.record_delivery(attrs.evolve(delivery, outcome="ignored",
                                                   detail="refund already applied"))
        return
    amount = report.amount
    if refund is None:
        if amount is None:
            raise NotFoundError(f"refund {report.reference} is unknown and has no amount",
                                payment_id=payment.id)
        refund = Refund(id=str(ULID()), payment_id=payment.id, amount=amount,
                        status=RefundStatus.SUCCEEDED, created_at=service.clock(),
                        reason="reported by provider", provider_reference=report.reference)
    else:
        refund = attrs.evolve(refund, status=RefundStatus.SUCCEEDED,
                              provider_reference=report.reference or refund.provider_reference)
    transitions.settle_refund(service, payment, refund, Cause.WEBHOOK, exchanges=exchanges,
                              delivery=delivery, event_id=event.event_id)
