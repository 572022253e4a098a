"""PagoEfectivo's field formats and rules (PE spec v1.1 §5.1.2), checked before sending.

:func:`cip_fields` turns a :class:`~pasarela.provider.CreateRequest` into the
``/v1/cips`` body. A mandatory field that breaks its rule is refused with an error
naming the order field it came from; an optional one is never a reason to refuse:
it is cleaned, cut or left out, one rule per field (the adapter's README has the
table). Times are Lima time written with ``-05:00`` (Peru
keeps no daylight saving time); the search API writes ``1900-01-01`` for "no date".
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from pasarela.errors import ProviderValidationError
from pasarela_pagoefectivo.errors import PROVIDER
from pasarela_pagoefectivo.settings import PagoEfectivoSettings


if TYPE_CHECKING:
    from pasarela.provider import CreateRequest


__all__ = [
    "ADDITIONAL_DATA_BYTES",
    "CONCEPT_BYTES",
    "CURRENCIES",
    "CUT_MARK",
    "DOCUMENT_TYPES",
    "EMAIL_CHARS",
    "LIMA",
    "NAME_BYTES",
    "NO_DATE",
    "cip_fields",
    "clean_text",
    "concept",
    "fit",
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


# --- text ----------------------------------------------------------------------------

#: Unicode categories kept in free text: letters, marks, digits, punctuation, currency
#: and maths symbols. Controls, format characters, emoji and other symbols are dropped.
_KEPT_GROUPS: Final = frozenset("LMNP")
_KEPT_SYMBOLS: Final = frozenset({"Sc", "Sm"})
#: What marks a cut ``paymentConcept``: ASCII, three bytes.
CUT_MARK: Final = "..."
#: PE spec v1.1 §5.1.2 lengths of the optional text fields we send, read as UTF-8
#: bytes (a byte bound satisfies a character bound too: the spec says neither).
CONCEPT_BYTES: Final = 50
NAME_BYTES: Final = 30
ADDITIONAL_DATA_BYTES: Final = 200
#: ``userEmail`` is mandatory: an address longer than this is refused, never cut.
EMAIL_CHARS: Final = 100


def clean_text(value: str | None) -> str:
    """*value* as PagoEfectivo's AN fields take it: NFC (``n`` + combining tilde is
    one ``ñ``); an ellipsis character written ``...``; each run of whitespace one
    space; every character outside letters, marks, digits, punctuation and currency
    or maths symbols dropped (emoji, controls, format characters), and an accent with
    no letter before it; trimmed. Spanish letters (``ñ``, ``á``) are kept, not
    transliterated."""
    if not value:
        return ""
    text = unicodedata.normalize("NFC", value).replace("\u2026", "...")
    kept: list[str] = []
    for char in text:
        if char.isspace():
            kept.append(" ")
        else:
            category = unicodedata.category(char)
            if category[0] == "M" and (not kept or kept[-1] == " "):
                continue  # an accent on nothing
            if category[0] in _KEPT_GROUPS or category in _KEPT_SYMBOLS:
                kept.append(char)
    return " ".join("".join(kept).split())


def _clusters(text: str) -> list[str]:
    """*text* in user-perceived characters: a base and the combining marks after it."""
    out: list[str] = []
    for char in text:
        if out and unicodedata.category(char).startswith("M"):
            out[-1] += char
        else:
            out.append(char)
    return out


def fit(text: str, max_bytes: int, mark: str = "") -> str:
    """*text* if its UTF-8 form has at most *max_bytes*, else cut at a character
    boundary (a letter never loses its accent) so that the result, *mark* appended,
    has at most *max_bytes*. Trailing spaces before the mark are dropped."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    budget = max_bytes - len(mark.encode("utf-8"))
    used = 0
    kept: list[str] = []
    for cluster in _clusters(text):
        size = len(cluster.encode("utf-8"))
        if used + size > budget:
            break
        kept.append(cluster)
        used += size
    cut = "".join(kept).rstrip()
    return cut + mark if cut else ""


def concept(description: str, reference: str) -> str:
    """``paymentConcept`` (AN, 1-50): the cleaned description, else ``Pedido
    <reference>``, cut to 50 UTF-8 bytes with ``...`` marking the cut."""
    fallback = fit(clean_text(f"Pedido {reference}"), CONCEPT_BYTES, CUT_MARK)
    return fit(clean_text(description), CONCEPT_BYTES, CUT_MARK) or fallback


def _name(value: str | None) -> str:
    """``userName`` / ``userLastName`` (AN, optional, 1-30): cleaned and cut to 30
    bytes at a character boundary, no mark (empty: left out)."""
    return fit(clean_text(value), NAME_BYTES)


# --- create ------------------------------------------------------------------------


def cip_fields(
    request: CreateRequest,
    settings: PagoEfectivoSettings,
    *,
    now: datetime,
    default_expiry: timedelta = timedelta(hours=48),
) -> dict[str, Any]:
    """The ``/v1/cips`` body for *request*, every rule of the spec table applied.

    A mandatory field that breaks its rule raises :class:`ProviderValidationError`
    (``created_nothing``) naming the order field; an optional field never does: it is
    cleaned, cut or left out by the one rule the adapter's README lists for it
    (``paymentConcept`` cut to 50 bytes with ``...``, names to 30 bytes, a document
    number with letters left out, ...).
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
        "paymentConcept": concept(order.description, order.reference),
    }
    # additionalData (AN, optional, 1-200): our order reference, exact or not at all
    # (a cut reference would name another order).
    if len(order.reference.encode("utf-8")) <= ADDITIONAL_DATA_BYTES:
        fields["additionalData"] = order.reference
    if settings.admin_email:
        fields["adminEmail"] = settings.admin_email  # checked with the settings
    if customer is None:
        problems["customer"] = "PagoEfectivo needs the customer's email and phone"
    else:
        if not customer.email:
            problems["customer.email"] = "is required by PagoEfectivo (userEmail)"
        elif len(customer.email) > EMAIL_CHARS:
            problems["customer.email"] = (
                f"PagoEfectivo takes at most {EMAIL_CHARS} characters (userEmail)")
        fields["userEmail"] = customer.email
        fields["userName"] = _name(customer.first_name)
        fields["userLastName"] = _name(customer.last_name)
        if order.country == "PE":
            fields["userCountry"] = "PERU"
        document = customer.document
        if document is not None and _DIGITS.match(document.number) and len(document.number) <= 14:
            fields["userDocumentType"] = DOCUMENT_TYPES[document.kind]
            fields["userDocumentNumber"] = document.number
        parts = customer.phone_parts
        if parts is None:
            problems["customer.phone"] = "is required by PagoEfectivo (userPhone)"
        else:
            country_code, national = parts
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
