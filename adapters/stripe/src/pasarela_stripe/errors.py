"""Stripe error objects -> pasarela errors, in one table.

Stripe answers errors with ``{"error": {"type", "code", "decline_code", "param",
"message", ...}}`` and an HTTP status (docs.stripe.com/error-codes,
docs.stripe.com/declines/codes). :data:`ERROR_CODES` maps every Stripe ``code``,
``decline_code`` and ``type`` we know to a normalized :class:`ErrorCode`; the
most specific one present wins (``decline_code``, then ``code``, then ``type``),
and the HTTP status settles what the body does not (401, 429, 409, 5xx).
:func:`error_from_response` turns a response into the matching exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    IdempotencyConflictError,
    PasarelaError,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
    UnknownOutcomeError,
    UnsupportedError,
)
from pasarela.provider import imported_on_use


if TYPE_CHECKING:
    import json

    import httpx

    from pasarela import retry
else:  # an error's body and Retry-After are read for an error, not at discovery
    json = imported_on_use("json", globals())
    retry = imported_on_use("pasarela.retry", globals())


__all__ = [
    "ERROR_CODES",
    "StripeDeclinedError",
    "StripeServerError",
    "error_from_response",
    "error_object",
]

E = ErrorCode

#: The one table: Stripe ``decline_code`` / ``code`` / ``type`` -> normalized code.
ERROR_CODES: Final[Mapping[str, ErrorCode]] = {
    # --- decline codes (error.decline_code of a card_error) ---
    "insufficient_funds": E.INSUFFICIENT_FUNDS,
    "card_velocity_exceeded": E.INSUFFICIENT_FUNDS,
    "withdrawal_count_limit_exceeded": E.INSUFFICIENT_FUNDS,
    "fraudulent": E.FRAUD_SUSPECTED,
    "lost_card": E.FRAUD_SUSPECTED,
    "stolen_card": E.FRAUD_SUSPECTED,
    "pickup_card": E.FRAUD_SUSPECTED,
    "merchant_blacklist": E.FRAUD_SUSPECTED,
    "security_violation": E.FRAUD_SUSPECTED,
    "generic_decline": E.CARD_DECLINED,
    "do_not_honor": E.CARD_DECLINED,
    "transaction_not_allowed": E.CARD_DECLINED,
    "restricted_card": E.CARD_DECLINED,
    "call_issuer": E.CARD_DECLINED,
    "card_not_supported": E.CARD_DECLINED,
    "currency_not_supported": E.CARD_DECLINED,
    "try_again_later": E.CARD_DECLINED,
    # --- card_error codes (error.code) ---
    "card_declined": E.CARD_DECLINED,
    "expired_card": E.CARD_DECLINED,
    "incorrect_cvc": E.CARD_DECLINED,
    "invalid_cvc": E.CARD_DECLINED,
    "incorrect_number": E.CARD_DECLINED,
    "invalid_number": E.CARD_DECLINED,
    "invalid_expiry_month": E.CARD_DECLINED,
    "invalid_expiry_year": E.CARD_DECLINED,
    "incorrect_zip": E.CARD_DECLINED,
    "processing_error": E.CARD_DECLINED,
    "authentication_required": E.CARD_DECLINED,
    "payment_intent_authentication_failure": E.CARD_DECLINED,
    "payment_intent_payment_attempt_failed": E.DECLINED,
    # --- invalid_request_error codes ---
    "amount_too_small": E.AMOUNT_OUT_OF_RANGE,
    "amount_too_large": E.AMOUNT_OUT_OF_RANGE,
    "invalid_charge_amount": E.AMOUNT_OUT_OF_RANGE,
    "parameter_missing": E.VALIDATION,
    "parameter_unknown": E.VALIDATION,
    "parameter_invalid_empty": E.VALIDATION,
    "parameter_invalid_integer": E.VALIDATION,
    "parameter_invalid_string_empty": E.VALIDATION,
    "parameters_exclusive": E.VALIDATION,
    "url_invalid": E.VALIDATION,
    "email_invalid": E.VALIDATION,
    "resource_missing": E.NOT_FOUND,
    "payment_intent_unexpected_state": E.ILLEGAL_TRANSITION,
    "charge_already_refunded": E.REFUND_NOT_ALLOWED,
    "charge_disputed": E.REFUND_NOT_ALLOWED,
    "idempotency_key_in_use": E.PROVIDER_UNAVAILABLE,
    "lock_timeout": E.PROVIDER_UNAVAILABLE,
    "rate_limit": E.RATE_LIMITED,
    "api_key_expired": E.AUTHENTICATION,
    "secret_key_required": E.AUTHENTICATION,
    "testmode_charges_only": E.CONFIGURATION,
    "livemode_mismatch": E.CONFIGURATION,
    # --- error types (error.type), the fallback ---
    "card_error": E.CARD_DECLINED,
    "invalid_request_error": E.VALIDATION,
    "idempotency_error": E.IDEMPOTENCY_CONFLICT,
    "api_error": E.PROVIDER_UNAVAILABLE,
}

_DECLINES: Final = frozenset(
    {E.CARD_DECLINED, E.INSUFFICIENT_FUNDS, E.FRAUD_SUSPECTED, E.DECLINED}
)


class StripeDeclinedError(DeclinedError):
    """A declined card. ``payment_intent`` is the id of the PaymentIntent that the
    declined confirmation left behind (Stripe keeps it, ``requires_payment_method``)."""

    def __init__(self, message: str, *, payment_intent: str | None = None, **kwargs: Any):
        kwargs.setdefault("provider_reference", payment_intent)
        super().__init__(message, **kwargs)
        self.payment_intent = payment_intent


class StripeServerError(UnknownOutcomeError, ProviderUnavailableError):
    """A 5xx from Stripe, or a 409 (another request with the same idempotency key is
    still running): Stripe answered, but whether the request took effect is not known.

    Stripe treats a 5xx result as indeterminate (docs.stripe.com/error-low-level,
    "Server errors"), and once an API method began executing the answer is saved under
    the idempotency key and replayed, so a retry may repeat the 5xx while the object
    exists. It is therefore an :class:`~pasarela.errors.UnknownOutcomeError` (the core
    makes a create ``unknown`` and keeps a refund pending, to be asked about, never
    ``failed``) and a :class:`~pasarela.errors.ProviderUnavailableError` (a fault of the
    provider, for the breaker; retried where the operation is retry-safe, unless
    ``Stripe-Should-Retry: false``).
    """

    default_code = ErrorCode.PROVIDER_UNAVAILABLE


def error_object(response: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of a Stripe error response ({} when the body has none)."""
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def normalized_code(error: Mapping[str, Any], status: int) -> ErrorCode:
    """The normalized code for a Stripe error object and HTTP status."""
    if status in (401, 403):
        return E.AUTHENTICATION
    if status == 429:
        return E.RATE_LIMITED
    for key in ("decline_code", "code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value in ERROR_CODES:
            return ERROR_CODES[value]
    if status == 404:
        return E.NOT_FOUND
    if status == 409 or status >= 500:
        return E.PROVIDER_UNAVAILABLE
    if status == 402:
        return E.DECLINED
    if status == 400:
        return E.VALIDATION
    return E.PROVIDER_ERROR


def error_from_response(
    response: httpx.Response, *, now: datetime | None = None
) -> PasarelaError:
    """The exception for a non-2xx Stripe response (returned, not raised).

    A 429's ``Retry-After`` becomes :attr:`RateLimitedError.retry_after`; an HTTP
    date there is measured from *now* (the provider's clock; the current time when
    omitted).
    """
    status = response.status_code
    error = error_object(response)
    code = normalized_code(error, status)
    raw_code = error.get("decline_code") or error.get("code") or error.get("type")
    message = str(error.get("message") or f"Stripe answered HTTP {status}")
    common: dict[str, Any] = {
        "provider": "stripe",
        "provider_code": str(raw_code) if raw_code else None,
        "provider_message": message,
        "http_status": status,
    }
    text = f"Stripe: {message}"
    # Requests Stripe refused before executing them created nothing: 401, 429 and
    # parameter validation. A 5xx, a 409 or a decline may have left an object behind;
    # a 5xx or a 409 says nothing of what became of it (StripeServerError: unknown).
    if code is E.AUTHENTICATION:
        return AuthenticationError(text, created_nothing=True, **common)
    if code is E.RATE_LIMITED or status == 429:
        return RateLimitedError(
            text, retry_after=retry.parse_retry_after(response.headers.get("retry-after"), now=now),
            created_nothing=True, **common,
        )
    if code is E.IDEMPOTENCY_CONFLICT:
        return IdempotencyConflictError(text, **common)
    if status >= 500 or code is E.PROVIDER_UNAVAILABLE:
        should_retry = response.headers.get("stripe-should-retry")
        return StripeServerError(
            text, code=E.PROVIDER_UNAVAILABLE, retryable=should_retry != "false", **common
        )
    if code in _DECLINES:
        intent = error.get("payment_intent")
        return StripeDeclinedError(
            text,
            code=code,
            decline_code=error.get("decline_code") or error.get("code"),
            payment_intent=intent.get("id") if isinstance(intent, dict) else None,
            **common,
        )
    if code is E.AMOUNT_OUT_OF_RANGE:
        return UnsupportedError(text, code=code, **common)
    if code is E.VALIDATION:
        param = error.get("param")
        fields = {str(param): message} if param else {}
        return ProviderValidationError(text, fields=fields, **common)
    created_nothing = code in (E.NOT_FOUND, E.ILLEGAL_TRANSITION, E.REFUND_NOT_ALLOWED)
    return ProviderError(text, code=code, created_nothing=created_nothing, **common)
