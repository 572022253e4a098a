"""The core's contract suite, against the loopback sandbox (exchanges spec-checked)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from pasarela_stripe import StripeProvider, StripeSettings
from pasarela_stripe.sandbox import StripeSandbox as Sandbox
from pasarela_stripe.webhooks import signature_header

from pasarela.errors import ErrorCode
from pasarela.lifecycle import Status
from pasarela.model import Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.conformance import ProviderConformance


class TestStripeConformance(ProviderConformance):
    provider_class = StripeProvider
    #: Codes from docs.stripe.com/error-codes and docs.stripe.com/declines/codes that a
    #: card PaymentIntent integration can meet.
    documented_error_codes = frozenset({
        "amount_too_large", "amount_too_small", "api_key_expired", "authentication_required",
        "card_declined", "charge_already_refunded", "charge_disputed", "expired_card",
        "idempotency_key_in_use", "incorrect_cvc", "incorrect_number", "invalid_charge_amount",
        "invalid_cvc", "invalid_expiry_month", "invalid_expiry_year", "invalid_number",
        "livemode_mismatch", "lock_timeout", "parameter_invalid_empty",
        "parameter_invalid_integer", "parameter_missing", "parameter_unknown",
        "payment_intent_authentication_failure", "payment_intent_payment_attempt_failed",
        "payment_intent_unexpected_state", "processing_error", "rate_limit",
        "resource_missing", "secret_key_required", "testmode_charges_only",
        # decline codes
        "insufficient_funds", "generic_decline", "do_not_honor", "fraudulent", "lost_card",
        "stolen_card", "pickup_card", "card_velocity_exceeded", "transaction_not_allowed",
        # error types
        "api_error", "card_error", "idempotency_error", "invalid_request_error",
    })

    @pytest.fixture
    def settings(self, sandbox: Sandbox, sandbox_key: str,
                 webhook_secret: str) -> StripeSettings:
        return StripeSettings(api_key=sandbox_key, base_url=sandbox.url,  # type: ignore[attr-defined]
                              webhook_secrets=(webhook_secret,), max_retries=1)

    @pytest.fixture(params=["pending", "succeeded"])
    def create_request(self, request: pytest.FixtureRequest) -> CreateRequest:
        """Both shapes of create: left for Stripe.js (pending), and confirmed server-side
        with pm_card_visa (succeeded); cancel and refund each need one of them."""
        order = Order(reference=f"conf-{request.param}", amount=Money.of("25.00", "PEN"))
        params = {"payment_method": "pm_card_visa"} if request.param == "succeeded" else {}
        return CreateRequest(payment_id=f"01JDCONF{request.param.upper()}",
                             idempotency_key=f"conf-{request.param}", order=order,
                             method=Method.CARD, amount=order.amount, expires_at=None,
                             params=params)

    @pytest.fixture
    def signed_webhook(self, webhook_secret: str
                       ) -> tuple[Mapping[str, str], bytes, datetime]:
        now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        body = json.dumps({
            "id": "evt_conf", "object": "event", "type": "payment_intent.succeeded",
            "created": int(now.timestamp()), "data": {"object": {
                "id": "pi_conf", "object": "payment_intent", "amount": 2500,
                "currency": "pen", "status": "succeeded"}},
        }, indent=2).encode()
        header = signature_header(body, [webhook_secret], int(now.timestamp()))
        return {"Stripe-Signature": header}, body, now

    @pytest.fixture
    def client(self, client: httpx.Client) -> Any:  # the spec-checking client of conftest
        return client

    @pytest.fixture
    def invalid_request(self, create_request: CreateRequest) -> CreateRequest:
        # Stripe metadata keys have at most 40 characters: refused before any I/O.
        order = attrs.evolve(create_request.order, metadata={"k" * 41: "v"})
        return attrs.evolve(create_request, order=order)

    @pytest.fixture
    def webhook_cases(self, webhook_secret: str) -> list[tuple[Any, ...]]:
        now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        cases = []
        for n, (event, intent_status, expected) in enumerate([
                ("payment_intent.succeeded", "succeeded", Status.SUCCEEDED),
                # Stripe keeps a failed PaymentIntent open for another card: still pending.
                ("payment_intent.payment_failed", "requires_payment_method", Status.PENDING),
                ("payment_intent.processing", "processing", Status.PROCESSING),
                ("payment_intent.canceled", "canceled", Status.CANCELED)]):
            intent: dict[str, Any] = {"id": "pi_conf", "object": "payment_intent",
                                      "amount": 2500, "currency": "pen", "status": intent_status}
            if event == "payment_intent.payment_failed":
                intent["last_payment_error"] = {"code": "card_declined",
                                                "decline_code": "generic_decline"}
            body = json.dumps({"id": f"evt_conf_{n}", "object": "event", "type": event,
                               "created": int(now.timestamp()),
                               "data": {"object": intent}}).encode()
            header = signature_header(body, [webhook_secret], int(now.timestamp()))
            cases.append(({"Stripe-Signature": header}, body, now, expected))
        return cases

    @pytest.fixture
    def wrong_settings(self, settings: StripeSettings) -> StripeSettings:
        return attrs.evolve(settings, api_key="sk_test_not_the_sandbox_key", max_retries=0)

    @pytest.fixture
    def sandbox_errors(self, create_request: CreateRequest
                       ) -> list[tuple[str, Operation, Any, ErrorCode]]:
        def card(payment_method: str) -> Any:
            request = attrs.evolve(create_request, params={"payment_method": payment_method},
                                   idempotency_key=f"conf-{payment_method}")
            return lambda provider: provider.create(request)

        tiny = attrs.evolve(create_request, amount=Money(1, "PEN"), idempotency_key="conf-tiny",
                            order=attrs.evolve(create_request.order, amount=Money(1, "PEN")))
        return [
            ("generic_decline", Operation.CREATE, card("pm_card_chargeDeclined"),
             ErrorCode.CARD_DECLINED),
            ("insufficient_funds", Operation.CREATE,
             card("pm_card_chargeDeclinedInsufficientFunds"), ErrorCode.INSUFFICIENT_FUNDS),
            ("fraudulent", Operation.CREATE, card("pm_card_chargeDeclinedFraudulent"),
             ErrorCode.FRAUD_SUSPECTED),
            ("expired_card", Operation.CREATE, card("pm_card_chargeDeclinedExpiredCard"),
             ErrorCode.CARD_DECLINED),  # the card expired, not the time to pay
            ("resource_missing", Operation.CREATE, card("pm_bogus"), ErrorCode.NOT_FOUND),
            ("amount_too_small", Operation.CREATE, lambda provider: provider.create(tiny),
             ErrorCode.AMOUNT_OUT_OF_RANGE),
        ]
