"""Mercado Pago's errors and payment statuses -> pasarela's, in one table each.

An error answer is ``{"message", "error", "status", "cause": [{"code", "description"}]}``
(the Payments API reference, "Create payment", errors). :data:`ERROR_CODES` maps each
documented ``cause.code`` (and the ``error`` words, and the ``status_detail`` of a
rejected payment) to a normalized :class:`ErrorCode`. :data:`STATUSES` maps every
``status`` / ``status_detail`` pair to a lifecycle status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
    UnsupportedError,
)
from pasarela.lifecycle import Status
from pasarela.provider import imported_on_use


if TYPE_CHECKING:
    import json

    import httpx

    from pasarela import retry
else:  # an error's body and Retry-After are read for an error, not at discovery
    json = imported_on_use("json", globals())
    retry = imported_on_use("pasarela.retry", globals())


__all__ = ["ERROR_CODES", "STATUSES", "MercadoPagoDeclinedError", "error_from_response",
           "status_of"]

E = ErrorCode
NAME: Final = "mercadopago"

#: The one table: ``cause.code`` / ``error`` / a rejection's ``status_detail`` -> code.
ERROR_CODES: Final[Mapping[str, ErrorCode]] = {
    # --- POST /v1/payments, 400 causes (Payments API reference, "Create payment") ---
    "1": E.VALIDATION,            # Params Error
    "3": E.VALIDATION,            # Token must be for test
    "8": E.VALIDATION,            # the name of a parameter is wrong
    "23": E.VALIDATION,           # date_of_expiration not yyyy-MM-dd'T'HH:mm:ssz
    "1000": E.VALIDATION,         # number of rows exceeded the limits
    "2002": E.NOT_FOUND,          # customer not found
    "2004": E.PROVIDER_UNAVAILABLE,  # POST to Gateway Transactions API fail
    "2006": E.VALIDATION,         # card token not found
    "2007": E.PROVIDER_UNAVAILABLE,  # connection to Card Token API fail
    "2009": E.VALIDATION,         # card token issuer can't be null
    "2034": E.VALIDATION,         # invalid users involved
    "2059": E.VALIDATION,         # application_fee without OAuth
    "2060": E.VALIDATION,         # the customer can't be equal to the collector
    "2062": E.VALIDATION,         # invalid card token
    "2067": E.VALIDATION,         # invalid user identification number
    "4037": E.AMOUNT_OUT_OF_RANGE,  # invalid transaction_amount (unverified number)
    # --- POST /v1/payments/{id}/refunds (providers.md §8; README: unverified numbers) ---
    "2063": E.REFUND_NOT_ALLOWED,   # the payment's state does not allow the action
    "2024": E.REFUND_NOT_ALLOWED,   # too old to refund
    "15016": E.REFUND_NOT_ALLOWED,  # too old to refund
    "3024": E.REFUND_NOT_ALLOWED,   # partial refund not supported for this payment
    "4292": E.VALIDATION,           # X-Idempotency-Key missing
    # --- the ``error`` word of an answer without a known cause ---
    "bad_request": E.VALIDATION,
    "unauthorized": E.AUTHENTICATION,
    "forbidden": E.AUTHENTICATION,
    "not_found": E.NOT_FOUND,
    "internal_error": E.PROVIDER_UNAVAILABLE,
    # --- status_detail of a rejected payment (Checkout API "response handling") ---
    "cc_rejected_bad_filled_card_number": E.CARD_DECLINED,
    "cc_rejected_bad_filled_date": E.CARD_DECLINED,
    "cc_rejected_bad_filled_other": E.CARD_DECLINED,
    "cc_rejected_bad_filled_security_code": E.CARD_DECLINED,
    "cc_rejected_blacklist": E.FRAUD_SUSPECTED,
    "cc_rejected_call_for_authorize": E.CARD_DECLINED,
    "cc_rejected_card_disabled": E.CARD_DECLINED,
    "cc_rejected_card_error": E.CARD_DECLINED,
    "cc_rejected_duplicated_payment": E.DECLINED,
    "cc_rejected_high_risk": E.FRAUD_SUSPECTED,
    "cc_rejected_insufficient_amount": E.INSUFFICIENT_FUNDS,
    "cc_rejected_invalid_installments": E.CARD_DECLINED,
    "cc_rejected_max_attempts": E.CARD_DECLINED,
    "cc_rejected_other_reason": E.CARD_DECLINED,
    "cc_rejected_card_type_not_allowed": E.CARD_DECLINED,
    "cc_amount_rate_limit_exceeded": E.INSUFFICIENT_FUNDS,
    "rejected_high_risk": E.FRAUD_SUSPECTED,
    "rejected_insufficient_data": E.DECLINED,
    "rejected_by_bank": E.DECLINED,
    "rejected_by_regulations": E.DECLINED,
}

S = Status
#: Every ``status`` / ``status_detail`` Mercado Pago documents, in lifecycle terms; a
#: ``(status, None)`` entry covers details not listed (any ``cc_rejected_*``).
STATUSES: Final[Mapping[tuple[str, str | None], Status]] = {
    ("approved", "accredited"): S.SUCCEEDED,
    ("approved", "partially_refunded"): S.SUCCEEDED,
    ("approved", None): S.SUCCEEDED,
    # authorized, not captured: pasarela captures at creation, so this is in flight
    ("authorized", "pending_capture"): S.PROCESSING,
    ("authorized", None): S.PROCESSING,
    ("in_process", "pending_contingency"): S.PROCESSING,
    ("in_process", "pending_review_manual"): S.PROCESSING,
    ("in_process", None): S.PROCESSING,
    ("pending", "pending_waiting_payment"): S.PENDING,
    ("pending", "pending_waiting_transfer"): S.PENDING,
    ("pending", None): S.PENDING,
    ("rejected", None): S.FAILED,
    ("cancelled", "expired"): S.EXPIRED,
    ("cancelled", "by_collector"): S.CANCELED,
    ("cancelled", "by_payer"): S.CANCELED,
    ("cancelled", None): S.CANCELED,
    ("refunded", "refunded"): S.REFUNDED,
    ("refunded", "by_admin"): S.REFUNDED,
    ("refunded", None): S.REFUNDED,
    ("charged_back", "settled"): S.REFUNDED,
    ("charged_back", "reimbursed"): S.REFUNDED,
    ("charged_back", None): S.REFUNDED,
    # a dispute of an approved payment: the money is held, the payment stays paid
    ("in_mediation", None): S.SUCCEEDED,
}


def status_of(status: str, detail: str | None) -> Status:
    """The lifecycle status of a payment's ``status`` and ``status_detail``."""
    return STATUSES.get((status, detail)) or STATUSES.get((status, None)) or S.UNKNOWN


