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
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import attrs

from pasarela.errors import SignatureInvalidError, ValidationError, WebhookError
from pasarela.money import Money
from pasarela.provider import WebhookHeaders
from pasarela_pagoefectivo import jsontext
from pasarela_pagoefectivo.api import lima_timestamp, parse_timestamp
from pasarela_pagoefectivo.errors import PROVIDER


__all__ = [
    "EVENT_EXPIRED",
    "EVENT_PAID",
    "EVENT_REFUNDED",
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


def parse_notification(body: bytes) -> Notification:
    """Parse a (verified) notification body. Raises :class:`WebhookError`."""
    try:
        payload = jsontext.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("not JSON") from None
    if not isinstance(payload, Mapping):
        raise _malformed("not a JSON object")
    event_type = payload.get("eventType")
    if not isinstance(event_type, str) or not event_type.strip():
        raise _malformed("no eventType")
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise _malformed("no data object")
    cip = data.get("cip")
    if isinstance(cip, bool) or not isinstance(cip, str | int) or not str(cip).strip():
        raise _malformed("no data.cip")
    operation = payload.get("operationNumber")
    amount: Money | None = None
    raw_amount, currency = data.get("amount"), data.get("currency")
    if raw_amount is not None or currency is not None:
        if isinstance(raw_amount, bool) or not isinstance(raw_amount, Decimal | int | str):
            raise _malformed(f"data.amount {raw_amount!r}")
        if not isinstance(currency, str):
            raise _malformed(f"data.currency {currency!r}")
        try:
            amount = Money.of(Decimal(str(raw_amount)), currency.upper())
        except (ValidationError, ArithmeticError):
            raise _malformed(f"amount {raw_amount!r} {currency!r}") from None
    try:
        payment_date = parse_timestamp(data.get("paymentDate"))
    except ValueError:
        payment_date = None  # an extra field: tolerated, not trusted
    transaction_code = data.get("transactionCode")
    return Notification(
        event_type=event_type.strip(),
        operation_number="" if operation is None else str(operation).strip(),
        cip=str(cip).strip(),
        amount=amount,
        payment_date=payment_date,
        transaction_code=str(transaction_code) if transaction_code not in (None, "") else None,
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
