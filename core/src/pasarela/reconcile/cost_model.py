"""The total cost of acceptance: every cost driver of a provider account, per provider ×
method × network × month × currency.

:func:`cost_report` reads the store once (:func:`pasarela.store.queries.cost_amounts`,
streamed; then the window's refunds and charged-back payments) and works out, from
the configured fee tables (:class:`pasarela.fees.FeeSchedule`,
:class:`pasarela.fees.AccountTerms`):

- the **tier in force** for each account and month from the month's real volume and
  order count (all the account's methods), and under it each paid payment's
  commission, IGV, FX spread and cross-border fee (each rounded half-up to the
  céntimo, per payment);
- **expected against actual**: the fee settlement lines gave, against the expected
  fee of the same payments; the per-payment cost counts the actual fee where a line
  gave one, else the expected one;
- the account's **fixed monthly fees** and the **shortfall** of a month below its
  **minimum commitment** (each plus IGV when the account's ``igv``), shared among the
  month's rows of that currency in proportion to their volume (largest remainder,
  so the shares add up to the charge);
- the **cost of money in transit**: volume × ``settlement_days`` ×
  ``cost_of_capital`` / 365, per row, rounded half-up;
- **refunds** (count, amount, fee) and **disputes** (charged-back payments: count,
  chargeback fee, the amount lost);
- the **FX cost in the settlement currency** by the rate table (config
  ``fx_rates`` and an operator's file: :class:`RateTable`; never the network);
- **contract warnings**: an auto-renewal whose notice deadline is near or passed,
  a term ending, the month's projected shortfall.

Total cost of acceptance = per-payment fees + fixed + shortfall + transit + refund
fees + chargeback fees + amounts lost to chargebacks; the effective rate is it over
the volume.
"""

from __future__ import annotations

import array
import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.errors import ConfigurationError
from pasarela.fees import AccountTerms, FeeSchedule, add_months, igv_on, round_half_up
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.provider import Provider
    from pasarela.store import Store


__all__ = [
    "CHARGEBACK_WORDS",
    "CostLine",
    "CostReport",
    "CostSetup",
    "Notice",
    "RateTable",
    "cost_report",
    "network_of",
]

PAID: Final = frozenset({Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                         Status.REFUNDED.value})
#: Settlement line statuses that mean the payment was charged back.
CHARGEBACK_WORDS: Final = frozenset({"chargeback", "charged_back", "dispute_lost",
                                     "contracargo"})
#: The network a method usually reaches, when the fee table names none.
_USUAL_NETWORK: Final = {"cash": "pagoefectivo", "wallet": "yape", "card": "card"}


def network_of(schedule: FeeSchedule | None, method: str, provider: str) -> str:
    """The network of *method* through *provider*: the fee table's ``network``, else
    the method's usual one (cash: pagoefectivo, wallet: yape, card: card), else the
    provider's name."""
    if schedule is not None and schedule.network:
        return schedule.network
    return _USUAL_NETWORK.get(method, provider)


