"""The data model's attrs classes, defined when :mod:`pasarela.model` first hands one
out (see its docstring); import them from there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Final

import attrs

from pasarela.errors import ValidationError
from pasarela.lifecycle import Cause, Status
from pasarela.model import Method, RefundStatus, as_method, check_storable_text
from pasarela.money import Money
from pasarela.next_action import NextAction


__all__ = ["Customer", "Document", "Order", "Payment", "Refund", "Transition", "split_e164"]


_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_ALNUM_RE: Final = re.compile(r"^[A-Za-z0-9]+$")
_COUNTRY_RE: Final = re.compile(r"^[A-Z]{2}$")


def _aware(field: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValidationError("must be a timezone-aware datetime", field=field)

    return check


def _text(field: str, *, max_len: int, required: bool = True) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is None or value == "":
            if required:
                raise ValidationError("is required", field=field)
            return
        if not isinstance(value, str):
            raise ValidationError(f"must be text, not {type(value).__name__}", field=field)
        if len(value) > max_len:
            raise ValidationError(f"at most {max_len} characters", field=field)
        check_storable_text(value, field)

    return check


@attrs.frozen
class Document:
    """An identity document. ``kind`` is DNI, CE, RUC or PAS.

    DNI and RUC are checked with python-stdnum (the RUC check digit included); CE
    is 8 to 12 letters or digits and a passport 5 to 12.
    """

    KINDS: ClassVar[tuple[str, ...]] = ("DNI", "CE", "RUC", "PAS")

    kind: str
    number: str

    def __attrs_post_init__(self) -> None:
        kind = self.kind.upper() if isinstance(self.kind, str) else self.kind
        if kind not in self.KINDS:
            raise ValidationError(
                f"unknown document type {self.kind!r}; one of {', '.join(self.KINDS)}",
                field="customer.document",
            )
        number = str(self.number).strip()
        # Imported on first use: validation libraries stay out of `import pasarela`.
        from stdnum.exceptions import ValidationError as StdnumError  # noqa: PLC0415
        from stdnum.pe import cui, ruc  # noqa: PLC0415

        try:
            if kind == "DNI":
                number = cui.validate(number)[:8]
            elif kind == "RUC":
                number = ruc.validate(number)
        except StdnumError as exc:
            raise ValidationError(
                f"invalid {kind} number: {exc}", field="customer.document"
            ) from None
        if kind == "CE" and not (_ALNUM_RE.match(number) and 8 <= len(number) <= 12):
            raise ValidationError(
                "a CE has 8 to 12 letters or digits", field="customer.document"
            )
        if kind == "PAS" and not (_ALNUM_RE.match(number) and 5 <= len(number) <= 12):
            raise ValidationError(
                "a passport number has 5 to 12 letters or digits", field="customer.document"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "number", number.upper())

    @classmethod
    def coerce(
        cls, value: Document | tuple[str, str] | Mapping[str, str] | None
    ) -> Document | None:
        if value is None or isinstance(value, Document):
            return value
        if isinstance(value, Mapping):
            return cls(value.get("kind", ""), value.get("number", ""))
        if isinstance(value, tuple | list) and len(value) == 2:
            return cls(str(value[0]), str(value[1]))
        raise ValidationError("expected (kind, number)", field="customer.document")

    def masked(self) -> str:
        return f"{self.kind} ****{self.number[-3:]}"


def _document(value: Document | tuple[str, str] | Mapping[str, str] | None) -> Document | None:
    return Document.coerce(value)


def _phone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError("must be text", field="customer.phone")
    import phonenumbers  # noqa: PLC0415 - imported on first use

    try:
        parsed = phonenumbers.parse(value, "PE")
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"not a phone number: {exc}", field="customer.phone") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(f"not a valid phone number: {value!r}", field="customer.phone")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def split_e164(phone: str) -> tuple[str, str]:
    """*phone*, a number in E.164 (``+51987654321``), as its country calling code and
    its national significant number: ``("+51", "987654321")``. Calling codes are
    prefix-free (ITU-T E.164), so the one of one to three digits that the numbering
    plan knows is the code; the rest is the national number as dialled, an Italian
    fixed line's leading zero included (``+390612345678``: ``("+39", "0612345678")``).
    Raises ``ValueError`` for text that is not E.164 with a known calling code."""
    import phonenumbers  # noqa: PLC0415 - imported on first use

    digits = phone[1:] if phone.startswith("+") else ""
    if digits.isascii() and digits.isdigit() and not digits.startswith("0"):
        for size in (1, 2, 3):
            if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                return f"+{digits[:size]}", digits[size:]
    raise ValueError(f"not an E.164 phone number: {phone!r}")


def _email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL_RE.match(value.strip()):
        raise ValidationError(f"not an email address: {value!r}", field="customer.email")
    return value.strip()


@attrs.frozen(kw_only=True)
class Customer:
    """The paying customer. The phone is kept in E.164 (``+51987654321``)."""

    first_name: str = attrs.field(validator=_text("customer.first_name", max_len=60))
    last_name: str = attrs.field(validator=_text("customer.last_name", max_len=60))
    email: str | None = attrs.field(default=None, converter=_email)
    phone: str | None = attrs.field(default=None, converter=_phone)
    document: Document | None = attrs.field(default=None, converter=_document)

    @property
    def is_peruvian_mobile(self) -> bool:
        return bool(self.phone and re.fullmatch(r"\+519\d{8}", self.phone))

    @property
    def national_phone(self) -> str | None:
        """The phone without country code (``987654321`` for a Peruvian number)."""
        return None if self.phone is None else split_e164(self.phone)[1]

    @property
    def phone_parts(self) -> tuple[str, str] | None:
        """The phone's country calling code and its national significant number
        (``("+51", "987654321")``; an Italian fixed line keeps its leading zero), or
        None without a phone."""
        return None if self.phone is None else split_e164(self.phone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "document": [self.document.kind, self.document.number] if self.document else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Customer:
        if not isinstance(data, Mapping):
            raise ValidationError(f"expected an object, not {type(data).__name__}",
                                  field="customer")
        doc = data.get("document")
        return cls(
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            email=data.get("email"),
            phone=data.get("phone"),
            document=(str(doc[0]), str(doc[1])) if isinstance(doc, list) else doc,
        )


def _positive_money(instance: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money):
        raise ValidationError(
            f"must be Money (Money.of('12.50', 'PEN')), not {type(value).__name__}",
            field="amount",
        )
    if value.minor <= 0:
        raise ValidationError("must be greater than zero", field="amount")


def _country(value: str) -> str:
    if not isinstance(value, str) or not _COUNTRY_RE.match(value.upper()):
        raise ValidationError(f"expected an ISO 3166 alpha-2 code, got {value!r}", field="country")
    return value.upper()


def _metadata(value: Mapping[str, Any] | None) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("must be a mapping of text to text", field="metadata")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str | int | bool):
            raise ValidationError(f"key {key!r}: values must be text", field="metadata")
        check_storable_text(key, "metadata")
        check_storable_text(str(item), f"metadata.{key}")
        out[key] = str(item)
    return out


def _datetime(value: object, field: str) -> datetime | None:
    """An ISO 8601 time with its offset, or None; anything else names *field*."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"expected an ISO 8601 time, not {type(value).__name__}",
                              field=field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"expected an ISO 8601 time, got {value!r}", field=field) from None
    if parsed.tzinfo is None:
        raise ValidationError("needs a UTC offset (2026-12-01T12:00:00-05:00)", field=field)
    return parsed


