"""Culqi API v2, pure: ``build_*`` make :class:`httpx.Request`, ``parse_*`` read responses.

Facts (``../shared/reference/providers.md`` §2.1, §4): tokens are made on the
secure host with the public key, everything else on the API host with the secret
key, both as ``Authorization: Bearer``; amounts are integer céntimos; ids carry a
prefix (``ype_``, ``chr_``, ``ord_``, ``ref_``, ``evt_``) then ``test_``/``live_``;
an order's ``expiration_date`` is Unix seconds, a charge's ``creation_date`` Unix
milliseconds. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any, Final

import httpx

from pasarela.errors import (
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    UnknownOutcomeError,
)
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.provider import ProviderPayment, ProviderRefund, SettlementLine
from pasarela_yape.acquirer import CodeCharge, QrOrder
from pasarela_yape.actions import open_culqi_checkout
from pasarela_yape.errors import ERROR_TABLE, PROVIDER, error_from_response
from pasarela_yape.settings import YapeSettings


__all__ = [
    "ORDER_STATES",
    "PAGE_SIZE",
    "PAYMENT_KEY",
    "REFUND_KEY",
    "REFUND_REASONS",
    "build_charge_request",
    "build_charges_list_request",
    "build_delete_order_request",
    "build_get_refund_request",
    "build_get_request",
    "build_order_request",
    "build_refund_request",
    "build_refunds_search_request",
    "build_search_request",
    "build_token_request",
    "charge_fee",
    "culqi_reason",
    "match_search",
    "moment_of",
    "money_of",
    "parse_charge",
    "parse_charges_page",
    "parse_json",
    "parse_order",
    "parse_refund",
    "parse_refund_object",
    "parse_token",
    "search_windows",
    "settlement_lines",
]

CLIENT = "pasarela-yape"
CLIENT_VERSION = metadata.version(CLIENT)
#: The metadata key that ties a Culqi object to our payment id (for lost answers).
PAYMENT_KEY: Final = "pasarela_payment_id"
REFUND_KEY: Final = "pasarela_refund_id"

#: Culqi order states and what they mean here. Only ``paid`` is seen in a real
#: webhook; ``pending``/``expired``/``deleted`` are from Culqi's docs (unverified).
ORDER_STATES: Final[Mapping[str, Status]] = {
    "created": Status.PENDING,
    "pending": Status.PENDING,
    "paid": Status.SUCCEEDED,
    "expired": Status.EXPIRED,
    "deleted": Status.CANCELED,
    "canceled": Status.CANCELED,
    "cancelled": Status.CANCELED,
}

#: The only refund reasons Culqi accepts.
REFUND_REASONS: Final = ("duplicado", "fraudulento", "solicitud_comprador")
_REASON_ALIASES: Final[Mapping[str, str]] = {
    "duplicate": "duplicado",
    "fraud": "fraudulento",
    "fraudulent": "fraudulento",
    "requested_by_customer": "solicitud_comprador",
    "customer_request": "solicitud_comprador",
}

_SUCCESS_OUTCOME = "venta_exitosa"


def _headers(settings: YapeSettings, key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "x-culqi-env": "live" if settings.live else "test",
        "x-api-version": "2",
        "x-culqi-client": CLIENT,
        "x-culqi-client-version": CLIENT_VERSION,
    }


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _description(text: str) -> str:
    # Culqi takes 5 to 80 characters.
    text = " ".join(text.split())[:80]
    return text if len(text) >= 5 else f"{text} (pago)"[:80]


# --- build ---------------------------------------------------------------------


def build_token_request(settings: YapeSettings, charge: CodeCharge) -> httpx.Request:
    """``POST /v2/tokens/yape`` (public key): phone + approval code + amount -> ``ype_`` token."""
    body = {
        "amount": charge.amount.minor,
        "number_phone": charge.phone,
        "otp": charge.code,
        "metadata": {**charge.metadata, PAYMENT_KEY: charge.payment_id},
    }
    return httpx.Request(
        "POST", f"{settings.tokens_url}/v2/tokens/yape",
        headers=_headers(settings, settings.public_key), content=_json(body),
    )


def build_charge_request(
    settings: YapeSettings, charge: CodeCharge, token_id: str
) -> httpx.Request:
    """``POST /v2/charges`` (secret key) with the Yape token as ``source_id``."""
    body = {
        "amount": charge.amount.minor,
        "currency_code": charge.amount.currency,
        "email": charge.email,
        "source_id": token_id,
        "description": _description(charge.description),
        "metadata": {**charge.metadata, PAYMENT_KEY: charge.payment_id},
    }
    return httpx.Request(
        "POST", f"{settings.api_url}/v2/charges",
        headers=_headers(settings, settings.secret_key), content=_json(body),
    )


def build_order_request(settings: YapeSettings, order: QrOrder) -> httpx.Request:
    """``POST /v2/orders`` (secret key): an order payable by QR until ``expiration_date``."""
    body = {
        "amount": order.amount.minor,
        "currency_code": order.amount.currency,
        "description": _description(order.description),
        "order_number": order.payment_id,
        "client_details": {
            "first_name": order.first_name,
            "last_name": order.last_name,
            "email": order.email,
            "phone_number": order.phone,
        },
        "expiration_date": int(order.expires_at.timestamp()),
        "metadata": {
            **order.metadata,
            "order_reference": order.order_reference,
            PAYMENT_KEY: order.payment_id,
        },
    }
    return httpx.Request(
        "POST", f"{settings.api_url}/v2/orders",
        headers=_headers(settings, settings.secret_key), content=_json(body),
    )


def build_get_request(settings: YapeSettings, reference: str) -> httpx.Request:
    """``GET /v2/orders/{id}`` or ``GET /v2/charges/{id}``, by the id's prefix."""
    kind = "orders" if reference.startswith("ord_") else "charges"
    return httpx.Request(
        "GET", f"{settings.api_url}/v2/{kind}/{reference}",
        headers=_headers(settings, settings.secret_key),
    )