def month_of(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo is not None else value
    return f"{value.year:04d}-{value.month:02d}"


def months_between(since: datetime, until: datetime) -> list[str]:
    """The months ``[since, until)`` touches, as ``YYYY-MM``."""
    first = since.astimezone(UTC).date().replace(day=1)
    last = (until.astimezone(UTC) - timedelta(microseconds=1)).date()
    out: list[str] = []
    day = first
    while day <= last:
        out.append(f"{day.year:04d}-{day.month:02d}")
        day = add_months(day, 1)
    return out


# --- configuration ------------------------------------------------------------------


@attrs.frozen
class CostSetup:
    """The fee tables of the configured accounts."""

    schedules: Mapping[tuple[str, str], FeeSchedule]
    terms: Mapping[str, AccountTerms]

    @classmethod
    def from_providers(cls, providers: Mapping[str, Provider]) -> CostSetup:
        """Each account's schedules (per method) and terms, from its ``fees`` table.

        :raises ConfigurationError: naming the fee setting at fault.
        """
        schedules: dict[tuple[str, str], FeeSchedule] = {}
        terms: dict[str, AccountTerms] = {}
        for name, provider in providers.items():
            table = provider.settings.fees
            path = f"providers.{name}.fees"
            terms[name] = AccountTerms.from_mapping(table, path=path,
                                                    currencies=provider.currencies)
            for method in sorted(provider.methods):
                schedules[(name, method.value)] = FeeSchedule.from_mapping(
                    table, path=path, method=method.value, currencies=provider.currencies)
        return cls(schedules, terms)

    @classmethod
    def from_tables(cls, tables: Mapping[str, Mapping[str, Any]],
                    methods: Iterable[str] = ("cash", "wallet", "card", "bank_transfer"),
                    ) -> CostSetup:
        """The same from raw ``fees`` tables by account (for tests and tools)."""
        methods = tuple(methods)
        schedules = {(name, m): FeeSchedule.from_mapping(t, path=f"providers.{name}.fees",
                                                         method=m)
                     for name, t in tables.items() for m in methods}
        terms = {name: AccountTerms.from_mapping(t, path=f"providers.{name}.fees")
                 for name, t in tables.items()}
        return cls(schedules, terms)


class RateTable:
    """Exchange rates the operator supplies: ``(base, quote)`` pairs, for any month
    or for one (``YYYY-MM``). A pair's inverse is used when only it is given."""

    def __init__(self, rates: Mapping[tuple[str, str, str], Decimal] | None = None) -> None:
        self.rates: dict[tuple[str, str, str], Decimal] = dict(rates or {})

    @classmethod
    def of(cls, setup: CostSetup, path: str | Path | None = None) -> RateTable:
        """The accounts' ``fx_rates`` (any month), then *path*'s rates over them."""
        table = cls()
        for terms in setup.terms.values():
            for (base, quote), rate in terms.fx_rates.items():
                table.rates[("", base, quote)] = rate
        if path is not None:
            table.rates.update(cls.read(path).rates)
        return table

    @classmethod
    def read(cls, path: str | Path) -> RateTable:
        """A CSV file with the columns ``month`` (``YYYY-MM``, or empty for any
        month), ``base``, ``quote`` and ``rate`` (one *base* is *rate* *quote*).

        :raises ConfigurationError: naming the file, line and column at fault.
        """
        out: dict[tuple[str, str, str], Decimal] = {}
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"month", "base", "quote", "rate"} - set(reader.fieldnames or ())
            if missing:
                raise ConfigurationError(f"missing column(s) {', '.join(sorted(missing))}",
                                         path=f"{path}")
            for n, row in enumerate(reader, start=2):
                month = (row["month"] or "").strip()
                if month and (len(month) != 7 or month[4] != "-"
                              or not (month[:4] + month[5:]).isdigit()):
                    raise ConfigurationError(f"not a month (YYYY-MM): {month!r}",
                                             path=f"{path}:{n}.month")
                pair = f"{(row['base'] or '').strip()}/{(row['quote'] or '').strip()}"
                rate_text = (row["rate"] or "").strip()
                parsed = AccountTerms.from_mapping({"fx_rates": {pair: rate_text}},
                                                   path=f"{path}:{n}")
                for (base, quote), rate in parsed.fx_rates.items():
                    out[(month, base, quote)] = rate
        return cls(out)

    def rate(self, base: str, quote: str, month: str) -> Decimal | None:
        if base == quote:
            return Decimal(1)
        for key in ((month, base, quote), ("", base, quote)):
            if key in self.rates:
                return self.rates[key]
        for key in ((month, quote, base), ("", quote, base)):
            if key in self.rates:
                return 1 / self.rates[key]
        return None

    def convert(self, minor: int, base: str, quote: str, month: str) -> int | None:
        """*minor* units of *base* in minor units of *quote* (half-up), or None."""
        rate = self.rate(base, quote, month)
        if rate is None:
            return None
        shift = Money(0, quote).exponent - Money(0, base).exponent
        value = Decimal(minor) * rate * (Decimal(10) ** shift)
        return round_half_up(value) if value >= 0 else -round_half_up(-value)


# --- the report ---------------------------------------------------------------------


