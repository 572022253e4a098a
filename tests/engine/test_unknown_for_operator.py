"""An unknown payment stays unknown until its provider says otherwise: past the whole
resolver schedule (and its expiry, and the worker's passes) it is never failed by the
passing of time; it is listed for an operator, still asked about at the schedule's
longest wait, and the provider's late answer applies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from pasarela.api import Pasarela
from pasarela.engine.jobs import RESOLVER_CHECKS, exhausted
from pasarela.engine.worker import run_worker
from pasarela.hookspecs import hookimpl
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.provider import Operation
from pasarela.retry import RESOLVER
from pasarela.store import Store, queries
from pasarela.testing.fake import FakeGateway, FakeProvider
from pasarela.testing.helpers import ManualClock


def _order(ref: str) -> Order:
    return Order(reference=ref, amount=Money.of("25.00", "PEN"),
                 customer=Customer(first_name="R", last_name="Q", email="r@example.pe"))


def _lost_create(pasarela: Pasarela, gateway: FakeGateway, method: str) -> Payment:
    """A create the provider made, whose answer was lost, and that the provider's
    lookups (by id, by our id, search) do not show yet."""
    gateway.hide_new_payments = True
    payment = pasarela.pay(_order(f"o-{method}"), method=method, idempotency_key=f"k-{method}",
                           scenario="timeout")
    gateway.hide_new_payments = False
    assert payment.status is Status.UNKNOWN
    assert gateway.by_payment_id.get(payment.id)  # the provider did make it
    return payment


def _operator_ids(pasarela: Pasarela) -> list[str]:
    listed, _ = queries.needing_operator(pasarela.store, min_checks=RESOLVER_CHECKS)
    assert listed.total == len(listed.oldest)
    return [p.id for p in listed.oldest]


def test_the_schedule_is_exhausted_after_one_check_per_wait() -> None:
    assert len(RESOLVER.schedule) == RESOLVER_CHECKS
    assert not exhausted(RESOLVER_CHECKS - 1)
    assert exhausted(RESOLVER_CHECKS)


@pytest.mark.parametrize(("method", "then"), [("card", Status.SUCCEEDED),
                                              ("cash", Status.PENDING)])
def test_a_lost_create_stays_unknown_past_the_schedule_until_the_provider_confirms(
        pasarela: Pasarela, gateway: FakeGateway, clock: ManualClock, method: str,
        then: Status) -> None:
    payment = _lost_create(pasarela, gateway, method)
    start = clock()
    checks = 0
    # Past the whole schedule, past the payment's expiry (24 h), and a day more: the
    # resolver, the expiry sweep and the worker's passes all run at every step.
    while clock() < start + timedelta(days=2):
        current = pasarela.get(payment.id)
        assert current.next_check_at is not None, "an unknown payment is never left unseen"
        clock.now = current.next_check_at + timedelta(seconds=1)
        assert pasarela.resolve_due() == 0
        checks += 1
        pasarela.expire_due()
        run_worker(pasarela, once=True, handle_signals=False)
        current = pasarela.get(payment.id)
        assert current.status is Status.UNKNOWN, (checks, current.history[-1])
        assert current.check_attempts >= checks
        listed = payment.id in _operator_ids(pasarela)
        assert listed is exhausted(current.check_attempts)
        if exhausted(current.check_attempts):  # still asked, at the longest wait
            assert current.next_check_at == clock() + RESOLVER.delay(RESOLVER_CHECKS)
    assert checks > RESOLVER_CHECKS
    assert _operator_ids(pasarela) == [payment.id]
    history = pasarela.get(payment.id).history
    assert all(t.target is not Status.FAILED for t in history)
    assert len(gateway.calls) > checks  # each check asked the provider

    gateway.reveal_payments()             # the provider confirms what it made
    clock.now = pasarela.get(payment.id).next_check_at + timedelta(seconds=1)  # type: ignore[operator]
    pasarela.resolve_due()
    assert pasarela.get(payment.id).status is then
    assert _operator_ids(pasarela) == []


class _NoStatus(FakeProvider):
    """The fake without ``GET``/``GET_MANY``: nobody can be asked what became of a payment."""

    operations = frozenset(Operation) - {Operation.GET, Operation.GET_MANY}
    retry_safe = FakeProvider.retry_safe - {Operation.GET, Operation.GET_MANY}


class _NoStatusPlugin:
    @staticmethod
    @hookimpl
    def pasarela_register_providers(register: Any) -> None:
        register.add(_NoStatus)


@pytest.fixture
def blind(store_url: str, gateway: FakeGateway, clock: ManualClock) -> Iterator[Pasarela]:
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    p = Pasarela(config, plugins=[_NoStatusPlugin()], load_entrypoints=False,
                 transport=httpx.MockTransport(gateway.handle), clock=clock,
                 store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


def test_an_unknown_payment_nobody_can_be_asked_about_is_for_an_operator_at_once(
        blind: Pasarela, gateway: FakeGateway, clock: ManualClock) -> None:
    payment = _lost_create(blind, gateway, "card")
    assert _operator_ids(blind) == []
    calls = len(gateway.calls)
    clock.now = payment.next_check_at + timedelta(seconds=1)  # type: ignore[operator]
    blind.resolve_due()
    current = blind.get(payment.id)
    assert current.status is Status.UNKNOWN
    assert len(gateway.calls) == calls      # nobody asked
    assert exhausted(current.check_attempts)
    assert current.next_check_at == clock() + RESOLVER.delay(RESOLVER_CHECKS)
    assert _operator_ids(blind) == [payment.id]
