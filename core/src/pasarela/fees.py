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
  no IGV is charged on the spread;
- **cross-border fee**: ``cross_border`` percent of the amount, on every payment
  through an account that collects in Peru and settles abroad (dLocal's model for
  sellers abroad); no IGV either. It is its own line, beside the spread: an account
  settling abroad in USD typically carries both (``settlement_currency = "USD"``,
  ``fx_spread = "..."``, ``cross_border = "..."``).

``fixed``, ``minimum`` and ``refund_fixed`` are amounts in a currency; give a list
(``fixed = ["PEN 0.50", "USD 0.15"]``) for a provider that takes several. An
amount in a currency with no ``fixed`` entry gets no fixed part, and the
breakdown says so. A refund costs ``refund_fixed`` (plus IGV when ``igv``).

A table named for a method (``cash``, ``wallet``, ``card``, ``bank_transfer``) overrides the keys it
gives for that method: :meth:`FeeSchedule.from_mapping` with ``method=``.
Percentages are strings (``"3.5"``) or integers, never floats.

The cost analysis (``pasarela costs``) reads more of the table:

- per payment (at the top, in a method's table or in a category's): ``markup``
  (an aggregator's percent over the network, added to ``percent``), ``network``
  (the network a method reaches through this provider: ``pagoefectivo``, ``yape``,
  ``visa``...), ``refund_percent``, ``chargeback_fixed``, ``settlement_days``
  (T+N) and ``tiers``: a list of ``{ from = "PEN 50000.00", percent = "3.0" }`` or
  ``{ from_count = 1000, ... }`` whose last reached threshold (by the month's real
  volume or order count of the account) sets ``percent``, ``fixed``, ``minimum``
  and ``markup`` for the whole month (:meth:`FeeSchedule.in_tier`);
- ``category`` names the merchant's category and ``categories = { NAME = { ... } }``
  gives each category's per-payment overrides (high-risk categories pay more);
- per account (:class:`AccountTerms`): ``monthly`` (named fixed monthly fees:
  platform, SLA, support), ``commitment = { volume = "PEN 30000.00",
  shortfall_percent = "3.5" }`` (a month below the volume is charged the shortfall
  at that percent), ``cost_of_capital`` (annual percent: the cost of money in
  transit for ``settlement_days``), ``fx_rates = { "USD/PEN" = "3.75" }`` and
  ``contract = { start = 2026-01-01, term_months = 12, auto_renew = true,
  notice_days = 60, early_termination = "PEN 2000.00" }``.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError, PasarelaError
from pasarela.money import Money, currency_exponent


__all__ = ["IGV_RATE", "AccountTerms", "Contract", "FeeBreakdown", "FeeSchedule", "FeeTier",
           "add_months", "round_half_up"]

#: Peru's IGV (IGV + IPM), charged on the provider's fee.
IGV_RATE: Final = Decimal("0.18")
_IGV_NUM, _IGV_DEN = IGV_RATE.as_integer_ratio()

_METHODS: Final = ("cash", "wallet", "card", "bank_transfer")
_KEYS: Final = (
    "percent", "fixed", "minimum", "igv", "settlement_currency", "fx_spread", "cross_border",
    "refund_fixed", "markup", "network", "refund_percent", "chargeback_fixed",
    "settlement_days", "tiers",
)
#: Keys of the whole account (the top of the table only).
_ACCOUNT_KEYS: Final = (
    "category", "categories", "monthly", "commitment", "cost_of_capital", "fx_rates",
    "contract",
)
_TIER_KEYS: Final = ("from", "from_count", "percent", "fixed", "minimum", "markup")
_CONTRACT_KEYS: Final = ("start", "term_months", "auto_renew", "notice_days",
                         "early_termination")


def _ratio(value: Decimal) -> tuple[int, int]:
    """*value* percent as an exact fraction ``(numerator, denominator)``."""
    num, den = value.as_integer_ratio()
    return num, den * 100


def _round_half_up(num: int, den: int) -> int:
    """``num / den`` rounded half-up, for ``num >= 0`` and ``den > 0``."""
    return (2 * num + den) // (2 * den)


def round_half_up(value: Decimal | int) -> int:
    """*value* (minor units, not negative) rounded half-up to a whole minor unit."""
    num, den = Decimal(value).as_integer_ratio()
    return _round_half_up(num, den)


def igv_on(minor: int) -> int:
    """IGV (18 %) on *minor* units of a fee, rounded half-up."""
    return _round_half_up(minor * _IGV_NUM, _IGV_DEN)


def add_months(day: date, months: int) -> date:
    """*day* moved by *months* calendar months (the 31st becomes the month's last day)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


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
    #: The cross-border fee (``cross_border`` percent); zero without one.
    cross_border: Money
    total: Money
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def money(m: Money) -> dict[str, Any]:
            return {"minor": m.minor, "currency": m.currency}

        return {"commission": money(self.commission), "igv": money(self.igv),
                "fx": money(self.fx), "cross_border": money(self.cross_border),
                "total": money(self.total), "notes": list(self.notes)}


def _int(value: Any, path: str, *, least: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError("expected a whole number", path=path)
    if value < least:
        raise ConfigurationError(f"must be at least {least}, got {value}", path=path)
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError("expected true or false", path=path)
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("expected a name", path=path)
    return value.strip()


def _table(value: Any, path: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError("expected a table", path=path)
    for key in value:
        if key not in known:
            raise ConfigurationError(f"unknown setting; known: {', '.join(known)}",
                                     path=f"{path}.{key}")
    return value


def _currency(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError("expected a currency code like 'PEN'", path=path)
    try:
        currency_exponent(value.upper())
    except PasarelaError:
        raise ConfigurationError(f"unknown currency {value!r}", path=path) from None
    return value.upper()


def _rate(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ConfigurationError('write rates as strings, e.g. "3.75"', path=path)
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"not a number: {value!r}", path=path) from None
    if not out.is_finite() or out <= 0:
        raise ConfigurationError(f"must be a positive number, got {value!r}", path=path)
    return out


@attrs.frozen(kw_only=True)
class FeeTier:
    """A volume band: from a month's volume (``from``) or order count (``from_count``)
    on, the keys it gives replace the schedule's for the whole month."""

    from_volume: Money | None = None
    from_count: int | None = None
    percent: Decimal | None = None
    fixed: tuple[Money, ...] | None = None
    minimum: tuple[Money, ...] | None = None
    markup: Decimal | None = None

    @property
    def label(self) -> str:
        return (f"from {self.from_volume}" if self.from_volume is not None
                else f"from {self.from_count} orders")

    def reached(self, volume: Mapping[str, int], count: int) -> bool:
        if self.from_volume is not None:
            return volume.get(self.from_volume.currency, 0) >= self.from_volume.minor
        return count >= (self.from_count or 0)


def _tiers(value: Any, path: str) -> tuple[FeeTier, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ConfigurationError("expected a list of tiers, e.g. "
                                 '[{ from = "PEN 50000.00", percent = "3.0" }]', path=path)
    out: list[FeeTier] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        table = _table(item, where, _TIER_KEYS)
        if ("from" in table) == ("from_count" in table):
            raise ConfigurationError("give one threshold: from (a monthly volume) or "
                                     "from_count (a monthly number of orders)", path=where)
        volume = None
        if "from" in table:
            [volume] = _amounts(table["from"], f"{where}.from") or [None]
        tier = FeeTier(
            from_volume=volume,
            from_count=_int(table["from_count"], f"{where}.from_count")
            if "from_count" in table else None,
            percent=_percent(table["percent"], f"{where}.percent") if "percent" in table
            else None,
            fixed=_amounts(table["fixed"], f"{where}.fixed") if "fixed" in table else None,
            minimum=_amounts(table["minimum"], f"{where}.minimum") if "minimum" in table
            else None,
            markup=_percent(table["markup"], f"{where}.markup") if "markup" in table else None,
        )
        if out:
            prev = out[-1]
            if (prev.from_volume is None) != (tier.from_volume is None):
                raise ConfigurationError("every tier of a schedule uses the same threshold "
                                         "(all from, or all from_count)", path=where)
            if tier.from_volume is not None and prev.from_volume is not None:
                if tier.from_volume.currency != prev.from_volume.currency:
                    raise ConfigurationError("every tier's from is in one currency",
                                             path=f"{where}.from")
                if tier.from_volume.minor <= prev.from_volume.minor:
                    raise ConfigurationError("tiers go up: each from above the last",
                                             path=f"{where}.from")
            if (tier.from_count is not None and prev.from_count is not None
                    and tier.from_count <= prev.from_count):
                raise ConfigurationError("tiers go up: each from_count above the last",
                                         path=f"{where}.from_count")
        out.append(tier)
    return tuple(out)


@attrs.frozen(kw_only=True)
class FeeSchedule:
    """A provider's fees for one method (or for all, without overrides)."""

    percent: Decimal = Decimal(0)
    fixed: tuple[Money, ...] = ()
    minimum: tuple[Money, ...] = ()
    igv: bool = False
    settlement_currency: str | None = None
    fx_spread: Decimal = Decimal(0)
    #: Percent of every payment's amount for collecting in Peru and settling abroad.
    cross_border: Decimal = Decimal(0)
    refund_fixed: tuple[Money, ...] = ()
    #: An aggregator's percent over the network's, charged with ``percent``.
    markup: Decimal = Decimal(0)
    #: The network the method reaches through this provider (None: the method's usual).
    network: str | None = None
    refund_percent: Decimal = Decimal(0)
    chargeback_fixed: tuple[Money, ...] = ()
    #: Days from collection to settlement (T+N).
    settlement_days: int = 0
    tiers: tuple[FeeTier, ...] = ()
    _percent_ratio: tuple[int, int] = attrs.field(init=False, repr=False, eq=False)
    _fx_ratio: tuple[int, int] = attrs.field(init=False, repr=False, eq=False)
    _cross_ratio: tuple[int, int] = attrs.field(init=False, repr=False, eq=False)
    _fixed: dict[str, int] = attrs.field(init=False, repr=False, eq=False)
    _minimum: dict[str, int] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_percent_ratio", _ratio(self.percent + self.markup))
        object.__setattr__(self, "_fx_ratio", _ratio(self.fx_spread))
        object.__setattr__(self, "_cross_ratio", _ratio(self.cross_border))
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
        known = _KEYS + _ACCOUNT_KEYS + _METHODS
        for key in data:
            if key not in known:
                raise ConfigurationError(
                    f"unknown fee setting; known: {', '.join(known)}",
                    path=f"{path}.{key}",
                )
        terms = AccountTerms.from_mapping(data, path=path, currencies=currencies)
        top = {k: v for k, v in data.items() if k in _KEYS}
        categories = data.get("categories") or {}
        top_path = path
        if terms.category is not None:
            top = top | dict(categories[terms.category])
            top_path = f"{path}.categories.{terms.category}"
        base = cls._build(top, top_path, currencies)
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
            overrides[name] = cls._build(top | dict(table), where, currencies)
        if method is not None and str(method) in overrides:
            return overrides[str(method)]
        return base

    @classmethod
    def _build(
        cls, data: Mapping[str, Any], path: str, currencies: Collection[str] | None
    ) -> FeeSchedule:
        igv = _bool(data.get("igv", False), f"{path}.igv")
        settlement = data.get("settlement_currency")
        if settlement is not None:
            settlement = _currency(settlement, f"{path}.settlement_currency")
        spread = _percent(data.get("fx_spread", "0"), f"{path}.fx_spread")
        if spread and settlement is None:
            raise ConfigurationError(
                "needs settlement_currency (the spread applies when the payment's "
                "currency differs from it)", path=f"{path}.fx_spread",
            )
        network = data.get("network")
        schedule = cls(
            percent=_percent(data.get("percent", "0"), f"{path}.percent"),
            fixed=_amounts(data.get("fixed"), f"{path}.fixed"),
            minimum=_amounts(data.get("minimum"), f"{path}.minimum"),
            igv=igv,
            settlement_currency=settlement,
            fx_spread=spread,
            cross_border=_percent(data.get("cross_border", "0"), f"{path}.cross_border"),
            refund_fixed=_amounts(data.get("refund_fixed"), f"{path}.refund_fixed"),
            markup=_percent(data.get("markup", "0"), f"{path}.markup"),
            network=_name(network, f"{path}.network") if network is not None else None,
            refund_percent=_percent(data.get("refund_percent", "0"), f"{path}.refund_percent"),
            chargeback_fixed=_amounts(data.get("chargeback_fixed"), f"{path}.chargeback_fixed"),
            settlement_days=_int(data.get("settlement_days", 0), f"{path}.settlement_days"),
            tiers=_tiers(data.get("tiers"), f"{path}.tiers"),
        )
        if currencies is not None:
            accepted = ", ".join(sorted(currencies)) or "none"
            for key in ("fixed", "minimum", "refund_fixed", "chargeback_fixed"):
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

    def tier_index(self, volume: Mapping[str, int], count: int) -> int | None:
        """The tier in force for a month of *volume* (minor units by currency) and
        *count* orders: the last one reached (None: below every tier)."""
        found = None
        for i, tier in enumerate(self.tiers):
            if tier.reached(volume, count):
                found = i
        return found

    def in_tier(self, index: int | None) -> FeeSchedule:
        """The schedule with tier *index*'s keys in force (itself for None)."""
        if index is None:
            return self
        tier = self.tiers[index]
        changes: dict[str, Any] = {"tiers": ()}
        for key in ("percent", "fixed", "minimum", "markup"):
            value = getattr(tier, key)
            if value is not None:
                changes[key] = value
        return attrs.evolve(self, **changes)

    def parts_minor(self, minor: int, currency: str) -> tuple[int, int, int, int]:
        """Commission, IGV, FX spread and cross-border fee of *minor* units of
        *currency* (minor units, each rounded half-up on its own)."""
        commission, igv, fx, cross, _ = self._parts(minor, currency)
        return commission, igv, fx, cross

    def _parts(self, minor: int, currency: str) -> tuple[int, int, int, int, bool]:
        """Commission, IGV, FX spread and cross-border fee in minor units; whether the
        minimum applied."""
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
        cross_num, cross_den = self._cross_ratio
        cross = _round_half_up(minor * cross_num, cross_den) if cross_num else 0
        return commission, igv, fx, cross, raised

    def fee_minor(self, minor: int, currency: str) -> int:
        """The total expected fee for *minor* units of *currency*, in minor units.

        Integer arithmetic only; the same number as ``breakdown(...).total``.
        """
        commission, igv, fx, cross, _ = self._parts(minor, currency)
        return commission + igv + fx + cross

    def fee(self, amount: Money) -> Money:
        """The expected fee for *amount*, IGV and FX spread included where they apply."""
        return Money(self.fee_minor(amount.minor, amount.currency), amount.currency)

    def breakdown(self, amount: Money) -> FeeBreakdown:
        """The expected fee for *amount*, part by part, with notes on what was left out."""
        currency = amount.currency
        commission, igv, fx, cross, raised = self._parts(amount.minor, currency)
        notes: list[str] = []
        if self.fixed and currency not in self._fixed:
            listed = ", ".join(str(m) for m in self.fixed)
            notes.append(f"no fixed fee counted: the schedule has none in {currency} ({listed})")
        if raised:
            notes.append(f"raised to the minimum {_in(self.minimum, currency)}")
        if self.settlement_currency is not None and currency != self.settlement_currency:
            notes.append(f"FX spread {self.fx_spread}% to settle in {self.settlement_currency}")
        if cross:
            notes.append(f"cross-border fee {self.cross_border}%")
        return FeeBreakdown(
            amount=amount, commission=Money(commission, currency), igv=Money(igv, currency),
            fx=Money(fx, currency), cross_border=Money(cross, currency),
            total=Money(commission + igv + fx + cross, currency), notes=tuple(notes),
        )

    def refund_fee(self, amount: Money) -> Money:
        """What refunding *amount* costs: ``refund_fixed`` in its currency plus
        ``refund_percent`` of it (rounded half-up), plus IGV."""
        return Money(self.refund_fee_minor(amount.minor, amount.currency), amount.currency)

    def refund_fee_minor(self, minor: int, currency: str) -> int:
        fixed = self._fixed_in(self.refund_fixed, currency)
        num, den = _ratio(self.refund_percent)
        fee = _round_half_up(minor * num + fixed * den, den) if num else fixed
        return fee + (igv_on(fee) if self.igv else 0)

    def chargeback_fee_minor(self, currency: str) -> int:
        """What one chargeback costs in *currency* (``chargeback_fixed``, plus IGV)."""
        fee = self._fixed_in(self.chargeback_fixed, currency)
        return fee + (igv_on(fee) if self.igv else 0)

    @staticmethod
    def _fixed_in(amounts: tuple[Money, ...], currency: str) -> int:
        found = _in(amounts, currency)
        return found.minor if found is not None else 0


@attrs.frozen(kw_only=True)
class Contract:
    """A provider contract's terms: start, term, renewal and its notice, penalty."""

    start: date
    term_months: int
    auto_renew: bool = False
    notice_days: int = 0
    early_termination: tuple[Money, ...] = ()

    def term_at(self, day: date) -> tuple[date, date]:
        """The term (start, end exclusive) in force on *day*: renewals counted when
        the contract renews itself; the first term otherwise (or once it ended)."""
        start, end = self.start, add_months(self.start, self.term_months)
        while self.auto_renew and end <= day:
            start, end = end, add_months(end, self.term_months)
        return start, end

    def notice_deadline(self, day: date) -> date:
        """The last day to give notice so the term in force on *day* does not renew."""
        return self.term_at(day)[1] - timedelta(days=self.notice_days)


@attrs.frozen(kw_only=True)
class AccountTerms:
    """What a provider account costs besides each payment: fixed monthly fees, the
    minimum monthly commitment, the cost of money in transit, FX rates, the contract."""

    igv: bool = False
    category: str | None = None
    #: Named monthly fees (platform, SLA, support), each in one or more currencies.
    monthly: tuple[tuple[str, tuple[Money, ...]], ...] = ()
    commitment: tuple[Money, ...] = ()
    shortfall_percent: Decimal | None = None
    cost_of_capital: Decimal = Decimal(0)
    #: ``(base, quote) -> rate``: one *base* is *rate* *quote*.
    fx_rates: Mapping[tuple[str, str], Decimal] = attrs.field(factory=dict)
    contract: Contract | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "fees",
                     currencies: Collection[str] | None = None) -> AccountTerms:
        """The account-level keys of a ``fees`` table, validated (errors name the key)."""
        if not isinstance(data, Mapping):
            raise ConfigurationError("expected a table", path=path)
        igv = _bool(data.get("igv", False), f"{path}.igv")
        category = data.get("category")
        categories = data.get("categories")
        if categories is not None:
            if not isinstance(categories, Mapping):
                raise ConfigurationError("expected a table of categories",
                                         path=f"{path}.categories")
            for name, table in categories.items():
                _table(table, f"{path}.categories.{name}", _KEYS)
        if category is not None:
            category = _name(category, f"{path}.category")
            if not categories or category not in categories:
                raise ConfigurationError(
                    f"no categories.{category} table gives this category's fees",
                    path=f"{path}.category")
        monthly: list[tuple[str, tuple[Money, ...]]] = []
        if data.get("monthly") is not None:
            table = data["monthly"]
            if not isinstance(table, Mapping):
                raise ConfigurationError('expected a table of fees, e.g. { platform = '
                                         '"PEN 150.00", support = "PEN 50.00" }',
                                         path=f"{path}.monthly")
            for name, value in table.items():
                monthly.append((str(name), _amounts(value, f"{path}.monthly.{name}")))
        commitment: tuple[Money, ...] = ()
        shortfall = None
        if data.get("commitment") is not None:
            where = f"{path}.commitment"
            table = _table(data["commitment"], where, ("volume", "shortfall_percent"))
            if "volume" not in table:
                raise ConfigurationError("needs volume (the month's minimum, e.g. "
                                         '"PEN 30000.00")', path=f"{where}.volume")
            commitment = _amounts(table["volume"], f"{where}.volume")
            if "shortfall_percent" in table:
                shortfall = _percent(table["shortfall_percent"], f"{where}.shortfall_percent")
        rates: dict[tuple[str, str], Decimal] = {}
        if data.get("fx_rates") is not None:
            where = f"{path}.fx_rates"
            if not isinstance(data["fx_rates"], Mapping):
                raise ConfigurationError('expected a table, e.g. { "USD/PEN" = "3.75" }',
                                         path=where)
            for pair, value in data["fx_rates"].items():
                base, sep, quote = str(pair).partition("/")
                if not sep:
                    raise ConfigurationError("name a pair as BASE/QUOTE, e.g. USD/PEN",
                                             path=f"{where}.{pair}")
                key = (_currency(base, f"{where}.{pair}"), _currency(quote, f"{where}.{pair}"))
                rates[key] = _rate(value, f"{where}.{pair}")
        contract = None
        if data.get("contract") is not None:
            contract = _contract(data["contract"], f"{path}.contract")
        terms = cls(
            igv=igv, category=category, monthly=tuple(monthly), commitment=commitment,
            shortfall_percent=shortfall,
            cost_of_capital=_percent(data.get("cost_of_capital", "0"), f"{path}.cost_of_capital"),
            fx_rates=rates, contract=contract,
        )
        if currencies is not None:
            accepted = ", ".join(sorted(currencies)) or "none"
            amounts = [("commitment.volume", m) for m in commitment]
            amounts += [(f"monthly.{n}", m) for n, ms in monthly for m in ms]
            for where, money in amounts:
                if money.currency not in currencies:
                    raise ConfigurationError(
                        f"{money} is in a currency the provider does not accept "
                        f"(accepts: {accepted})", path=f"{path}.{where}")
        return terms

    def monthly_minor(self, currency: str) -> int:
        """The month's fixed fees in *currency* (before IGV)."""
        return sum(m.minor for _, ms in self.monthly for m in ms if m.currency == currency)

    @property
    def monthly_currencies(self) -> frozenset[str]:
        return frozenset(m.currency for _, ms in self.monthly for m in ms)

    def shortfall_minor(self, volume_minor: int, currency: str, base_percent: Decimal) -> int:
        """The charge (before IGV) for a month of *volume_minor* below the commitment
        in *currency*: the shortfall times ``shortfall_percent`` (else *base_percent*),
        rounded half-up; 0 at or above it."""
        committed = _in(self.commitment, currency)
        if committed is None or volume_minor >= committed.minor:
            return 0
        num, den = _ratio(self.shortfall_percent if self.shortfall_percent is not None
                          else base_percent)
        return _round_half_up((committed.minor - volume_minor) * num, den)

    def transit_minor(self, volume_minor: int, days: int) -> int:
        """The cost of *volume_minor* held *days* days at ``cost_of_capital`` a year
        (365 days), rounded half-up."""
        num, den = _ratio(self.cost_of_capital)
        return _round_half_up(volume_minor * days * num, den * 365) if num and days else 0


def _contract(value: Any, path: str) -> Contract:
    table = _table(value, path, _CONTRACT_KEYS)
    for key in ("start", "term_months"):
        if key not in table:
            raise ConfigurationError("required", path=f"{path}.{key}")
    start = table["start"]
    if isinstance(start, datetime):
        start = start.date()
    elif isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise ConfigurationError(f"not a date (YYYY-MM-DD): {start!r}",
                                     path=f"{path}.start") from None
    elif not isinstance(start, date):
        raise ConfigurationError("expected a date (YYYY-MM-DD)", path=f"{path}.start")
    return Contract(
        start=start, term_months=_int(table["term_months"], f"{path}.term_months", least=1),
        auto_renew=_bool(table.get("auto_renew", False), f"{path}.auto_renew"),
        notice_days=_int(table.get("notice_days", 0), f"{path}.notice_days"),
        early_termination=_amounts(table.get("early_termination"),
                                   f"{path}.early_termination"),
    )