@attrs.define
class CostLine:
    """One provider × method × network × month × currency. Money in minor units."""

    provider: str
    method: str
    network: str
    month: str
    currency: str
    tier: str | None = None
    attempts: int = 0
    succeeded: int = 0
    volume: int = 0
    commission: int = 0
    igv: int = 0
    fx: int = 0
    #: The cross-border fee of an account settling abroad (``cross_border``).
    cross_border: int = 0
    markup: int = 0
    expected_fee: int = 0
    #: Expected fee of the payments a settlement line gave a fee for, and those fees.
    expected_settled: int = 0
    actual_fee: int = 0
    with_actual: int = 0
    expected_unsettled: int = 0
    fixed: int = 0
    shortfall: int = 0
    transit: int = 0
    settlement_days: int = 0
    refunds: int = 0
    refunded: int = 0
    refund_fees: int = 0
    disputes: int = 0
    dispute_fees: int = 0
    dispute_lost: int = 0
    settlement_currency: str | None = None
    #: The FX cost in the settlement currency by the rate table (None: no rate).
    fx_settled: int | None = None

    @property
    def average_ticket(self) -> int:
        return round_half_up(Decimal(self.volume) / self.succeeded) if self.succeeded else 0

    @property
    def per_payment(self) -> int:
        """Per-payment fees: the actual fee where a settlement line gave one, else the
        expected one."""
        return self.actual_fee + self.expected_unsettled

    @property
    def total(self) -> int:
        """The total cost of acceptance."""
        return (self.per_payment + self.fixed + self.shortfall + self.transit
                + self.refund_fees + self.dispute_fees + self.dispute_lost)

    @property
    def effective_rate(self) -> Decimal:
        return Decimal(self.total) / self.volume if self.volume else Decimal(0)

    @property
    def success_rate(self) -> Decimal:
        return Decimal(self.succeeded) / self.attempts if self.attempts else Decimal(0)

    @property
    def fee_difference(self) -> int:
        """Actual fees less what was expected of the same payments."""
        return self.actual_fee - self.expected_settled

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    def to_dict(self) -> dict[str, Any]:
        """Every figure; money as ``{"minor", "currency"}``, rates as text."""
        def m(minor: int | None, currency: str | None = None) -> dict[str, Any] | None:
            if minor is None:
                return None
            return {"minor": minor, "currency": currency or self.currency}

        return {
            "provider": self.provider, "method": self.method, "network": self.network,
            "month": self.month, "currency": self.currency, "tier": self.tier,
            "attempts": self.attempts, "count": self.succeeded,
            "success_rate": f"{self.success_rate * 100:.2f}%",
            "volume": m(self.volume), "average_ticket": m(self.average_ticket),
            "commission": m(self.commission), "igv": m(self.igv), "fx": m(self.fx),
            "cross_border": m(self.cross_border), "markup": m(self.markup),
            "expected_fee": m(self.expected_fee),
            "actual_fee": m(self.actual_fee) if self.with_actual else None,
            "settled_payments": self.with_actual,
            "expected_of_settled": m(self.expected_settled) if self.with_actual else None,
            "fee_difference": m(self.fee_difference) if self.with_actual else None,
            "per_payment_fees": m(self.per_payment), "fixed_fees": m(self.fixed),
            "shortfall": m(self.shortfall), "settlement_days": self.settlement_days,
            "transit_cost": m(self.transit), "refunds": self.refunds,
            "refunded": m(self.refunded), "refund_fees": m(self.refund_fees),
            "disputes": self.disputes, "dispute_fees": m(self.dispute_fees),
            "dispute_lost": m(self.dispute_lost),
            "settlement_currency": self.settlement_currency,
            "fx_settled": m(self.fx_settled, self.settlement_currency),
            "total_cost": m(self.total),
            "effective_rate": f"{self.effective_rate * 100:.3f}%",
        }


@attrs.frozen
class Notice:
    """A contract warning: a code (the message's key), its account and values."""

    code: str
    provider: str
    values: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "provider": self.provider, **self.values}


