"""``get_refund``: a refund's state at Stripe, by its Refund id, or by our refund id when
its answer was lost; ``pending`` while Stripe has not said, never ``failed``.

Driven by the core's ``run_flow`` against the loopback sandbox; every exchange is
checked against Stripe's spec (``client`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from pasarela_stripe import StripeProvider, StripeSettings
from pasarela_stripe.sandbox import StripeSandbox as Sandbox

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import ProviderError, UnknownOutcomeError
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

Run = Callable[[Operation, Callable[[], Any]], Any]


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


@pytest.fixture
def paid(run: Run, provider: StripeProvider) -> Payment:
    """A payment of S/ 149.90 that succeeded at the sandbox."""
    order = Order(reference="pedido-7", amount=Money.of("149.90", "PEN"))
    req = CreateRequest(payment_id="01JDPAID", idempotency_key="pedido-7", order=order,
                        method=Method.CARD, amount=order.amount, expires_at=None,
                        params={"payment_method": "pm_card_visa"})
    created = run(Operation.CREATE, lambda: provider.create(req))
    assert created.status is Status.SUCCEEDED
    return Payment(id=req.payment_id, order_reference=order.reference,
                   idempotency_key=req.idempotency_key, provider="stripe", method=Method.CARD,
                   amount=order.amount, status=Status.SUCCEEDED, version=3, created_at=NOW,
                   updated_at=NOW, provider_reference=created.reference, order=order)


def ours(refund_id: str, payment: Payment, minor: int = 500) -> Refund:
    return Refund(id=refund_id, payment_id=payment.id, amount=Money(minor, "PEN"),
                  status=RefundStatus.PENDING, created_at=NOW)


def refund(run: Run, provider: StripeProvider, payment: Payment, mine: Refund) -> Any:
    return run(Operation.REFUND, lambda: provider.refund(payment, mine.amount,
                                                         refund_id=mine.id, reason=""))


def test_declared_as_a_retry_safe_read() -> None:
    assert Operation.GET_REFUND in StripeProvider.operations
    assert Operation.GET_REFUND in StripeProvider.retry_safe


def test_by_its_reference_follows_the_refund_to_its_end(
    run: Run, provider: StripeProvider, paid: Payment, sandbox: Sandbox
) -> None:
    sandbox.configure({"refund_status": "pending"})
    mine = ours("01JDREFA", paid)
    made = refund(run, provider, paid, mine)
    assert made.status is RefundStatus.PENDING
    known = attrs.evolve(mine, provider_reference=made.reference)
    asked = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, known))
    assert (asked.status, asked.reference, asked.refund_id) == (
        RefundStatus.PENDING, made.reference, "01JDREFA")
    assert asked.amount == Money(500, "PEN")
    assert asked.payment_reference == paid.provider_reference
    httpx.post(f"{sandbox.url}/_control/refunds/{made.reference}/settle",  # type: ignore[attr-defined]
               json={"status": "succeeded"})
    asked = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, known))
    assert asked.status is RefundStatus.SUCCEEDED
    # Stripe itself saying failed is failed
    other = ours("01JDREFB", paid)
    made = refund(run, provider, paid, other)
    httpx.post(f"{sandbox.url}/_control/refunds/{made.reference}/settle",  # type: ignore[attr-defined]
               json={"status": "failed"})
    failed = run(Operation.GET_REFUND, lambda: provider.get_refund(
        paid, attrs.evolve(other, provider_reference=made.reference)))
    assert failed.status is RefundStatus.FAILED


def test_a_refund_whose_answer_was_lost_is_found_by_our_refund_id(
    provider: StripeProvider, paid: Payment, sandbox: Sandbox, run: Run, wire: Any
) -> None:
    mine = ours("01JDREFLOST", paid)
    impatient = StripeProvider(attrs.evolve(provider.settings, timeout=0.1, max_retries=0))
    sandbox.knobs.update({"latency": 0.3})
    with httpx.Client(event_hooks={"request": [wire.on_request]}) as client, \
            pytest.raises(UnknownOutcomeError):
        drive(run_flow(impatient, Operation.REFUND, lambda: impatient.refund(
            paid, mine.amount, refund_id=mine.id, reason="")), client)
    sandbox.knobs.update({"latency": 0})
    assert len(sandbox.account.refunds) == 1  # it happened; we did not hear it
    refund(run, provider, paid, ours("01JDREFOTHER", paid, 100))  # another one, newer
    found = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, mine))
    made = next(r for r in sandbox.account.refunds.values()
                if r["metadata"]["refund_id"] == mine.id)
    assert (found.status, found.reference, found.refund_id) == (
        RefundStatus.SUCCEEDED, made["id"], mine.id)
    assert found.amount == Money(500, "PEN")


def test_the_search_reads_every_page(run: Run, provider: StripeProvider, paid: Payment,
                                     sandbox: Sandbox, wire: Any) -> None:
    """The refund sought is the oldest of 101: on the second page (100 a page)."""
    mine = ours("01JDREFOLDEST", paid, 1)
    refund(run, provider, paid, mine)
    for n in range(100):
        sandbox.account.create_refund({"payment_intent": paid.provider_reference,
                                       "amount": "1", "metadata": {"refund_id": f"x{n}"}})
    wire.requests.clear()
    found = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, mine))
    assert found.refund_id == mine.id
    assert found.reference is not None
    pages = [r for r in wire.requests if r.url.path == "/v1/refunds"]
    assert len(pages) == 2
    assert "starting_after" not in pages[0].url.params
    assert pages[1].url.params["starting_after"]


def test_a_refund_stripe_does_not_know_is_pending_never_failed(
    run: Run, provider: StripeProvider, paid: Payment
) -> None:
    refund(run, provider, paid, ours("01JDREFMADE", paid))
    never = ours("01JDREFNEVER", paid)
    answer = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, never))
    assert answer.status is RefundStatus.PENDING
    assert answer.reference is None
    assert answer.refund_id == never.id


def test_a_payment_without_a_payment_intent_is_not_asked_about(provider: StripeProvider,
                                                               paid: Payment) -> None:
    """refund() sends nothing without a PaymentIntent id, so there is nothing to find:
    pending, and no request at all."""
    orphan = attrs.evolve(paid, provider_reference=None)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.method} {request.url}")

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        answer = drive(run_flow(provider, Operation.GET_REFUND,
                                lambda: provider.get_refund(orphan, ours("01JDREFX", orphan))),
                       client)
    assert answer.status is RefundStatus.PENDING
    assert answer.reference is None


def test_a_5xx_on_the_search_is_retried_then_an_error_never_an_answer(
    run: Run, provider: StripeProvider, paid: Payment, sandbox: Sandbox
) -> None:
    mine = ours("01JDREFFAULT", paid)
    refund(run, provider, paid, mine)
    url = sandbox.url  # type: ignore[attr-defined]
    fault = {"operation": "GET /v1/refunds", "kind": "500"}
    assert httpx.post(f"{url}/_control/faults", json=fault).status_code < 300
    found = run(Operation.GET_REFUND, lambda: provider.get_refund(paid, mine))  # retried
    assert found.status is RefundStatus.SUCCEEDED
    assert httpx.post(f"{url}/_control/faults", json={**fault, "times": 5}).status_code < 300
    with pytest.raises(ProviderError):  # no answer: the refund stays as it was
        run(Operation.GET_REFUND, lambda: provider.get_refund(paid, mine))
