"""Routing budget: decisions per second with 100 rules, against hand-written code.

The subject is :meth:`pasarela.routing.Router.decide` with 100 compiled rules: the
whole decision (rule matching with its explanation, provider eligibility, circuit
breaker, strategy, expected fees, the Decision object). Measured in the same run:

- a hand-written ``if``/``elif`` chain of the same 100 rules (generated as Python
  source, as a person would write it) that returns only the first provider: no
  eligibility, no fees, no explanation. The ratio says what the rest costs;
- a naive loop that interprets the raw ``when`` tables for every order.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from harness import goal, per_op, report, rounds, scaled

from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import Provider, ProviderSettings
from pasarela.routing import Router


COUNTRIES = ("PE", "CO", "CL", "MX", "EC")
CURRENCY = {"PE": "PEN", "CO": "USD", "CL": "USD", "MX": "USD", "EC": "USD"}
METHODS = ("card", "wallet", "cash")
BANDS = ((None, "100"), ("100.01", "500"), ("500.01", "1500"), ("1500.01", "5000"),
         ("5000.01", "20000"), ("20000.01", None))
BUDGET = 250_000


def _provider(name: str, methods: set[Method], fees: Mapping[str, Any]) -> Provider:
    cls = type(name.title(), (Provider,), {
        "name": name, "display_name": name.title(), "methods": frozenset(methods),
        "countries": frozenset(COUNTRIES), "currencies": frozenset({"PEN", "USD"}),
        "limits": {"PEN": (100, 10_000_000), "USD": (50, 3_000_000)},
    })
    return cls(ProviderSettings(fees=fees))  # type: ignore[no-any-return]


def providers() -> dict[str, Provider]:
    return {
        "alpha": _provider("alpha", {Method.CARD, Method.WALLET},
                           {"percent": "3.99", "fixed": ["PEN 0.50", "USD 0.15"], "igv": True}),
        "beta": _provider("beta", {Method.CARD, Method.CASH},
                          {"percent": "3.5", "minimum": ["PEN 1.00", "USD 0.30"], "igv": True,
                           "settlement_currency": "PEN", "fx_spread": "2.5"}),
        "gamma": _provider("gamma", set(Method), {"percent": "4.2", "igv": True}),
    }


def rules() -> list[dict[str, Any]]:
    """99 rules plus a default: specific rules (metadata, customer, time) first, then
    one per country, method and amount band."""
    out: list[dict[str, Any]] = []
    for i in range(9):
        country = COUNTRIES[i % 5]
        when: dict[str, Any] = {"country": country, "metadata": {"campaign": f"c{i}"}}
        if i % 3 == 0:
            when["customer"] = {"document": "RUC"}
        if i % 4 == 1:
            when["time"] = {"from": "08:00", "to": "22:00", "days": ["mon", "tue", "wed",
                                                                     "thu", "fri", "sat"]}
        out.append({"name": f"campaign {i}", "when": when, "use": ["gamma", "alpha"]})
    strategies = ("ordered", "weighted", "cheapest")
    for n, (country, method, band) in enumerate(
            (c, m, b) for c in COUNTRIES for m in METHODS for b in BANDS):
        currency = CURRENCY[country]
        amount = {k: f"{currency} {v}" for k, v in zip(("min", "max"), band, strict=True) if v}
        use = {"card": ["alpha", "beta", "gamma"], "wallet": ["alpha", "gamma"],
               "cash": ["beta", "gamma"]}[method]
        rule: dict[str, Any] = {"name": f"{country} {method} band {n % 6}",
                                "when": {"country": country, "method": method,
                                         "amount": amount},
                                "use": use, "strategy": strategies[n % 3]}
        if rule["strategy"] == "weighted":
            rule["use"] = [{"provider": p, "weight": w} for p, w in zip(use, (60, 30, 10),
                                                                         strict=False)]
        out.append(rule)
    out.append({"name": "default", "use": ["gamma"]})
    assert len(out) == 100
    return out


def orders(count: int = 2000, seed: int = 6) -> list[tuple[Order, Method]]:
    rng = random.Random(seed)
    ana = Customer(first_name="Ana", last_name="Flores", email="ana@empresa.pe",
                   document=("RUC", "20100066603"))
    out = []
    for i in range(count):
        country = rng.choices(COUNTRIES, weights=(60, 10, 10, 10, 10))[0]
        minor = rng.choice((rng.randint(200, 50_000), rng.randint(50_000, 2_500_000)))
        metadata = {"campaign": f"c{rng.randint(0, 30)}"} if rng.random() < 0.3 else {}
        order = Order(reference=f"pedido-{i}", amount=Money(minor, CURRENCY[country]),
                      country=country, metadata=metadata,
                      customer=ana if rng.random() < 0.2 else None)
        out.append((order, rng.choice(tuple(Method))))
    return out


def if_else_chain(routes: list[dict[str, Any]]) -> Callable[[Order, Method], str]:
    """The same rules as hand-written Python: an if/elif chain returning the first
    provider of the first rule that matches."""
    lines = ["def route(order, method):",
             "    country = order.country", "    currency = order.amount.currency",
             "    minor = order.amount.minor", "    metadata = order.metadata",
             "    customer = order.customer",
             "    document = customer.document.kind if customer and customer.document else None",
             "    local = None"]
    for route in routes[:-1]:
        when = route["when"]
        tests = [f"country == {when['country']!r}"]
        if "method" in when:
            tests.append(f"method == {when['method']!r}")
        for key, text in when.get("amount", {}).items():
            money = Money.parse(text)
            tests.append(f"currency == {money.currency!r}")
            tests.append(f"minor {'>=' if key == 'min' else '<='} {money.minor}")
        if "metadata" in when:
            tests.append(f"metadata.get('campaign') == {when['metadata']['campaign']!r}")
        if "customer" in when:
            tests.append("document == 'RUC'")
        if "time" in when:
            tests.append("_in_hours(order)")
        first = route["use"][0]
        name = first["provider"] if isinstance(first, dict) else first
        lines.append(f"    if {' and '.join(tests)}:")
        lines.append(f"        return {name!r}")
    lines.append(f"    return {routes[-1]['use'][0]!r}")
    namespace: dict[str, Any] = {"_in_hours": _in_hours}
    exec("\n".join(lines), namespace)  # noqa: S102 - our own generated source
    return namespace["route"]  # type: ignore[no-any-return]


def _in_hours(order: Order) -> bool:
    from pasarela.routing import LIMA

    # The router's clock, not the wall clock: the two must agree at any hour of the run.
    local = _Clock.now.astimezone(LIMA)
    return local.weekday() < 6 and 8 <= local.hour < 22


def naive_loop(routes: list[dict[str, Any]]) -> Callable[[Order, Method], str]:
    """Interpret the raw tables for every order, parsing amounts each time."""

    def route(order: Order, method: Method) -> str:
        for rule in routes:
            when = rule.get("when", {})
            if "country" in when and order.country != when["country"]:
                continue
            if "method" in when and method.value != when["method"]:
                continue
            amount = when.get("amount", {})
            if "min" in amount and not _at_least(order.amount, Money.parse(amount["min"])):
                continue
            if "max" in amount and not _at_least(Money.parse(amount["max"]), order.amount):
                continue
            if "metadata" in when and any(order.metadata.get(k) != v
                                          for k, v in when["metadata"].items()):
                continue
            if "customer" in when:
                customer = order.customer
                if not (customer and customer.document and customer.document.kind == "RUC"):
                    continue
            if "time" in when and not _in_hours(order):
                continue
            first = rule["use"][0]
            return str(first["provider"] if isinstance(first, dict) else first)
        raise AssertionError("a default rule matches every order")

    return route


def _at_least(a: Money, b: Money) -> bool:
    return a.currency == b.currency and a.minor >= b.minor


class _Clock:
    now: ClassVar[datetime] = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday

    def __call__(self) -> datetime:
        return self.now


def interleaved(subject: Callable[[int], None], baseline: Callable[[int], None], *, n: int,
                rounds: int = 9) -> tuple[float, float]:
    """Seconds per call of each, the best of *rounds* interleaved rounds: a shared
    machine only ever slows a round down, so the fastest is the least disturbed."""
    subject_times, baseline_times = interleaved_rounds(subject, baseline, n=n, rounds=rounds)
    return min(subject_times), min(baseline_times)


def interleaved_rounds(subject: Callable[[int], None], baseline: Callable[[int], None], *,
                       n: int, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per call of each, per interleaved round."""
    subject_times, baseline_times = [], []
    for r in range(rounds):
        start = r * n
        baseline_times.append(per_op(lambda i, start=start: baseline(start + i), n))
        subject_times.append(per_op(lambda i, start=start: subject(start + i), n))
    return subject_times, baseline_times


