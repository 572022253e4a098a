"""Pure builders of Stripe requests and parsers of Stripe responses.

No I/O here: ``build_*`` return :class:`httpx.Request` objects and ``parse_*``
read :class:`httpx.Response` objects (or decoded Stripe objects). The provider's
flows (:mod:`pasarela_stripe.provider`) chain them.

Status map (PaymentIntent ``status`` -> lifecycle):

=========================== ============ =============================================
Stripe                      pasarela     next action
=========================== ============ =============================================
requires_payment_method     pending      ConfirmCard(step="confirm"); after a
                                         server-side confirmation that left a
                                         ``last_payment_error``: failed
requires_confirmation       pending      ConfirmCard(step="confirm")
requires_action             pending      ConfirmCard(step="authenticate", url=3-D
                                         Secure page when ``redirect_to_url``)
processing                  processing
requires_capture            processing   authorized, not captured (manual capture):
                                         no money taken yet
succeeded                   succeeded
canceled                    canceled
=========================== ============ =============================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import attrs

from pasarela.errors import ErrorCode, ProviderError, ValidationError
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.next_action import ConfirmCard, NextAction
from pasarela.provider import (
    CreateRequest,
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    header_key,
    imported_on_use,
)
from pasarela_stripe import form
from pasarela_stripe.errors import error_from_response
from pasarela_stripe.settings import StripeSettings


if TYPE_CHECKING:
    import httpx
else:
    httpx = imported_on_use("httpx", globals())


__all__ = [
    "INTENT_STATUSES",
    "REFUND_STATUSES",
    "SETTLEMENT_TYPES",
    "RefundPage",
    "TransactionPage",
    "build_balance_transactions",
    "build_cancel",
    "build_confirm",
    "build_create",
    "build_get",
    "build_get_refund",
    "build_list_refunds",
    "build_refund",
    "build_search",
    "idempotency_key",
    "parse_intent",
    "parse_json",
    "parse_refund",
    "parse_refund_page",
    "parse_search",
    "parse_transactions",
    "refund_id_of",
    "settlement_line",
]

USER_AGENT: Final = f"pasarela-stripe/{metadata.version('pasarela-stripe')}"

INTENT_STATUSES: Final[Mapping[str, Status]] = {
    "requires_payment_method": Status.PENDING,
    "requires_confirmation": Status.PENDING,
    "requires_action": Status.PENDING,
    "processing": Status.PROCESSING,
    "requires_capture": Status.PROCESSING,
    "succeeded": Status.SUCCEEDED,
    "canceled": Status.CANCELED,
}

REFUND_STATUSES: Final[Mapping[str, RefundStatus]] = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}

#: Stripe's refund reasons; any other reason travels in metadata.
REFUND_REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})

#: Balance transaction types read as settlement lines, and the status each gets
#: (:func:`pasarela.reconcile.line_status` words). Every other type (payouts,
#: adjustments, Stripe fees billed apart, ...) is skipped.
SETTLEMENT_TYPES: Final[Mapping[str, str]] = {
    "charge": "paid",
    "payment": "paid",
    "refund": "refunded",
    "payment_refund": "refunded",
}

#: Objects per page of ``GET /v1/balance_transactions`` (Stripe's maximum).
PAGE_LIMIT: Final = 100

#: ``pay(..., **params)`` keys the adapter understands.
CREATE_PARAMS: Final = frozenset({"payment_method", "return_url"})

_MAX_KEY = 255
_METADATA_KEYS = 50
_METADATA_KEY_LEN = 40
_METADATA_VALUE_LEN = 500


# --- helpers -----------------------------------------------------------------------


def idempotency_key(*parts: str) -> str:
    """A Stripe ``Idempotency-Key`` from *parts*: :func:`pasarela.provider.header_key`
    (hashed when past 255 characters or not printable ASCII)."""
    return header_key(":".join(parts), max_length=_MAX_KEY)


def _headers(settings: StripeSettings, key: str | None) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {settings.api_key}",
        "Stripe-Version": settings.api_version,
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def _url(settings: StripeSettings, path: str) -> str:
    return settings.base_url.rstrip("/") + path


def _post(
    settings: StripeSettings, path: str, params: Mapping[str, Any], key: str
) -> httpx.Request:
    headers = _headers(settings, key)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.Request("POST", _url(settings, path), headers=headers,
                         content=form.encode(params).encode("ascii"))


def _intent_path(reference: str | None, suffix: str = "") -> str:
    if not reference:
        raise ValidationError("the payment has no Stripe PaymentIntent id yet",
                              field="provider_reference")
    return f"/v1/payment_intents/{quote(reference, safe='')}{suffix}"


def _metadata(request: CreateRequest) -> dict[str, str]:
    metadata = {"payment_id": request.payment_id, "order_reference": request.order.reference}
    for key, value in request.order.metadata.items():
        if key in metadata:
            continue
        if "[" in key or "]" in key:
            raise ValidationError(f"Stripe metadata keys cannot contain square brackets: {key!r}",
                                  field="metadata")
        if len(key) > _METADATA_KEY_LEN or len(value) > _METADATA_VALUE_LEN:
            raise ValidationError(
                f"Stripe metadata keys have at most {_METADATA_KEY_LEN} characters and "
                f"values at most {_METADATA_VALUE_LEN}: {key!r}",
                field="metadata",
            )
        metadata[key] = value
    if len(metadata) > _METADATA_KEYS:
        raise ValidationError(f"Stripe takes at most {_METADATA_KEYS} metadata keys "
                              "(two are pasarela's)", field="metadata")
    return metadata


# --- builders ------------------------------------------------------------------------


def build_create(settings: StripeSettings, request: CreateRequest) -> httpx.Request:
    """``POST /v1/payment_intents`` for *request*.

    With ``params["payment_method"]`` (a PaymentMethod id such as ``pm_card_visa``)
    the PaymentIntent is confirmed in the same call, server-side.
    """
    unknown = sorted(set(request.params) - CREATE_PARAMS)
    if unknown:
        raise ValidationError(
            f"Stripe does not take {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(CREATE_PARAMS))}",
            field=f"params.{unknown[0]}",
        )
    if request.amount.currency != request.order.amount.currency:
        raise ValidationError("the amount's currency differs from the order's", field="amount")
    params: dict[str, Any] = {
        "amount": request.amount.minor,
        "currency": request.amount.currency.lower(),
        "payment_method_types": ["card"],
        "metadata": _metadata(request),
    }
    if request.order.description:
        params["description"] = request.order.description
    if settings.statement_descriptor_suffix:
        params["statement_descriptor_suffix"] = settings.statement_descriptor_suffix
    payment_method = request.params.get("payment_method")
    if payment_method is not None:
        if not isinstance(payment_method, str) or not payment_method:
            raise ValidationError("must be a PaymentMethod id such as pm_card_visa",
                                  field="params.payment_method")
        params["payment_method"] = payment_method
        params["confirm"] = True
        return_url = request.params.get("return_url") or settings.return_url
        if return_url:
            params["return_url"] = return_url
    return _post(settings, "/v1/payment_intents", params, idempotency_key(request.idempotency_key))


def build_confirm(
    settings: StripeSettings,
    reference: str | None,
    payment_method: str,
    *,
    key: str,
    return_url: str | None = None,
) -> httpx.Request:
    """``POST /v1/payment_intents/{id}/confirm`` with a PaymentMethod id."""
    params: dict[str, Any] = {"payment_method": payment_method}
    if return_url or settings.return_url:
        params["return_url"] = return_url or settings.return_url
    return _post(settings, _intent_path(reference, "/confirm"), params, idempotency_key(key))


def build_get(settings: StripeSettings, reference: str | None) -> httpx.Request:
    """``GET /v1/payment_intents/{id}``."""
    return httpx.Request("GET", _url(settings, _intent_path(reference)),
                         headers=_headers(settings, None))


def build_search(settings: StripeSettings, payment_id: str) -> httpx.Request:
    """``GET /v1/payment_intents/search`` for the PaymentIntent whose
    ``metadata["payment_id"]`` is *payment_id* (when its id was never learned)."""
    escaped = payment_id.replace("\\", "\\\\").replace('"', '\\"')
    return httpx.Request(
        "GET",
        _url(settings, "/v1/payment_intents/search"),
        params={"query": f'metadata["payment_id"]:"{escaped}"', "limit": "1"},
        headers=_headers(settings, None),
    )


def build_cancel(settings: StripeSettings, reference: str | None, *, key: str) -> httpx.Request:
    """``POST /v1/payment_intents/{id}/cancel``."""
    return _post(settings, _intent_path(reference, "/cancel"), {}, idempotency_key(key))


def build_refund(
    settings: StripeSettings,
    reference: str | None,
    amount: Money,
    *,
    refund_id: str,
    payment_id: str,
    reason: str = "",
) -> httpx.Request:
    """``POST /v1/refunds`` of *amount* (partial allowed) of a PaymentIntent."""
    if not reference:
        raise ValidationError("the payment has no Stripe PaymentIntent id yet",
                              field="provider_reference")
    if amount.minor <= 0:
        raise ValidationError("must be greater than zero", field="amount")
    metadata = {"refund_id": refund_id, "payment_id": payment_id}
    params: dict[str, Any] = {"payment_intent": reference, "amount": amount.minor}
    if reason in REFUND_REASONS:
        params["reason"] = reason
    elif reason:
        metadata["reason"] = reason[:_METADATA_VALUE_LEN]
    params["metadata"] = metadata
    return _post(settings, "/v1/refunds", params, idempotency_key("refund", refund_id))


def build_get_refund(settings: StripeSettings, reference: str) -> httpx.Request:
    """``GET /v1/refunds/{id}``."""
    if not reference:
        raise ValidationError("the refund has no Stripe Refund id", field="provider_reference")
    return httpx.Request("GET", _url(settings, f"/v1/refunds/{quote(reference, safe='')}"),
                         headers=_headers(settings, None))


def build_list_refunds(
    settings: StripeSettings,
    reference: str | None,
    *,
    starting_after: str | None = None,
    limit: int = PAGE_LIMIT,
) -> httpx.Request:
    """``GET /v1/refunds?payment_intent=...``: the PaymentIntent's refunds, newest
    first, *limit* a page; *starting_after* is the cursor (the last id of the page
    before)."""
    if not reference:
        raise ValidationError("the payment has no Stripe PaymentIntent id yet",
                              field="provider_reference")
    if not 1 <= limit <= PAGE_LIMIT:
        raise ValidationError(f"must be between 1 and {PAGE_LIMIT}", field="limit")
    params: tuple[tuple[str, str], ...] = (("payment_intent", reference), ("limit", str(limit)))
    if starting_after is not None:
        params += (("starting_after", starting_after),)
    return httpx.Request("GET", _url(settings, "/v1/refunds"), params=params,
                         headers=_headers(settings, None))


def _unix(value: datetime, field: str) -> int:
    """*value* as the first whole unix second at or after it (``created`` is whole
    seconds, so ``created >= ceil(t)`` is ``created >= t``)."""
    if value.tzinfo is None:
        raise ValidationError("must be a timezone-aware datetime", field=field)
    return math.ceil(value.timestamp())


def build_balance_transactions(
    settings: StripeSettings,
    since: datetime,
    until: datetime,
    *,
    starting_after: str | None = None,
    limit: int = PAGE_LIMIT,
) -> httpx.Request:
    """``GET /v1/balance_transactions`` created in ``[since, until)``, each with its
    source (the Charge or Refund) expanded; *starting_after* is the cursor (the id
    of the last object of the previous page)."""
    if not 1 <= limit <= PAGE_LIMIT:
        raise ValidationError(f"must be between 1 and {PAGE_LIMIT}", field="limit")
    params: tuple[tuple[str, str], ...] = (
        ("created[gte]", str(_unix(since, "since"))),
        ("created[lt]", str(_unix(until, "until"))),
        ("limit", str(limit)),
        ("expand[]", "data.source"),
    )
    if starting_after is not None:
        params += (("starting_after", starting_after),)
    return httpx.Request("GET", _url(settings, "/v1/balance_transactions"), params=params,
                         headers=_headers(settings, None))


# --- parsers -------------------------------------------------------------------------


def parse_json(response: httpx.Response, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON object of a 2xx response; raise the mapped error otherwise.

    *now* is the time a ``Retry-After`` date is measured from (the current time
    when omitted): see :func:`pasarela_stripe.errors.error_from_response`.
    """
    if not response.is_success:
        raise error_from_response(response, now=now)
    try:
        data = json.loads(response.content)
    except ValueError:
        raise ProviderError(f"Stripe answered HTTP {response.status_code} with a body that is "
                            "not JSON", provider="stripe",
                            http_status=response.status_code) from None
    if not isinstance(data, dict):
        raise ProviderError("Stripe answered with JSON that is not an object", provider="stripe")
    return data


