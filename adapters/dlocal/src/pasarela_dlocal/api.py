"""dLocal's Payins API as pure functions: the signature, the JSON text, the bodies the
adapter sends and what it reads from the answers. No I/O here.

The signature (docs.dlocal.com/reference/payins-security, docs/generate-signature):
HMAC-SHA256 with the secret key over ``X-Login + X-Date + body`` (plain concatenation,
the body's exact bytes), in lower-case hex, sent as ``Authorization: V2-HMAC-SHA256,
Signature: <hex>``. Notifications carry the same header over the same string
(docs/receive-notifications), so one function signs and verifies.

Amounts are JSON numbers with the currency's decimals (``"amount": 100.00``); they are
written from :class:`~decimal.Decimal` as their own text and read back with
``parse_float=Decimal``: no amount ever passes through a float.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from pasarela.errors import ProviderValidationError
from pasarela.jsontext import dumps, loads
from pasarela.lifecycle import Status
from pasarela.model import Method, RefundStatus
from pasarela.money import Money


__all__ = [
    "METHOD_IDS",
    "NETWORKS",
    "REFUND_STATUSES",
    "SCHEME",
    "STATUSES",
    "Fx",
    "authorization",
    "dumps",
    "fx_of",
    "loads",
    "money_of",
    "required_document",
    "signature",
    "signature_of",
    "verify",
    "x_date",
]

SCHEME: Final = "V2-HMAC-SHA256"
_AUTH_RE: Final = re.compile(r"^\s*V2-HMAC-SHA256\s*,\s*Signature\s*:\s*([0-9a-fA-F]{64})\s*$")

#: dLocal's payment statuses (docs.dlocal.com/reference/payment-status-codes), in
#: lifecycle terms. AUTHORIZED waits for a capture and VERIFIED is a card check: neither
#: has moved the money, so both stay pending here.
STATUSES: Final[Mapping[str, Status]] = {
    "PENDING": Status.PENDING,
    "PAID": Status.SUCCEEDED,
    "REJECTED": Status.FAILED,
    "CANCELLED": Status.CANCELED,
    "AUTHORIZED": Status.PENDING,
    "VERIFIED": Status.PENDING,
    "EXPIRED": Status.EXPIRED,
}

#: Refund statuses (docs.dlocal.com/reference/the-refund-object, docs/refunds).
REFUND_STATUSES: Final[Mapping[str, RefundStatus]] = {
    "PENDING": RefundStatus.PENDING,
    "SUCCESS": RefundStatus.SUCCEEDED,
    "REJECTED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.FAILED,
}

#: The Peru payment method each core method is sent as (docs.dlocal.com/docs/peru):
#: card, PagoEfectivo (EF, a ticket), Yape (YP, a redirect); a bank transfer is BC
#: (BCP) or IO (another bank), from the settings or the ``bank`` parameter.
#: The network each Peru payment method id runs on (pasarela's network names).
NETWORKS: Final[Mapping[str, str]] = {"EF": "pagoefectivo", "YP": "yape", "BC": "bcp"}

METHOD_IDS: Final[Mapping[Method, str]] = {
    Method.CARD: "CARD",
    Method.CASH: "EF",
    Method.WALLET: "YP",
    Method.BANK_TRANSFER: "BC",
}


# --- JSON text ---------------------------------------------------------------------------


def money_of(value: Any, currency: Any) -> Money | None:
    """A JSON amount (a number, or its text) in *currency*, or None if unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    if not isinstance(currency, str):
        return None
    try:
        return Money.of(Decimal(str(value)), currency)
    except (InvalidOperation, ValueError, ArithmeticError):
        return None


# --- the signature -------------------------------------------------------------------------


def x_date(now: datetime) -> str:
    """``X-Date``: ISO 8601 in UTC with milliseconds (``2018-07-12T13:46:28.629Z``)."""
    moment = now.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def signature(secret: str, login: str, date: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 with *secret* over ``login + date + body``."""
    message = login.encode("utf-8") + date.encode("utf-8") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def authorization(secret: str, login: str, date: str, body: bytes) -> str:
    """The ``Authorization`` header of a request or notification."""
    return f"{SCHEME}, Signature: {signature(secret, login, date, body)}"


def signature_of(header: str | None) -> str | None:
    """The hex signature an ``Authorization`` header carries, or None if malformed."""
    if not header:
        return None
    found = _AUTH_RE.match(header)
    return found.group(1).lower() if found else None


def verify(keys: Iterable[str], login: str, date: str, body: bytes, header: str | None) -> bool:
    """Whether *header* signs ``login + date + body`` with one of *keys* (each compared
    in constant time, all of them tried)."""
    sent = signature_of(header)
    if sent is None:
        return False
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(signature(key, login, date, body), sent)
    return matched


# --- what the answers say ----------------------------------------------------------------


@attrs.frozen
class Fx:
    """The conversion dLocal applied: *rate* units of *target* per unit of *source*
    (its Currency Exchange object, ``{from, to, rate}``), and what the customer pays."""

    source: str
    target: str
    rate: Decimal
    charged: Money | None = None


def fx_of(obj: Mapping[str, Any]) -> Fx | None:
    """The payment's conversion, when dLocal reports one (``currency_exchange``)."""
    exchange = obj.get("currency_exchange")
    if not isinstance(exchange, Mapping):
        return None
    source, target, rate = exchange.get("from"), exchange.get("to"), exchange.get("rate")
    if not (isinstance(source, str) and isinstance(target, str)):
        return None
    try:
        value = Decimal(str(rate))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or value <= 0:
        return None
    return Fx(source=source, target=target, rate=value)


def required_document(order_customer: Any) -> None:
    """dLocal requires the payer's document in Peru (DNI or RUC, docs/peru)."""
    document = getattr(order_customer, "document", None)
    if order_customer is None or document is None:
        raise ProviderValidationError(
            "dLocal needs the payer's DNI or RUC in Peru",
            fields={"customer.document": "a DNI or RUC is required"}, created_nothing=True,
            provider="dlocal")
    if document.kind not in ("DNI", "RUC"):
        raise ProviderValidationError(
            "dLocal takes a DNI or a RUC in Peru",
            fields={"customer.document": f"{document.kind} is not accepted; give a DNI or RUC"},
            created_nothing=True, provider="dlocal")
