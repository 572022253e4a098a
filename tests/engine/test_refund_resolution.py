"""A refund whose create answer was lost, or that the provider left pending, is asked
about again by the resolver on the payments' schedule (``Provider.get_refund``): it
becomes succeeded or failed only when the provider says so, the payment moves through
the one transition path, and a provider that cannot be asked leaves it pending and
listed for an operator."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest

from pasarela.api import Pasarela
from pasarela.engine.jobs import RESOLVER_CHECKS
from pasarela.engine.worker import run_worker
from pasarela.errors import UnknownOutcomeError
from pasarela.hookspecs import hookimpl
from pasarela.lifecycle import Cause, Status
from pasarela.model import Customer, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import Operation, ProviderRefund, WebhookEvent
from pasarela.retry import RESOLVER
from pasarela.store import Store, queries
from pasarela.testing.fake import FakeGateway, FakeProvider, sign_fake_webhook
from pasarela.testing.helpers import ManualClock


def _order(ref: str = "o-1") -> Order:
    return Order(reference=ref, amount=Money.of("40.00", "PEN"),
                 customer=Customer(first_name="R", last_name="Q", email="r@example.pe"))


def _paid(pasarela: Pasarela, ref: str = "o-1") -> Payment:
    payment = pasarela.pay(_order(ref), method="card", idempotency_key=ref)
    assert payment.status is Status.SUCCEEDED
    return payment


def _refund_calls(gateway: FakeGateway) -> list[tuple[str, str]]:
    return [c for c in gateway.calls if c[0] == "GET" and c[1].startswith("/v1/refunds")]


def _lost_refund(pasarela: Pasarela, gateway: FakeGateway, payment: Payment,
                 amount: str = "15.00") -> Refund:
    gateway.lose_refund_answers = True
    with pytest.raises(UnknownOutcomeError):
        pasarela.refund(payment.id, Money.of(amount, "PEN"))
    gateway.lose_refund_answers = False
    [pending] = pasarela.store.refunds_for(payment.id)
    assert pending.status is RefundStatus.PENDING
    assert pending.provider_reference is None
    return pending


def _due(clock: ManualClock, store: Store, refund_id: str) -> None:
    """Move the clock just past the refund's next check."""
    at = store.refund_check(refund_id).next_check_at
    assert at is not None
    clock.now = max(clock.now, at) + timedelta(seconds=1)


