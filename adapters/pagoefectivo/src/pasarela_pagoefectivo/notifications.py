"""PagoEfectivo's payment notification (PE spec v1.1 §5.2): sign, verify, parse, build.

PagoEfectivo ``POST``s JSON to the merchant's notification URL with the header
``PE-Signature``: the hex HMAC-SHA256 of the request body (a JSON string without
indentation) keyed with the merchant's ``secretKey``. The signature is checked on
the raw bytes as received, never on re-serialized JSON, and in constant time.
The spec names one event, ``cip.paid``; ``cip.expired`` and ``cip.refunded`` are
seen only in merchant code and are accepted. ``data.cip`` is a string here (a
number in the API); ``data.paymentDate`` and ``data.transactionCode`` are extras
seen in practice and are optional.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import attrs

from pasarela import jsontext
from pasarela.errors import SignatureInvalidError, ValidationError, WebhookError
from pasarela.money import Money
from pasarela.provider import WebhookHeaders
from pasarela_pagoefectivo.errors import PROVIDER
from pasarela_pagoefectivo.fields import lima_timestamp, parse_timestamp


__all__ = [
    "EVENT_EXPIRED",
    "EVENT_PAID",
    "EVENT_REFUNDED",
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "Notification",
    "build_notification",
    "parse_notification",
    "sign",
    "verify",
]

SIGNATURE_HEADER: Final = "PE-Signature"
EVENT_PAID: Final = "cip.paid"
EVENT_EXPIRED: Final = "cip.expired"
EVENT_REFUNDED: Final = "cip.refunded"


def sign(body: bytes, secret: str) -> str:
    """``PE-Signature`` for *body*: hex HMAC-SHA256 keyed with *secret*."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(headers: WebhookHeaders, body: bytes, secrets: Sequence[str]) -> None:
    """Check ``PE-Signature`` against *body* with any of *secrets* (rotation).

    *headers* are the delivery's, as the core passes them (looked up without regard
    to case). Raises :class:`SignatureInvalidError` when the header is missing or no
    secret matches. Every secret is tried, so the time taken does not tell which
    matched.
    """
    provided = headers.get(SIGNATURE_HEADER)
    if not provided or not provided.strip():
        raise SignatureInvalidError(
            f"the {SIGNATURE_HEADER} header is missing", provider=PROVIDER
        )
    candidate = provided.strip().lower().encode("utf-8")
    matched = False
    for secret in secrets:
        if secret and hmac.compare_digest(sign(body, secret).encode("ascii"), candidate):
            matched = True
    if not matched:
        raise SignatureInvalidError(
            f"the {SIGNATURE_HEADER} does not match the body", provider=PROVIDER
        )


@attrs.frozen(kw_only=True)
class Notification:
    """A parsed notification. ``amount`` is None when the body carries none."""

    event_type: str
    operation_number: str
    cip: str
    amount: Money | None
    payment_date: datetime | None = None
    transaction_code: str | None = None
    raw: Mapping[str, Any] = attrs.field(repr=False, factory=dict)

    @property
    def event_id(self) -> str:
        """Stable id for deduplication: PagoEfectivo retries with the same body."""
        return f"{self.cip}:{self.event_type}:{self.operation_number}"


def _malformed(detail: str) -> WebhookError:
    return WebhookError(f"malformed PagoEfectivo notification: {detail}", provider=PROVIDER)


#: Bounds of each field (PE spec v1.1 §5.2 and the API's CIP: N 1-14).
MAX_BODY_BYTES: Final = 16 * 1024
_CIP: Final = re.compile(r"^[0-9]{1,14}$")
#: Text without control characters, of these lengths (the spec types only the length).
_OPERATION: Final = re.compile(r"^[^\x00-\x1f\x7f]{0,14}$")
_EVENT_TYPE: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_CURRENCY: Final = re.compile(r"^[A-Za-z]{3}$")
#: N(18,2): at most 16 integer digits and 2 decimals, as a JSON number or its text.
_AMOUNT: Final = re.compile(r"^[0-9]{1,16}(?:\.[0-9]{1,2})?$")
#: ``transactionCode``: AN 1-36 in the CIP create (PE spec v1.1 §5.1.2).
_TRANSACTION_CODE: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,36}$")
_DATE_TEXT_MAX: Final = 40
#: Event types whose body must carry the amount (the documented one, and the
#: refund, whose report is its amount).
_WITH_AMOUNT: Final = frozenset({EVENT_PAID, EVENT_REFUNDED})


