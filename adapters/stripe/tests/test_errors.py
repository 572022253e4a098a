"""The one error table: Stripe error answers -> pasarela errors (literal responses)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pasarela_stripe import StripeProvider, StripeSettings
from pasarela_stripe.api import parse_json
from pasarela_stripe.errors import ERROR_CODES, StripeDeclinedError, error_from_response

from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    IdempotencyConflictError,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
    UnsupportedError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment
from pasarela.money import Money


def answer(status: int, error: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": error} if error is not None else {},
                          headers=headers)


CASES = [
    # (status, error object, class, code, retryable)
    (402, {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
           "message": "Your card was declined."}, DeclinedError, ErrorCode.CARD_DECLINED, False),
    (402, {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
           "message": "Your card has insufficient funds."},
     DeclinedError, ErrorCode.INSUFFICIENT_FUNDS, False),
    (402, {"type": "card_error", "code": "card_declined", "decline_code": "stolen_card",
           "message": "Your card was declined."}, DeclinedError, ErrorCode.FRAUD_SUSPECTED, False),
    (402, {"type": "card_error", "code": "card_declined", "decline_code": "a_new_reason",
           "message": "Your card was declined."}, DeclinedError, ErrorCode.CARD_DECLINED, False),
    (402, {"type": "card_error", "code": "expired_card", "message": "Your card has expired."},
     DeclinedError, ErrorCode.CARD_DECLINED, False),
    (400, {"type": "invalid_request_error", "code": "amount_too_small", "param": "amount",
           "message": "Amount must be at least $0.50 usd"},
     UnsupportedError, ErrorCode.AMOUNT_OUT_OF_RANGE, False),
    (400, {"type": "invalid_request_error", "code": "amount_too_large", "param": "amount",
           "message": "Amount must be no more than $999,999.99"},
     UnsupportedError, ErrorCode.AMOUNT_OUT_OF_RANGE, False),
    (400, {"type": "invalid_request_error", "code": "parameter_missing", "param": "currency",
           "message": "Missing required param: currency."},
     ProviderValidationError, ErrorCode.VALIDATION, False),
    (400, {"type": "invalid_request_error", "param": "metadata[x]", "message": "Invalid"},
     ProviderValidationError, ErrorCode.VALIDATION, False),
    (400, {"type": "idempotency_error", "message": "Keys for idempotent requests..."},
     IdempotencyConflictError, ErrorCode.IDEMPOTENCY_CONFLICT, False),
    (401, {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_***"},
     AuthenticationError, ErrorCode.AUTHENTICATION, False),
    (403, {"type": "invalid_request_error", "message": "The provided key does not have access"},
     AuthenticationError, ErrorCode.AUTHENTICATION, False),
    (404, {"type": "invalid_request_error", "code": "resource_missing", "param": "intent",
           "message": "No such payment_intent: 'pi_x'"},
     ProviderError, ErrorCode.NOT_FOUND, False),
    (400, {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
           "message": "You cannot cancel this PaymentIntent..."},
     ProviderError, ErrorCode.ILLEGAL_TRANSITION, False),
    (400, {"type": "invalid_request_error", "code": "charge_already_refunded",
           "message": "Charge ch_x has already been refunded."},
     ProviderError, ErrorCode.REFUND_NOT_ALLOWED, False),
    (409, {"type": "invalid_request_error", "code": "idempotency_key_in_use",
           "message": "There is currently another in-progress request using this key"},
     ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE, True),
    (500, {"type": "api_error", "message": "Sorry, something went wrong."},
     ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE, True),
    (502, None, ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE, True),
]


@pytest.mark.parametrize(("status", "error", "cls", "code", "retryable"), CASES)
def test_error_table(status: int, error: dict[str, Any] | None, cls: type[Exception],
                     code: ErrorCode, retryable: bool) -> None:
    exc = error_from_response(answer(status, error))
    assert type(exc) is cls or isinstance(exc, cls)
    assert exc.code is code
    assert exc.retryable is retryable
    assert exc.provider == "stripe"
    assert exc.http_status == status
    if error:
        assert exc.provider_message == error["message"]
        assert exc.provider_code == (error.get("decline_code") or error.get("code")
                                     or error["type"])
    with pytest.raises(cls):
        parse_json(answer(status, error))


def test_decline_keeps_its_code_and_speaks_spanish() -> None:
    exc = error_from_response(answer(402, {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "payment_intent": {"id": "pi_9", "object": "payment_intent"}}))
    assert isinstance(exc, StripeDeclinedError)
    assert isinstance(exc, DeclinedError)
    assert exc.decline_code == "insufficient_funds"
    assert exc.payment_intent == exc.provider_reference == "pi_9"
    assert exc.customer_message("es") == "Fondos insuficientes. Usa otro medio de pago."
    assert "insufficient" not in exc.customer_message("es")
    generic = error_from_response(answer(402, {
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined."}))
    assert "rechazada" in generic.customer_message("es")


def test_parameter_errors_name_the_field() -> None:
    exc = error_from_response(answer(400, {"type": "invalid_request_error",
                                           "param": "currency", "message": "Invalid currency"}))
    assert isinstance(exc, ProviderValidationError)
    assert exc.fields == {"currency": "Invalid currency"}
    assert exc.created_nothing


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0),
    ("0.5", 0.5),
    ("Wed, 25 Nov 2026 12:00:30 GMT", 30.0),
    ("soon", None),
])
def test_rate_limit_reads_retry_after(header: str, seconds: float | None) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    exc = error_from_response(answer(429, {"type": "invalid_request_error", "code": "rate_limit",
                                           "message": "Too many requests"},
                                     {"Retry-After": header}), now=now)
    assert isinstance(exc, RateLimitedError)
    assert exc.retryable
    assert exc.created_nothing
    assert exc.retry_after == seconds


def test_should_retry_false_is_respected() -> None:
    exc = error_from_response(answer(500, {"type": "api_error", "message": "x"},
                                     {"Stripe-Should-Retry": "false"}))
    assert not exc.retryable


def test_a_body_that_is_not_json_is_a_provider_error() -> None:
    with pytest.raises(ProviderUnavailableError):
        parse_json(httpx.Response(503, content=b"<html>upstream</html>"))
    with pytest.raises(ProviderError):
        parse_json(httpx.Response(200, content=b"<html>ok?</html>"))


def test_table_covers_the_codes_the_adapter_and_sandbox_use() -> None:
    from pasarela_stripe.sandbox.objects import TEST_CARDS

    for card in TEST_CARDS.values():
        for code in (card.code, card.decline_code):
            if code:
                assert code in ERROR_CODES, code
    for code in ("card_declined", "insufficient_funds", "amount_too_small", "amount_too_large",
                 "idempotency_error", "rate_limit", "resource_missing", "api_error",
                 "payment_intent_unexpected_state", "charge_already_refunded"):
        assert code in ERROR_CODES


# --- a 429's Retry-After, through the provider's flow ----------------------------------

#: The provider's clock: far from the wall clock, so a date measured from the wall
#: clock instead would be years off.
CLOCK = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def _get_answered_429(retry_after: str) -> RateLimitedError:
    provider = StripeProvider(StripeSettings(api_key="sk_test_x"), clock=lambda: CLOCK)
    payment = Payment(id="01JPAY", order_reference="pedido-1", idempotency_key="k",
                      provider="stripe", method=Method.CARD, amount=Money(14990, "PEN"),
                      status=Status.PENDING, version=1, created_at=CLOCK, updated_at=CLOCK,
                      provider_reference="pi_1")
    flow = provider.get(payment)
    request = next(flow)
    assert request.url.path == "/v1/payment_intents/pi_1"
    limited = answer(429, {"type": "invalid_request_error", "code": "rate_limit",
                           "message": "Too many requests"}, {"Retry-After": retry_after})
    with pytest.raises(RateLimitedError) as info:
        flow.send(limited)
    return info.value


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0),
    ("Tue, 01 Jan 2030 12:00:30 GMT", 30.0),  # measured from the provider's clock
    ("Tue, 01 Jan 2030 11:00:00 GMT", 0.0),
    ("soon", None),
])
def test_a_429_retry_after_reaches_the_error(header: str, seconds: float | None) -> None:
    exc = _get_answered_429(header)
    assert exc.retry_after == seconds
    assert exc.retryable
    assert exc.http_status == 429