def bench_routing(n: int = 20_000) -> bool:
    routes = rules()
    router = Router.from_config(routes, providers(), clock=_Clock())
    work = orders()
    size = len(work)
    chain = if_else_chain(routes)
    naive = naive_loop(routes)
    for order, method in work:  # warm the plan cache; the chain must agree on the rule
        decision = router.decide(order, method)
        expected = routes[decision.rule_index or 0]["use"][0]
        first = expected["provider"] if isinstance(expected, dict) else expected
        assert chain(order, method) == first, (order, method, decision.rule)

    def subject(i: int) -> None:
        order, method = work[i % size]
        router.decide(order, method)

    def stored(i: int) -> None:
        order, method = work[i % size]
        router.decide(order, method).to_dict()

    def baseline(i: int) -> None:
        order, method = work[i % size]
        chain(order, method)

    def interpreted(i: int) -> None:
        order, method = work[i % size]
        naive(order, method)

    subject_times, baseline_times = interleaved_rounds(subject, baseline, n=n,
                                                       rounds=rounds(9))
    s, b = min(subject_times), min(baseline_times)
    full, _ = interleaved(stored, baseline, n=n // 4, rounds=5)
    _, nv = interleaved(subject, interpreted, n=n // 10, rounds=5)
    ok = goal("routing decisions/s (100 rules)", [1 / t for t in subject_times], unit="/s",
              at_least=BUDGET, digits=0, detail=f"fastest round {s * 1e6:.1f} us each")
    report("  ratio to a hand-written if/elif chain", f"{s / b:.1f}x (chain {b * 1e6:.2f} us, "
           f"first provider only)", "reported", True)
    report("  with to_dict() (what pay() stores)", f"{1 / full:,.0f}/s ({full * 1e6:.1f} us)",
           "reported", True)
    report("  naive loop over the raw tables", f"{1 / nv:,.0f}/s ({nv / s:.1f}x slower)",
           "reported", True)
    return ok


def main() -> int:
    return 0 if bench_routing(scaled(20_000, 1000)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