def test_a_lost_refund_answer_is_resolved_when_the_provider_shows_it(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(pasarela)
    gateway.hide_new_refunds = True  # made, but the provider's lookups do not show it yet
    pending = _lost_refund(pasarela, gateway, payment)
    check = pasarela.store.refund_check(pending.id)
    assert check.next_check_at == clock() + RESOLVER.delay(1)
    assert check.check_attempts == 0

    assert pasarela.resolve_due() == 0          # not due yet: nobody is asked
    assert _refund_calls(gateway) == []

    _due(clock, pasarela.store, pending.id)
    assert pasarela.resolve_due() == 0          # asked by our id; not shown: still pending
    assert _refund_calls(gateway) == [("GET", f"/v1/refunds/by-refund-id/{pending.id}")]
    check = pasarela.store.refund_check(pending.id)
    assert check.refund.status is RefundStatus.PENDING
    assert check.check_attempts == 1
    assert check.next_check_at == clock() + RESOLVER.delay(2)
    assert pasarela.get(payment.id).status is Status.SUCCEEDED  # nothing refunded yet

    gateway.reveal_refunds()
    _due(clock, pasarela.store, pending.id)
    assert pasarela.resolve_due() == 1
    [done] = pasarela.store.refunds_for(payment.id)
    assert done.status is RefundStatus.SUCCEEDED
    assert done.provider_reference
    assert done.provider_reference.startswith("re_")
    moved = pasarela.get(payment.id)
    assert moved.status is Status.PARTIALLY_REFUNDED
    assert moved.refunded_amount == Money.of("15.00", "PEN")
    last = moved.history[-1]
    assert (last.target, last.cause) == (Status.PARTIALLY_REFUNDED, Cause.JOB)
    assert pasarela.store.refund_check(pending.id).next_check_at is None
    clock.now += timedelta(days=1)
    assert pasarela.resolve_due() == 0          # settled: never asked again
    assert len(_refund_calls(gateway)) == 2


def test_a_refund_the_provider_then_refuses_fails_and_frees_its_amount(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(pasarela)
    gateway.refund_outcome = "pending"
    pending = _lost_refund(pasarela, gateway, payment, amount="40.00")
    _due(clock, pasarela.store, pending.id)
    assert pasarela.resolve_due() == 0          # the provider says pending
    [still] = pasarela.store.refunds_for(payment.id)
    assert still.status is RefundStatus.PENDING
    assert still.provider_reference               # learned from the provider's answer
    gateway.settle_refund(pending.id, "failed")
    _due(clock, pasarela.store, pending.id)
    assert pasarela.resolve_due() == 1
    [failed] = pasarela.store.refunds_for(payment.id)
    assert failed.status is RefundStatus.FAILED
    assert pasarela.get(payment.id).status is Status.SUCCEEDED
    gateway.refund_outcome = "succeeded"       # the amount is free to refund again
    again = pasarela.refund(payment.id)
    assert again.status is RefundStatus.SUCCEEDED
    assert pasarela.get(payment.id).status is Status.REFUNDED


def test_a_refund_the_provider_left_pending_is_asked_about(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(pasarela)
    gateway.refund_outcome = "pending"
    refund = pasarela.refund(payment.id)
    assert refund.status is RefundStatus.PENDING
    assert refund.provider_reference
    assert pasarela.store.refund_check(refund.id).next_check_at == clock() + RESOLVER.delay(1)
    gateway.settle_refund(refund.provider_reference, "succeeded")
    _due(clock, pasarela.store, refund.id)
    assert pasarela.resolve_due() == 1
    assert _refund_calls(gateway) == [("GET", f"/v1/refunds/{refund.provider_reference}")]
    assert pasarela.get(payment.id).status is Status.REFUNDED


def test_the_worker_resolves_a_due_refund_when_no_payment_is_due(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(pasarela)
    pending = _lost_refund(pasarela, gateway, payment)
    _due(clock, pasarela.store, pending.id)
    assert queries.due_for_check_count(pasarela.store, now=clock()) == 0
    assert queries.due_refund_check_count(pasarela.store, now=clock()) == 1
    stats = run_worker(pasarela, once=True, handle_signals=False)
    assert stats.resolved == 1
    assert pasarela.get(payment.id).status is Status.PARTIALLY_REFUNDED


def test_a_pending_refund_past_the_schedule_is_for_an_operator_until_the_provider_answers(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(pasarela)
    gateway.hide_new_refunds = True
    pending = _lost_refund(pasarela, gateway, payment)
    for attempt in range(1, RESOLVER_CHECKS + 2):
        _, listed = queries.needing_operator(pasarela.store, min_checks=RESOLVER_CHECKS)
        assert listed.total == (1 if attempt > RESOLVER_CHECKS else 0)
        _due(clock, pasarela.store, pending.id)
        assert pasarela.resolve_due() == 0
        check = pasarela.store.refund_check(pending.id)
        assert check.refund.status is RefundStatus.PENDING, attempt  # never failed by time
        assert check.check_attempts == attempt
        assert check.next_check_at == clock() + RESOLVER.delay(attempt + 1)
    _, listed = queries.needing_operator(pasarela.store, min_checks=RESOLVER_CHECKS)
    assert listed.total == 1
    [item] = listed.oldest
    assert (item.kind, item.id, item.payment_id, item.provider) == (
        "refund", pending.id, payment.id, "fake")
    # past the schedule it is still asked, at its longest wait; a late answer applies
    gateway.reveal_refunds()
    _due(clock, pasarela.store, pending.id)
    assert pasarela.resolve_due() == 1
    assert pasarela.get(payment.id).status is Status.PARTIALLY_REFUNDED
    _, listed = queries.needing_operator(pasarela.store, min_checks=RESOLVER_CHECKS)
    assert listed.total == 0


class _NoRefundLookup(FakeProvider):
    """The fake without ``GET_REFUND``: a provider that cannot say what became of a
    refund."""

    operations = frozenset(Operation) - {Operation.GET_REFUND}
    retry_safe = FakeProvider.retry_safe - {Operation.GET_REFUND}


class _NoRefundLookupPlugin:
    @staticmethod
    @hookimpl
    def pasarela_register_providers(register: Any) -> None:
        register.add(_NoRefundLookup)


@pytest.fixture
def blind(store_url: str, gateway: FakeGateway, clock: ManualClock) -> Iterator[Pasarela]:
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    p = Pasarela(config, plugins=[_NoRefundLookupPlugin()], load_entrypoints=False,
                 transport=httpx.MockTransport(gateway.handle), clock=clock,
                 store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


def test_a_provider_without_get_refund_leaves_it_pending_for_an_operator(
        blind: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(blind)
    pending = _lost_refund(blind, gateway, payment)
    _due(clock, blind.store, pending.id)
    assert blind.resolve_due() == 0
    assert _refund_calls(gateway) == []         # nobody to ask
    check = blind.store.refund_check(pending.id)
    assert check.refund.status is RefundStatus.PENDING
    assert check.check_attempts == RESOLVER_CHECKS
    assert check.next_check_at == clock() + RESOLVER.delay(RESOLVER_CHECKS)
    _, listed = queries.needing_operator(blind.store, min_checks=RESOLVER_CHECKS)
    assert [r.id for r in listed.oldest] == [pending.id]
    assert blind.get(payment.id).status is Status.SUCCEEDED


class _RefundEvents(FakeProvider):
    """The fake, its deliveries carrying a refund (``data.refund``) as Stripe's refund
    events do, our refund id included."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *,
                      now: datetime) -> list[WebhookEvent]:
        events = super().parse_webhook(headers, body, now=now)
        data = json.loads(body)["data"].get("refund")
        if not data:
            return events
        refund = ProviderRefund(status=RefundStatus(data["status"]), reference=data["id"],
                                amount=Money(int(data["amount"]), data["currency"]),
                                refund_id=data.get("refund_id") or None)
        return [attrs.evolve(event, refund=refund) for event in events]


class _RefundEventsPlugin:
    @staticmethod
    @hookimpl
    def pasarela_register_providers(register: Any) -> None:
        register.add(_RefundEvents)


@pytest.fixture
def announcing(store_url: str, gateway: FakeGateway, clock: ManualClock) -> Iterator[Pasarela]:
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    p = Pasarela(config, plugins=[_RefundEventsPlugin()], load_entrypoints=False,
                 transport=httpx.MockTransport(gateway.handle), clock=clock,
                 store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


def test_a_webhook_for_a_lost_refund_settles_that_refund_once(
        announcing: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    """The provider announces a refund whose create answer we lost: the webhook finds
    our pending refund by our id (it has no reference yet) and the resolver, asking
    later, finds nothing left to do: refunded once, not twice."""
    payment = _paid(announcing)
    pending = _lost_refund(announcing, gateway, payment)
    [made] = gateway.refunds.values()
    event = {"id": "evt_refund_1", "type": "refund.succeeded",
             "data": {"id": payment.provider_reference, "amount": payment.amount.minor,
                      "currency": "PEN", "status": "refunded",
                      "refund": {"id": made.id, "refund_id": made.refund_id,
                                 "status": made.status, "amount": made.amount,
                                 "currency": made.currency}}}
    body = json.dumps(event).encode()
    headers = sign_fake_webhook(body, gateway.webhook_secret, int(clock().timestamp()))
    announcing.handle_webhook("fake", headers, body)
    [done] = announcing.store.refunds_for(payment.id)
    assert done.id == pending.id
    assert (done.status, done.provider_reference) == (RefundStatus.SUCCEEDED, made.id)
    assert announcing.get(payment.id).refunded_amount == Money.of("15.00", "PEN")
    clock.now += timedelta(hours=1)
    announcing.resolve_due()
    assert len(announcing.store.refunds_for(payment.id)) == 1
    moved = announcing.get(payment.id)
    assert moved.status is Status.PARTIALLY_REFUNDED
    assert moved.refunded_amount == Money.of("15.00", "PEN")


def test_a_due_refund_is_handed_to_one_resolver_at_a_time(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _paid(pasarela)
    pending = _lost_refund(pasarela, gateway, payment)
    _due(clock, pasarela.store, pending.id)
    [claimed] = pasarela.store.due_refund_checks(now=clock())
    assert claimed.refund.id == pending.id
    assert pasarela.store.due_refund_checks(now=clock()) == []   # leased to the first
    assert queries.due_refund_check_count(pasarela.store, now=clock()) == 0
    clock.now += pasarela.store.refund_lease + timedelta(seconds=1)
    assert [c.refund.id for c in pasarela.store.due_refund_checks(now=clock())] == [pending.id]


def test_a_webhook_without_our_id_for_a_lost_refund_settles_that_refund(
        announcing: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    """The provider does not echo our refund id: the pending refund of that amount still
    waiting for its reference is the one settled, not a second one beside it."""
    payment = _paid(announcing)
    pending = _lost_refund(announcing, gateway, payment)
    [made] = gateway.refunds.values()
    event = {"id": "evt_refund_2", "type": "refund.succeeded",
             "data": {"id": payment.provider_reference, "amount": payment.amount.minor,
                      "currency": "PEN", "status": "refunded",
                      "refund": {"id": made.id, "status": made.status,
                                 "amount": made.amount, "currency": made.currency}}}
    body = json.dumps(event).encode()
    headers = sign_fake_webhook(body, gateway.webhook_secret, int(clock().timestamp()))
    announcing.handle_webhook("fake", headers, body)
    [done] = announcing.store.refunds_for(payment.id)
    assert (done.id, done.status, done.provider_reference) == (
        pending.id, RefundStatus.SUCCEEDED, made.id)
    assert announcing.get(payment.id).refunded_amount == Money.of("15.00", "PEN")
