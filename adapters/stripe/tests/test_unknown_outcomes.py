"""Unknown stays unknown: no Stripe path makes ``failed`` out of a lost answer, an
indeterminate 5xx, an empty search or the passing of time; each is found afterwards
by what Stripe keeps (the idempotency key's replay, ``metadata`` searches).

Played with the sandbox's faults: ``500`` (nothing done), ``500_after`` (done, then a
5xx saved under the idempotency key, as Stripe's idempotency layer does once a method
began executing) and ``latency`` (done, the answer too late).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pasarela_stripe import StripeProvider, StripeServerError, StripeSettings
from pasarela_stripe.sandbox import StripeSandbox as Sandbox

from pasarela.api import Pasarela
from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import (
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    UnknownOutcomeError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

Run = Callable[[Operation, Callable[[], Any]], Any]


def fault(sandbox: Sandbox, operation: str, kind: str, times: int = 1) -> None:
    answer = httpx.post(f"{sandbox.url}/_control/faults",  # type: ignore[attr-defined]
                        json={"operation": operation, "kind": kind, "times": times})
    assert answer.status_code < 300, answer.text


@pytest.fixture
def provider(sandbox: Sandbox, sandbox_key: str, webhook_secret: str) -> StripeProvider:
    return StripeProvider(StripeSettings(
        api_key=sandbox_key, base_url=sandbox.url,  # type: ignore[attr-defined]
        webhook_secrets=(webhook_secret,), timeout=5.0, max_retries=2))


@pytest.fixture
def run(provider: StripeProvider, client: httpx.Client) -> Run:
    def go(operation: Operation, make: Callable[[], Any]) -> Any:
        return drive(run_flow(provider, operation, make, sleep_scale=0), client)
    return go


def request(key: str, **params: Any) -> CreateRequest:
    order = Order(reference=key, amount=Money.of("149.90", "PEN"))
    return CreateRequest(payment_id=f"01JD{key.upper()}", idempotency_key=key, order=order,
                         method=Method.CARD, amount=order.amount, expires_at=None,
                         params=params)


def payment_of(req: CreateRequest, reference: str | None, status: Status) -> Payment:
    return Payment(id=req.payment_id, order_reference=req.order.reference,
                   idempotency_key=req.idempotency_key, provider="stripe", method=Method.CARD,
                   amount=req.amount, status=status, version=2, created_at=NOW,
                   updated_at=NOW, provider_reference=reference, order=req.order)


# --- the adapter: what it reports --------------------------------------------------------


@pytest.mark.parametrize(("status", "headers", "retryable"), [
    (500, {"Stripe-Should-Retry": "false"}, False),
    (500, {"Stripe-Should-Retry": "true"}, True),
    (502, {}, True),
    (503, {}, True),
])
def test_a_5xx_is_an_unknown_outcome_and_a_provider_fault(
    status: int, headers: dict[str, str], retryable: bool
) -> None:
    from pasarela_stripe.errors import error_from_response

    response = httpx.Response(status, headers=headers, json={"error": {
        "type": "api_error", "message": "Sorry, something went wrong."}})
    exc = error_from_response(response)
    assert isinstance(exc, StripeServerError)
    assert isinstance(exc, UnknownOutcomeError)
    assert isinstance(exc, ProviderUnavailableError)
    assert exc.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert exc.retryable is retryable
    assert exc.created_nothing is False


def test_another_request_with_the_same_key_in_flight_is_unknown() -> None:
    from pasarela_stripe.errors import error_from_response

    response = httpx.Response(409, json={"error": {
        "type": "idempotency_error", "code": "idempotency_key_in_use",
        "message": "There is currently another in-progress request using this "
                   "Idempotent Key."}})
    exc = error_from_response(response)
    assert isinstance(exc, UnknownOutcomeError)
    assert exc.created_nothing is False


def test_a_create_answered_5xx_after_it_ran_is_unknown_then_found(
    run: Run, provider: StripeProvider, sandbox: Sandbox
) -> None:
    req = request("k-500-after", payment_method="pm_card_visa")
    fault(sandbox, "POST /v1/payment_intents", "500_after")
    with pytest.raises(UnknownOutcomeError):
        run(Operation.CREATE, lambda: provider.create(req))
    assert len(sandbox.account.intents) == 1  # it was made
    # the retry with the same key replays the saved 5xx: still unknown, nothing new
    with pytest.raises(UnknownOutcomeError):
        run(Operation.CREATE, lambda: provider.create(req))
    assert len(sandbox.account.intents) == 1
    # asked about by our payment id (metadata search): what Stripe made, paid
    found = run(Operation.GET, lambda: provider.get(payment_of(req, None, Status.UNKNOWN)))
    assert found.status is Status.SUCCEEDED
    assert found.reference == next(iter(sandbox.account.intents))


def test_an_empty_search_is_an_error_to_ask_again_never_a_status(
    run: Run, provider: StripeProvider, sandbox: Sandbox
) -> None:
    never = payment_of(request("k-never"), None, Status.UNKNOWN)
    with pytest.raises(ProviderError) as info:
        run(Operation.GET, lambda: provider.get(never))
    assert info.value.code is ErrorCode.NOT_FOUND
    assert info.value.retryable is True
    fault(sandbox, "GET /v1/payment_intents/search", "500", times=5)
    with pytest.raises(ProviderError) as info:
        run(Operation.GET, lambda: provider.get(never))
    assert isinstance(info.value, UnknownOutcomeError)


def test_a_refund_answered_5xx_after_it_ran_is_unknown_then_found(
    run: Run, provider: StripeProvider, sandbox: Sandbox
) -> None:
    req = request("k-refund-500", payment_method="pm_card_visa")
    paid = payment_of(req, run(Operation.CREATE, lambda: provider.create(req)).reference,
                      Status.SUCCEEDED)
    fault(sandbox, "POST /v1/refunds", "500_after")
    with pytest.raises(UnknownOutcomeError):
        run(Operation.REFUND, lambda: provider.refund(paid, Money(500, "PEN"),
                                                      refund_id="01JDRE500", reason=""))
    mine = Refund(id="01JDRE500", payment_id=paid.id, amount=Money(500, "PEN"),
                  status=RefundStatus.PENDING, created_at=NOW)
    found = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, mine))
    assert found.status is RefundStatus.SUCCEEDED
    assert found.reference == next(iter(sandbox.account.refunds))


# --- through the core: the payment and the refund are never failed ---------------------


@pytest.fixture
def pasarela(tmp_path: Path, sandbox: Sandbox, sandbox_key: str, webhook_secret: str,
             checking_transport: Any) -> Iterator[Pasarela]:
    p = Pasarela.from_config({
        "store": {"url": f"sqlite:///{tmp_path}/pasarela.db"},
        "providers": {"stripe": {
            "api_key": sandbox_key, "base_url": sandbox.url,  # type: ignore[attr-defined]
            "webhook_secrets": [webhook_secret], "max_retries": 1}},
    }, transport=checking_transport)
    yield p
    p.close()


def _order(ref: str) -> Order:
    return Order(reference=ref, amount=Money.of("149.90", "PEN"))


def test_pay_answered_5xx_after_it_ran_is_unknown_and_sync_finds_it(
    pasarela: Pasarela, sandbox: Sandbox
) -> None:
    fault(sandbox, "POST /v1/payment_intents", "500_after")
    payment = pasarela.pay(_order("core-500"), method="card", idempotency_key="core-500",
                           payment_method="pm_card_visa")
    assert payment.status is Status.UNKNOWN
    assert payment.next_check_at is not None  # the resolver will ask
    assert len(sandbox.account.intents) == 1  # Stripe made it: failed would have been wrong
    synced = pasarela.sync(payment.id)
    assert synced.status is Status.SUCCEEDED
    assert synced.provider_reference == next(iter(sandbox.account.intents))


def test_pay_answered_5xx_before_it_ran_is_retried_and_succeeds(
    pasarela: Pasarela, sandbox: Sandbox
) -> None:
    fault(sandbox, "POST /v1/payment_intents", "500")
    payment = pasarela.pay(_order("core-500-once"), method="card",
                           idempotency_key="core-500-once", payment_method="pm_card_visa")
    assert payment.status is Status.SUCCEEDED
    assert len(sandbox.account.intents) == 1


def test_a_refund_answered_5xx_after_it_ran_stays_pending_never_failed(
    pasarela: Pasarela, sandbox: Sandbox
) -> None:
    payment = pasarela.pay(_order("core-refund"), method="card", idempotency_key="core-refund",
                           payment_method="pm_card_visa")
    assert payment.status is Status.SUCCEEDED
    fault(sandbox, "POST /v1/refunds", "500_after")
    with pytest.raises(UnknownOutcomeError):
        pasarela.refund(payment.id, Money(500, "PEN"))
    (refund,) = pasarela.store.refunds_for(payment.id)
    assert refund.status is RefundStatus.PENDING
    assert len(sandbox.account.refunds) == 1  # Stripe made it: failed would have been wrong
