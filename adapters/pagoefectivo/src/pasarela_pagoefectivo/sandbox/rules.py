"""The sandbox's field rules: PE spec v1.1 §5.1.2's table, answered as PagoEfectivo does.

A refused request gets HTTP 400 with the 111 envelope and one 112 ("Requerido.")
or 113 ("Valor invalido.") entry per field. Field names bind case-insensitively,
as the official demo (which sends PascalCase) shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from pasarela_pagoefectivo.api import LIMA


__all__ = [
    "CREATE_RULES",
    "DOCUMENT_TYPES",
    "MESSAGES",
    "FieldError",
    "Rule",
    "check_create",
    "lowered",
    "parse_amount",
    "parse_date",
    "parse_date_request",
    "well_formed_hash",
]

DOCUMENT_TYPES: Final = ("DNI", "PAR", "PAS", "LMI", "NAN")

#: Messages by code and language (the spec gives es-PE; en-US is the sandbox's).
MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    "100": ("Solicitud exitosa.", "Successful request."),
    "111": ("Solicitud con datos inválidos.", "Request with invalid data."),
    "112": ("Requerido.", "Required."),
    "113": ("Valor invalido.", "Invalid value."),
    "166": ("Error interno del servidor.", "Internal server error."),
    "401": ("Token inválido o expirado.", "Invalid or expired token."),
    "508": ("Servicio asociado al token es inválido.", "The token's service is invalid."),
    "511": (
        "Usted ha generado un Código CIP que excede el valor máximo permitido en este "
        "comercio. Por favor intente con un importe de menor cuantía.",
        "You have generated a CIP code above the maximum amount allowed for this merchant. "
        "Please try a smaller amount.",
    ),
}

_DIGITS: Final = re.compile(r"^[0-9]+$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:?\d{2})?$")
#: ``dateRequest`` as the spec writes it (§5.1.1: ``yyyy-mm-ddThh:mm:ss(+/-)zzzz`` in
#: GMT-5, e.g. ``2020-11-15T15:45:00-05:00``): the strict sandbox takes only this.
_DATE_REQUEST: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}-05:00$")
#: ``hashString``: SHA-256 as lower-case hex (§5.1.1; the demo's ``x2`` format).
_HASH: Final = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class FieldError:
    code: str  # "112" missing, "113" invalid
    field: str


@attrs.frozen
class Rule:
    """One row of the spec table: name, mandatory, type (A, AN, N, NUM, DATE), length."""

    name: str
    required: bool
    kind: str
    min_len: int = 1
    max_len: int | None = None
    choices: tuple[str, ...] = ()


#: PE spec v1.1 §5.1.2, field by field. ``amount`` (NUM) is N(18,2); ``dateExpiry``
#: is optional in practice: "si no se envía ... se tomará el tiempo acordado".
CREATE_RULES: Final = (
    Rule("currency", True, "A", 3, 3, ("PEN", "USD")),
    Rule("amount", True, "NUM"),
    Rule("transactionCode", True, "AN", 1, 36),
    Rule("dateExpiry", False, "DATE"),
    Rule("paymentConcept", False, "AN", 1, 50),
    Rule("additionalData", False, "AN", 1, 200),
    Rule("adminEmail", False, "EMAIL", 1, 100),
    Rule("userEmail", True, "EMAIL", 1, 100),
    Rule("userId", False, "AN", 1, 100),
    Rule("userName", False, "AN", 1, 30),
    Rule("userLastName", False, "AN", 1, 30),
    Rule("userUbigeo", False, "N", 6, 6),
    Rule("userCountry", False, "AN", 1, 20),
    Rule("userDocumentType", False, "A", 3, 3, DOCUMENT_TYPES),
    Rule("userDocumentNumber", False, "N", 1, 14),
    Rule("userPhone", True, "N", 1, 15),
    Rule("userCodeCountry", True, "AN", 1, 5),
)
#: What the official demo's sandbox let through without (lenient mode).
LENIENT_OPTIONAL: Final = frozenset({"userPhone", "userCodeCountry"})


def lowered(body: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in body.items()}


def parse_amount(value: object) -> Decimal | None:
    """A positive amount with at most 16 integer digits and 2 decimals, or None."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0:
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        return None
    if amount >= Decimal(10) ** 16:
        return None
    return amount.quantize(Decimal("0.01"))


def parse_date(value: object) -> datetime | None:
    """``yyyy-mm-ddThh:mm:ss(+/-)zz:zz`` (a space instead of ``T`` is accepted)."""
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=LIMA)


def parse_date_request(value: object, *, strict: bool) -> datetime | None:
    """``dateRequest``: strict, exactly ``yyyy-mm-ddThh:mm:ss-05:00``; lenient, what
    the official demo's sandbox took (a space for ``T``, no offset, another offset)."""
    if not strict:
        return parse_date(value)
    if not isinstance(value, str) or not _DATE_REQUEST.match(value):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def well_formed_hash(value: object, *, strict: bool) -> bool:
    """``hashString``: strict, 64 lower-case hex digits; lenient, any text (compared
    without regard to case, as the demo's sandbox did)."""
    if not strict:
        return isinstance(value, str)
    return isinstance(value, str) and bool(_HASH.match(value))


def _valid(rule: Rule, value: object, now: datetime) -> bool:
    if rule.kind == "NUM":
        return parse_amount(value) is not None
    if rule.kind == "DATE":
        moment = parse_date(value)
        return moment is not None and moment > now
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    if not rule.min_len <= len(text) <= (rule.max_len or len(text)):
        return False
    if rule.kind == "N":
        return bool(_DIGITS.match(text))
    if rule.kind == "A" and not isinstance(value, str):
        return False
    if rule.kind == "EMAIL":
        return bool(_EMAIL.match(text))
    return not rule.choices or text in rule.choices


def check_create(body: Mapping[str, Any], *, now: datetime, strict: bool) -> list[FieldError]:
    """The per-field errors of a ``/v1/cips`` body (empty when it is valid)."""
    values = lowered(body)
    errors: list[FieldError] = []
    for rule in CREATE_RULES:
        value = values.get(rule.name.lower())
        if value is None or value == "":
            if rule.required and (strict or rule.name not in LENIENT_OPTIONAL):
                errors.append(FieldError("112", rule.name))
            continue
        if not _valid(rule, value, now):
            errors.append(FieldError("113", rule.name))
    return errors
