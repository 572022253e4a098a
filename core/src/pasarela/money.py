"""Money: integer minor units plus an ISO 4217 currency code.

Floats are refused everywhere: ``Money.of("12.50", "PEN")`` or
``Money.parse("PEN 12.50")``. Arithmetic between different currencies is an
error. Formatting for people goes through Babel (``S/ 1,234.50`` in es-PE).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Final

import attrs

from pasarela.errors import ValidationError


__all__ = ["MAX_MINOR", "Money", "currency_exponent"]

# Codes that ISO 4217 reserves for tests, metals and "no currency".
_NOT_MONEY: Final = frozenset({"XXX", "XTS", "XAU", "XAG", "XPD", "XPT", "XDR"})
_PARSE_RE: Final = re.compile(r"^\s*([A-Za-z]{3})\s*([+-]?[0-9][0-9,]*(?:\.[0-9]+)?)\s*$")


@cache
def _known_currencies() -> frozenset[str]:
    # Babel on first use (its import and currency data are a good part of importing
    # pasarela otherwise)
    from babel.numbers import list_currencies  # noqa: PLC0415

    return frozenset(list_currencies()) - _NOT_MONEY


@lru_cache(maxsize=512)  # bounded: codes can come from untrusted input
def _exponent(code: str) -> int | None:
    from babel.numbers import get_currency_precision  # noqa: PLC0415

    return int(get_currency_precision(code)) if code in _known_currencies() else None


def currency_exponent(currency: str, *, field: str = "currency") -> int:
    """Return the number of decimals of *currency*, or raise ``ValidationError``."""
    exponent = _exponent(currency.upper()) if isinstance(currency, str) else None
    if exponent is None:
        raise ValidationError(f"unknown ISO 4217 currency {currency!r}", field=field)
    return exponent


#: The codes that passed :func:`_check_currency` (known to ISO 4217 and upper case: a
#: few hundred at most), which a Money of them then need not look up again.
_CHECKED: Final[set[str]] = set()


def _check_currency(instance: Money, attribute: attrs.Attribute[str], value: str) -> None:
    if type(value) is str and value in _CHECKED:
        return
    currency_exponent(value)
    if value != value.upper():
        raise ValidationError("currency must be upper case", field="currency")
    _CHECKED.add(value)


#: The largest amount, in minor units, that the store keeps (a signed 64-bit integer).
MAX_MINOR: Final = 2**63 - 1


def _check_minor(instance: Money, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"minor units must be an int, not {type(value).__name__}", field="amount"
        )
    if not -MAX_MINOR <= value <= MAX_MINOR:
        raise ValidationError("amount too large", field="amount")


@attrs.frozen(order=False)
class Money:
    """An amount of money.

    Attributes:
        minor: the amount in minor units (céntimos for PEN, cents for USD).
        currency: the ISO 4217 code, upper case.
    """

    minor: int = attrs.field(validator=_check_minor)
    currency: str = attrs.field(validator=_check_currency)

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str, *, field: str = "amount") -> Money:
        """Build from a decimal amount in major units: ``Money.of("149.90", "PEN")``.

        More decimals than the currency has, floats and non-numbers are refused.
        """
        code = currency.upper() if isinstance(currency, str) else currency
        exponent = currency_exponent(
            code, field=f"{field}.currency" if field != "amount" else "currency"
        )
        if isinstance(amount, float | bool):
            raise ValidationError(
                "amounts must not be floats; pass a string or Decimal", field=field
            )
        if isinstance(amount, int):
            value = Decimal(amount)
        elif isinstance(amount, Decimal):
            value = amount
        elif isinstance(amount, str):
            try:
                value = Decimal(amount.strip())
            except InvalidOperation:
                raise ValidationError(f"not a decimal amount: {amount!r}", field=field) from None
        else:
            raise ValidationError(
                f"amounts must be str, Decimal or int, not {type(amount).__name__}", field=field
            )
        if not value.is_finite():
            raise ValidationError(f"not a finite amount: {amount!r}", field=field)
        if value and value.adjusted() > 20:  # past any int64 of minor units, whatever the exponent
            raise ValidationError("amount too large", field=field)
        scaled = value.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise ValidationError(
                f"{code} has {exponent} decimals; {amount!r} has more", field=field
            )
        return cls(int(scaled), code)

    @classmethod
    def parse(cls, text: str, *, field: str = "amount") -> Money:
        """Parse ``"PEN 12.50"`` (thousands separators allowed: ``"PEN 1,500"``)."""
        if not isinstance(text, str):
            raise ValidationError("expected text like 'PEN 12.50'", field=field)
        match = _PARSE_RE.match(text)
        if match is None:
            raise ValidationError(f"expected 'CUR 12.50', got {text!r}", field=field)
        currency, number = match.groups()
        return cls.of(number.replace(",", ""), currency, field=field)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    @property
    def amount(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.minor).scaleb(-self.exponent)

    def decimal_string(self) -> str:
        """``"149.90"``: major units with exactly the currency's decimals."""
        return f"{self.amount:.{self.exponent}f}"

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValidationError(
                f"cannot mix {self.currency} and {other.currency}", field="currency"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same(other).minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same(other).minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same(other).minor

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same(other).minor

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same(other).minor

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same(other).minor

    def __bool__(self) -> bool:
        return self.minor != 0

    def __str__(self) -> str:
        return f"{self.currency} {self.decimal_string()}"

    def format(self, locale: str = "es_PE") -> str:
        """Format for people with Babel: ``S/ 1,234.50`` in ``es_PE``."""
        return _formatted(self.minor, self.currency, locale)


@lru_cache(maxsize=1024)  # bounded: the locale can come from a request
def _formatted(minor: int, currency: str, locale: str) -> str:
    """:meth:`Money.format`'s text, made once an amount, currency and locale (Babel
    reads its locale data for every call: ~13 us an amount)."""
    from babel.numbers import format_currency  # noqa: PLC0415 - on first use

    amount = Decimal(minor).scaleb(-currency_exponent(currency))
    return str(format_currency(amount, currency, locale=locale))