def _money(obj: Mapping[str, Any], field: str = "amount") -> Money | None:
    amount, currency = obj.get(field), obj.get("currency")
    if isinstance(amount, int) and not isinstance(amount, bool) and isinstance(currency, str):
        return Money(amount, currency.upper())
    return None


def _next_action(intent: Mapping[str, Any], status: str) -> NextAction | None:
    secret = intent.get("client_secret")
    if status not in ("requires_payment_method", "requires_confirmation", "requires_action"):
        return None
    if not isinstance(secret, str) or not secret:
        return None
    if status != "requires_action":
        return ConfirmCard(client_secret=secret, step="confirm")
    action = intent.get("next_action") or {}
    redirect = action.get("redirect_to_url") if isinstance(action, dict) else None
    url = redirect.get("url") if isinstance(redirect, dict) else None
    return ConfirmCard(client_secret=secret, step="authenticate",
                       url=url if isinstance(url, str) else None)


def parse_intent(intent: Mapping[str, Any], *, after_confirm: bool = False) -> ProviderPayment:
    """A PaymentIntent object in lifecycle terms.

    *after_confirm* is True for the answer to our own server-side confirmation: a
    ``requires_payment_method`` with a ``last_payment_error`` then means the attempt
    failed. Otherwise that status stays pending, since the customer may still confirm
    another card with the client secret.
    """
    if intent.get("object") != "payment_intent" or not isinstance(intent.get("id"), str):
        raise ProviderError("Stripe answered with something that is not a PaymentIntent",
                            provider="stripe")
    raw = str(intent.get("status", ""))
    status = INTENT_STATUSES.get(raw)
    if status is None:
        raise ProviderError(f"unknown PaymentIntent status {raw!r}", provider="stripe",
                            code=ErrorCode.PROVIDER_ERROR)
    error = intent.get("last_payment_error")
    failure_code = failure_message = None
    if isinstance(error, dict):
        failure_code = error.get("decline_code") or error.get("code") or error.get("type")
        failure_message = error.get("message")
    if raw == "requires_payment_method" and after_confirm and isinstance(error, dict):
        status = Status.FAILED
    return ProviderPayment(
        status=status,
        reference=intent["id"],
        raw_status=raw,
        next_action=_next_action(intent, raw) if status is Status.PENDING else None,
        amount=_money(intent),
        failure_code=failure_code,
        failure_message=failure_message,
    )


