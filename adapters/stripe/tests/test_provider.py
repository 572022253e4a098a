"""The provider's flows, driven by the core's ``run_flow`` against the loopback sandbox.

Every request and answer is checked against Stripe's spec by the ``client`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from pasarela_stripe import StripeDeclinedError, StripeProvider, StripeSettings
from pasarela_stripe.sandbox import StripeSandbox as Sandbox

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import (
    ConfigurationError,
    DeclinedError,
    ErrorCode,
    IdempotencyConflictError,
    ProviderError,
    RateLimitedError,
    UnknownOutcomeError,
    ValidationError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment, RefundStatus
from pasarela.money import Money
from pasarela.next_action import ConfirmCard
from pasarela.provider import CreateRequest, Operation, ProviderSettings


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def provider(sandbox: Sandbox, sandbox_key: str, webhook_secret: str) -> StripeProvider:
    settings = StripeSettings(
        api_key=sandbox_key, base_url=sandbox.url,  # type: ignore[attr-defined]
        webhook_secrets=(webhook_secret,), timeout=5.0, max_retries=2,
    )
    return StripeProvider(settings)


Run = Callable[[Operation, Callable[[], Any]], Any]


@pytest.fixture
def run(provider: StripeProvider, client: httpx.Client) -> Run:
    def go(operation: Operation, make: Callable[[], Any]) -> Any:
        return drive(run_flow(provider, operation, make, sleep_scale=0), client)
    return go


def request(key: str = "pedido-1042", amount: str = "149.90", currency: str = "PEN",
            **params: Any) -> CreateRequest:
    order = Order(reference=key, amount=Money.of(amount, currency), description="Audífonos")
    return CreateRequest(payment_id=f"01JD{key.upper()}", idempotency_key=key, order=order,
                         method=Method.CARD, amount=order.amount, expires_at=None,
                         params=params)


def payment_of(req: CreateRequest, reference: str | None, status: Status = Status.PENDING,
               ) -> Payment:
    return Payment(id=req.payment_id, order_reference=req.order.reference,
                   idempotency_key=req.idempotency_key, provider="stripe", method=Method.CARD,
                   amount=req.amount, status=status, version=2, created_at=NOW, updated_at=NOW,
                   provider_reference=reference, order=req.order)


# --- create / confirm ---------------------------------------------------------------------


def test_create_leaves_a_pending_payment_to_confirm_with_stripe_js(
    run: Run, provider: StripeProvider, sandbox: Sandbox
) -> None:
    req = request()
    reported = run(Operation.CREATE, lambda: provider.create(req))
    assert reported.status is Status.PENDING
    assert reported.raw_status == "requires_payment_method"
    assert reported.amount == Money(14990, "PEN")
    action = reported.next_action
    assert isinstance(action, ConfirmCard)
    assert action.step == "confirm"
    intent = sandbox.account.intents[reported.reference]
    assert action.client_secret == intent["client_secret"]
    assert intent["metadata"] == {"payment_id": req.payment_id, "order_reference": "pedido-1042"}
    assert intent["currency"] == "pen"


def test_server_side_confirmation_succeeds(run: Run, provider: StripeProvider,
                                           wire: Any) -> None:
    reported = run(Operation.CREATE,
                   lambda: provider.create(request(payment_method="pm_card_mastercard")))
    assert reported.status is Status.SUCCEEDED
    assert reported.next_action is None
    sent = wire.requests[-1]
    assert sent.headers["idempotency-key"] == "pedido-1042"
    assert sent.headers["stripe-version"] == "2023-08-16"


@pytest.mark.parametrize(("pm", "code", "decline_code"), [
    ("pm_card_chargeDeclined", ErrorCode.CARD_DECLINED, "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", ErrorCode.INSUFFICIENT_FUNDS,
     "insufficient_funds"),
    ("pm_card_chargeDeclinedFraudulent", ErrorCode.FRAUD_SUSPECTED, "fraudulent"),
])
def test_declines_raise_with_the_decline_code_and_the_intent(
    run: Run, provider: StripeProvider, sandbox: Sandbox, pm: str, code: ErrorCode,
    decline_code: str,
) -> None:
    with pytest.raises(DeclinedError) as info:
        run(Operation.CREATE, lambda: provider.create(request(payment_method=pm)))
    error = info.value
    assert error.code is code
    assert error.decline_code == decline_code
    assert error.provider == "stripe"
    assert not error.retryable
    assert isinstance(error, StripeDeclinedError)
    assert error.payment_intent in sandbox.account.intents
    assert sandbox.account.intents[error.payment_intent]["status"] == "canceled"
    assert error.customer_message("es").endswith(".")
    assert len(sandbox.account.intents) == 1  # declines are not retried


def test_three_d_secure_stays_pending_with_the_authentication_step(
    run: Run, provider: StripeProvider, sandbox: Sandbox
) -> None:
    req = request(payment_method="pm_card_authenticationRequired",
                  return_url="https://tienda.pe/vuelta")
    reported = run(Operation.CREATE, lambda: provider.create(req))
    assert reported.status is Status.PENDING
    action = reported.next_action
    assert isinstance(action, ConfirmCard)
    assert action.step == "authenticate"
    assert action.url is not None
    assert action.url.endswith(f"/_sandbox/3ds/{reported.reference}")
    sandbox.account.authenticate(reported.reference, True)
    again = run(Operation.GET, lambda: provider.get(payment_of(req, reported.reference)))
    assert again.status is Status.SUCCEEDED


def test_confirm_after_create(run: Run, provider: StripeProvider) -> None:
    req = request()
    created = run(Operation.CREATE, lambda: provider.create(req))
    payment = payment_of(req, created.reference)
    confirmed = run(Operation.CONFIRM,
                    lambda: provider.confirm(payment, {"payment_method": "pm_card_visa"}))
    assert confirmed.status is Status.SUCCEEDED
    # confirming again (a retry after a lost answer with the same key) replays; a
    # different card on a succeeded intent answers its current status instead of failing
    again = run(Operation.CONFIRM,
                lambda: provider.confirm(payment, {"payment_method": "pm_card_mastercard"}))
    assert again.status is Status.SUCCEEDED


def test_a_declined_confirmation_closes_the_intent(run: Run, provider: StripeProvider,
                                                   wire: Any) -> None:
    """The core records a decline as failed (terminal): the adapter cancels the
    PaymentIntent so that its client secret cannot take money later."""
    req = request()
    created = run(Operation.CREATE, lambda: provider.create(req))
    payment = payment_of(req, created.reference)
    with pytest.raises(DeclinedError):
        run(Operation.CONFIRM,
            lambda: provider.confirm(payment, {"payment_method": "pm_card_chargeDeclined"}))
    cancel = wire.requests[-1]
    assert cancel.url.path == f"/v1/payment_intents/{created.reference}/cancel"
    assert cancel.headers["idempotency-key"] == "pedido-1042:cancel-after-decline"
    reported = run(Operation.GET, lambda: provider.get(payment))
    assert reported.status is Status.CANCELED
    assert reported.failure_code == "generic_decline"
    late = run(Operation.CONFIRM,
               lambda: provider.confirm(payment, {"payment_method": "pm_card_visa"}))
    assert late.status is Status.CANCELED


def test_confirm_needs_a_payment_method(provider: StripeProvider) -> None:
    payment = payment_of(request(), "pi_123")
    with pytest.raises(ValidationError) as info:
        next(provider.confirm(payment, {}))
    assert info.value.field == "payment_method"


def test_unknown_params_are_refused_before_any_request(provider: StripeProvider) -> None:
    with pytest.raises(ValidationError) as info:
        next(provider.create(request(phone="987654321")))
    assert info.value.field == "params.phone"


def test_amount_below_stripe_minimum_is_unsupported(run: Run, provider: StripeProvider) -> None:
    with pytest.raises(ProviderError) as info:
        run(Operation.CREATE, lambda: provider.create(request(amount="1.50")))
    assert info.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE
    assert info.value.created_nothing


# --- retries and unknown outcomes ---------------------------------------------------------


def test_5xx_is_retried_with_the_same_key_and_creates_one_intent(
    run: Run, provider: StripeProvider, sandbox: Sandbox, wire: Any
) -> None:
    sandbox.knobs.update({"fail_next": 2})
    reported = run(Operation.CREATE, lambda: provider.create(request()))
    assert reported.status is Status.PENDING
    posts = [r for r in wire.requests if r.method == "POST"]
    assert len(posts) == 3
    assert {r.headers["idempotency-key"] for r in posts} == {"pedido-1042"}
    assert len(sandbox.account.intents) == 1


def test_429_is_retried_after_retry_after(run: Run, provider: StripeProvider,
                                          sandbox: Sandbox) -> None:
    sandbox.knobs.update({"rate_limit_next": 1, "retry_after": 2})
    assert run(Operation.CREATE, lambda: provider.create(request())).status is Status.PENDING
    sandbox.knobs.update({"rate_limit_next": 5})
    with pytest.raises(RateLimitedError) as info:
        run(Operation.CREATE, lambda: provider.create(request("otro")))
    assert info.value.retry_after == 2.0


def test_a_lost_answer_is_unknown_then_the_retry_replays(
    provider: StripeProvider, sandbox: Sandbox, wire: Any
) -> None:
    sandbox.knobs.update({"latency": 0.3})
    quick = attrs.evolve(provider.settings, timeout=0.1, max_retries=0)
    impatient = StripeProvider(quick)
    req = request(payment_method="pm_card_visa")
    with httpx.Client(event_hooks={"request": [wire.on_request]}) as client, \
            pytest.raises(UnknownOutcomeError):
        drive(run_flow(impatient, Operation.CREATE, lambda: impatient.create(req)), client)
    assert len(sandbox.account.intents) == 1  # it happened, but we did not hear it
    sandbox.knobs.update({"latency": 0})
    with httpx.Client() as client:
        reported = drive(run_flow(impatient, Operation.CREATE, lambda: impatient.create(req)),
                         client)
    assert reported.status is Status.SUCCEEDED
    assert len(sandbox.account.intents) == 1


def test_get_without_reference_finds_the_intent_by_payment_id(
    run: Run, provider: StripeProvider
) -> None:
    req = request()
    created = run(Operation.CREATE, lambda: provider.create(req))
    found = run(Operation.GET, lambda: provider.get(payment_of(req, None, Status.UNKNOWN)))
    assert found.reference == created.reference
    nothing = request("nunca-creado")
    with pytest.raises(ProviderError) as info:
        run(Operation.GET, lambda: provider.get(payment_of(nothing, None, Status.UNKNOWN)))
    assert info.value.code is ErrorCode.NOT_FOUND


def test_same_key_other_amount_is_an_idempotency_conflict(run: Run,
                                                          provider: StripeProvider) -> None:
    run(Operation.CREATE, lambda: provider.create(request(amount="10.00")))
    with pytest.raises(IdempotencyConflictError):
        run(Operation.CREATE, lambda: provider.create(request(amount="20.00")))


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_a_pending_payment(run: Run, provider: StripeProvider) -> None:
    req = request()
    created = run(Operation.CREATE, lambda: provider.create(req))
    payment = payment_of(req, created.reference)
    assert run(Operation.CANCEL, lambda: provider.cancel(payment)).status is Status.CANCELED
    # a repeated cancel answers the current status
    assert run(Operation.CANCEL, lambda: provider.cancel(payment)).status is Status.CANCELED


def test_cancel_after_the_customer_paid_reports_succeeded(run: Run, provider: StripeProvider,
                                                          sandbox: Sandbox) -> None:
    req = request()
    created = run(Operation.CREATE, lambda: provider.create(req))
    sandbox.account.confirm_intent(created.reference, {"payment_method": "pm_card_visa"},
                                   base_url="http://x")
    payment = payment_of(req, created.reference)
    assert run(Operation.CANCEL, lambda: provider.cancel(payment)).status is Status.SUCCEEDED


# --- refunds --------------------------------------------------------------------------------


def test_partial_then_full_refund(run: Run, provider: StripeProvider, sandbox: Sandbox) -> None:
    req = request(payment_method="pm_card_visa")
    created = run(Operation.CREATE, lambda: provider.create(req))
    payment = payment_of(req, created.reference, Status.SUCCEEDED)
    part = run(Operation.REFUND, lambda: provider.refund(
        payment, Money.of("49.90", "PEN"), refund_id="01JDREF1", reason="requested_by_customer"))
    assert part.status is RefundStatus.SUCCEEDED
    assert part.amount == Money(4990, "PEN")
    assert part.refund_id == "01JDREF1"
    assert part.payment_reference == created.reference
    # the same refund asked again (a retry) is the same refund
    same = run(Operation.REFUND, lambda: provider.refund(
        payment, Money.of("49.90", "PEN"), refund_id="01JDREF1", reason="requested_by_customer"))
    assert same.reference == part.reference
    rest = run(Operation.REFUND, lambda: provider.refund(
        payment, Money.of("100.00", "PEN"), refund_id="01JDREF2", reason="talla equivocada"))
    assert rest.status is RefundStatus.SUCCEEDED
    stored = sandbox.account.refunds[rest.reference]
    assert stored["reason"] is None
    assert stored["metadata"]["reason"] == "talla equivocada"
    assert len(sandbox.account.refunds) == 2
    with pytest.raises(ProviderError) as info:
        run(Operation.REFUND, lambda: provider.refund(
            payment, Money(1, "PEN"), refund_id="01JDREF3", reason=""))
    assert info.value.code is ErrorCode.REFUND_NOT_ALLOWED


def test_refund_in_another_currency_is_refused(provider: StripeProvider) -> None:
    payment = payment_of(request(), "pi_1", Status.SUCCEEDED)
    with pytest.raises(ValidationError):
        next(provider.refund(payment, Money(100, "USD"), refund_id="r", reason=""))


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "path"), [
    ({"api_key": "pk_test_publishable"}, "providers.stripe.api_key"),
    ({"api_key": "sk_live_abc"}, "providers.stripe.api_key"),
    ({"api_key": "sk_test_abc", "environment": "production"}, "providers.stripe.api_key"),
    ({"api_key": "sk_test_abc", "webhook_tolerance": 0}, "providers.stripe.webhook_tolerance"),
    ({"api_key": "sk_test_abc", "statement_descriptor_suffix": "X" * 23},
     "providers.stripe.statement_descriptor_suffix"),
])
def test_settings_refuse_dangerous_or_invalid_values(changes: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        StripeSettings(**changes)
    assert info.value.path == path


def test_settings_hide_the_key() -> None:
    settings = StripeSettings(api_key="sk_test_secret123", webhook_secrets=("whsec_abc",))
    assert "sk_test_secret123" not in repr(settings)
    assert set(settings.secret_values()) == {"sk_test_secret123", "whsec_abc"}
    live = StripeSettings(api_key="sk_live_x", environment="production")
    assert live.base_url == "https://api.stripe.com"


def test_limits_follow_stripe_minimums() -> None:
    provider = StripeProvider(StripeSettings(api_key="sk_test_x"))
    tiny = Order(reference="r", amount=Money.of("0.49", "USD"), country="US")
    assert provider.ineligibility(tiny, Method.CARD) is not None
    ok = Order(reference="r", amount=Money.of("0.50", "USD"), country="US")
    assert provider.ineligibility(ok, Method.CARD) is None
    assert provider.ineligibility(ok, Method.CASH) is not None
    soles = Order(reference="r", amount=Money.of("1.99", "PEN"))
    assert provider.ineligibility(soles, Method.CARD) is not None


def test_other_settings_are_refused_by_the_core_check() -> None:
    # The one check, in Provider.__init__: the same error for every adapter.
    with pytest.raises(ConfigurationError,
                       match="settings must be StripeSettings, not ProviderSettings"):
        StripeProvider(ProviderSettings())
