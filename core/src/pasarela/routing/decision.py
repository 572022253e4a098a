"""Decisions: which provider takes an order by a method, and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from pasarela.fees import FeeSchedule
from pasarela.model import Method
from pasarela.money import Money
from pasarela.routing.facts import Facts, money_text
from pasarela.routing.rules import Rule
from pasarela.routing.strategies import weighted_line


NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})


class Decision:
    """Which provider takes an order by a method, and why.

    Attributes (read-only):
        method: how the customer pays.
        provider: the chosen provider, or None when no candidate can take it.
        candidates: the eligible providers in the order to try them (failover).
        rule: the name of the rule that matched (None when the caller named the
            provider).
        strategy: the rule's strategy, or ``requested``.
        skipped: each provider of the rule that cannot take the order, and why.
        decided_at: the moment the rules were evaluated at (time windows).

    :attr:`fees` (the expected fee per candidate) and :attr:`explanation` are
    worked out when read, so a checkout page asking for options pays only for what
    it uses. Compare decisions with :meth:`to_dict`.

    The router builds it (:meth:`Router.decide`); :meth:`from_dict` reads one back.
    Besides the fields it keeps what it was decided from: the order's facts, the
    rule that matched, the rule lines of the trace, the fee schedules, the weighted
    strategy's bucket and the lines another strategy added, so the explanation's
    lines that follow from these are written only when read.
    """

    __slots__ = ("_bucket", "_candidates", "_currency", "_decided_at", "_extra", "_facts",
                 "_fee_minor", "_matched", "_method", "_notes", "_overridden_by", "_provider",
                 "_reference", "_rendered", "_requested", "_rule", "_rule_index", "_schedules",
                 "_skipped", "_strategy", "_tail", "_trace")

    def __init__(self, method: Method, provider: str | None, candidates: tuple[str, ...],
                 rule: str | None, strategy: str, skipped: Mapping[str, str],
                 decided_at: datetime, reference: str, currency: str, rule_index: int | None,
                 matched: Rule | None, trace: Sequence[str | tuple[str, ...]],
                 facts: Facts | None,
                 schedules: Mapping[str, FeeSchedule], fee_minor: Mapping[str, int] | None = None,
                 bucket: int = 0, tail: Sequence[str] = (), extra: Mapping[str, Any] = NOTHING,
                 requested: str | None = None, overridden_by: str | None = None,
                 rendered: tuple[str, ...] | None = None, notes: tuple[str, ...] = ()) -> None:
        self._method = method
        self._provider = provider
        self._candidates = candidates
        self._rule = rule
        self._strategy = strategy
        self._skipped = skipped
        self._decided_at = decided_at
        self._reference = reference
        self._currency = currency
        self._rule_index = rule_index
        #: The rule that matched, for the strategy's line (None when rendered).
        self._matched = matched
        #: The rule lines: each rule tried and why it did or did not match (a line, or
        #: a run of lines the plan found once).
        self._trace = trace
        self._facts = facts
        self._schedules = schedules
        self._fee_minor = fee_minor
        #: The weighted strategy's bucket for the order's reference.
        self._bucket = bucket
        #: The lines a strategy added after the candidates' (healthiest).
        self._tail = tail
        self._extra = extra
        self._requested = requested
        self._overridden_by = overridden_by
        #: The explanation as read back or before an override (then the rest is unused).
        self._rendered = rendered
        self._notes = notes

    @property
    def method(self) -> Method:
        """How the customer pays."""
        return self._method

    @property
    def provider(self) -> str | None:
        """The chosen provider, or None when no candidate can take it."""
        return self._provider

    @property
    def candidates(self) -> tuple[str, ...]:
        """The eligible providers in the order to try them (failover)."""
        return self._candidates

    @property
    def rule(self) -> str | None:
        """The name of the rule that matched (None when the caller named the provider)."""
        return self._rule

    @property
    def strategy(self) -> str:
        """The rule's strategy, or ``requested``."""
        return self._strategy

    @property
    def skipped(self) -> Mapping[str, str]:
        """Each provider of the rule that cannot take the order, and why."""
        return self._skipped

    @property
    def decided_at(self) -> datetime:
        """The moment the rules were evaluated at (time windows)."""
        return self._decided_at

    @property
    def order_reference(self) -> str:
        return self._reference

    @property
    def currency(self) -> str:
        """The order's currency, that of every fee."""
        return self._currency

    @property
    def rule_index(self) -> int | None:
        """The matched rule's place in ``routes`` (None for the implicit default)."""
        return self._rule_index

    @property
    def requested_provider(self) -> str | None:
        """The provider the caller asked for, if any."""
        return self._requested

    @property
    def overridden_by(self) -> str | None:
        """What moved :attr:`provider` first, if not the rules."""
        return self._overridden_by

    @property
    def fee_minor(self) -> dict[str, int]:
        """The expected fee of each candidate, in minor units of :attr:`currency`."""
        if self._fee_minor is not None:
            return dict(self._fee_minor)
        return {name: self._fee_of(name) for name in self._candidates}

    def _fee_of(self, name: str) -> int:
        if self._fee_minor is not None:
            return self._fee_minor.get(name, 0)
        schedule = self._schedules.get(name)
        if schedule is None or self._facts is None:
            return 0
        return schedule.fee_minor(self._facts.minor, self._currency)

    @property
    def fees(self) -> dict[str, Money]:
        """The expected fee of each candidate."""
        return {name: Money(minor, self._currency) for name, minor in self.fee_minor.items()}

    @property
    def fee(self) -> Money | None:
        """The expected fee of the chosen provider."""
        if self._provider is None:
            return None
        return Money(self._fee_of(self._provider), self._currency)

    @property
    def explanation(self) -> tuple[str, ...]:
        """The trace: the order, each rule tried and why it did or did not match, each
        candidate skipped and why, the strategy's reasoning and the choice."""
        if self._rendered is not None:
            return self._rendered + self._notes
        facts, currency, strategy = self._facts, self._currency, self._strategy
        lines = []
        if facts is not None:
            lines.append(f"order {facts.reference}: {money_text(facts.minor, facts.currency)}"
                         f", country {facts.country}, method {self._method.value}")
        for part in self._trace:
            if type(part) is str:
                lines.append(part)
            else:
                lines.extend(part)
        lines.extend(f"candidate {name}: skipped: {why}" for name, why in self._skipped.items())
        matched = self._matched
        if matched is not None and strategy == "ordered" and len(matched.providers) > 1:
            lines.append(matched._ordered)
        elif matched is not None and strategy == "weighted":
            lines.append(weighted_line(matched, self._reference, self._bucket))
        lines.extend(self._tail)
        if strategy == "cheapest":
            costs = ", ".join(f"{name} {money_text(self._fee_of(name), currency)}"
                              for name in self._candidates)
            lines.append(f"strategy cheapest: expected fees {costs or 'none eligible'}")
        if self._provider is None:
            lines.append("no candidate can take this order")
        else:
            rest = (f"; failover order {', '.join(self._candidates)}"
                    if len(self._candidates) > 1 else "")
            fee = money_text(self._fee_of(self._provider), currency)
            lines.append(f"chose {self._provider} (expected fee {fee}){rest}")
        return (*lines, *self._notes)

    @property
    def inputs(self) -> dict[str, Any]:
        """What the decision was made from (JSON-compatible), for :meth:`Router.replay`:
        the order's routing facts, the method, the moment, and the health numbers and
        open circuits that were used."""
        if self._facts is None:
            return dict(self._extra)
        return {"order": self._facts.to_dict(), "method": self._method.value,
                "at": self._decided_at.isoformat(), **self._extra}

    @property
    def reason(self) -> str:
        """One line for people: why this provider, or why none."""
        source = (f"requested {self._requested}" if self._rule is None
                  else f"rule {self._rule!r} ({self._strategy})")
        if self._overridden_by:
            return f"{source}; {self._provider} chosen by {self._overridden_by}"
        if self._provider is not None:
            rest = [c for c in self._candidates if c != self._provider]
            then = f", then {', '.join(rest)}" if rest else ""
            return f"{source}: {self._provider}{then}"
        why = "; ".join(f"{name}: {text}" for name, text in self._skipped.items())
        return f"{source}: no candidate can take it ({why or 'none listed'})"

    def overridden(self, provider: str, *, by: str) -> Decision:
        """This decision with *provider* (one of the candidates) moved first by *by*
        (the ``pasarela_select_provider`` hook)."""
        if provider not in self._candidates:
            raise ValueError(f"{provider!r} is not a candidate ({', '.join(self._candidates)})")
        order = (provider, *(c for c in self._candidates if c != provider))
        return Decision(
            self._method, provider, order, self._rule, self._strategy, self._skipped,
            self._decided_at, self._reference, self._currency, self._rule_index, None, (),
            self._facts, self._schedules, self.fee_minor, extra=self._extra,
            requested=self._requested, overridden_by=by, rendered=self.explanation,
            notes=(f"{by} chose {provider}; failover order {', '.join(order)}",))

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible, for the decision log and the routing observer hook."""
        fees = self.fee_minor
        provider = self._provider
        chosen = fees.get(provider) if provider is not None else None
        currency = self._currency
        return {
            "order_reference": self._reference,
            "method": self._method.value,
            "provider": provider,
            "candidates": list(self._candidates),
            "rule": self._rule,
            "rule_index": self._rule_index,
            "strategy": self._strategy,
            "currency": currency,
            "fees": {name: {"minor": minor, "currency": currency} for name, minor in fees.items()},
            "expected_fee": None if chosen is None else {"minor": chosen, "currency": currency},
            "skipped": dict(self._skipped),
            "explanation": list(self.explanation),
            "decided_at": self._decided_at.isoformat(),
            "requested_provider": self._requested,
            "overridden_by": self._overridden_by,
            "inputs": self.inputs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The decision :meth:`to_dict` gave (from the decision log)."""
        fees = {name: int(m["minor"]) for name, m in (data.get("fees") or {}).items()}
        return cls(Method(data["method"]), data.get("provider"),
                   tuple(data.get("candidates", ())), data.get("rule"),
                   data.get("strategy", ""), dict(data.get("skipped") or {}),
                   datetime.fromisoformat(data["decided_at"]), data["order_reference"],
                   data["currency"], data.get("rule_index"), None, (), None, NOTHING, fees,
                   extra=dict(data.get("inputs") or {}),
                   requested=data.get("requested_provider"),
                   overridden_by=data.get("overridden_by"),
                   rendered=tuple(data.get("explanation", ())))

    def __repr__(self) -> str:
        return (f"Decision({self._reference!r}, {self._method.value}, "
                f"provider={self._provider!r}, candidates={list(self._candidates)}, "
                f"rule={self._rule!r}, strategy={self._strategy!r})")
