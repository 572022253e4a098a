"""The router: compiled routing rules that decide, explain, replay and simulate."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from pasarela.config import InvalidConfigError
from pasarela.errors import ErrorCode, PasarelaError
from pasarela.fees import FeeSchedule
from pasarela.model import Method, Order
from pasarela.money import Money
from pasarela.provider import Ineligibility, Provider
from pasarela.routing.breaker import CircuitBreaker
from pasarela.routing.decision import NOTHING, Decision
from pasarela.routing.facts import Facts, Moment
from pasarela.routing.health import HealthSource, HealthStat
from pasarela.routing.routes import compile_route, parse_share, shadowed
from pasarela.routing.rules import DEFAULT_EXPLORATION, DEFAULT_MIN_SAMPLE, Rule, band_miss
from pasarela.routing.strategies import (
    HealthLookup,
    order_cheapest,
    order_healthiest,
    order_weighted,
)


_PLAN_CACHE_MAX: Final = 4096

_Blocked = Callable[[str, Method, datetime], "str | None"]
_new: Final = object.__new__


#: A provider whose eligibility is asked for every order (its class answers it itself).
_ASK: Final = object()
#: What a provider's eligibility is for orders of one country and currency paid by one
#: method: ``_ASK``, an ``Ineligibility`` that holds for all of them, or the amount
#: bounds (low, high) within which it takes them.
_Fit = object | Ineligibility | tuple[int | None, int | None]


#: An entry of a route's candidates for one stretch of amounts: the name, the provider
#: (None when not configured) and its verdict: None (it takes the order), why it never
#: does (a static ineligibility), or the provider itself to ask for every order.
_Entry = tuple[str, "Provider | None", "str | Provider | None"]


class _Route:
    """A rule as a plan (orders of one country, currency and method) tries it, or the
    provider a caller requested: its checks, and its candidates' eligibility found
    once for each stretch of amounts between the candidates' bounds (``found``:
    the names when every candidate takes the order, else None, and the entries)."""

    __slots__ = ("checks", "cuts", "found", "miss", "rule", "rule_index", "schedules")

    def __init__(self, rule: Rule | None,
                 candidates: Sequence[tuple[str, Provider | None, _Fit]],
                 schedules: Mapping[str, FeeSchedule]) -> None:
        self.rule = rule
        #: The fee schedules of the method, by provider.
        self.schedules = schedules
        self.checks = rule.checks if rule is not None else ()
        self.miss = rule._miss if rule is not None else ""
        self.rule_index = None if rule is None or rule.implicit else rule.index
        edges: set[int] = set()
        for _, _, fit in candidates:
            if isinstance(fit, tuple):
                low, high = fit
                if low is not None:
                    edges.add(low)
                if high is not None:
                    edges.add(high + 1)
        #: The stretches: below cuts[0], [cuts[0], cuts[1]), ..., from cuts[-1] up.
        self.cuts = sorted(edges)
        self.found: list[tuple[tuple[str, ...] | None, tuple[_Entry, ...]]] = []
        for minor in [self.cuts[0] - 1 if self.cuts else 0, *self.cuts]:
            entries: list[_Entry] = []
            for name, provider, fit in candidates:
                verdict: str | Provider | None
                if provider is None:
                    verdict = "not configured"
                elif isinstance(fit, tuple):
                    low, high = fit
                    inside = (low is None or minor >= low) and (high is None or minor <= high)
                    verdict = None if inside else provider  # its words for the amount
                elif isinstance(fit, Ineligibility):
                    verdict = fit.message
                else:  # _ASK
                    verdict = provider
                entries.append((name, provider, verdict))
            every = all(verdict is None for _, _, verdict in entries)
            self.found.append((tuple(n for n, _, _ in entries) if every else None,
                               tuple(entries)))


class _Bands:
    """Consecutive rules of a plan that check nothing but an amount band (one
    country's bands for a method), compiled into one bisection: for each stretch of
    amounts between the bands' edges, the first rule that matches (or None) and the
    lines the rules before it add to the explanation, exactly as trying them one by
    one would."""

    __slots__ = ("cuts", "found")

    def __init__(self, run: Sequence[tuple[tuple[str, ...], _Route]]) -> None:
        edges: set[int] = set()
        for _, route in run:
            assert route.rule is not None
            band = route.rule.band
            low, high = band[:2] if band is not None else (None, None)
            if low is not None:
                edges.add(low)
            if high is not None:
                edges.add(high + 1)
        #: The stretches: below cuts[0], [cuts[0], cuts[1]), ..., from cuts[-1] up.
        self.cuts = sorted(edges)
        samples = [self.cuts[0] - 1 if self.cuts else 0, *self.cuts]
        self.found: list[tuple[tuple[str, ...], _Route | None]] = []
        for minor in samples:
            lines: list[str] = []
            hit: _Route | None = None
            for position, (misses, route) in enumerate(run):
                if position:  # the first rule's lines come before the run
                    lines.extend(misses)
                band = route.rule.band if route.rule is not None else None
                assert band is not None
                why = band_miss(band, minor)
                if why is None:
                    hit = route
                    break
                lines.append(route.miss + why)
            #: For each stretch, the lines and the rule for an order in it.
            self.found.append((tuple(lines), hit))


#: A plan: steps of the lines of the rules ruled out before, and a rule to try or a
#: run of amount bands to bisect (neither after the last rule).
_Plan = tuple[tuple[tuple[str, ...], "_Route | None", "_Bands | None"], ...]


def _bisected(steps: Sequence[tuple[tuple[str, ...], _Route | None]]) -> _Plan:
    """*steps* with each run of two or more band-only rules as one :class:`_Bands`."""
    out: list[tuple[tuple[str, ...], _Route | None, _Bands | None]] = []
    start = 0
    while start < len(steps):
        end = start
        while end < len(steps) and (route := steps[end][1]) is not None and (
                route.rule is not None and route.rule.band is not None):
            end += 1
        if end - start >= 2:
            run = [(misses, route) for misses, route in steps[start:end] if route is not None]
            out.append((steps[start][0], None, _Bands(run)))
            start = end
        else:
            out.append((*steps[start], None))
            start += 1
    return tuple(out)

class Router:
    """Compiled routing rules. Build it with :meth:`from_config`."""

    def __init__(
        self,
        rules: Sequence[Rule],
        providers: Mapping[str, Provider],
        *,
        fees: Mapping[tuple[str, Method], FeeSchedule] | None = None,
        health: HealthSource | None = None,
        clock: Callable[[], datetime] | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.rules = tuple(rules)
        #: The providers, by name (read-only: the plans hold what each one takes).
        self.providers: Mapping[str, Provider] = MappingProxyType(dict(providers))
        self.fees = dict(fees or {})
        self._schedules: dict[Method, dict[str, FeeSchedule]] = {}
        for (name, how), schedule in self.fees.items():
            self._schedules.setdefault(how, {})[name] = schedule
        self.health = health
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.breaker = breaker or CircuitBreaker()
        self._plans: dict[tuple[str, str, Method], _Plan] = {}
        self._fits: dict[tuple[str, Method, str, str], tuple[Provider, _Fit]] = {}
        self._requested: dict[tuple[str, str, str, Method], _Route] = {}

    @classmethod
    def from_config(
        cls,
        routes: Sequence[Any],
        providers: Mapping[str, Provider],
        *,
        health: HealthSource | None = None,
        clock: Callable[[], datetime] | None = None,
        preference: Sequence[str] = (),
        min_sample: int = DEFAULT_MIN_SAMPLE,
        exploration: Decimal | str | int = DEFAULT_EXPLORATION,
        breaker_threshold: int = 5,
        breaker_cool_off: timedelta = timedelta(seconds=60),
    ) -> Router:
        """Compile *routes* (``Config.routes`` or raw ``[[routes]]`` tables).

        :param providers: the configured provider instances, by name.
        :param health: where ``healthiest`` rules get success rates.
        :param preference: the provider order of the implicit default rule, used
            when there are no routes at all (``checkout.preference``).
        :param min_sample, exploration: defaults for ``healthiest`` rules
            (attempts needed before a rate counts; percent of orders that explore).
        :raises InvalidConfigError: every problem, each naming its path
            (``routes[2].when.colour: unknown condition; ...``).
        """
        errors: list[str] = []
        share = parse_share(exploration, "exploration", errors)
        rules: list[Rule] = []
        for index, route in enumerate(routes):
            rule = compile_route(index, route, providers, errors, min_sample=min_sample,
                                  exploration=share)
            if rule is not None:
                rules.append(rule)
        if not routes:
            order = [n for n in preference if n in providers]
            order += sorted(n for n in providers if n not in order)
            rules.append(Rule(index=0, name="default", strategy="ordered",
                              providers=tuple(order), implicit=True,
                              description="no [[routes]] configured: every provider in "
                                          "checkout.preference order"))
        elif rules and not any(rule.is_default for rule in rules):
            errors.append("routes: no default rule; end with a [[routes]] that has no "
                          "conditions (when = {}), for orders no other rule matches")
        errors += shadowed(rules)
        fees: dict[tuple[str, Method], FeeSchedule] = {}
        for name, provider in providers.items():
            for method in sorted(provider.methods):
                try:
                    fees[(name, method)] = FeeSchedule.from_mapping(
                        provider.settings.fees, path=f"providers.{name}.fees", method=method,
                        currencies=provider.currencies)
                except PasarelaError as exc:
                    if str(exc) not in errors:
                        errors.append(str(exc))
        if errors:
            raise InvalidConfigError(errors)
        breaker = CircuitBreaker(threshold=breaker_threshold, cool_off=breaker_cool_off)
        return cls(rules, providers, fees=fees, health=health, clock=clock, breaker=breaker)

    # --- deciding --------------------------------------------------------------------

    def decide(self, order: Order, method: Method | str, *,
               requested_provider: str | None = None,
               network: str | None = None) -> Decision:
        """Route *order* paid by *method*: the provider, the failover order and why.

        *network* is the network the caller asked for (``yape``): ``network``
        conditions match it, and a candidate that does not take *method* on it is
        skipped."""
        how = method if type(method) is Method else Method(method)
        breaker = self.breaker
        blocked = breaker.blocked if breaker._open_until else None
        health = self.health
        return self._decide(Facts.of(order, network), order, how, self.clock(),
                            requested_provider,
                            health.stats if health is not None else None, blocked)

    def options(self, order: Order) -> list[Decision]:
        """One decision per method (cash, wallet, card), for a checkout page."""
        return [self.decide(order, method) for method in Method]

    def record_outcome(self, provider: str, method: Method | str, ok: bool) -> None:
        """Feed the circuit breaker with how an attempt at *provider* went technically.

        *ok* is False when the provider could not be reached or answered with a
        server error or an unknown outcome; True when it answered, a decline
        included (a business outcome, not a fault of the provider).
        """
        self.breaker.record(provider, method, ok, now=self.clock())

    def replay(self, decision: Decision | Mapping[str, Any]) -> Decision:
        """Decide again, with these rules, from a stored decision's inputs.

        The health numbers and open circuits recorded with it are used, so the same
        configuration gives the same decision.
        """
        data = decision.to_dict() if isinstance(decision, Decision) else decision
        inputs = data.get("inputs") or {}
        facts = Facts.from_dict(inputs["order"])
        method = Method(str(inputs.get("method") or data["method"]))
        at = datetime.fromisoformat(inputs.get("at") or data["decided_at"])
        stored = inputs.get("health") or {}
        snapshot = {name: HealthStat(int(ok), int(total)) for name, (ok, total) in stored.items()}
        circuits = dict(inputs.get("open_circuits") or {})

        def health(name: str, how: Method) -> HealthStat | None:
            return snapshot.get(name)

        def blocked(name: str, how: Method, now: datetime) -> str | None:
            return circuits.get(name)

        return self._decide(facts, facts.order(), method, at, data.get("requested_provider"),
                            health, blocked)

    def simulate(self, order: Order, method: Method | str, *,
                 at: datetime | None = None, network: str | None = None) -> Decision:
        """Decide as :meth:`decide` does, at *at*, ignoring the circuit breaker."""
        how = method if isinstance(method, Method) else Method(method)
        return self._decide(Facts.of(order, network), order, how, at or self.clock(), None,
                            self._health_lookup(), None)

    def _health_lookup(self) -> HealthLookup | None:
        return self.health.stats if self.health is not None else None

    def _plan(self, country: str, currency: str, method: Method) -> _Plan:
        """The rules to try for orders with these facts: each rule whose remaining
        conditions need the order, after the lines of the rules these facts rule
        out before it (the last step's rule is None when none is left)."""
        key = (country, currency, method)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        steps: list[tuple[tuple[str, ...], _Route | None]] = []
        misses: list[str] = []
        for rule in self.rules:
            why = rule.static_miss(country, currency, method)
            if why is not None:
                misses.append(f"{rule.label}: no match: {why}")
                continue
            steps.append((tuple(misses), self._route(rule, rule.providers, country, currency,
                                                     method)))
            misses = []
            if not rule.checks:
                break
        else:
            steps.append((tuple(misses), None))
        plan = _bisected(steps)
        if len(self._plans) >= _PLAN_CACHE_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _fit(self, name: str, provider: Provider, method: Method, country: str,
             currency: str) -> _Fit:
        """What :meth:`Provider.ineligibility` answers for orders with these facts, found
        once: the base class's answer depends on nothing else but the amount, against
        bounds it reads from the provider (a class that answers it, or its bounds,
        itself is asked for every order). Asked of a probe order at the lower bound."""
        key = (name, method, country, currency)
        cached = self._fits.get(key)
        if cached is not None and cached[0] is provider:
            return cached[1]
        kind = type(provider)
        fit: _Fit = _ASK
        if (kind.ineligibility is Provider.ineligibility
                and kind.amount_limits is Provider.amount_limits):
            low, high = provider.amount_limits(currency)
            probe = low if low is not None else high if high is not None else 0
            try:
                unfit = provider.ineligibility(
                    Order(reference="probe", amount=Money(probe, currency), country=country),
                    method)
            except PasarelaError:
                unfit = Ineligibility(ErrorCode.AMOUNT_OUT_OF_RANGE, "")  # asked each time
            if unfit is None:
                fit = (low, high)
            elif unfit.code is not ErrorCode.AMOUNT_OUT_OF_RANGE:
                fit = unfit
        if len(self._fits) >= _PLAN_CACHE_MAX:
            self._fits.clear()
        self._fits[key] = (provider, fit)
        return fit

    def _route(self, rule: Rule | None, names: Sequence[str], country: str, currency: str,
               method: Method) -> _Route:
        """*rule* (or a requested provider) for orders with these facts: its
        candidates *names* with what :meth:`_fit` found for each."""
        providers = self.providers
        candidates: list[tuple[str, Provider | None, _Fit]] = []
        for name in names:
            provider = providers.get(name)
            fit = (None if provider is None
                   else self._fit(name, provider, method, country, currency))
            candidates.append((name, provider, fit))
        return _Route(rule, candidates, self._schedules.get(method, NOTHING))

    def _requested_route(self, name: str, country: str, currency: str,
                         method: Method) -> _Route:
        key = (name, country, currency, method)
        route = self._requested.get(key)
        if route is None:
            if len(self._requested) >= _PLAN_CACHE_MAX:
                self._requested.clear()
            route = self._requested[key] = self._route(None, (name,), country, currency, method)
        return route

    def _decide(self, facts: Facts, order: Order, method: Method, now: datetime,
                requested: str | None, health: HealthLookup | None,
                blocked: _Blocked | None) -> Decision:
        #: The rule lines of the explanation, a line or the plan's own run of lines each
        #: (the rest is written when it is read).
        trace: list[str | tuple[str, ...]] = []
        rule: Rule | None = None
        route: _Route | None = None
        if requested is not None:
            trace.append(f"provider {requested} requested by the caller; rules not consulted")
            route = self._requested_route(requested, facts.country, facts.currency, method)
            strategy = "requested"
            blocked = None
        else:
            plan = (self._plans.get((facts.country, facts.currency, method))
                    or self._plan(facts.country, facts.currency, method))
            moment = _new(Moment)  # Moment(now) without the call
            moment.now, moment._local = now, None
            for misses, step, bands in plan:
                if misses:
                    trace.append(misses)
                if bands is not None:
                    lines, route = bands.found[bisect_right(bands.cuts, facts.minor)]
                    if lines:
                        trace.append(lines)
                    if route is not None:
                        break
                    continue
                if step is None:
                    break
                for check in step.checks:
                    why = check(facts, moment)
                    if why is not None:
                        trace.append(step.miss + why)
                        break
                else:
                    route = step
                    break
            if route is None:  # only without a default rule, which compiling refuses
                trace.append("no rule matched")
                route, strategy = _NOWHERE, "none"
            else:
                rule = route.rule
                assert rule is not None
                trace.append(rule._matched)
                strategy = rule.strategy
        eligible, entries = route.found[bisect_right(route.cuts, facts.minor)]
        skipped: dict[str, str] = {}
        circuits: dict[str, str] | None = None
        if eligible is None or facts.network is not None or blocked is not None:
            eligible, circuits = _eligible(entries, order, facts.network, method, now, blocked,
                                           skipped)
        schedules = route.schedules
        fee_minor: dict[str, int] | None = None
        bucket = 0
        tail: list[str] | tuple[()] = ()
        extra: Mapping[str, Any] = NOTHING
        if rule is None or strategy == "ordered":
            ordered = eligible
        elif strategy == "weighted":
            ordered, bucket = order_weighted(rule, facts, eligible)
        elif strategy == "cheapest":
            ordered, fee_minor = order_cheapest(facts, eligible, schedules)
        else:
            tail = []
            snapshot: dict[str, list[int]] = {}
            ordered = order_healthiest(rule, facts, method, eligible, health, tail, snapshot)
            if snapshot:
                extra = {"health": snapshot}
        if circuits:
            extra = {**extra, "open_circuits": circuits}
        return Decision(method, ordered[0] if ordered else None, ordered,
                        rule.name if rule is not None else None, strategy, skipped, now,
                        facts.reference, facts.currency, route.rule_index, rule, trace, facts,
                        schedules, fee_minor, bucket, tail, extra, requested)


#: Where an order goes when no rule matches it (only without a default rule).
_NOWHERE: Final = _Route(None, (), NOTHING)


def _eligible(entries: Sequence[_Entry], order: Order, network: str | None, method: Method,
              now: datetime, blocked: _Blocked | None,
              skipped: dict[str, str]) -> tuple[tuple[str, ...], dict[str, str] | None]:
    """The candidates of *entries* that take *order*, in their order, and the open
    circuits; each one that does not goes in *skipped* with why."""
    eligible: list[str] = []
    circuits: dict[str, str] | None = None
    for name, provider, verdict in entries:
        if verdict is None or type(verdict) is str:
            why = verdict
        else:
            assert isinstance(verdict, Provider)
            unfit = verdict.ineligibility(order, method)
            why = None if unfit is None else unfit.message
        if why is None and network is not None and provider is not None:
            unfit = provider.network_ineligibility(method, network)
            why = None if unfit is None else unfit.message
        if why is None and blocked is not None:
            why = blocked(name, method, now)
            if why is not None:
                if circuits is None:
                    circuits = {}
                circuits[name] = why
        if why is None:
            eligible.append(name)
        else:
            skipped[name] = why
    return tuple(eligible), circuits
