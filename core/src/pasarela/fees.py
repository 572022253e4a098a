"""Fee schedules: what a provider charges the merchant for a payment.

A schedule comes from a provider's ``fees`` setting::

    fees = { percent = "3.5", fixed = "PEN 0.50", minimum = "PEN 1.00", igv = true,
             settlement_currency = "PEN", fx_spread = "2.5", refund_fixed = "PEN 2.00",
             card = { percent = "3.99" } }

For an amount the expected cost is, each part rounded half-up to the currency's
minor unit:

- **commission**: ``percent`` of the amount plus ``fixed``, raised to ``minimum``;
- **IGV**: 18 % of the (rounded) commission when ``igv`` is true, as the invoice
  would state it;
- **FX spread**: ``fx_spread`` percent of the amount when the amount's currency is
  not ``settlement_currency`` (a USD payment settled in PEN, or the other way);
  no IGV is charged on the spread.

``fixed``, ``minimum`` and ``refund_fixed`` are amounts in a currency; give a list
(``fixed = ["PEN 0.50", "USD 0.15"]``) for a provider that takes several. An
amount in a currency with no ``fixed`` entry gets no fixed part, and the
breakdown says so. A refund costs ``refund_fixed`` (plus IGV when ``igv``).

A table named for a method (``cash``, ``wallet``, ``card``, ``bank_transfer``) overrides the keys it
gives for that method: :meth:`FeeSchedule.from_mapping` with ``method=``.
Percentages are strings (``"3.5"``) or integers, never floats.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError, PasarelaError
from pasarela.money import Money, currency_exponent


__all__ = ["IGV_RATE", "FeeBreakdown", "FeeSchedule"]

#: Peru's IGV (IGV + IPM), charged on the provider's fee.
IGV_RATE: Final = Decimal("0.18")
_IGV_NUM, _IGV_DEN = IGV_RATE.as_integer_ratio()

_METHODS: Final = ("cash", "wallet", "card", "bank_transfer")
_KEYS: Final = (
    "percent", "fixed", "minimum", "igv", "settlement_currency", "fx_spread", "refund_fixed",
)


def _ratio(value: Decimal) -> tuple[int, int]:
    """*value* percent as an exact fraction ``(numerator, denominator)``."""
    num, den = value.as_integer_ratio()
    return num, den * 100


def _round_half_up(num: int, den: int) -> int:
    """``num / den`` rounded half-up, for ``num >= 0`` and ``den > 0``."""
    return (2 * num + den) // (2 * den)


def _percent(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ConfigurationError(
            'write percentages as strings, e.g. "3.5"', path=path
        )
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"not a number: {value!r}", path=path) from None
    if not out.is_finite() or out < 0 or out > 100:
        raise ConfigurationError(f"must be a percentage from 0 to 100, got {value!r}", path=path)
    return out


def _amounts(value: Any, path: str) -> tuple[Money, ...]:
    """One amount (``"PEN 0.50"``) or a list of them, at most one per currency."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    out: list[Money] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]" if isinstance(value, list | tuple) else path
        if isinstance(item, Money):
            money = item
        elif isinstance(item, str):
            try:
                money = Money.parse(item)
            except PasarelaError as exc:
                raise ConfigurationError(
                    f"expected an amount like 'PEN 0.50': {getattr(exc, 'reason', exc)}",
                    path=where,
                ) from None
        else:
            raise ConfigurationError("expected an amount like 'PEN 0.50'", path=where)
        if money.minor < 0:
            raise ConfigurationError("must not be negative", path=where)
        if any(m.currency == money.currency for m in out):
            raise ConfigurationError(f"more than one amount in {money.currency}", path=where)
        out.append(money)
    return tuple(out)


def _in(amounts: tuple[Money, ...], currency: str) -> Money | None:
    for money in amounts:
        if money.currency == currency:
            return money
    return None