def _text_field(value: object, name: str, pattern: re.Pattern[str], *,
                numbers: bool = False) -> str:
    """*value* as text matching *pattern*, or a :class:`WebhookError` naming *name*.
    With *numbers*, a JSON integer is taken as its digits (``data.cip`` is a number in
    the API and a string in the notification)."""
    if numbers and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str):
        raise _malformed(f"{name} must be text, not {type(value).__name__}")
    text = value.strip()
    if not pattern.fullmatch(text):
        shown = text if len(text) <= 20 else f"{text[:20]}... ({len(text)} characters)"
        raise _malformed(f"{name} {shown!r} is not valid")
    return text


def _amount(data: Mapping[str, Any], event_type: str) -> Money | None:
    raw_amount, currency = data.get("amount"), data.get("currency")
    if raw_amount is None and currency is None:
        if event_type in _WITH_AMOUNT:
            raise _malformed("data.amount and data.currency are required")
        return None
    if raw_amount is None:
        raise _malformed("data.amount is required with data.currency")
    if isinstance(raw_amount, bool) or not isinstance(raw_amount, Decimal | int | str):
        raise _malformed(f"data.amount must be a number, not {type(raw_amount).__name__}")
    text = str(raw_amount).strip()
    if not _AMOUNT.fullmatch(text):
        shown = text if len(text) <= 24 else f"{text[:24]}..."
        raise _malformed(f"data.amount {shown!r} is not an amount with at most 2 decimals")
    code = _text_field(currency, "data.currency", _CURRENCY).upper()
    try:
        money = Money.of(Decimal(text), code)
    except (ValidationError, ArithmeticError):
        raise _malformed(f"data.currency {code!r} is not a currency") from None
    if money.minor <= 0:
        raise _malformed("data.amount must be above zero")
    return money


def _payment_date(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > _DATE_TEXT_MAX:
        raise _malformed("data.paymentDate must be a date as text")
    try:
        return parse_timestamp(value)
    except ValueError:
        raise _malformed(f"data.paymentDate {value!r} is not a date") from None


def parse_notification(body: bytes) -> Notification:
    """Parse a (verified) notification body, every field typed and bounded.

    Raises :class:`WebhookError` naming the field for a body that is not what the
    spec describes: not JSON (or nested beyond reason), ``eventType``,
    ``operationNumber`` (text of 0 to 14 characters) or ``data.cip`` (1 to 14 digits)
    missing or of another type, ``data.amount`` not a positive N(18,2) number or its
    text, ``data.currency`` not three letters, and, where they are sent, the extras
    ``data.paymentDate`` (a date) and ``data.transactionCode`` (text of 1 to 36).
    ``data.amount`` and ``data.currency`` are required for ``cip.paid`` and
    ``cip.refunded``. Unknown extra fields are ignored.
    """
    if len(body) > MAX_BODY_BYTES:
        raise _malformed(f"the body has {len(body)} bytes, more than {MAX_BODY_BYTES}")
    try:
        payload = jsontext.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _malformed("not JSON") from None
    if not isinstance(payload, Mapping):
        raise _malformed("not a JSON object")
    if payload.get("eventType") is None:
        raise _malformed("eventType is required")
    event_type = _text_field(payload.get("eventType"), "eventType", _EVENT_TYPE)
    if "operationNumber" not in payload:
        raise _malformed("operationNumber is required")
    operation = _text_field(payload["operationNumber"], "operationNumber", _OPERATION,
                            numbers=True)
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise _malformed("data must be an object")
    if data.get("cip") is None:
        raise _malformed("data.cip is required")
    cip = _text_field(data.get("cip"), "data.cip", _CIP, numbers=True)
    amount = _amount(data, event_type)
    payment_date = _payment_date(data.get("paymentDate"))
    transaction_code = data.get("transactionCode")
    if transaction_code is not None and transaction_code != "":
        transaction_code = _text_field(transaction_code, "data.transactionCode",
                                       _TRANSACTION_CODE)
    return Notification(
        event_type=event_type,
        operation_number=operation,
        cip=cip,
        amount=amount,
        payment_date=payment_date,
        transaction_code=transaction_code or None,
        raw=dict(payload),
    )


def build_notification(
    event_type: str,
    *,
    operation_number: str,
    cip: str,
    amount: Money,
    payment_date: datetime | None = None,
    transaction_code: str | None = None,
) -> bytes:
    """The body PagoEfectivo sends, compact JSON with a two-decimal amount (the
    spec's example), optional extras last."""
    data: dict[str, Any] = {
        "cip": cip,
        "currency": amount.currency,
        "amount": Decimal(amount.decimal_string()),
    }
    if payment_date is not None:
        data["paymentDate"] = lima_timestamp(payment_date)
    if transaction_code is not None:
        data["transactionCode"] = transaction_code
    return jsontext.dumps(
        {"eventType": event_type, "operationNumber": operation_number, "data": data}
    )