def build_delete_order_request(settings: YapeSettings, reference: str) -> httpx.Request:
    return httpx.Request(
        "DELETE", f"{settings.api_url}/v2/orders/{reference}",
        headers=_headers(settings, settings.secret_key),
    )


def culqi_reason(reason: str) -> str:
    """Culqi's refund reason for *reason* (default: the buyer asked for it)."""
    key = (reason or "").strip().lower()
    if key in REFUND_REASONS:
        return key
    return _REASON_ALIASES.get(key, "solicitud_comprador")


def build_refund_request(
    settings: YapeSettings, charge_id: str, amount: Money, *, refund_id: str, reason: str
) -> httpx.Request:
    """``POST /v2/refunds`` ``{amount, charge_id, reason}``; partial amounts allowed."""
    body = {
        "amount": amount.minor,
        "charge_id": charge_id,
        "reason": culqi_reason(reason),
        "metadata": {REFUND_KEY: refund_id},
    }
    return httpx.Request(
        "POST", f"{settings.api_url}/v2/refunds",
        headers=_headers(settings, settings.secret_key), content=_json(body),
    )


def search_windows(created_at: datetime, window: timedelta) -> tuple[tuple[int, int], ...]:
    """The ``creation_date_from``/``creation_date_to`` pairs that cover *window* around
    *created_at* whatever unit Culqi's list filters read: Unix seconds first, then
    Unix milliseconds (the unit of a charge's own ``creation_date``, cassettes). Culqi
    documents neither (README, "Assumptions"), so a search asks in both."""
    low, high = _aware(created_at - window).timestamp(), _aware(created_at + window).timestamp()
    return ((int(low), int(high) + 1), (int(low * 1000), int(high * 1000) + 1))


def build_search_request(
    settings: YapeSettings, kind: str, amount: Money, created_at: datetime,
    *, window: timedelta = timedelta(minutes=30), unit: int = 0, after: str | None = None,
) -> httpx.Request:
    """``GET /v2/charges`` or ``/v2/orders`` filtered by amount and creation time.

    Used to find an object whose creation answer was lost; the match is then made
    on our payment id in its metadata (:func:`match_search`). The filter names
    follow Culqi's list API (``amount``, ``currency_code``, ``creation_date_from``,
    ``creation_date_to``, ``limit``, ``after``); *unit* picks the pair of
    :func:`search_windows` (0: seconds, 1: milliseconds).
    """
    since, until = search_windows(created_at, window)[unit]
    params = {
        "amount": str(amount.minor),
        "currency_code": amount.currency,
        "creation_date_from": str(since),
        "creation_date_to": str(until),
        "limit": str(PAGE_SIZE),
    }
    if after:
        params["after"] = after
    return httpx.Request(
        "GET", f"{settings.api_url}/v2/{kind}", params=params,
        headers=_headers(settings, settings.secret_key),
    )


