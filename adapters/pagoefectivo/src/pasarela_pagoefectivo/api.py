"""PagoEfectivo's HTTP API (spec v1.1) as pure ``build_*`` and ``parse_*`` functions.

Nothing here does I/O or reads a clock: the caller passes ``now``. Requests are
:class:`httpx.Request` values; responses are parsed from :class:`httpx.Response`
values, with JSON numbers kept as decimals. The field rules of a CIP creation are
in :mod:`pasarela_pagoefectivo.fields` (:func:`cip_fields`, re-exported here).

Endpoints, relative to the API base: ``POST /v1/authorizations``,
``POST /v1/cips``, ``POST /v1/cips/search``, ``PATCH /v1/cips/{cip}`` and
``DELETE /v1/cips/{cip}``. All times are Lima time written with ``-05:00``
(Peru keeps no daylight saving time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela import jsontext
from pasarela.errors import ProviderError, UnknownOutcomeError
from pasarela.money import Money
from pasarela.provider import imported_on_use
from pasarela_pagoefectivo.errors import PROVIDER, error_from_response, response_code
from pasarela_pagoefectivo.fields import (
    CURRENCIES,
    DOCUMENT_TYPES,
    LIMA,
    NO_DATE,
    cip_fields,
    lima_timestamp,
    parse_timestamp,
)
from pasarela_pagoefectivo.settings import PagoEfectivoSettings


if TYPE_CHECKING:
    import httpx
else:
    httpx = imported_on_use("httpx", globals())


__all__ = [
    "CURRENCIES",
    "DOCUMENT_TYPES",
    "LIMA",
    "NO_DATE",
    "STATUS_EXPIRED",
    "STATUS_GENERATED",
    "STATUS_PAID",
    "CipState",
    "CreatedCip",
    "Token",
    "auth_hash",
    "build_authorization_request",
    "build_create_request",
    "build_delete_request",
    "build_extend_request",
    "build_search_request",
    "cip_fields",
    "lima_timestamp",
    "parse_ack_response",
    "parse_authorization_response",
    "parse_create_response",
    "parse_search_response",
    "parse_timestamp",
]

#: Search statuses (spec screenshot: 22 Generado; 21/23 from merchant code).
STATUS_EXPIRED: Final = 21
STATUS_GENERATED: Final = 22
STATUS_PAID: Final = 23  # "Cancelado": PagoEfectivo's word for paid

_JSON: Final = "application/json"


# --- authorization ------------------------------------------------------------------


def auth_hash(service_id: int, access_key: str, secret_key: str, date_request: str) -> str:
    """``hashString``: lower-case hex SHA-256 of ``idService.accessKey.secretKey.dateRequest``."""
    text = f"{service_id}.{access_key}.{secret_key}.{date_request}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@attrs.frozen(kw_only=True)
class Token:
    """A bearer token and its validity (2 h by default)."""

    value: str = attrs.field(repr=False)
    start: datetime | None
    expires: datetime

    def usable(self, now: datetime, margin: timedelta) -> bool:
        return now < self.expires - margin


def build_authorization_request(settings: PagoEfectivoSettings, now: datetime) -> httpx.Request:
    date_request = lima_timestamp(now)
    body = {
        "accessKey": settings.access_key,
        "idService": settings.service_id,
        "dateRequest": date_request,
        "hashString": auth_hash(
            settings.service_id, settings.access_key, settings.secret_key, date_request
        ),
    }
    return httpx.Request(
        "POST",
        f"{settings.api_base}/v1/authorizations",
        headers={"Content-Type": _JSON, "Accept": _JSON},
        content=jsontext.dumps(body),
    )


def _success(response: httpx.Response, operation: str, *, unknown_if_bad: bool = False) -> Any:
    """The parsed body of a successful answer, or the mapped error raised."""
    if not 200 <= response.status_code < 300:
        raise error_from_response(response, operation=operation)
    try:
        body = jsontext.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, Mapping) or response_code(body) != "100":
        error = UnknownOutcomeError if unknown_if_bad else ProviderError
        raise error(
            f"PagoEfectivo answered the {operation} with HTTP {response.status_code} but no "
            "code 100",
            provider=PROVIDER,
            provider_code=response_code(body),
            http_status=response.status_code,
        )
    return body


def _malformed(operation: str, detail: str, *, unknown: bool = False) -> ProviderError:
    error = UnknownOutcomeError if unknown else ProviderError
    return error(
        f"PagoEfectivo's answer to the {operation} is malformed: {detail}", provider=PROVIDER
    )


def parse_authorization_response(response: httpx.Response, *, now: datetime) -> Token:
    """Parse a 201 ``{code: 100, data: {token, tokenStart, tokenExpires}}``.

    Without a readable ``tokenExpires`` the documented default of 2 h from *now* is used.
    """
    body = _success(response, "authorization")
    data = body.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("token"), str):
        raise _malformed("authorization", "no data.token")
    try:
        start = parse_timestamp(data.get("tokenStart"))
        expires = parse_timestamp(data.get("tokenExpires"))
    except ValueError:
        start = expires = None
    return Token(value=data["token"], start=start, expires=expires or now + timedelta(hours=2))


def _headers(settings: PagoEfectivoSettings, token: str) -> dict[str, str]:
    return {
        "Content-Type": _JSON,
        "Accept": _JSON,
        "Accept-Language": settings.language,
        "Authorization": f"Bearer {token}",
    }


# --- create ---------------------------------------------------------------------


def build_create_request(
    settings: PagoEfectivoSettings, token: str, fields: Mapping[str, Any]
) -> httpx.Request:
    headers = _headers(settings, token)
    headers["Origin"] = settings.origin
    return httpx.Request(
        "POST", f"{settings.api_base}/v1/cips", headers=headers, content=jsontext.dumps(fields)
    )


def _money(value: object, currency: object, what: str, *, unknown: bool = False) -> Money:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _malformed(what, f"amount {value!r}", unknown=unknown)
    try:
        return Money.of(Decimal(str(value)), str(currency))
    except (ArithmeticError, ValueError):
        raise _malformed(what, f"amount {value!r} {currency!r}", unknown=unknown) from None


@attrs.frozen(kw_only=True)
class CreatedCip:
    """A CIP as ``POST /v1/cips`` returns it."""

    cip: str
    amount: Money
    transaction_code: str
    expires_at: datetime | None
    url: str | None


def parse_create_response(response: httpx.Response) -> CreatedCip:
    """Parse a 201 ``{code: 100, data: {cip, currency, amount, transactionCode,
    dateExpiry, cipUrl}}``. A success answer that cannot be read leaves the outcome
    unknown (a CIP may exist), so it raises :class:`UnknownOutcomeError`."""
    body = _success(response, "CIP creation", unknown_if_bad=True)
    data = body.get("data")
    cip = data.get("cip") if isinstance(data, Mapping) else None
    if isinstance(cip, bool) or not isinstance(cip, int | str) or not str(cip).strip():
        raise _malformed("CIP creation", "no data.cip", unknown=True)
    assert isinstance(data, Mapping)
    try:
        expires_at = parse_timestamp(data.get("dateExpiry"))
    except ValueError:
        expires_at = None
    url = data.get("cipUrl")
    return CreatedCip(
        cip=str(cip).strip(),
        amount=_money(data.get("amount"), data.get("currency"), "CIP creation", unknown=True),
        transaction_code=str(data.get("transactionCode") or ""),
        expires_at=expires_at,
        url=url if isinstance(url, str) and url else None,
    )


# --- search, extend, delete ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CipState:
    """One CIP as ``POST /v1/cips/search`` reports it (sentinel dates are None)."""

    cip: str
    transaction_code: str
    amount: Money
    status: int
    status_name: str
    created_at: datetime | None
    expires_at: datetime | None
    paid_at: datetime | None
    removed_at: datetime | None
    raw: Mapping[str, Any] = attrs.field(repr=False, factory=dict)


def build_search_request(
    settings: PagoEfectivoSettings, token: str, cips: Sequence[str]
) -> httpx.Request:
    if not cips:
        raise ValueError("search needs at least one CIP")
    items = [{"cip": int(cip) if cip.isdigit() else cip} for cip in cips]
    return httpx.Request(
        "POST",
        f"{settings.api_base}/v1/cips/search",
        headers=_headers(settings, token),
        content=jsontext.dumps({"data": items}),
    )


def parse_search_response(response: httpx.Response) -> list[CipState]:
    body = _success(response, "CIP search")
    items = body.get("data")
    if not isinstance(items, list):
        raise _malformed("CIP search", "data is not a list")
    states: list[CipState] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("cip") in (None, ""):
            raise _malformed("CIP search", f"entry {item!r}")
        status = item.get("status")
        try:
            states.append(CipState(
                cip=str(item["cip"]).strip(),
                transaction_code=str(item.get("transactionCode") or ""),
                amount=_money(item.get("amount"), item.get("currency"), "CIP search"),
                status=int(str(status)) if not isinstance(status, bool) else -1,
                status_name=str(item.get("statusName") or ""),
                created_at=parse_timestamp(item.get("dateCreation")),
                expires_at=parse_timestamp(item.get("dateExpiry")),
                paid_at=parse_timestamp(item.get("datePayment")),
                removed_at=parse_timestamp(item.get("dateRemoval")),
                raw=dict(item),
            ))
        except (TypeError, ValueError) as exc:
            raise _malformed("CIP search", str(exc)) from None
    return states


def build_extend_request(
    settings: PagoEfectivoSettings, token: str, cip: str, until: datetime
) -> httpx.Request:
    return httpx.Request(
        "PATCH",
        f"{settings.api_base}/v1/cips/{cip}",
        headers=_headers(settings, token),
        content=jsontext.dumps({"dateExpiry": lima_timestamp(until)}),
    )


def build_delete_request(settings: PagoEfectivoSettings, token: str, cip: str) -> httpx.Request:
    headers = _headers(settings, token)
    del headers["Content-Type"]
    return httpx.Request("DELETE", f"{settings.api_base}/v1/cips/{cip}", headers=headers)


def parse_ack_response(response: httpx.Response, operation: str) -> None:
    """Check a 200 ``{code: 100, message, data: {}}`` (update and delete)."""
    _success(response, operation)