@attrs.define
class CostReport:
    since: datetime
    until: datetime
    lines: list[CostLine]
    notices: list[Notice]
    #: Total cost of acceptance per currency.
    totals: dict[str, int]
    volumes: dict[str, int]
    #: Everything in :attr:`currency` by the rate table; currencies without a rate.
    currency: str
    total_converted: int
    volume_converted: int
    unconverted: tuple[str, ...]

    def networks(self) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
        """Per network and currency, each provider's volume, per-payment fees and
        total (the same network direct and through aggregators, side by side)."""
        out: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: {"volume": 0, "per_payment": 0, "total": 0}))
        for line in self.lines:
            if line.method == "-":
                continue
            cell = out[(line.network, line.currency)][line.provider]
            cell["volume"] += line.volume
            cell["per_payment"] += line.per_payment
            cell["total"] += line.total
        return {k: dict(v) for k, v in sorted(out.items())}

    def to_dict(self) -> dict[str, Any]:
        networks = []
        for (network, currency), providers in self.networks().items():
            rates = {p: Decimal(c["per_payment"]) / c["volume"]
                     for p, c in providers.items() if c["volume"]}
            least = min(rates.values(), default=Decimal(0))
            networks.append({
                "network": network, "currency": currency,
                "providers": [{
                    "provider": p, "volume": {"minor": c["volume"], "currency": currency},
                    "per_payment_fees": {"minor": c["per_payment"], "currency": currency},
                    "total_cost": {"minor": c["total"], "currency": currency},
                    "per_payment_rate": f"{rates.get(p, Decimal(0)) * 100:.3f}%",
                    "markup_over_cheapest": f"{(rates.get(p, least) - least) * 100:.3f}%",
                } for p, c in sorted(providers.items())]})
        return {
            "from": self.since.isoformat(), "to": self.until.isoformat(),
            "rows": [line.to_dict() for line in self.lines],
            "networks": networks,
            "totals": {c: {"total_cost": {"minor": v, "currency": c},
                           "volume": {"minor": self.volumes.get(c, 0), "currency": c}}
                       for c, v in sorted(self.totals.items())},
            "total": {"currency": self.currency,
                      "total_cost": {"minor": self.total_converted, "currency": self.currency},
                      "volume": {"minor": self.volume_converted, "currency": self.currency},
                      "effective_rate": f"{self.effective_rate * 100:.3f}%",
                      "unconverted": list(self.unconverted)},
            "warnings": [n.to_dict() for n in self.notices],
        }

    @property
    def effective_rate(self) -> Decimal:
        return (Decimal(self.total_converted) / self.volume_converted
                if self.volume_converted else Decimal(0))


@attrs.define
class _Group:
    attempts: int = 0
    unsettled: array.array[int] = attrs.field(factory=lambda: array.array("q"))
    settled: array.array[int] = attrs.field(factory=lambda: array.array("q"))
    actual: int = 0
    stored_expected: int = 0


