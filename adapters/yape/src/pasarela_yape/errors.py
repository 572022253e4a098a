"""Culqi error bodies to pasarela errors: the adapter's one table.

Culqi answers an error with ``{"object": "error", "type", "code", "decline_code",
"merchant_message", "user_message"}`` (plus ``charge_id`` when a charge was created
and declined, and ``param`` for a field it refused). :data:`ERROR_TABLE` maps the
most specific of ``decline_code``, ``code`` and ``type`` to an exception class and a
normalized :class:`~pasarela.errors.ErrorCode`; :func:`error_from_response` applies
it. A 5xx, or a body that is not a Culqi error, is ``ProviderUnavailableError``.

Sources: the decline codes are those of Culqi's recorded sandbox cassettes
(``../shared/peers/culqi``); the error types are Culqi's documented ones. Culqi's
codes for a wrong or expired Yape approval code are not published: ``invalid_otp``
and ``expired_otp`` are the names this project's sandbox uses (**unverified**).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
)
from pasarela.provider import imported_on_use


if TYPE_CHECKING:
    import json

    import httpx

    from pasarela import retry
else:  # an error's body and Retry-After are read for an error, not at discovery
    json = imported_on_use("json", globals())
    retry = imported_on_use("pasarela.retry", globals())


__all__ = ["ERROR_CODES", "ERROR_TABLE", "Rule", "error_from_body", "error_from_response"]

PROVIDER = "yape"


@attrs.frozen
class Rule:
    """How one Culqi code maps: the exception to raise and its normalized code."""

    error: type[ProviderError]
    code: ErrorCode
    retryable: bool = False


_DECLINED = Rule(DeclinedError, ErrorCode.DECLINED)
_CARD = Rule(DeclinedError, ErrorCode.CARD_DECLINED)
_FRAUD = Rule(DeclinedError, ErrorCode.FRAUD_SUSPECTED)
_WRONG_CODE = Rule(DeclinedError, ErrorCode.INVALID_CODE)

#: The one table: Culqi decline codes, error codes and error types, most specific
#: first at lookup (``decline_code``, then ``code``, then ``type``).
ERROR_TABLE: Final[Mapping[str, Rule]] = {
    # decline codes (card_error / card_declined), as recorded in Culqi's sandbox
    "insufficient_funds": Rule(DeclinedError, ErrorCode.INSUFFICIENT_FUNDS),
    "stolen_card": _FRAUD,
    "lost_card": _FRAUD,
    "fraudulent": _FRAUD,
    "contact_issuer": _CARD,
    "incorrect_cvv": _CARD,
    "invalid_card": _CARD,
    "issuer_decline_operation": _CARD,
    "expired_card": _CARD,
    "restricted_card": _CARD,
    "issuer_not_available": Rule(DeclinedError, ErrorCode.DECLINED, retryable=True),
    "processing_error": _DECLINED,
    # Yape approval code refused (names unverified; see the module docstring)
    "invalid_otp": _WRONG_CODE,
    "expired_otp": _WRONG_CODE,
    # error codes
    "card_declined": _DECLINED,
    # error types
    "card_error": _DECLINED,
    "invalid_request_error": Rule(ProviderValidationError, ErrorCode.VALIDATION),
    "parameter_error": Rule(ProviderValidationError, ErrorCode.VALIDATION),
    "authentication_error": Rule(AuthenticationError, ErrorCode.AUTHENTICATION),
    "limit_api_error": Rule(RateLimitedError, ErrorCode.RATE_LIMITED, retryable=True),
    "resource_error": Rule(ProviderError, ErrorCode.NOT_FOUND),
    "api_error": Rule(ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE, retryable=True),
}

#: The table as the contract declares it (Culqi code -> normalized code).
ERROR_CODES: Final[Mapping[str, ErrorCode]] = {k: r.code for k, r in ERROR_TABLE.items()}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _unavailable(message: str, status: int | None, code: str | None = None) -> ProviderError:
    return ProviderUnavailableError(
        message, provider=PROVIDER, provider_code=code, http_status=status
    )


def error_from_body(body: Any, *, status: int | None = None) -> ProviderError:
    """The pasarela error for a decoded Culqi error *body* answered with *status*."""
    if not isinstance(body, Mapping) or body.get("object") != "error" or not _text(
        body.get("type")
    ):
        return _unavailable(f"Culqi answered HTTP {status} with an unexpected body", status)
    kind = str(body["type"])
    code = _text(body.get("code"))
    decline = _text(body.get("decline_code"))
    merchant = _text(body.get("merchant_message")) or _text(body.get("user_message"))
    if status is not None and status >= 500:
        return _unavailable(f"Culqi failed: {merchant or kind}", status, decline or code or kind)
    rule = None
    raw = kind
    for candidate in (decline, code, kind):
        if candidate and candidate in ERROR_TABLE:
            rule, raw = ERROR_TABLE[candidate], candidate
            break
    if rule is None:
        # An unmapped type: a 4xx we cannot classify is still a refusal, not an outage.
        rule = _DECLINED if status == 402 else Rule(ProviderError, ErrorCode.PROVIDER_ERROR)
        raw = decline or code or kind
    common: dict[str, Any] = {
        "code": rule.code,
        "retryable": rule.retryable,
        "provider": PROVIDER,
        "provider_code": raw,
        "provider_message": merchant,
        "http_status": status,
    }
    message = merchant or f"Culqi refused the request ({raw})"
    if rule.error is DeclinedError:
        return DeclinedError(
            message,
            decline_code=decline or code,
            created_nothing=not _text(body.get("charge_id")),
            provider_reference=_text(body.get("charge_id")) or None,
            **common,
        )
    if rule.error is ProviderValidationError:
        param = _text(body.get("param"))
        fields = {param: merchant or "invalid"} if param else {}
        where = f"{param}: " if param else ""
        return ProviderValidationError(f"{where}{message}", fields=fields, **common)
    if rule.error is RateLimitedError:
        return RateLimitedError(message, **common)
    # Refused before anything was created: authentication, missing resource.
    return rule.error(message, created_nothing=True, **common)


def error_from_response(response: httpx.Response) -> ProviderError:
    """The pasarela error for a non-2xx Culqi *response*.

    A 429 (or a ``limit_api_error``) is :class:`RateLimitedError` with the
    ``Retry-After`` it gave (delay-seconds, or an HTTP date from the current time).
    """
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    error = error_from_body(body, status=response.status_code)
    if response.status_code == 429 or isinstance(error, RateLimitedError):
        return RateLimitedError(
            error.message, provider=PROVIDER, provider_code=error.provider_code,
            provider_message=error.provider_message, http_status=response.status_code,
            retry_after=retry.parse_retry_after(response.headers.get("retry-after")),
        )
    return error
