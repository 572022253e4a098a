"""Pure request builders and answer parsers for Mercado Pago's Payments API.

Every request goes to ``base_url`` with ``Authorization: Bearer <access token>``;
the ones that create (a payment, a refund) carry ``X-Idempotency-Key`` derived from
pasarela's own key, so a retried request is recognised. Amounts travel as JSON
numbers in major units (``149.9``), written from :class:`~decimal.Decimal` text and
read with ``parse_float=Decimal``: never a float.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import attrs

from pasarela.errors import ErrorCode, ProviderError
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.next_action import NextAction
from pasarela.provider import (
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    header_key,
    imported_on_use,
)
from pasarela_mercadopago.actions import pay_pagoefectivo
from pasarela_mercadopago.errors import declined, error_from_response, status_of
from pasarela_mercadopago.settings import MercadoPagoSettings


if TYPE_CHECKING:
    import httpx
else:
    httpx = imported_on_use("httpx", globals())


__all__ = [
    "CASH_METHOD", "REPORT_COLUMNS", "WALLET_METHOD", "amount_text", "build_cancel",
    "build_create", "build_get", "build_get_refund", "build_list_refunds", "build_refund",
    "build_report_download", "build_report_generate", "build_report_list", "build_search",
    "build_yape_token", "dumps", "mp_date", "parse_json", "parse_payment", "parse_refund",
    "parse_report", "parse_report_list", "parse_search",
]

NAME: Final = "mercadopago"
CASH_METHOD: Final = "pagoefectivo_atm"
WALLET_METHOD: Final = "yape"
#: The release report's columns the adapter reads (the report's field glossary).
REPORT_COLUMNS: Final = ("DATE", "SOURCE_ID", "EXTERNAL_REFERENCE", "RECORD_TYPE",
                         "DESCRIPTION", "NET_CREDIT_AMOUNT", "NET_DEBIT_AMOUNT",
                         "GROSS_AMOUNT", "MP_FEE_AMOUNT", "FINANCING_FEE_AMOUNT",
                         "PAYMENT_METHOD")
#: How many payments one search page answers (an assumption: see the README).
SEARCH_LIMIT: Final = 100
_AMOUNT_MARK: Final = "\u0000amount\u0000"


def amount_text(money: Money) -> str:
    """*money* in major units as Mercado Pago writes it (``149.90``)."""
    return format(money.amount, "f")


def dumps(body: Mapping[str, Any], amount: Money | None = None) -> bytes:
    """*body* as JSON; an *amount* placed as ``_AMOUNT_MARK`` becomes a JSON number
    written from its exact decimal text."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if amount is not None:
        text = text.replace(json.dumps(_AMOUNT_MARK), amount_text(amount))
    return text.encode("utf-8")