def parse_search(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first PaymentIntent of a search result, or None."""
    items = data.get("data")
    if data.get("object") != "search_result" or not isinstance(items, list):
        raise ProviderError("Stripe answered a search with something else", provider="stripe")
    return items[0] if items and isinstance(items[0], dict) else None


def parse_refund(refund: Mapping[str, Any]) -> ProviderRefund:
    """A Refund object in pasarela terms (``refund_id`` from its metadata)."""
    if refund.get("object") != "refund" or not isinstance(refund.get("id"), str):
        raise ProviderError("Stripe answered with something that is not a Refund",
                            provider="stripe")
    raw = str(refund.get("status", ""))
    status = REFUND_STATUSES.get(raw)
    if status is None:
        raise ProviderError(f"unknown Refund status {raw!r}", provider="stripe")
    metadata = refund.get("metadata") or {}
    intent = refund.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return ProviderRefund(
        status=status,
        reference=refund["id"],
        amount=_money(refund),
        payment_reference=intent if isinstance(intent, str) else None,
        refund_id=metadata.get("refund_id") if isinstance(metadata, dict) else None,
    )


@attrs.frozen
class RefundPage:
    """One page of ``GET /v1/refunds``: its Refund objects, in Stripe's order, and the
    cursor of the next page (None on the last)."""

    refunds: list[Mapping[str, Any]]
    next_cursor: str | None


def parse_refund_page(data: Mapping[str, Any]) -> RefundPage:
    """A ``GET /v1/refunds`` answer: its Refund objects and the next cursor (the last
    object's id when ``has_more``)."""
    items = data.get("data")
    if data.get("object") != "list" or not isinstance(items, list):
        raise ProviderError("Stripe answered a refund list with something else",
                            provider="stripe")
    refunds: list[Mapping[str, Any]] = [item for item in items if isinstance(item, dict)]
    cursor = None
    if data.get("has_more") is True:
        cursor = _id_of(refunds[-1]) if refunds else None
        if cursor is None:
            raise ProviderError("Stripe said has_more with no object to continue after",
                                provider="stripe")
    return RefundPage(refunds, cursor)


def refund_id_of(refund: Mapping[str, Any]) -> str | None:
    """Our refund id, from the ``metadata["refund_id"]`` :func:`build_refund` sets."""
    metadata = refund.get("metadata")
    value = metadata.get("refund_id") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value else None


def timestamp(value: Any) -> datetime | None:
    """A Stripe unix timestamp as an aware datetime."""
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


def _id_of(value: Any) -> str | None:
    """An expandable field's id (the string, or the expanded object's ``id``)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def settlement_line(txn: Mapping[str, Any]) -> SettlementLine | None:
    """A balance transaction as a settlement line, or None for a type that is not a
    payment or a refund.

    ``amount`` is the gross amount as Stripe reports it (negative for a refund),
    ``fee`` the transaction's ``fee`` (the sum of ``fee_details``, kept in ``raw``),
    ``provider_reference`` the PaymentIntent of the expanded source (a Charge or a
    Refund; None when the source was not expanded or has no PaymentIntent).
    """
    if txn.get("object") != "balance_transaction" or not isinstance(txn.get("id"), str):
        raise ProviderError("Stripe listed something that is not a balance transaction",
                            provider="stripe")
    status = SETTLEMENT_TYPES.get(str(txn.get("type", "")))
    if status is None:
        return None
    amount = _money(txn)
    occurred_at = timestamp(txn.get("created"))
    if amount is None or occurred_at is None:
        raise ProviderError(f"balance transaction {txn['id']} has no amount, currency or "
                            "created", provider="stripe")
    fee = _money(txn, "fee")
    source = txn.get("source")
    intent = order_reference = None
    if isinstance(source, dict):
        intent = _id_of(source.get("payment_intent"))
        metadata = source.get("metadata")
        if status == "paid" and isinstance(metadata, dict):
            value = metadata.get("order_reference")
            order_reference = value if isinstance(value, str) and value else None
    details = txn.get("fee_details")
    raw: dict[str, Any] = {
        "id": txn["id"], "type": txn["type"], "status": txn.get("status"),
        "reporting_category": txn.get("reporting_category"), "net": txn.get("net"),
        "fee_details": list(details) if isinstance(details, list) else [],
        "source": _id_of(source), "available_on": txn.get("available_on"),
    }
    return SettlementLine(
        provider="stripe", provider_reference=intent, order_reference=order_reference,
        amount=amount, fee=fee, status=status, occurred_at=occurred_at, raw=raw,
    )


@attrs.frozen
class TransactionPage:
    """One page of balance transactions: its settlement lines and the cursor of the
    next page (None on the last)."""

    lines: list[SettlementLine]
    next_cursor: str | None


def parse_transactions(data: Mapping[str, Any]) -> TransactionPage:
    """A ``GET /v1/balance_transactions`` answer: its lines, in Stripe's order
    (newest first), and the next cursor (the last object's id when ``has_more``)."""
    items = data.get("data")
    if data.get("object") != "list" or not isinstance(items, list):
        raise ProviderError("Stripe answered a balance transaction list with something else",
                            provider="stripe")
    lines = [line for line in (settlement_line(item) for item in items) if line is not None]
    cursor = None
    if data.get("has_more") is True:
        cursor = _id_of(items[-1]) if items else None
        if cursor is None:
            raise ProviderError("Stripe said has_more with no object to continue after",
                                provider="stripe")
    return TransactionPage(lines, cursor)
