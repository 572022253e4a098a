"""The data model: orders, customers, payments and refunds, frozen attrs values
validated at construction.

What the customer must do next (a payment's ``next_action``) is
:mod:`pasarela.next_action`.

A change makes a new value (``attrs.evolve``). Validators raise
:class:`pasarela.errors.ValidationError` naming the field. Secrets (a card
``client_secret``) are kept out of ``repr``.

The attrs classes (:class:`Order`, :class:`Customer`, :class:`Document`,
:class:`Payment`, :class:`Transition`, :class:`Refund`) are defined on first use, in
``pasarela.model.records``, when a name of theirs is first read here: attrs compiling
their methods was a tenth of discovering the plugins, which needs none of them. Each
name is then the same class on every read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from pasarela.errors import ValidationError


if TYPE_CHECKING:
    from pasarela.model.records import Customer, Document, Order, Payment, Refund, Transition


__all__ = [
    "Customer",
    "Document",
    "Method",
    "Order",
    "Payment",
    "Refund",
    "RefundStatus",
    "Transition",
    "as_method",
    "check_storable_text",
]


class Method(StrEnum):
    """How the customer pays."""

    CASH = "cash"
    WALLET = "wallet"
    CARD = "card"
    #: A transfer from the customer's bank to an account the provider gives
    #: (``pasarela.next_action.BankTransfer``).
    BANK_TRANSFER = "bank_transfer"


#: Each method by its value: ``Method(value)`` is an enum call, a tenth of building a
#: payment read from the store.
_METHODS: Final = {m.value: m for m in Method}


def as_method(value: Method | str) -> Method:
    """*value* as a :class:`Method`, or ``ValidationError`` naming ``method``."""
    if isinstance(value, Method):
        return value
    known = _METHODS.get(value) if isinstance(value, str) else None
    if known is not None:
        return known
    try:
        return Method(value)
    except ValueError:
        raise ValidationError(
            f"unknown method {value!r}; one of {', '.join(m.value for m in Method)}",
            field="method",
        ) from None


def check_storable_text(value: str, field: str) -> None:
    """Refuse text that a store or a provider cannot take: a NUL character (PostgreSQL
    refuses it in text) or a lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        raise ValidationError("must not contain a NUL character", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("contains characters that are not valid Unicode text",
                              field=field) from None


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: The attrs classes, defined in ``pasarela.model.records`` on first use.
_RECORDS = frozenset({"Customer", "Document", "Order", "Payment", "Refund", "Transition"})


def _define_records() -> None:
    """Import the classes' module and put them in this module's place."""
    from pasarela.model import records  # noqa: PLC0415 - defined on first use

    names = globals()
    for name in _RECORDS:
        names[name] = getattr(records, name)
    # What their annotations name, where typing.get_type_hints looks (their __module__).
    for name, value in vars(records).items():
        if not name.startswith("_"):
            names.setdefault(name, value)


def __getattr__(name: str) -> Any:
    if name in _RECORDS:
        _define_records()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_RECORDS})