class MercadoPagoDeclinedError(DeclinedError):
    """A payment Mercado Pago created and rejected (``status: rejected``)."""


def declined(payment: Mapping[str, Any]) -> MercadoPagoDeclinedError:
    """The error for a rejected payment: its detail through the table."""
    detail = str(payment.get("status_detail") or "")
    code = ERROR_CODES.get(detail, E.DECLINED)
    reference = str(payment["id"]) if payment.get("id") is not None else None
    return MercadoPagoDeclinedError(
        f"Mercado Pago rejected the payment ({detail or 'rejected'})", provider=NAME,
        code=code, provider_code=detail or None, decline_code=detail or None,
        provider_reference=reference, http_status=201)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_from_response(response: httpx.Response, *, now: datetime | None = None,
                        field_names: Mapping[str, str] | None = None) -> ProviderError:
    """The error a non-2xx answer means. *field_names* maps Mercado Pago parameters
    to the order fields they came from (a refusal names the order's field)."""
    status = response.status_code
    body = _body(response)
    message = str(body.get("message") or f"HTTP {status}")
    found = body.get("cause")
    causes: list[Any] = found if isinstance(found, list) else []
    cause = next((c for c in causes if isinstance(c, dict) and c.get("code") is not None), None)
    raw = str(cause["code"]) if cause is not None else str(body.get("error") or "") or None
    described = str(cause.get("description") or message) if cause is not None else message
    common: dict[str, Any] = {"provider": NAME, "provider_code": raw,
                              "provider_message": described, "http_status": status}
    if status == 429:
        return RateLimitedError("Mercado Pago is limiting requests", created_nothing=True,
                                retry_after=retry.parse_retry_after(
                                    response.headers.get("retry-after"), now=now),
                                **common)
    if status >= 500:
        return ProviderUnavailableError(f"Mercado Pago answered HTTP {status}", **common)
    if status in (401, 403):
        return AuthenticationError("Mercado Pago refused the access token",
                                   created_nothing=True, **common)
    code = ERROR_CODES.get(raw or "", E.PROVIDER_ERROR if status != 400 else E.VALIDATION)
    if code is E.VALIDATION:
        param = response.headers.get("x-sandbox-param") or _param(described)
        field = (field_names or {}).get(param or "", param or "params")
        return ProviderValidationError(f"Mercado Pago: {described}",
                                       fields={field: described}, **common)
    if code is E.AMOUNT_OUT_OF_RANGE:
        return UnsupportedError(f"Mercado Pago: {described}", code=code, **common)
    if code is E.PROVIDER_UNAVAILABLE:
        return ProviderUnavailableError(f"Mercado Pago: {described}", created_nothing=True,
                                        **common)
    return ProviderError(f"Mercado Pago: {described}", code=code,
                         created_nothing=status in (400, 404), **common)


def _param(description: str) -> str | None:
    """The parameter a description names in brackets (``... wrong [payer.email]``)."""
    start, end = description.rfind("["), description.rfind("]")
    if 0 <= start < end:
        return description[start + 1:end]
    return None
