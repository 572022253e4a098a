"""What another routing would cost.

- :func:`what_if` re-routes the succeeded orders of a window with another
  configuration's router (:meth:`pasarela.routing.Router.simulate`) and sums the fees
  it expects, beside the fees expected as they were routed (``routing.expected_fee``).
- :func:`compare_routes` puts several routings side by side on the same paid orders:
  the current one first (each order at the account that took it, priced by today's
  fee tables), then each alternative's router; per route the orders it takes, the
  fees (commission and IGV), the FX spread, the cross-border fee, the effective cost
  (all three over the volume it takes) and the orders it cannot route.

The cost report itself is :mod:`pasarela.reconcile.cost_model`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.lifecycle import Status
from pasarela.model import Method, Order
from pasarela.money import Money
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.fees import FeeSchedule
    from pasarela.routing import Router
    from pasarela.store import Store


__all__ = ["RouteComparison", "RouteCost", "WhatIf", "compare_routes", "what_if"]

_PAID: Final = (Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                Status.REFUNDED.value)


def _expected(routing: Any, currency: str) -> int:
    if isinstance(routing, Mapping):
        fee = routing.get("expected_fee")
        if isinstance(fee, Mapping) and fee.get("currency") == currency:
            minor = fee.get("minor")
            if isinstance(minor, int):
                return minor
    return 0


@attrs.define
class WhatIf:
    """Per currency: expected fees as routed, and as the other router would route."""

    current: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    other: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    split: dict[tuple[str, str], int] = attrs.field(factory=lambda: defaultdict(int))
    orders: int = 0
    unroutable: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"orders": self.orders, "unroutable": self.unroutable,
                "current": {c: str(Money(v, c)) for c, v in sorted(self.current.items())},
                "other": {c: str(Money(v, c)) for c, v in sorted(self.other.items())},
                "split": {f"{p}/{m}": n for (p, m), n in sorted(self.split.items())}}


def what_if(store: Store, since: datetime, until: datetime, router: Router, *,
            accounts: Callable[[str], bool] | None = None) -> WhatIf:
    """Re-route the succeeded orders of the window with *router*; sum expected fees.

    :param accounts: only the orders of the accounts it says yes to (a merchant's)."""
    out = WhatIf()
    if accounts is not None:  # the account is only in the fuller query
        for row in queries.optimize_orders(store, since, until):
            if row.status not in _PAID or row.order is None or not accounts(row.provider):
                continue
            out.orders += 1
            order = Order.from_dict(row.order)
            decision = router.simulate(order, row.method, at=row.created_at)
            if decision.provider is None:
                out.unroutable += 1
                continue
            out.split[(decision.provider, row.method)] += 1
            fee = decision.fees.get(decision.provider)
            if fee is not None:
                out.other[fee.currency] += fee.minor
        for cur, minor in _current_expected(store, since, until, accounts).items():
            out.current[cur] += minor
        return out
    for r in queries.routed_orders(store, since, until, statuses=_PAID):
        if not r.order:  # an order stored as JSON null: not kept, cannot be routed again
            continue
        out.orders += 1
        out.current[r.currency] += _expected(r.routing, r.currency)
        decision = router.simulate(Order.from_dict(r.order), r.method, at=r.created_at)
        if decision.provider is None:
            out.unroutable += 1
            continue
        out.split[(decision.provider, r.method)] += 1
        fee = decision.fees.get(decision.provider)
        if fee is not None:
            out.other[fee.currency] += fee.minor
    return out


def _current_expected(store: Store, since: datetime, until: datetime,
                      accounts: Callable[[str], bool]) -> dict[str, int]:
    """The fees the routing decisions expected, per currency, of the accounts'
    paid payments."""
    out: dict[str, int] = defaultdict(int)
    for row in queries.cost_amounts(store, since, until):
        if row.status in _PAID and row.stored_fee is not None and accounts(row.provider):
            out[row.currency] += row.stored_fee
    return dict(out)


def _per_currency() -> defaultdict[str, int]:
    return defaultdict(int)


@attrs.define
class RouteCost:
    """One routing's figures over the compared orders (money in minor units, per
    currency of the orders)."""

    name: str
    #: The orders it routed (and priced), and those it could not route.
    orders: int = 0
    unroutable: int = 0
    #: Orders routed to an account without a fee table (priced at nothing).
    unpriced: int = 0
    volume: defaultdict[str, int] = attrs.field(factory=_per_currency)
    #: Commission and IGV.
    fees: defaultdict[str, int] = attrs.field(factory=_per_currency)
    fx: defaultdict[str, int] = attrs.field(factory=_per_currency)
    cross_border: defaultdict[str, int] = attrs.field(factory=_per_currency)
    #: Orders per account it routed them to.
    split: defaultdict[str, int] = attrs.field(factory=_per_currency)

    def total(self, currency: str) -> int:
        """Everything it costs in *currency*: fees, FX spread and cross-border fee."""
        return (self.fees.get(currency, 0) + self.fx.get(currency, 0)
                + self.cross_border.get(currency, 0))

    def effective_rate(self, currency: str) -> Decimal | None:
        """The total over the volume it routed in *currency* (None: no volume)."""
        volume = self.volume.get(currency, 0)
        return Decimal(self.total(currency)) / volume if volume else None

    def add(self, account: str, schedule: FeeSchedule | None, amount: int,
            currency: str) -> None:
        """Count one order of *amount* routed to *account*, priced by *schedule*."""
        self.orders += 1
        self.split[account] += 1
        self.volume[currency] += amount
        if schedule is None:
            self.unpriced += 1
            return
        commission, igv, fx, cross = schedule.parts_minor(amount, currency)
        self.fees[currency] += commission + igv
        self.fx[currency] += fx
        self.cross_border[currency] += cross

    def to_dict(self) -> dict[str, Any]:
        currencies = sorted(self.volume)

        def money(values: Mapping[str, int]) -> dict[str, dict[str, Any]]:
            return {c: {"minor": values.get(c, 0), "currency": c} for c in currencies}

        rates = {c: self.effective_rate(c) for c in currencies}
        return {"name": self.name, "orders": self.orders, "unroutable": self.unroutable,
                "unpriced": self.unpriced, "volume": money(self.volume),
                "fees": money(self.fees), "fx_spread": money(self.fx),
                "cross_border": money(self.cross_border),
                "total": {c: {"minor": self.total(c), "currency": c} for c in currencies},
                "effective_rate": {c: None if r is None else f"{r * 100:.3f}%"
                                   for c, r in rates.items()},
                "split": dict(sorted(self.split.items()))}


@attrs.define
class RouteComparison:
    """Routings side by side over the same paid orders; the current one first."""

    orders: int
    routes: list[RouteCost]

    @property
    def currencies(self) -> list[str]:
        return sorted({c for route in self.routes for c in route.volume})

    @property
    def cheapest(self) -> dict[str, str]:
        """Per currency, the route with the least effective cost (ties to the first)."""
        out: dict[str, str] = {}
        for cur in self.currencies:
            rated = [(r.effective_rate(cur), i, r.name) for i, r in enumerate(self.routes)]
            known = [(rate, i, name) for rate, i, name in rated if rate is not None]
            if known:
                out[cur] = min(known)[2]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"orders": self.orders, "routes": [r.to_dict() for r in self.routes],
                "cheapest": self.cheapest}