def build_get_refund_request(settings: YapeSettings, reference: str) -> httpx.Request:
    """``GET /v2/refunds/{id}`` (secret key)."""
    return httpx.Request(
        "GET", f"{settings.api_url}/v2/refunds/{reference}",
        headers=_headers(settings, settings.secret_key),
    )


def build_refunds_search_request(
    settings: YapeSettings, created_at: datetime, *, window: timedelta = timedelta(minutes=30),
    unit: int = 0, after: str | None = None,
) -> httpx.Request:
    """``GET /v2/refunds`` created around *created_at* (the SDK's refund list filters:
    ``creation_date_from``/``creation_date_to``; the unit as :func:`search_windows`)."""
    since, until = search_windows(created_at, window)[unit]
    params = {"creation_date_from": str(since), "creation_date_to": str(until),
              "limit": str(PAGE_SIZE)}
    if after:
        params["after"] = after
    return httpx.Request(
        "GET", f"{settings.api_url}/v2/refunds", params=params,
        headers=_headers(settings, settings.secret_key),
    )


# --- parse ---------------------------------------------------------------------


def parse_json(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of a 2xx answer; a Culqi error raises the mapped error."""
    if not response.is_success:
        raise error_from_response(response)
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderUnavailableError(
            f"Culqi answered HTTP {response.status_code} with a body that is not a JSON object",
            provider=PROVIDER, http_status=response.status_code,
        )
    return body


def _unexpected(what: str, body: Mapping[str, Any]) -> ProviderError:
    return ProviderUnavailableError(
        f"Culqi answered with an unexpected {what}: object={body.get('object')!r}",
        provider=PROVIDER,
    )


def money_of(body: Mapping[str, Any], field: str = "amount") -> Money | None:
    value, currency = body.get(field), body.get("currency_code")
    if isinstance(value, bool) or not isinstance(currency, str):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return Money(value, currency) if isinstance(value, int) else None


def moment_of(value: Any, *, ms: bool) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000 if ms else value, UTC)


def parse_token(response: httpx.Response) -> str:
    """The ``ype_`` token id of a Yape token answer."""
    body = parse_json(response)
    token = body.get("id")
    if body.get("object") != "token" or not isinstance(token, str) or not token.startswith("ype_"):
        raise _unexpected("Yape token", body)
    return token


def parse_charge(body: Mapping[str, Any]) -> ProviderPayment:
    """A Culqi charge in lifecycle terms.

    ``outcome.type == "venta_exitosa"`` with ``capture: true`` is a sale: succeeded.
    With ``capture: false`` it is only an authorization (money not taken yet):
    processing. Any other outcome is a decline: failed, with the mapped code.
    """
    reference = body.get("id")
    if body.get("object") != "charge" or not isinstance(reference, str):
        raise _unexpected("charge", body)
    outcome = body.get("outcome") if isinstance(body.get("outcome"), Mapping) else {}
    assert isinstance(outcome, Mapping)
    amount = money_of(body)
    kind = str(outcome.get("type") or "")
    if kind == _SUCCESS_OUTCOME:
        captured = body.get("capture") is not False
        return ProviderPayment(
            status=Status.SUCCEEDED if captured else Status.PROCESSING,
            reference=reference,
            raw_status=kind if captured else f"{kind}:authorized",
            amount=amount,
        )
    decline = str(outcome.get("decline_code") or outcome.get("code") or kind or "declined")
    rule = ERROR_TABLE.get(decline)
    return ProviderPayment(
        status=Status.FAILED,
        reference=reference,
        raw_status=kind or "declined",
        amount=amount,
        failure_code=str(rule.code if rule else ErrorCode.DECLINED),
        failure_message=str(outcome.get("merchant_message") or decline),
    )


def parse_order(body: Mapping[str, Any], settings: YapeSettings) -> ProviderPayment:
    """A Culqi order in lifecycle terms. A pending one is paid in Culqi's checkout for
    that order (which draws the wallet QR): its next action opens it, with the public
    key and the order id; its ``payment_code`` (a PagoEfectivo CIP) is offered as such.
    A Culqi order has no QR field of its own."""
    reference = body.get("id")
    if body.get("object") != "order" or not isinstance(reference, str):
        raise _unexpected("order", body)
    state = str(body.get("state") or "")
    status = ORDER_STATES.get(state)
    if status is None:
        raise ProviderUnavailableError(
            f"Culqi order {reference} is in an unknown state {state!r}", provider=PROVIDER,
            provider_code=state,
        )
    amount = money_of(body)
    expires_at = moment_of(body.get("expiration_date"), ms=False)
    next_action = None
    if status is Status.PENDING:
        if amount is None:
            raise _unexpected("order without amount", body)
        code = body.get("payment_code")
        description = body.get("description")
        next_action = open_culqi_checkout(
            script_url=settings.checkout_url, public_key=settings.public_key,
            order_id=reference, amount=amount, expires_at=expires_at,
            title=description if isinstance(description, str) and description else reference,
            cash_code=code if isinstance(code, str) and code else None,
        )
    return ProviderPayment(
        status=status,
        reference=reference,
        raw_status=state,
        amount=amount,
        expires_at=expires_at,
        next_action=next_action,
        failure_code=str(ErrorCode.EXPIRED) if status is Status.EXPIRED else None,
    )


def parse_refund(
    response: httpx.Response, *, currency: str, refund_id: str
) -> ProviderRefund:
    """A Culqi refund: created means done (Culqi has no pending refund state)."""
    try:
        body = parse_json(response)
    except ProviderUnavailableError as exc:
        if response.is_success or response.status_code >= 500:
            raise UnknownOutcomeError(
                f"refund sent to Culqi but its outcome is unknown: {exc.message}",
                provider=PROVIDER, http_status=response.status_code,
            ) from exc
        raise
    if body.get("object") != "refund" or not isinstance(body.get("id"), str):
        raise UnknownOutcomeError(
            "refund sent to Culqi but its answer is not a refund", provider=PROVIDER
        )
    return parse_refund_object(body, currency=currency, refund_id=refund_id)


def parse_refund_object(
    body: Mapping[str, Any], *, currency: str, refund_id: str | None
) -> ProviderRefund:
    """A Culqi refund object (``object: "refund"``; its keys as the cassette
    ``RefundTest.test_refund_create`` recorded): created means done."""
    reference = body.get("id")
    if body.get("object") != "refund" or not isinstance(reference, str):
        raise _unexpected("refund", body)
    value = body.get("amount")
    amount = Money(value, currency) if isinstance(value, int) and value > 0 else None
    charge = body.get("charge_id")
    return ProviderRefund(
        status=RefundStatus.SUCCEEDED,
        reference=reference,
        amount=amount,
        payment_reference=charge if isinstance(charge, str) else None,
        refund_id=refund_id,
    )


def match_search(
    body: Mapping[str, Any], payment_id: str, *, key: str = PAYMENT_KEY
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The listed object whose metadata *key* is *payment_id* (our own reference, or an
    order whose ``order_number`` is it), and the cursor of the next page (None: none)."""
    items = body.get("data")
    if not isinstance(items, list):
        raise _unexpected("list", body)
    for item in items:
        if not isinstance(item, Mapping):
            continue
        metadata = item.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get(key) == payment_id:
            return item, None
        if item.get("object") == "order" and item.get("order_number") == payment_id:
            return item, None
    return None, _next_cursor(body)


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging") if isinstance(body.get("paging"), Mapping) else {}
    assert isinstance(paging, Mapping)
    cursors = paging.get("cursors") if isinstance(paging.get("cursors"), Mapping) else {}
    assert isinstance(cursors, Mapping)
    after = cursors.get("after")
    if isinstance(after, str) and after:
        return after
    following = paging.get("next")
    if isinstance(following, str) and following:
        found = httpx.URL(following).params.get("after")
        if found:
            return str(found)
    return None


# --- settlements (the charges list) ---------------------------------------------------

#: Charges per page of ``GET /v2/charges`` (Culqi's maximum ``limit``).
PAGE_SIZE: Final = 100


def _aware(moment: datetime) -> datetime:
    """*moment*, taken as UTC when naive."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def build_charges_list_request(
    settings: YapeSettings, since: datetime, until: datetime, *, after: str | None = None,
    limit: int = PAGE_SIZE,
) -> httpx.Request:
    """``GET /v2/charges`` created in ``[since, until)``, one page (``after``: its cursor).

    The creation-date filters are in the units :func:`build_search_request` uses
    (Unix seconds, **unverified**), widened to whole seconds: :func:`settlement_lines`
    keeps only the charges of the window itself.
    """
    start = int(_aware(since).timestamp())
    end = int(_aware(until).timestamp())
    if end < _aware(until).timestamp():
        end += 1
    params = {
        "creation_date_from": str(start),
        "creation_date_to": str(end),
        "limit": str(limit),
    }
    if after:
        params["after"] = after
    return httpx.Request(
        "GET", f"{settings.api_url}/v2/charges", params=params,
        headers=_headers(settings, settings.secret_key),
    )


def parse_charges_page(body: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str | None]:
    """The charges of one list page and the cursor of the next (None: the last page).

    The cursor is ``paging.cursors.after``, else the ``after`` parameter of
    ``paging.next``.
    """
    items = body.get("data")
    if not isinstance(items, list):
        raise _unexpected("list", body)
    charges = [item for item in items
               if isinstance(item, Mapping) and item.get("object", "charge") == "charge"]
    return charges, _next_cursor(body)


def charge_fee(charge: Mapping[str, Any]) -> Money | None:
    """What Culqi kept of *charge*: ``total_fee``, which already includes the IGV
    (``total_fee_taxes``): in the cassettes ``total_fee = variable_fee.total +
    total_fee_taxes`` and ``transfer_amount = amount - total_fee``. Without
    ``total_fee``, the variable and fixed fees plus the taxes; None if none is given."""
    currency = charge.get("currency_code")
    if not isinstance(currency, str):
        return None

    def minor(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None

    total = minor(charge.get("total_fee"))
    if total is not None:
        return Money(total, currency)
    details = charge.get("fee_details")
    if not isinstance(details, Mapping):
        return None
    parts = [minor(part.get("total")) for part in (details.get("variable_fee"),
                                                    details.get("fixed_fee"))
             if isinstance(part, Mapping)]
    known = [p for p in parts if p is not None]
    if not known:
        return None
    return Money(sum(known) + (minor(charge.get("total_fee_taxes")) or 0), currency)


def settlement_lines(
    charge: Mapping[str, Any], since: datetime, until: datetime
) -> list[SettlementLine]:
    """The settlement lines of one listed charge created in ``[since, until)``.

    A captured sale (``outcome.type == "venta_exitosa"``, ``capture`` not false) is a
    ``paid`` line for its ``amount`` with its fee (:func:`charge_fee`); one with
    ``amount_refunded > 0`` also gives a ``refunded`` line, without fee, for the
    amount refunded.
    Declined or only authorized charges, and charges outside the window, give none.
    Dated by ``creation_date`` (Unix milliseconds); the provider reference is the
    charge id, the order reference the ``order_reference`` of its metadata.
    """
    reference = charge.get("id")
    outcome = charge.get("outcome") if isinstance(charge.get("outcome"), Mapping) else {}
    assert isinstance(outcome, Mapping)
    amount = money_of(charge)
    occurred_at = moment_of(charge.get("creation_date"), ms=True)
    if (not isinstance(reference, str) or amount is None or occurred_at is None
            or outcome.get("type") != _SUCCESS_OUTCOME or charge.get("capture") is False
            or not _aware(since) <= occurred_at < _aware(until)):
        return []
    metadata = charge.get("metadata") if isinstance(charge.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    order_reference = metadata.get("order_reference")
    raw = {key: charge.get(key) for key in (
        "id", "creation_date", "amount", "currency_code", "amount_refunded",
        "current_amount", "total_fee", "fee_details", "total_fee_taxes", "transfer_amount")}
    common: dict[str, Any] = {
        "provider": PROVIDER, "provider_reference": reference,
        "order_reference": order_reference if isinstance(order_reference, str) else None,
        "amount": amount, "occurred_at": occurred_at, "raw": raw,
    }
    lines = [SettlementLine(fee=charge_fee(charge), status="paid", **common)]
    refunded = charge.get("amount_refunded")
    if isinstance(refunded, int) and not isinstance(refunded, bool) and refunded > 0:
        lines.append(SettlementLine(fee=None, status="refunded",
                                    **{**common, "amount": Money(refunded, amount.currency)}))
    return lines