def mp_date(moment: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS±hh:mm``, as ``date_of_expiration`` takes it."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "+00:00")


def _headers(settings: MercadoPagoSettings, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {settings.access_token}",
               "Content-Type": "application/json", "Accept": "application/json"}
    if key is not None:
        headers["X-Idempotency-Key"] = header_key(key)
    return headers


def _url(settings: MercadoPagoSettings, path: str) -> str:
    return settings.base_url.rstrip("/") + path


# --- payments -------------------------------------------------------------------------


def build_create(settings: MercadoPagoSettings, body: Mapping[str, Any], amount: Money, *,
                 key: str) -> httpx.Request:
    """``POST /v1/payments`` with *body* (``transaction_amount`` from *amount*)."""
    payload = {"transaction_amount": _AMOUNT_MARK, **body}
    return httpx.Request("POST", _url(settings, "/v1/payments"), headers=_headers(settings, key),
                         content=dumps(payload, amount))


def build_get(settings: MercadoPagoSettings, reference: str) -> httpx.Request:
    return httpx.Request("GET", _url(settings, f"/v1/payments/{reference}"),
                         headers=_headers(settings))


def build_search(settings: MercadoPagoSettings, params: Mapping[str, str | int]
                 ) -> httpx.Request:
    """``GET /v1/payments/search`` with *params* (``external_reference``, a
    ``range``/``begin_date``/``end_date`` window, ``limit``, ``offset``)."""
    return httpx.Request("GET", _url(settings, "/v1/payments/search"),
                         params=dict(params), headers=_headers(settings))


def build_cancel(settings: MercadoPagoSettings, reference: str) -> httpx.Request:
    """``PUT /v1/payments/{id}`` with ``status: cancelled`` (a pending payment)."""
    return httpx.Request("PUT", _url(settings, f"/v1/payments/{reference}"),
                         headers=_headers(settings), content=dumps({"status": "cancelled"}))


def build_refund(settings: MercadoPagoSettings, reference: str, amount: Money | None, *,
                 key: str) -> httpx.Request:
    """``POST /v1/payments/{id}/refunds``: ``{"amount"}`` for part, no body for all."""
    content = dumps({"amount": _AMOUNT_MARK}, amount) if amount is not None else b"{}"
    return httpx.Request("POST", _url(settings, f"/v1/payments/{reference}/refunds"),
                         headers=_headers(settings, key), content=content)


def build_get_refund(settings: MercadoPagoSettings, reference: str, refund: str
                     ) -> httpx.Request:
    return httpx.Request("GET", _url(settings, f"/v1/payments/{reference}/refunds/{refund}"),
                         headers=_headers(settings))


def build_list_refunds(settings: MercadoPagoSettings, reference: str) -> httpx.Request:
    return httpx.Request("GET", _url(settings, f"/v1/payments/{reference}/refunds"),
                         headers=_headers(settings))


def build_yape_token(settings: MercadoPagoSettings, *, phone: str, otp: str,
                     request_id: str) -> httpx.Request:
    """``POST /platforms/pci/yape/v1/payment?public_key=...``: the one-use Yape token
    for the payer's phone and approval code (no access token: the public key)."""
    query = urlencode({"public_key": settings.public_key})
    return httpx.Request(
        "POST", _url(settings, f"/platforms/pci/yape/v1/payment?{query}"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        content=dumps({"phoneNumber": phone, "otp": otp, "requestId": request_id}))


def parse_json(response: httpx.Response, *, now: datetime | None = None,
               field_names: Mapping[str, str] | None = None) -> Any:
    """The JSON of a 2xx answer (decimals exact); the mapped error otherwise."""
    if not response.is_success:
        raise error_from_response(response, now=now, field_names=field_names)
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        raise ProviderError(f"Mercado Pago answered HTTP {response.status_code} with a body "
                            "that is not JSON", provider=NAME,
                            http_status=response.status_code) from None


def _money(value: Any, currency: Any) -> Money | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str) or not currency:
        return None
    try:
        return Money.of(Decimal(str(value)).quantize(Decimal("0.01")), str(currency))
    except (InvalidOperation, ValueError):
        return None


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _cash_action(payment: Mapping[str, Any], amount: Money | None) -> NextAction | None:
    details = payment.get("transaction_details") or {}
    code = details.get("payment_method_reference_id") or details.get("verification_code")
    if amount is None or not code:
        return None
    url = details.get("external_resource_url")
    return pay_pagoefectivo(code=str(code), amount=amount,
                            expires_at=_when(payment.get("date_of_expiration")),
                            url=str(url) if url else None)


#: The network each ``payment_method_id`` runs on (pasarela's network names).
NETWORKS: Final[Mapping[str, str]] = {
    "pagoefectivo_atm": "pagoefectivo", "yape": "yape", "visa": "visa",
    "master": "mastercard", "amex": "amex", "diners": "diners",
    "debvisa": "visa", "debmaster": "mastercard"}


def parse_payment(payment: Any, *, raise_rejected: bool = False) -> ProviderPayment:
    """A payment object in lifecycle terms. With *raise_rejected* (a create), a
    rejected payment raises its decline instead."""
    if not isinstance(payment, dict) or payment.get("id") is None:
        raise ProviderError("Mercado Pago answered a payment without an id", provider=NAME)
    raw, detail = str(payment.get("status") or ""), payment.get("status_detail")
    status = status_of(raw, str(detail) if detail is not None else None)
    if status is Status.FAILED and raise_rejected:
        raise declined(payment)
    amount = _money(payment.get("transaction_amount"), payment.get("currency_id"))
    action = None
    if status is Status.PENDING and payment.get("payment_method_id") == CASH_METHOD:
        action = _cash_action(payment, amount)
    return ProviderPayment(
        status=status, reference=str(payment["id"]),
        network=NETWORKS.get(str(payment.get("payment_method_id") or "")),
        raw_status=f"{raw}/{detail}" if detail else raw, next_action=action, amount=amount,
        expires_at=_when(payment.get("date_of_expiration")),
        failure_code=str(detail) if status is Status.FAILED and detail else None,
        failure_message=str(detail) if status is Status.FAILED and detail else None,
    )


def parse_search(answer: Any) -> tuple[list[dict[str, Any]], int]:
    """The results of a search page and the total the paging reports."""
    if not isinstance(answer, dict):
        raise ProviderError("Mercado Pago answered a search that is not an object",
                            provider=NAME)
    results = [r for r in answer.get("results") or [] if isinstance(r, dict)]
    paging = answer.get("paging") or {}
    total = paging.get("total") if isinstance(paging, dict) else None
    return results, int(total) if isinstance(total, int) else len(results)


_REFUND_STATUSES: Final = {"approved": RefundStatus.SUCCEEDED, "in_process": RefundStatus.PENDING,
                           "pending": RefundStatus.PENDING, "rejected": RefundStatus.FAILED,
                           "cancelled": RefundStatus.FAILED}


def parse_refund(refund: Any, currency: str, *, refund_id: str | None = None) -> ProviderRefund:
    if not isinstance(refund, dict) or refund.get("id") is None:
        raise ProviderError("Mercado Pago answered a refund without an id", provider=NAME)
    status = _REFUND_STATUSES.get(str(refund.get("status")), RefundStatus.PENDING)
    payment = refund.get("payment_id")
    return ProviderRefund(status=status, reference=str(refund["id"]),
                          amount=_money(refund.get("amount"), currency),
                          payment_reference=str(payment) if payment is not None else None,
                          refund_id=refund_id)


# --- the release report ---------------------------------------------------------------


def _report_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report_generate(settings: MercadoPagoSettings, since: datetime, until: datetime
                          ) -> httpx.Request:
    """``POST /v1/account/release_report``: make the report of ``[since, until)``."""
    body = {"begin_date": _report_date(since),
            "end_date": _report_date(until - timedelta(seconds=1))}
    return httpx.Request("POST", _url(settings, "/v1/account/release_report"),
                         headers=_headers(settings), content=dumps(body))


def build_report_list(settings: MercadoPagoSettings) -> httpx.Request:
    return httpx.Request("GET", _url(settings, "/v1/account/release_report/list"),
                         headers=_headers(settings))


def build_report_download(settings: MercadoPagoSettings, file_name: str) -> httpx.Request:
    headers = _headers(settings)
    headers["Accept"] = "text/csv"
    return httpx.Request("GET", _url(settings, f"/v1/account/release_report/{file_name}"),
                         headers=headers)


def parse_report_list(answer: Any, since: datetime, until: datetime) -> str | None:
    """The file name of the newest report covering exactly ``[since, until)``."""
    wanted = (_report_date(since), _report_date(until - timedelta(seconds=1)))
    found = [r for r in answer if isinstance(r, dict)] if isinstance(answer, list) else []
    matching = [r for r in found if (r.get("begin_date"), r.get("end_date")) == wanted
                and r.get("file_name")]
    if not matching:
        return None
    newest = max(matching, key=lambda r: str(r.get("date_created") or ""))
    return str(newest["file_name"])


def _decimal(row: Mapping[str, str], column: str) -> Decimal:
    text = (row.get(column) or "").strip()
    if not text:
        return Decimal(0)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ProviderError(f"release report: {column} is not a number ({text[:20]!r})",
                            provider=NAME) from None


#: Release lines read as settlement lines: DESCRIPTION -> the status word reconcile reads.
_LINES: Final = {"payment": "approved", "refund": "refunded", "chargeback": "chargeback"}


def parse_report(content: bytes, *, currency: str = "PEN") -> list[SettlementLine]:
    """The release report's ``release`` lines of payments, refunds and chargebacks as
    settlement lines (others, such as withdrawals and balances, are skipped): the
    gross amount, the fee as Mercado Pago's fee plus the financing fee (both
    reported negative), numbered from 1 in the report's order."""
    text = content.decode("utf-8-sig")
    first = text.split("\n", 1)[0]
    separator = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=separator)
    missing = {"SOURCE_ID", "RECORD_TYPE", "DESCRIPTION", "GROSS_AMOUNT", "DATE"} - set(
        reader.fieldnames or ())
    if missing:
        raise ProviderError(f"release report lacks columns {sorted(missing)}", provider=NAME,
                            code=ErrorCode.PROVIDER_ERROR)
    lines: list[SettlementLine] = []
    for row in reader:
        if (row.get("RECORD_TYPE") or "").strip() != "release":
            continue
        status = _LINES.get((row.get("DESCRIPTION") or "").strip())
        if status is None:
            continue
        gross = abs(_decimal(row, "GROSS_AMOUNT"))
        fee = abs(_decimal(row, "MP_FEE_AMOUNT")) + abs(_decimal(row, "FINANCING_FEE_AMOUNT"))
        when = _when((row.get("DATE") or "").strip())
        if when is None:
            raise ProviderError(f"release report: DATE {row.get('DATE')!r} is not a date",
                                provider=NAME)
        reference = (row.get("EXTERNAL_REFERENCE") or "").strip() or None
        lines.append(SettlementLine(
            provider=NAME, provider_reference=(row.get("SOURCE_ID") or "").strip() or None,
            order_reference=reference, amount=Money.of(gross, currency),
            fee=Money.of(fee, currency), status=status, occurred_at=when,
            line_no=len(lines) + 1, raw=dict(row)))
    return lines


def evolve_refund(refund: ProviderRefund, refund_id: str) -> ProviderRefund:
    return refund if refund.refund_id else attrs.evolve(refund, refund_id=refund_id)


def search_window(created: Sequence[datetime]) -> dict[str, str]:
    """A ``date_created`` range around *created* (a minute each side)."""
    low = min(created) - timedelta(minutes=1)
    high = max(created) + timedelta(minutes=1)
    return {"range": "date_created", "begin_date": _report_date(low),
            "end_date": _report_date(high)}
