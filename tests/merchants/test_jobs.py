"""The worker's jobs over many merchants: each merchant's payment is asked about
through its own account (the deployment finds it by a lookup), and one merchant's
backlog does not starve another's expiry sweep or resolver: a pass takes at most
``per_merchant`` payments of any one merchant. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from pasarela.api import Pasarela
from pasarela.engine.jobs import expire_due, resolve_due, resolve_refunds_due
from pasarela.errors import UnknownOutcomeError
from pasarela.lifecycle import Status
from pasarela.model import Order, RefundStatus
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway(clock=ManualClock())


@pytest.fixture
def platform(store_url: str, gateway: FakeGateway) -> Iterator[Pasarela]:
    config = {
        "store": {"url": store_url},
        "merchants": {name: {"providers": {"fake": {"max_retries": 0}}}
                      for name in ("big", "small")},
    }
    app = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                   transport=gateway.transport(), clock=gateway.clock,
                   store=Store(store_url, upgrade=True))
    app.service.sleep_scale = 0
    yield app
    app.close()


def order(reference: str) -> Order:
    return Order(reference=reference, amount=Money.of("25.00", "PEN"), country="PE")


def test_the_resolver_asks_about_a_merchants_payment_through_its_account(
    platform: Pasarela, gateway: FakeGateway,
) -> None:
    gateway.hide_new_payments = True
    lost = platform.merchants["small"].pay(order("o-1"), method="card",
                                          idempotency_key="k-1", scenario="timeout")
    assert lost.status is Status.UNKNOWN
    gateway.reveal_payments()
    gateway.clock.now += timedelta(minutes=1)
    assert platform.resolve_due() == 1
    assert platform.merchants["small"].get(lost.id).status is Status.SUCCEEDED


def test_one_merchants_backlog_does_not_starve_anothers_expiry(
    platform: Pasarela, gateway: FakeGateway,
) -> None:
    big, small = platform.merchants["big"], platform.merchants["small"]
    backlog = [big.pay(order(f"b-{i}"), method="wallet", idempotency_key=f"b-{i}",
                       phone="987654321")
               for i in range(12)]
    gateway.clock.now += timedelta(minutes=5)  # the small shop's code expires last
    theirs = small.pay(order("s-1"), method="wallet", idempotency_key="s-1",
                       phone="987654321")
    gateway.clock.now += timedelta(days=30)
    # One pass of 6: without a share per merchant, the big shop's six oldest.
    assert platform._run(expire_due(platform.service, limit=6, per_merchant=3)) == 4
    assert small.get(theirs.id).status is Status.EXPIRED
    assert sum(big.get(p.id).status is Status.EXPIRED for p in backlog) == 3


def test_one_merchants_backlog_does_not_starve_anothers_resolver(
    platform: Pasarela, gateway: FakeGateway,
) -> None:
    big, small = platform.merchants["big"], platform.merchants["small"]
    gateway.hide_new_payments = True
    # (four: a fifth lost answer in a row would open the account's circuit)
    backlog = [big.pay(order(f"b-{i}"), method="card", idempotency_key=f"b-{i}",
                       scenario="timeout") for i in range(4)]
    gateway.clock.now += timedelta(minutes=5)
    theirs = small.pay(order("s-1"), method="card", idempotency_key="s-1",
                       scenario="timeout")
    gateway.reveal_payments()
    gateway.clock.now += timedelta(minutes=10)
    # One pass of 3: without a share per merchant, the big shop's three oldest.
    assert platform._run(resolve_due(platform.service, limit=3, per_merchant=2)) == 3
    assert small.get(theirs.id).status is Status.SUCCEEDED
    assert sum(big.get(p.id).status is Status.SUCCEEDED for p in backlog) == 2


def test_one_merchants_backlog_does_not_starve_anothers_refund_checks(
    platform: Pasarela, gateway: FakeGateway,
) -> None:
    big, small = platform.merchants["big"], platform.merchants["small"]
    amount = Money.of("10.00", "PEN")

    def lost_refund(merchant: Any, ref: str) -> str:
        paid = merchant.pay(order(ref), method="card", idempotency_key=ref)
        assert paid.status is Status.SUCCEEDED
        gateway.lose_refund_answers = True
        with pytest.raises(UnknownOutcomeError):
            merchant.refund(paid.id, amount)
        gateway.lose_refund_answers = False
        return str(paid.id)

    # (four: a fifth lost answer in a row would open the account's circuit)
    backlog = [lost_refund(big, f"b-{i}") for i in range(4)]
    gateway.clock.now += timedelta(minutes=5)  # the small shop's refund is due last
    theirs = lost_refund(small, "s-1")
    gateway.clock.now += timedelta(minutes=10)
    # One pass of 3: without a share per merchant, the big shop's three oldest.
    assert platform._run(resolve_refunds_due(platform.service, limit=3, per_merchant=2)) == 3
    [refund] = platform.store.refunds_for(theirs)
    assert refund.status is RefundStatus.SUCCEEDED
    done = [r.status for p in backlog for r in platform.store.refunds_for(p)]
    assert done.count(RefundStatus.SUCCEEDED) == 2
    assert done.count(RefundStatus.PENDING) == 2


def test_the_resolver_shares_refund_checks_by_default(
    platform: Pasarela, gateway: FakeGateway,
) -> None:
    """Without an explicit share, a pass takes a fifth of its batch of one merchant."""
    big, small = platform.merchants["big"], platform.merchants["small"]
    amount = Money.of("10.00", "PEN")
    ids = []
    for merchant, ref in [(big, "b-0"), (big, "b-1"), (big, "b-2"), (small, "s-0")]:
        paid = merchant.pay(order(ref), method="card", idempotency_key=ref)
        gateway.lose_refund_answers = True
        with pytest.raises(UnknownOutcomeError):
            merchant.refund(paid.id, amount)
        gateway.lose_refund_answers = False
        ids.append(paid.id)
        gateway.clock.now += timedelta(seconds=1)
    gateway.clock.now += timedelta(minutes=10)
    # A batch of 10: a share of 2 per merchant; the big shop's third waits.
    assert platform._run(resolve_refunds_due(platform.service, limit=10)) == 3
    statuses = [platform.store.refunds_for(p)[0].status for p in ids]
    assert statuses == [RefundStatus.SUCCEEDED, RefundStatus.SUCCEEDED,
                        RefundStatus.PENDING, RefundStatus.SUCCEEDED]