def _share(total: int, weights: list[int]) -> list[int]:
    """*total* split in proportion to *weights* (largest remainder; equal shares when
    every weight is 0)."""
    if not weights:
        return []
    if not any(weights):
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    rest = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def cost_report(store: Store, since: datetime, until: datetime, setup: CostSetup, *,
                rates: RateTable | None = None, as_of: datetime | None = None,
                currency: str = "PEN", warn_days: int = 30,
                accounts: Callable[[str], bool] | None = None) -> CostReport:
    """The cost of acceptance of ``[since, until)`` (see the module's description).

    :param as_of: "today" for the contract warnings and the shortfall projection
        (default: now).
    :param warn_days: how far ahead a notice deadline or a term's end is warned of.
    :param accounts: only the payments of the accounts it says yes to (a merchant's;
        default: every account's).
    """
    rates = rates or RateTable.of(setup)
    as_of = as_of or datetime.now(UTC)
    groups: dict[tuple[str, str, str, str], _Group] = {}
    paid = PAID
    for p, m, cur, status, month, amount, fee, stored in queries.cost_amounts(
            store, since, until):
        if accounts is not None and not accounts(p):
            continue
        key = (p, m, month, cur)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        group.attempts += 1
        if status in paid:
            if fee is None:
                group.unsettled.append(amount)
            else:
                group.settled.append(amount)
                group.actual += fee
            if stored is not None and (p, m) not in setup.schedules:
                group.stored_expected += stored
    # The month's real volume and orders per account, for the tier in force.
    account_volume: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: defaultdict(int))
    account_count: dict[tuple[str, str], int] = defaultdict(int)
    for (p, _, month, cur), group in groups.items():
        account_volume[(p, month)][cur] += sum(group.unsettled) + sum(group.settled)
        account_count[(p, month)] += len(group.unsettled) + len(group.settled)
    lines: dict[tuple[str, str, str, str], CostLine] = {}

    def line_for(p: str, m: str, month: str, cur: str) -> CostLine:
        key = (p, m, month, cur)
        line = lines.get(key)
        if line is None:
            schedule = setup.schedules.get((p, m))
            network = network_of(schedule, m, p) if m != "-" else "-"
            line = lines[key] = CostLine(p, m, network, month, cur)
            if schedule is not None:
                line.settlement_days = schedule.settlement_days
                line.settlement_currency = schedule.settlement_currency
        return line

    for (p, m, month, cur), group in sorted(groups.items()):
        line = line_for(p, m, month, cur)
        line.attempts = group.attempts
        line.succeeded = len(group.unsettled) + len(group.settled)
        line.volume = sum(group.unsettled) + sum(group.settled)
        schedule = setup.schedules.get((p, m))
        if schedule is None:  # no fee table any more: what the router expected then
            line.expected_fee = line.expected_unsettled = group.stored_expected
            line.actual_fee, line.with_actual = group.actual, len(group.settled)
            continue
        index = schedule.tier_index(account_volume[(p, month)], account_count[(p, month)])
        if index is not None:
            line.tier = schedule.tiers[index].label
        priced = schedule.in_tier(index)
        parts = priced.parts_minor
        commission = igv = fx = cross = unsettled = 0
        for amount in group.unsettled:
            c, i, f, x = parts(amount, cur)
            commission += c
            igv += i
            fx += f
            cross += x
            unsettled += c + i + f + x
        settled = 0
        for amount in group.settled:
            c, i, f, x = parts(amount, cur)
            commission += c
            igv += i
            fx += f
            cross += x
            settled += c + i + f + x
        line.commission, line.igv, line.fx, line.cross_border = commission, igv, fx, cross
        line.expected_fee = unsettled + settled
        line.expected_unsettled, line.expected_settled = unsettled, settled
        line.actual_fee, line.with_actual = group.actual, len(group.settled)
        if priced.markup:
            num, den = priced.markup.as_integer_ratio()
            line.markup = round_half_up(Decimal(line.volume * num) / (den * 100))
        if fx and priced.settlement_currency is not None:
            line.fx_settled = rates.convert(fx, cur, priced.settlement_currency, month)
        terms = setup.terms.get(p)
        if terms is not None:
            line.transit = terms.transit_minor(line.volume, schedule.settlement_days)
    _refunds_and_disputes(store, since, until, setup, line_for, accounts)
    window_months = months_between(since, until)
    _fixed_and_shortfall(setup, window_months, account_volume, lines, line_for)
    notices = _notices(setup, account_volume, since, until, as_of, warn_days)
    ordered = [lines[k] for k in sorted(lines)]
    totals: dict[str, int] = defaultdict(int)
    volumes: dict[str, int] = defaultdict(int)
    converted = volume_converted = 0
    unconverted: set[str] = set()
    for line in ordered:
        totals[line.currency] += line.total
        volumes[line.currency] += line.volume
        total = rates.convert(line.total, line.currency, currency, line.month)
        volume = rates.convert(line.volume, line.currency, currency, line.month)
        if total is None or volume is None:
            unconverted.add(line.currency)
            continue
        converted += total
        volume_converted += volume
    return CostReport(since, until, ordered, notices, dict(totals), dict(volumes), currency,
                      converted, volume_converted, tuple(sorted(unconverted)))


def _refunds_and_disputes(store: Store, since: datetime, until: datetime, setup: CostSetup,
                          line_for: Any, accounts: Callable[[str], bool] | None) -> None:
    for r in queries.cost_refunds(store, since, until):
        if accounts is not None and not accounts(r.provider):
            continue
        line = line_for(r.provider, r.method, month_of(r.created_at), r.currency)
        line.refunds += 1
        line.refunded += r.amount_minor
        schedule = setup.schedules.get((r.provider, r.method))
        if schedule is not None:
            line.refund_fees += schedule.refund_fee_minor(r.amount_minor, r.currency)
    for d in queries.cost_disputes(store, since, until, words=CHARGEBACK_WORDS):
        if accounts is not None and not accounts(d.provider):
            continue
        line = line_for(d.provider, d.method, month_of(d.occurred_at), d.currency)
        line.disputes += 1
        line.dispute_lost += d.amount_minor
        schedule = setup.schedules.get((d.provider, d.method))
        if schedule is not None:
            line.dispute_fees += schedule.chargeback_fee_minor(d.currency)


