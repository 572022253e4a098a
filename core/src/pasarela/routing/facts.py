"""What routing looks at: an order's routing facts (no personal data) and the moment."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Final

from pasarela.model import Order
from pasarela.money import Money, currency_exponent
from pasarela.timezones import LIMA


#: Time windows in rules are in Lima time (UTC-5, no daylight saving since 1994).


@cache
def exponent_of(currency: str) -> int:
    return currency_exponent(currency)


def money_text(minor: int, currency: str) -> str:
    exponent = exponent_of(currency)
    if exponent == 0:
        return f"{currency} {minor}"
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{currency} {sign}{whole}.{part:0{exponent}d}"


def listed(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else "one of " + ", ".join(values)


class Facts:
    """The parts of an order rules look at (no personal data)."""

    __slots__ = ("country", "currency", "document", "email_domain", "metadata", "minor",
                 "network", "phone", "reference")

    def __init__(self, reference: str, minor: int, currency: str, country: str,
                 metadata: Mapping[str, str], document: str | None, phone: bool,
                 email_domain: str | None, network: str | None = None) -> None:
        self.reference = reference
        self.minor = minor
        self.currency = currency
        self.country = country
        self.metadata = metadata
        self.document = document
        self.phone = phone
        self.email_domain = email_domain
        #: The network the caller asked for (``pay(..., network=)``), or None.
        self.network = network

    @classmethod
    def of(cls, order: Order, network: str | None = None) -> Facts:
        facts = _new(cls)  # each field set here, as __init__ would (one call fewer)
        customer = order.customer
        if customer is None:
            facts.document, facts.phone, facts.email_domain = None, False, None
        else:
            facts.document = customer.document.kind if customer.document is not None else None
            facts.phone = customer.phone is not None
            facts.email_domain = (customer.email.rpartition("@")[2].lower() if customer.email
                                  else None)
        amount = order.amount
        facts.reference = order.reference
        facts.minor = amount.minor
        facts.currency = amount.currency
        facts.country = order.country
        facts.metadata = order.metadata
        facts.network = network
        return facts

    def to_dict(self) -> dict[str, Any]:
        extra = {"network": self.network} if self.network is not None else {}
        return {
            **extra,
            "reference": self.reference,
            "amount": {"minor": self.minor, "currency": self.currency},
            "country": self.country,
            "metadata": dict(self.metadata),
            "customer": {"document": self.document, "phone": self.phone,
                         "email_domain": self.email_domain},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Facts:
        amount = data["amount"]
        customer = data.get("customer") or {}
        return cls(str(data["reference"]), int(amount["minor"]), str(amount["currency"]),
                   str(data.get("country", "PE")), dict(data.get("metadata") or {}),
                   customer.get("document"), bool(customer.get("phone")),
                   customer.get("email_domain"), data.get("network"))

    def order(self) -> Order:
        """An order with these facts, for provider eligibility on replay."""
        return Order(reference=self.reference, amount=Money(self.minor, self.currency),
                     country=self.country, metadata=self.metadata)


class Moment:
    """The decision's time, converted to Lima time only if a rule asks."""

    __slots__ = ("_local", "now")

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._local: datetime | None = None

    def local(self) -> datetime:
        if self._local is None:
            self._local = self.now.astimezone(LIMA)
        return self._local


Check = Callable[[Facts, Moment], "str | None"]

_new: Final = object.__new__