def compare_routes(store: Store, since: datetime, until: datetime,
                   current: Mapping[tuple[str, str], FeeSchedule],
                   alternatives: Mapping[str, Router], *,
                   current_name: str = "current routing",
                   accounts: Callable[[str], bool] | None = None) -> RouteComparison:
    """The window's paid orders (those that kept their order) priced as they were
    routed and under each of *alternatives* (by name, in order); see the module's
    description.

    :param current: today's fee schedules by ``(account, method)``: the current
        route prices each order at the account that took it.
    :param accounts: only the orders of the accounts it says yes to (a merchant's).
    """

    now = RouteCost(current_name)
    others = [RouteCost(name) for name in alternatives]
    routers = list(alternatives.values())
    orders = 0
    for row in queries.optimize_orders(store, since, until):
        if row.status not in _PAID or row.order is None:
            continue
        if accounts is not None and not accounts(row.provider):
            continue
        orders += 1
        now.add(row.provider, current.get((row.provider, row.method)), row.amount_minor,
                row.currency)
        order = Order.from_dict(row.order)
        for route, router in zip(others, routers, strict=True):
            decision = router.simulate(order, row.method, at=row.created_at)
            if decision.provider is None:
                route.unroutable += 1
                continue
            route.add(decision.provider, router.fees.get((decision.provider,
                                                          Method(row.method))),
                      row.amount_minor, row.currency)
    return RouteComparison(orders, [now, *others])