@attrs.frozen(kw_only=True)
class Order:
    """What the merchant sells: the reference, amount and who pays."""

    reference: str = attrs.field(validator=_text("reference", max_len=64))
    amount: Money = attrs.field(validator=_positive_money)
    country: str = attrs.field(default="PE", converter=_country)
    description: str = attrs.field(
        default="", validator=_text("description", max_len=200, required=False)
    )
    customer: Customer | None = attrs.field(default=None)
    metadata: Mapping[str, str] = attrs.field(factory=dict, converter=_metadata)
    expires_at: datetime | None = attrs.field(default=None, validator=_aware("expires_at"))

    @customer.validator
    def _check_customer(self, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, Customer):
            raise ValidationError("must be a Customer", field="customer")

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "amount": {"minor": self.amount.minor, "currency": self.amount.currency},
            "country": self.country,
            "description": self.description,
            "customer": self.customer.to_dict() if self.customer else None,
            "metadata": dict(self.metadata),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        """Build from JSON-like data. ``amount`` is ``{"minor", "currency"}`` or ``"PEN 12.50"``.

        Anything malformed raises :class:`ValidationError` naming the field.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"expected an object, not {type(data).__name__}",
                                  field="order")
        raw_amount = data.get("amount")
        if isinstance(raw_amount, Mapping):
            if "minor" in raw_amount:
                minor = raw_amount["minor"]
                if isinstance(minor, bool) or not isinstance(minor, int):
                    raise ValidationError("expected a whole number of minor units",
                                          field="amount.minor")
                currency = raw_amount.get("currency")
                if not isinstance(currency, str):
                    raise ValidationError("expected an ISO 4217 code", field="amount.currency")
                amount = Money(minor, currency)
            else:
                value, currency = raw_amount.get("value", ""), raw_amount.get("currency", "")
                if not isinstance(value, str | int) or isinstance(value, bool):
                    raise ValidationError("expected a decimal amount as text",
                                          field="amount.value")
                amount = Money.of(str(value), currency)
        elif isinstance(raw_amount, str):
            amount = Money.parse(raw_amount)
        else:
            raise ValidationError("expected 'PEN 12.50' or {minor, currency}", field="amount")
        customer = data.get("customer")
        return cls(
            reference=data.get("reference", ""),
            amount=amount,
            country=data.get("country", "PE"),
            description=data.get("description", ""),
            customer=Customer.from_dict(customer) if customer is not None else None,
            metadata=data.get("metadata") or {},
            expires_at=_datetime(data.get("expires_at"), "expires_at"),
        )


# --- payments ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Transition:
    """One entry of a payment's append-only history.

    ``applied`` is False for a report that was recorded and ignored (a duplicate or
    a stale, out-of-order event); ``reason`` says why.
    """

    payment_id: str
    seq: int
    source: Status
    target: Status
    cause: Cause
    at: datetime
    version: int
    applied: bool = True
    reason: str = ""
    event_id: str | None = None


@attrs.frozen(kw_only=True)
class Payment:
    """One attempt to take an order's money through one provider.

    Attributes:
        id: our id, a ULID (sortable by creation time).
        version: bumped by every applied transition (optimistic concurrency).
        next_action: what the customer must do, while pending.
        routing: the decision that chose the provider (with its explanation).
        history: the transitions, oldest first; filled by ``get``.
        network: what the customer pays on (``pagoefectivo``, ``yape``, a card's
            brand), which *provider* collects; None while unknown (a card before
            its answer).
        charged: what the customer was charged when it differs from *amount* (a PEN
            price charged in USD), with *fx_rate*, units of ``charged.currency``
            per unit of ``amount.currency`` (a ``Decimal``, never a float).
    """

    id: str
    order_reference: str
    idempotency_key: str
    provider: str
    method: Method = attrs.field(converter=as_method)
    amount: Money
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    provider_reference: str | None = None
    expires_at: datetime | None = None
    next_action: NextAction | None = None
    refunded: Money | None = None
    error_code: str | None = None
    error_message: str | None = None
    next_check_at: datetime | None = attrs.field(default=None, repr=False)
    check_attempts: int = attrs.field(default=0, repr=False)
    routing: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    order: Order | None = attrs.field(default=None, repr=False)
    history: tuple[Transition, ...] = attrs.field(default=(), repr=False, eq=False)
    network: str | None = None
    charged: Money | None = None
    fx_rate: Decimal | None = None

    def customer_message(self, language: str = "es") -> str | None:
        """A message safe to show the customer about a failed payment, or None."""
        if self.error_code is None:
            return None
        from pasarela.errors import ErrorCode, PasarelaError  # noqa: PLC0415

        try:
            code = ErrorCode(self.error_code)
        except ValueError:
            code = ErrorCode.PROVIDER_ERROR
        return PasarelaError("", code=code).customer_message(language)

    @property
    def refunded_amount(self) -> Money:
        return self.refunded or Money.zero(self.amount.currency)

    @property
    def refundable(self) -> Money:
        return self.amount - self.refunded_amount


@attrs.frozen(kw_only=True)
class Refund:
    id: str
    payment_id: str
    amount: Money
    status: RefundStatus
    created_at: datetime
    reason: str = ""
    provider_reference: str | None = None


# Their home is pasarela.model: the names people import, repr and pickle see.
for _record in (Document, Customer, Order, Transition, Payment, Refund):
    _record.__module__ = "pasarela.model"
del _record
