"""A server fault (a 5xx answered after the request arrived) says nothing about what the
provider did: a create or a refund that meets one is unknown and asked about by the
resolver, never failed on a guess (one rule: ``engine.calls.may_have_acted``)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from pasarela.api import Pasarela
from pasarela.engine.calls import may_have_acted
from pasarela.errors import (
    AuthenticationError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
    UnknownOutcomeError,
)
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order, RefundStatus
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


def test_the_rule() -> None:
    assert may_have_acted(ProviderUnavailableError("503"))
    assert not may_have_acted(ProviderUnavailableError("refused", created_nothing=True))
    assert not may_have_acted(RateLimitedError("429"))
    assert not may_have_acted(AuthenticationError("401"))
    assert not may_have_acted(ProviderValidationError("400", fields={"a": "b"}))
    assert not may_have_acted(UnknownOutcomeError("lost"))  # already unknown


@pytest.fixture
def setup(store_url: str) -> Any:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    faults: dict[str, int] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        # The gateway does the work, then answers a server fault instead.
        response = gateway.handle(request)
        if request.method == "POST" and faults.get(request.url.path):
            faults[request.url.path] -= 1
            fault = {"error": {"code": "unavailable", "message": "try later"}}
            return httpx.Response(503, content=json.dumps(fault),
                                  headers={"Content-Type": "application/json"})
        return response

    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    with Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False, clock=clock,
                  transport=httpx.MockTransport(handle),
                  store=Store(store_url, upgrade=True)) as p:
        p.service.sleep_scale = 0
        yield p, gateway, clock, faults


def _order(ref: str) -> Order:
    return Order(reference=ref, amount=Money.of("40.00", "PEN"),
                 customer=Customer(first_name="R", last_name="Q", email="r@example.pe"))


def test_a_create_answered_with_a_5xx_is_unknown_then_resolved(setup: Any) -> None:
    pasarela, _, clock, faults = setup
    faults["/v1/payments"] = 1
    payment = pasarela.pay(_order("o-1"), method="card", idempotency_key="o-1")
    assert payment.status is Status.UNKNOWN  # the gateway did make it
    assert payment.next_check_at is not None
    clock.now += timedelta(hours=1)
    pasarela.resolve_due()
    assert pasarela.get(payment.id).status is Status.SUCCEEDED


def test_a_refund_answered_with_a_5xx_stays_pending_then_resolves(setup: Any) -> None:
    pasarela, _, clock, faults = setup
    payment = pasarela.pay(_order("o-2"), method="card", idempotency_key="o-2")
    assert payment.status is Status.SUCCEEDED
    faults["/v1/refunds"] = 1
    with pytest.raises(ProviderUnavailableError):
        pasarela.refund(payment.id, Money.of("10.00", "PEN"))
    [pending] = pasarela.store.refunds_for(payment.id)
    assert pending.status is RefundStatus.PENDING  # not failed: it was made
    clock.now += timedelta(hours=1)
    pasarela.resolve_due()
    [settled] = pasarela.store.refunds_for(payment.id)
    assert settled.status is RefundStatus.SUCCEEDED
    assert pasarela.get(payment.id).status is Status.PARTIALLY_REFUNDED