@attrs.frozen(kw_only=True)
class FeeBreakdown:
    """The parts of an expected fee, each in the amount's currency."""

    amount: Money
    commission: Money
    igv: Money
    fx: Money
    total: Money
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def money(m: Money) -> dict[str, Any]:
            return {"minor": m.minor, "currency": m.currency}

        return {"commission": money(self.commission), "igv": money(self.igv),
                "fx": money(self.fx), "total": money(self.total), "notes": list(self.notes)}


@attrs.frozen(kw_only=True)
class FeeSchedule:
    """A provider's fees for one method (or for all, without overrides)."""

    percent: Decimal = Decimal(0)
    fixed: tuple[Money, ...] = ()
    minimum: tuple[Money, ...] = ()
    igv: bool = False
    settlement_currency: str | None = None
    fx_spread: Decimal = Decimal(0)
    refund_fixed: tuple[Money, ...] = ()
    _percent_ratio: tuple[int, int] = attrs.field(init=False, repr=False, eq=False)
    _fx_ratio: tuple[int, int] = attrs.field(init=False, repr=False, eq=False)
    _fixed: dict[str, int] = attrs.field(init=False, repr=False, eq=False)
    _minimum: dict[str, int] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_percent_ratio", _ratio(self.percent))
        object.__setattr__(self, "_fx_ratio", _ratio(self.fx_spread))
        object.__setattr__(self, "_fixed", {m.currency: m.minor for m in self.fixed})
        object.__setattr__(self, "_minimum", {m.currency: m.minor for m in self.minimum})

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        path: str = "fees",
        method: str | None = None,
        currencies: Collection[str] | None = None,
    ) -> FeeSchedule:
        """Build a schedule from a provider's ``fees`` table.

        :param path: where the table is, for error messages (``providers.x.fees``).
        :param method: apply the overrides in the table named for this method.
        :param currencies: the currencies the provider accepts; an amount or a
            settlement currency outside them is an error (a schedule in the wrong
            currency).
        :raises ConfigurationError: naming the setting at fault.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError("expected a table", path=path)
        for key in data:
            if key not in _KEYS and key not in _METHODS:
                raise ConfigurationError(
                    f"unknown fee setting; known: {', '.join(_KEYS + _METHODS)}",
                    path=f"{path}.{key}",
                )
        base = cls._build(data, path, currencies)
        overrides = {}
        for name in _METHODS:
            table = data.get(name)
            if table is None:
                continue
            where = f"{path}.{name}"
            if not isinstance(table, Mapping):
                raise ConfigurationError("expected a table of fee settings", path=where)
            for key in table:
                if key not in _KEYS:
                    raise ConfigurationError(
                        f"unknown fee setting; known: {', '.join(_KEYS)}", path=f"{where}.{key}"
                    )
            merged = {k: v for k, v in data.items() if k in _KEYS} | dict(table)
            overrides[name] = cls._build(merged, where, currencies)
        if method is not None and str(method) in overrides:
            return overrides[str(method)]
        return base

    @classmethod
    def _build(
        cls, data: Mapping[str, Any], path: str, currencies: Collection[str] | None
    ) -> FeeSchedule:
        igv = data.get("igv", False)
        if not isinstance(igv, bool):
            raise ConfigurationError("expected true or false", path=f"{path}.igv")
        settlement = data.get("settlement_currency")
        if settlement is not None:
            if not isinstance(settlement, str):
                raise ConfigurationError("expected a currency code like 'PEN'",
                                         path=f"{path}.settlement_currency")
            try:
                currency_exponent(settlement.upper())
            except PasarelaError:
                raise ConfigurationError(f"unknown currency {settlement!r}",
                                         path=f"{path}.settlement_currency") from None
            settlement = settlement.upper()
        spread = _percent(data.get("fx_spread", "0"), f"{path}.fx_spread")
        if spread and settlement is None:
            raise ConfigurationError(
                "needs settlement_currency (the spread applies when the payment's "
                "currency differs from it)", path=f"{path}.fx_spread",
            )
        schedule = cls(
            percent=_percent(data.get("percent", "0"), f"{path}.percent"),
            fixed=_amounts(data.get("fixed"), f"{path}.fixed"),
            minimum=_amounts(data.get("minimum"), f"{path}.minimum"),
            igv=igv,
            settlement_currency=settlement,
            fx_spread=spread,
            refund_fixed=_amounts(data.get("refund_fixed"), f"{path}.refund_fixed"),
        )
        if currencies is not None:
            accepted = ", ".join(sorted(currencies)) or "none"
            for key in ("fixed", "minimum", "refund_fixed"):
                for money in getattr(schedule, key):
                    if money.currency not in currencies:
                        raise ConfigurationError(
                            f"{money} is in a currency the provider does not accept "
                            f"(accepts: {accepted})", path=f"{path}.{key}",
                        )
            if settlement is not None and settlement not in currencies:
                raise ConfigurationError(
                    f"the provider does not accept {settlement} (accepts: {accepted})",
                    path=f"{path}.settlement_currency",
                )
        return schedule

    @property
    def currencies(self) -> frozenset[str]:
        """The currencies of the schedule's fixed amounts."""
        return frozenset(m.currency for m in (*self.fixed, *self.minimum, *self.refund_fixed))

    def _parts(self, minor: int, currency: str) -> tuple[int, int, int, bool]:
        """Commission, IGV and FX spread in minor units; whether the minimum applied."""
        num, den = self._percent_ratio
        commission_num = minor * num + self._fixed.get(currency, 0) * den
        floor = self._minimum.get(currency)
        raised = False
        if floor is not None and commission_num < floor * den:
            commission_num, raised = floor * den, True
        commission = _round_half_up(commission_num, den) if commission_num > 0 else 0
        igv = _round_half_up(commission * _IGV_NUM, _IGV_DEN) if self.igv else 0
        fx = 0
        if self.settlement_currency is not None and currency != self.settlement_currency:
            fx_num, fx_den = self._fx_ratio
            fx = _round_half_up(minor * fx_num, fx_den) if fx_num else 0
        return commission, igv, fx, raised

    def fee_minor(self, minor: int, currency: str) -> int:
        """The total expected fee for *minor* units of *currency*, in minor units.

        Integer arithmetic only; the same number as ``breakdown(...).total``.
        """
        commission, igv, fx, _ = self._parts(minor, currency)
        return commission + igv + fx

    def fee(self, amount: Money) -> Money:
        """The expected fee for *amount*, IGV and FX spread included where they apply."""
        return Money(self.fee_minor(amount.minor, amount.currency), amount.currency)

    def breakdown(self, amount: Money) -> FeeBreakdown:
        """The expected fee for *amount*, part by part, with notes on what was left out."""
        currency = amount.currency
        commission, igv, fx, raised = self._parts(amount.minor, currency)
        notes: list[str] = []
        if self.fixed and currency not in self._fixed:
            listed = ", ".join(str(m) for m in self.fixed)
            notes.append(f"no fixed fee counted: the schedule has none in {currency} ({listed})")
        if raised:
            notes.append(f"raised to the minimum {_in(self.minimum, currency)}")
        if self.settlement_currency is not None and currency != self.settlement_currency:
            notes.append(f"FX spread {self.fx_spread}% to settle in {self.settlement_currency}")
        return FeeBreakdown(
            amount=amount, commission=Money(commission, currency), igv=Money(igv, currency),
            fx=Money(fx, currency), total=Money(commission + igv + fx, currency),
            notes=tuple(notes),
        )

    def refund_fee(self, amount: Money) -> Money:
        """What refunding *amount* costs: ``refund_fixed`` in its currency, plus IGV."""
        fixed = _in(self.refund_fixed, amount.currency)
        minor = fixed.minor if fixed is not None else 0
        if self.igv:
            minor += _round_half_up(minor * _IGV_NUM, _IGV_DEN)
        return Money(minor, amount.currency)
