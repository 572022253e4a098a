"""``pasarela costs optimize``: which account per method (or which routing file among
candidates) would have cost least over the store's real orders of a period.

Routing is the router's own (:meth:`pasarela.routing.Router.simulate`): for "which
account per method" each account is tried as a router of one rule, ``use = [ACCOUNT]``,
built by :meth:`pasarela.routing.Router.from_config` from the same providers, so that
the account's limits apply as they do when paying; an order it cannot take stays
where it was. For candidate files, each file's router routes every order.

Costs compared are the expected per-payment fees (the schedules' base rates, as the
router works them out). An account (or a candidate's chosen accounts) must meet a
minimum success rate: paid / attempts of that account and method over the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from pasarela.model import Order
from pasarela.reconcile.cost_model import PAID
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.provider import Provider
    from pasarela.routing import Router
    from pasarela.store import Store


__all__ = ["Candidate", "MethodChoice", "Optimization", "optimize"]


@attrs.define
class Candidate:
    """One way of routing a method's (or every) paid order: its expected fees per
    currency, the orders it takes from today's account, and those it cannot route."""

    name: str
    fees: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    moved: int = 0
    unroutable: int = 0
    success_rate: Decimal | None = None
    eligible: bool = True
    why_not: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name,
                "fees": {c: {"minor": v, "currency": c} for c, v in sorted(self.fees.items())},
                "moved": self.moved, "unroutable": self.unroutable,
                "success_rate": None if self.success_rate is None
                else f"{self.success_rate * 100:.2f}%",
                "eligible": self.eligible, "why_not": self.why_not}


@attrs.define
class MethodChoice:
    method: str
    orders: int
    current: dict[str, int]
    candidates: list[Candidate]

    @property
    def best(self) -> Candidate | None:
        """The eligible candidate with the least fees (summed over currencies, which
        a method's orders rarely mix), ties to the name."""
        ok = [c for c in self.candidates if c.eligible]
        return min(ok, key=lambda c: (sum(c.fees.values()), c.name), default=None)

    def saving(self) -> dict[str, int]:
        best = self.best
        if best is None:
            return {}
        return {c: self.current.get(c, 0) - best.fees.get(c, 0)
                for c in sorted(set(self.current) | set(best.fees))}

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"method": self.method, "orders": self.orders,
                "current": {c: {"minor": v, "currency": c}
                            for c, v in sorted(self.current.items())},
                "best": best.name if best is not None else None,
                "saving": {c: {"minor": v, "currency": c} for c, v in self.saving().items()},
                "moved": best.moved if best is not None else 0,
                "candidates": [c.to_dict() for c in self.candidates]}


@attrs.define
class Optimization:
    methods: list[MethodChoice]
    #: With candidate files: each file's totals, in the given order.
    files: list[Candidate] = attrs.field(factory=list)
    current: dict[str, int] = attrs.field(factory=dict)

    @property
    def best_file(self) -> Candidate | None:
        ok = [c for c in self.files if c.eligible]
        return min(ok, key=lambda c: (sum(c.fees.values()), c.name), default=None)

    def to_dict(self) -> dict[str, Any]:
        best = self.best_file
        return {"methods": [m.to_dict() for m in self.methods],
                "current": {c: {"minor": v, "currency": c}
                            for c, v in sorted(self.current.items())},
                "files": [c.to_dict() for c in self.files],
                "best_file": best.name if best is not None else None}


def _single_routers(providers: Mapping[str, Provider], current: Router) -> dict[str, Router]:
    from pasarela.routing import Router  # noqa: PLC0415

    return {name: Router.from_config([{"name": f"only {name}", "when": {}, "use": [name]}],
                                     providers, health=current.health)
            for name in sorted(providers)}


def optimize(store: Store, since: datetime, until: datetime, current: Router, *,
             min_success: Decimal = Decimal(0),
             candidates: Mapping[str, Router] | None = None,
             accounts: Callable[[str], bool] | None = None) -> Optimization:
    """Price the window's paid orders under each account per method (and under each
    candidate router); see the module's description.

    :param current: today's router (its providers and fee schedules).
    :param min_success: the least success rate (0 to 1) an account needs.
    :param accounts: only the payments of the accounts it says yes to (a merchant's).
    """
    singles = _single_routers(current.providers, current)
    attempts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    per_method: dict[str, dict[str, Candidate]] = defaultdict(dict)
    now_fees: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    orders: dict[str, int] = defaultdict(int)
    files = {name: Candidate(name) for name in (candidates or {})}
    file_split: dict[str, dict[tuple[str, str], int]] = {n: defaultdict(int) for n in files}
    total_now: dict[str, int] = defaultdict(int)
    for row in queries.optimize_orders(store, since, until):
        if accounts is not None and not accounts(row.provider):
            continue
        counts = attempts[(row.provider, row.method)]
        counts[1] += 1
        if row.status not in PAID:
            continue
        counts[0] += 1
        if row.order is None:
            continue
        order = Order.from_dict(row.order)
        schedule = current.fees.get((row.provider, _method(row.method)))
        fee_now = schedule.fee_minor(row.amount_minor, row.currency) if schedule else 0
        now_fees[row.method][row.currency] += fee_now
        total_now[row.currency] += fee_now
        orders[row.method] += 1
        for name, router in singles.items():
            if _method(row.method) not in router.providers[name].methods:
                continue
            cand = per_method[row.method].get(name)
            if cand is None:
                cand = per_method[row.method][name] = Candidate(name)
            decision = router.simulate(order, row.method, at=row.created_at)
            if decision.provider is None:
                cand.unroutable += 1
                cand.fees[row.currency] += fee_now
                continue
            cand.fees[row.currency] += decision.fee_minor.get(name, 0)
            if name != row.provider:
                cand.moved += 1
        for name, router in (candidates or {}).items():
            decision = router.simulate(order, row.method, at=row.created_at)
            cand = files[name]
            if decision.provider is None:
                cand.unroutable += 1
                cand.fees[row.currency] += fee_now
                continue
            cand.fees[row.currency] += decision.fee_minor.get(decision.provider, 0)
            file_split[name][(decision.provider, row.method)] += 1
            if decision.provider != row.provider:
                cand.moved += 1

    def rate(provider: str, method: str) -> Decimal | None:
        paid, tried = attempts.get((provider, method), (0, 0))
        return Decimal(paid) / tried if tried else None

    methods: list[MethodChoice] = []
    for method in sorted(per_method):
        cands = [per_method[method][n] for n in sorted(per_method[method])]
        for cand in cands:
            cand.success_rate = rate(cand.name, method)
            if cand.success_rate is None:
                cand.eligible, cand.why_not = False, "no attempts in the window"
            elif cand.success_rate < min_success:
                cand.eligible, cand.why_not = False, "below the minimum success rate"
        methods.append(MethodChoice(method, orders[method], dict(now_fees[method]), cands))
    for name, cand in files.items():
        split = file_split[name]
        tried = sum(split.values())
        weighted = Decimal(0)
        for (provider, method), n in split.items():
            weighted += n * (rate(provider, method) or Decimal(0))
        cand.success_rate = weighted / tried if tried else None
        if cand.success_rate is not None and cand.success_rate < min_success:
            cand.eligible, cand.why_not = False, "below the minimum success rate"
    return Optimization(methods, list(files.values()), dict(total_now))


def _method(value: str) -> Any:
    from pasarela.model import Method  # noqa: PLC0415

    return Method(value)