def _fixed_and_shortfall(setup: CostSetup, months: list[str],
                         volume: Mapping[tuple[str, str], Mapping[str, int]],
                         lines: Mapping[tuple[str, str, str, str], CostLine],
                         line_for: Any) -> None:
    for provider, terms in sorted(setup.terms.items()):
        currencies = sorted(terms.monthly_currencies | {m.currency for m in terms.commitment})
        if not currencies:
            continue
        base = next((s.percent for (p, _), s in sorted(setup.schedules.items())
                     if p == provider), Decimal(0))
        for month in months:
            for cur in currencies:
                fixed = terms.monthly_minor(cur)
                shortfall = terms.shortfall_minor(volume.get((provider, month), {}).get(cur, 0),
                                                  cur, base)
                if terms.igv:
                    fixed += igv_on(fixed)
                    shortfall += igv_on(shortfall)
                if not fixed and not shortfall:
                    continue
                rows = [line for (p, _, mo, c), line in sorted(lines.items())
                        if (p, mo, c) == (provider, month, cur)]
                if not rows:
                    rows = [line_for(provider, "-", month, cur)]
                weights = [row.volume for row in rows]
                for row, part in zip(rows, _share(fixed, weights), strict=True):
                    row.fixed += part
                for row, part in zip(rows, _share(shortfall, weights), strict=True):
                    row.shortfall += part


def _notices(setup: CostSetup, volume: Mapping[tuple[str, str], Mapping[str, int]],
             since: datetime, until: datetime, as_of: datetime, warn_days: int
             ) -> list[Notice]:
    out: list[Notice] = []
    today = as_of.astimezone(UTC).date()
    horizon = today + timedelta(days=warn_days)
    for provider, terms in sorted(setup.terms.items()):
        contract = terms.contract
        if contract is not None and contract.start <= horizon:
            end = contract.term_at(today)[1]
            penalty = ", ".join(str(m) for m in contract.early_termination) or "-"
            if contract.auto_renew:
                deadline = contract.notice_deadline(today)
                values = {"renews_on": end.isoformat(), "notice_by": deadline.isoformat(),
                          "term_months": str(contract.term_months),
                          "early_termination": penalty}
                if today <= deadline <= horizon:
                    out.append(Notice("renewal_notice_due", provider,
                                      {**values, "days_left": str((deadline - today).days)}))
                elif deadline < today < end:
                    out.append(Notice("renewal_notice_passed", provider, values))
            elif today <= end <= horizon:
                out.append(Notice("term_ends", provider, {"ends_on": end.isoformat(),
                                                          "early_termination": penalty}))
            elif end <= today:
                out.append(Notice("term_ended", provider, {"ended_on": end.isoformat()}))
        # The month in progress: its volume so far, projected to the month's end.
        first = today.replace(day=1)
        month_start = datetime(first.year, first.month, 1, tzinfo=UTC)
        month_end = datetime.combine(add_months(first, 1), datetime.min.time(), UTC)
        covered_to = min(as_of, until)
        if not terms.commitment or not (since <= month_start < covered_to < month_end):
            continue
        elapsed = (covered_to - month_start).total_seconds()
        span = (month_end - month_start).total_seconds()
        month = f"{first.year:04d}-{first.month:02d}"
        base = next((s.percent for (p, _), s in sorted(setup.schedules.items())
                     if p == provider), Decimal(0))
        for committed in terms.commitment:
            so_far = volume.get((provider, month), {}).get(committed.currency, 0)
            projected = round_half_up(Decimal(so_far) * Decimal(span) / Decimal(elapsed))
            charge = terms.shortfall_minor(projected, committed.currency, base)
            if charge:
                if terms.igv:
                    charge += igv_on(charge)
                out.append(Notice("shortfall_projected", provider, {
                    "month": month, "volume": str(Money(so_far, committed.currency)),
                    "projected": str(Money(projected, committed.currency)),
                    "commitment": str(committed),
                    "charge": str(Money(charge, committed.currency))}))
    return out
