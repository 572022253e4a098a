"""The router: compiled routing rules that decide, explain, replay and simulate."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from pasarela.config import InvalidConfigError
from pasarela.errors import ErrorCode, PasarelaError
from pasarela.fees import FeeSchedule
from pasarela.model import Method, Order
from pasarela.money import Money
from pasarela.provider import Ineligibility, Provider
from pasarela.routing.breaker import CircuitBreaker
from pasarela.routing.decision import NOTHING, Basis, Decision
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


class _Bands:
    """Consecutive rules of a plan that check nothing but an amount band (one
    country's bands for a method), compiled into one bisection: for each stretch of
    amounts between the bands' edges, the first rule that matches (or None) and the
    lines the rules before it add to the explanation, exactly as trying them one by
    one would."""

    __slots__ = ("cuts", "found")

    def __init__(self, run: Sequence[tuple[tuple[str, ...], Rule]]) -> None:
        edges: set[int] = set()
        for _, rule in run:
            low, high = rule.band[:2] if rule.band is not None else (None, None)
            if low is not None:
                edges.add(low)
            if high is not None:
                edges.add(high + 1)
        #: The stretches: below cuts[0], [cuts[0], cuts[1]), ..., from cuts[-1] up.
        self.cuts = sorted(edges)
        samples = [self.cuts[0] - 1 if self.cuts else 0, *self.cuts]
        self.found: list[tuple[tuple[str, ...], Rule | None]] = []
        for minor in samples:
            lines: list[str] = []
            hit: Rule | None = None
            for position, (misses, rule) in enumerate(run):
                if position:  # the first rule's lines come before the run
                    lines.extend(misses)
                assert rule.band is not None
                why = band_miss(rule.band, minor)
                if why is None:
                    hit = rule
                    break
                lines.append(rule._miss + why)
            self.found.append((tuple(lines), hit))

    def find(self, minor: int) -> tuple[tuple[str, ...], Rule | None]:
        """The lines and the rule for an order of *minor* units."""
        return self.found[bisect_right(self.cuts, minor)]


_Plan = tuple[tuple[tuple[str, ...], "Rule | _Bands | None"], ...]


def _bisected(steps: Sequence[tuple[tuple[str, ...], Rule | None]]) -> _Plan:
    """*steps* with each run of two or more band-only rules as one :class:`_Bands`."""
    out: list[tuple[tuple[str, ...], Rule | _Bands | None]] = []
    start = 0
    while start < len(steps):
        end = start
        while end < len(steps) and (rule := steps[end][1]) is not None and (
                rule.band is not None):
            end += 1
        if end - start >= 2:
            run = [(misses, rule) for misses, rule in steps[start:end] if rule is not None]
            out.append((steps[start][0], _Bands(run)))
            start = end
        else:
            out.append(steps[start])
            start += 1
    return tuple(out)

#: A provider whose eligibility is asked for every order (its class answers it itself).
_ASK: Final = object()
#: What a provider's eligibility is for orders of one country and currency paid by one
#: method: ``_ASK``, an ``Ineligibility`` that holds for all of them, or the amount
#: bounds (low, high) within which it takes them.
_Fit = object | Ineligibility | tuple[int | None, int | None]


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
        self.providers = dict(providers)
        self.fees = dict(fees or {})
        self._schedules: dict[Method, dict[str, FeeSchedule]] = {}
        for (name, how), schedule in self.fees.items():
            self._schedules.setdefault(how, {})[name] = schedule
        self.health = health
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.breaker = breaker or CircuitBreaker()
        self._plans: dict[tuple[str, str, Method], _Plan] = {}
        self._fits: dict[tuple[str, Method, str, str], tuple[Provider, _Fit]] = {}

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
        steps: list[tuple[tuple[str, ...], Rule | None]] = []
        misses: list[str] = []
        for rule in self.rules:
            why = rule.static_miss(country, currency, method)
            if why is not None:
                misses.append(f"{rule.label}: no match: {why}")
                continue
            steps.append((tuple(misses), rule))
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

    def _ineligibility(self, name: str, provider: Provider, order: Order, facts: Facts,
                       method: Method) -> Ineligibility | None:
        """``provider.ineligibility(order, method)``, from what :meth:`_fit` found."""
        cached = self._fits.get((name, method, facts.country, facts.currency))
        fit = (cached[1] if cached is not None and cached[0] is provider
               else self._fit(name, provider, method, facts.country, facts.currency))
        if isinstance(fit, tuple):
            low, high = fit
            if (low is None or facts.minor >= low) and (high is None or facts.minor <= high):
                return None
            return provider.ineligibility(order, method)  # its words for the amount
        if isinstance(fit, Ineligibility):
            return fit
        return provider.ineligibility(order, method)  # _ASK

    def _decide(self, facts: Facts, order: Order, method: Method, now: datetime,
                requested: str | None, health: HealthLookup | None,
                blocked: _Blocked | None) -> Decision:
        trace: list[str] = []
        rule: Rule | None = None
        if requested is not None:
            trace.append(f"provider {requested} requested by the caller; rules not consulted")
            names: tuple[str, ...] = (requested,)
            strategy = "requested"
            blocked = None
        else:
            plan = (self._plans.get((facts.country, facts.currency, method))
                    or self._plan(facts.country, facts.currency, method))
            moment = Moment(now)
            for misses, step in plan:
                if misses:
                    trace.extend(misses)
                if step is None:
                    break
                if isinstance(step, _Bands):
                    lines, rule = step.find(facts.minor)
                    trace.extend(lines)
                    if rule is not None:
                        break
                    continue
                for check in step.checks:
                    why = check(facts, moment)
                    if why is not None:
                        trace.append(step._miss + why)
                        break
                else:
                    rule = step
                    break
            if rule is None:  # only without a default rule, which compiling refuses
                trace.append("no rule matched")
                names, strategy = (), "none"
            else:
                trace.append(rule._matched)
                names, strategy = rule.providers, rule.strategy
        eligible: list[str] = []
        skipped: dict[str, str] = {}
        circuits: dict[str, str] = {}
        providers = self.providers
        for name in names:
            provider = providers.get(name)
            unfit = (None if provider is None
                     else self._ineligibility(name, provider, order, facts, method))
            if unfit is None and provider is not None and facts.network is not None:
                unfit = provider.network_ineligibility(method, facts.network)
            why = ("not configured" if provider is None
                   else None if unfit is None else unfit.message)
            if why is None and blocked is not None:
                why = blocked(name, method, now)
                if why is not None:
                    circuits[name] = why
            if why is None:
                eligible.append(name)
            else:
                skipped[name] = why
                trace.append(f"candidate {name}: skipped: {why}")
        schedules = self._schedules.get(method, NOTHING)
        fee_minor: dict[str, int] | None = None
        snapshot: dict[str, list[int]] = {}
        if rule is None or strategy == "ordered":
            ordered = eligible
            if rule is not None and len(names) > 1:
                trace.append(rule._ordered)
        elif strategy == "weighted":
            ordered = order_weighted(rule, facts, eligible, trace)
        elif strategy == "cheapest":
            ordered, fee_minor = order_cheapest(facts, eligible, schedules)
        else:
            ordered = order_healthiest(rule, facts, method, eligible, health, trace, snapshot)
        extra: Mapping[str, Any] = NOTHING
        if snapshot or circuits:
            extra = {}
            if snapshot:
                extra["health"] = snapshot
            if circuits:
                extra["open_circuits"] = circuits
        return Decision(
            method=method, provider=ordered[0] if ordered else None, candidates=tuple(ordered),
            rule=rule.name if rule is not None else None, strategy=strategy, skipped=skipped,
            decided_at=now,
            basis=Basis(facts.reference, facts.currency,
                         None if rule is None or rule.implicit else rule.index, requested,
                         tuple(trace), facts, schedules, fee_minor, extra),
        )
