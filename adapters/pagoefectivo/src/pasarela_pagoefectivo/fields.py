"""PagoEfectivo's field formats and rules (PE spec v1.1 §5.1.2), checked before sending.

:func:`cip_fields` turns a :class:`~pasarela.provider.CreateRequest` into the
``/v1/cips`` body, enforcing every rule of the spec table with errors that name the
order field a value came from. Times are Lima time written with ``-05:00`` (Peru
keeps no daylight saving time); the search API writes ``1900-01-01`` for "no date".
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from pasarela.errors import ProviderValidationError
from pasarela.provider import CreateRequest
from pasarela_pagoefectivo.errors import PROVIDER
from pasarela_pagoefectivo.settings import PagoEfectivoSettings


__all__ = [
    "CURRENCIES",
    "DOCUMENT_TYPES",
    "LIMA",
    "NO_DATE",
    "cip_fields",
    "lima_timestamp",
    "parse_timestamp",
]

#: Lima, UTC-5 all year.
LIMA: Final = timezone(timedelta(hours=-5), "America/Lima")
#: The search API's "no date yet" value.
NO_DATE: Final = "1900-01-01T00:00:00-05:00"
CURRENCIES: Final = ("PEN", "USD")
#: pasarela document kind → ``userDocumentType``. The spec has DNI, PAR, PAS, LMI
#: and NAN ("otro"): a CE or a RUC can only be sent as NAN.
DOCUMENT_TYPES: Final = {"DNI": "DNI", "PAS": "PAS", "CE": "NAN", "RUC": "NAN"}
_DIGITS: Final = re.compile(r"^[0-9]+$")


# --- time ------------------------------------------------------------------------


def lima_timestamp(moment: datetime) -> str:
    """``2020-11-15T15:45:00-05:00``: *moment* in Lima time, to the second."""
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return moment.astimezone(LIMA).replace(microsecond=0).isoformat()


def parse_timestamp(value: object) -> datetime | None:
    """Parse a PagoEfectivo date (``T`` or space separated, ``-05:00`` or ``-0500``).

    The ``1900-01-01`` sentinel, empty and missing values are None. A date without
    an offset is Lima time. Raises ``ValueError`` on anything else.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=LIMA)
    if parsed.year <= 1900:
        return None
    return parsed


# --- create ------------------------------------------------------------------------


def _check_text(
    problems: dict[str, str], path: str, value: str | None, *, max_len: int, required: bool
) -> None:
    if not value:
        if required:
            problems[path] = "is required by PagoEfectivo"
    elif len(value) > max_len:
        problems[path] = f"PagoEfectivo takes at most {max_len} characters"


def _concept(description: str, reference: str) -> str:
    text = " ".join((description or f"Pedido {reference}").split())
    return text if len(text) <= 50 else text[:49].rstrip() + "…"


def cip_fields(
    request: CreateRequest,
    settings: PagoEfectivoSettings,
    *,
    now: datetime,
    default_expiry: timedelta = timedelta(hours=48),
) -> dict[str, Any]:
    """The ``/v1/cips`` body for *request*, every rule of the spec table checked.

    Raises :class:`ProviderValidationError` (``created_nothing``) naming each order
    field that breaks a rule. ``paymentConcept`` is the description cut to 50
    characters (an ellipsis marks the cut); a CE or passport number with letters is
    left out, since ``userDocumentNumber`` is numeric and optional.
    """
    problems: dict[str, str] = {}
    amount = request.amount
    if amount.currency not in CURRENCIES:
        problems["amount"] = f"PagoEfectivo takes PEN or USD, not {amount.currency}"
    elif amount.minor <= 0 or amount.minor >= 10**18:
        problems["amount"] = "must be above zero with at most 16 integer digits"
    if not 1 <= len(request.payment_id) <= 36:
        problems["payment_id"] = "transactionCode takes 1 to 36 characters"
    expires_at = request.expires_at
    if expires_at is None:
        expires_at = now + (settings.expiry or default_expiry)
    if expires_at <= now:
        problems["expires_at"] = f"is in the past ({expires_at.isoformat()})"
    order = request.order
    customer = order.customer
    fields: dict[str, Any] = {
        "currency": amount.currency,
        "amount": Decimal(amount.decimal_string()) if not problems.get("amount") else None,
        "transactionCode": request.payment_id,
        "dateExpiry": lima_timestamp(expires_at),
        "paymentConcept": _concept(order.description, order.reference),
        "additionalData": order.reference,
    }
    _check_text(problems, "reference", order.reference, max_len=200, required=False)
    if settings.admin_email:
        _check_text(problems, "providers.pagoefectivo.admin_email", settings.admin_email,
                    max_len=100, required=True)
        fields["adminEmail"] = settings.admin_email
    if customer is None:
        problems["customer"] = "PagoEfectivo needs the customer's email and phone"
    else:
        _check_text(problems, "customer.email", customer.email, max_len=100, required=True)
        _check_text(problems, "customer.first_name", customer.first_name, max_len=30,
                    required=False)
        _check_text(problems, "customer.last_name", customer.last_name, max_len=30,
                    required=False)
        fields["userEmail"] = customer.email
        fields["userName"] = customer.first_name
        fields["userLastName"] = customer.last_name
        if order.country == "PE":
            fields["userCountry"] = "PERU"
        document = customer.document
        if document is not None and _DIGITS.match(document.number) and len(document.number) <= 14:
            fields["userDocumentType"] = DOCUMENT_TYPES[document.kind]
            fields["userDocumentNumber"] = document.number
        phone = customer.phone
        if not phone:
            problems["customer.phone"] = "is required by PagoEfectivo (userPhone)"
        else:
            country_code, national = _split_phone(phone)
            if len(country_code) > 5 or not _DIGITS.match(national) or len(national) > 15:
                problems["customer.phone"] = "PagoEfectivo takes at most 15 digits"
            fields["userCodeCountry"] = country_code
            fields["userPhone"] = national
    if problems:
        raise ProviderValidationError(
            "the order breaks PagoEfectivo's field rules: "
            + "; ".join(f"{path}: {why}" for path, why in sorted(problems.items())),
            fields=problems,
            provider=PROVIDER,
            created_nothing=True,
        )
    return {key: value for key, value in fields.items() if value not in (None, "")}


def _split_phone(e164: str) -> tuple[str, str]:
    import phonenumbers  # noqa: PLC0415 - kept out of plugin discovery (import time)

    parsed = phonenumbers.parse(e164)
    return f"+{parsed.country_code}", str(parsed.national_number)
