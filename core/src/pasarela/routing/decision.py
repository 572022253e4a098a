"""Decisions: which provider takes an order by a method, and why."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

import attrs

from pasarela.fees import FeeSchedule
from pasarela.model import Method
from pasarela.money import Money
from pasarela.routing.facts import Facts, money_text


NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})


class Basis:
    """What a decision was made from, and what it keeps to work out the rest on demand."""

    __slots__ = ("currency", "extra", "facts", "fee_minor", "notes", "overridden_by",
                 "reference", "rendered", "requested", "rule_index", "schedules", "trace")

    def __init__(self, reference: str, currency: str, rule_index: int | None,
                 requested: str | None, trace: tuple[str, ...], facts: Facts | None,
                 schedules: Mapping[str, FeeSchedule], fee_minor: Mapping[str, int] | None,
                 extra: Mapping[str, Any], *, overridden_by: str | None = None,
                 rendered: tuple[str, ...] | None = None, notes: tuple[str, ...] = ()) -> None:
        self.reference = reference
        self.currency = currency
        self.rule_index = rule_index
        self.requested = requested
        self.trace = trace
        self.facts = facts
        self.schedules = schedules
        self.fee_minor = fee_minor
        self.extra = extra
        self.overridden_by = overridden_by
        self.rendered = rendered
        self.notes = notes


@attrs.frozen(kw_only=True, eq=False)
class Decision:
    """Which provider takes an order by a method, and why.

    Attributes:
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
    """

    method: Method
    provider: str | None
    candidates: tuple[str, ...]
    rule: str | None
    strategy: str
    skipped: Mapping[str, str]
    decided_at: datetime
    _basis: Basis = attrs.field(repr=False, alias="basis")

    @property
    def order_reference(self) -> str:
        return self._basis.reference

    @property
    def currency(self) -> str:
        """The order's currency, that of every fee."""
        return self._basis.currency

    @property
    def rule_index(self) -> int | None:
        """The matched rule's place in ``routes`` (None for the implicit default)."""
        return self._basis.rule_index

    @property
    def requested_provider(self) -> str | None:
        """The provider the caller asked for, if any."""
        return self._basis.requested

    @property
    def overridden_by(self) -> str | None:
        """What moved :attr:`provider` first, if not the rules."""
        return self._basis.overridden_by

    @property
    def fee_minor(self) -> dict[str, int]:
        """The expected fee of each candidate, in minor units of :attr:`currency`."""
        if self._basis.fee_minor is not None:
            return dict(self._basis.fee_minor)
        return {name: self._fee_of(name) for name in self.candidates}

    def _fee_of(self, name: str) -> int:
        basis = self._basis
        if basis.fee_minor is not None:
            return basis.fee_minor.get(name, 0)
        schedule = basis.schedules.get(name)
        if schedule is None or basis.facts is None:
            return 0
        return schedule.fee_minor(basis.facts.minor, basis.currency)

    @property
    def fees(self) -> dict[str, Money]:
        """The expected fee of each candidate."""
        return {name: Money(minor, self.currency) for name, minor in self.fee_minor.items()}

    @property
    def fee(self) -> Money | None:
        """The expected fee of the chosen provider."""
        if self.provider is None:
            return None
        return Money(self._fee_of(self.provider), self.currency)

    @property
    def explanation(self) -> tuple[str, ...]:
        """The trace: the order, each rule tried and why it did or did not match, each
        candidate skipped and why, the strategy's reasoning and the choice."""
        basis = self._basis
        if basis.rendered is not None:
            return basis.rendered + basis.notes
        facts = basis.facts
        lines = []
        if facts is not None:
            lines.append(f"order {facts.reference}: {money_text(facts.minor, facts.currency)}"
                         f", country {facts.country}, method {self.method.value}")
        lines.extend(basis.trace)
        if self.strategy == "cheapest":
            costs = ", ".join(f"{name} {money_text(self._fee_of(name), self.currency)}"
                              for name in self.candidates)
            lines.append(f"strategy cheapest: expected fees {costs or 'none eligible'}")
        if self.provider is None:
            lines.append("no candidate can take this order")
        else:
            rest = (f"; failover order {', '.join(self.candidates)}"
                    if len(self.candidates) > 1 else "")
            fee = money_text(self._fee_of(self.provider), self.currency)
            lines.append(f"chose {self.provider} (expected fee {fee}){rest}")
        return (*lines, *basis.notes)

    @property
    def inputs(self) -> dict[str, Any]:
        """What the decision was made from (JSON-compatible), for :meth:`Router.replay`:
        the order's routing facts, the method, the moment, and the health numbers and
        open circuits that were used."""
        basis = self._basis
        if basis.facts is None:
            return dict(basis.extra)
        return {"order": basis.facts.to_dict(), "method": self.method.value,
                "at": self.decided_at.isoformat(), **basis.extra}

    @property
    def reason(self) -> str:
        """One line for people: why this provider, or why none."""
        source = (f"requested {self.requested_provider}" if self.rule is None
                  else f"rule {self.rule!r} ({self.strategy})")
        if self.overridden_by:
            return f"{source}; {self.provider} chosen by {self.overridden_by}"
        if self.provider is not None:
            rest = [c for c in self.candidates if c != self.provider]
            then = f", then {', '.join(rest)}" if rest else ""
            return f"{source}: {self.provider}{then}"
        why = "; ".join(f"{name}: {text}" for name, text in self.skipped.items())
        return f"{source}: no candidate can take it ({why or 'none listed'})"

    def overridden(self, provider: str, *, by: str) -> Decision:
        """This decision with *provider* (one of the candidates) moved first by *by*
        (the ``pasarela_select_provider`` hook)."""
        if provider not in self.candidates:
            raise ValueError(f"{provider!r} is not a candidate ({', '.join(self.candidates)})")
        order = (provider, *(c for c in self.candidates if c != provider))
        old = self._basis
        basis = Basis(old.reference, old.currency, old.rule_index, old.requested, old.trace,
                       old.facts, old.schedules, self.fee_minor, old.extra, overridden_by=by,
                       rendered=self.explanation,
                       notes=(f"{by} chose {provider}; failover order {', '.join(order)}",))
        return attrs.evolve(self, provider=provider, candidates=order, basis=basis)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible, for the decision log and the routing observer hook."""
        fees = self.fee_minor
        chosen = fees.get(self.provider) if self.provider is not None else None
        currency = self.currency
        return {
            "order_reference": self.order_reference,
            "method": self.method.value,
            "provider": self.provider,
            "candidates": list(self.candidates),
            "rule": self.rule,
            "rule_index": self.rule_index,
            "strategy": self.strategy,
            "currency": currency,
            "fees": {name: {"minor": minor, "currency": currency} for name, minor in fees.items()},
            "expected_fee": None if chosen is None else {"minor": chosen, "currency": currency},
            "skipped": dict(self.skipped),
            "explanation": list(self.explanation),
            "decided_at": self.decided_at.isoformat(),
            "requested_provider": self.requested_provider,
            "overridden_by": self.overridden_by,
            "inputs": self.inputs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The decision :meth:`to_dict` gave (from the decision log)."""
        fees = {name: int(m["minor"]) for name, m in (data.get("fees") or {}).items()}
        basis = Basis(data["order_reference"], data["currency"], data.get("rule_index"),
                       data.get("requested_provider"), (), None, NOTHING, fees,
                       dict(data.get("inputs") or {}), overridden_by=data.get("overridden_by"),
                       rendered=tuple(data.get("explanation", ())))
        return cls(method=Method(data["method"]), provider=data.get("provider"),
                   candidates=tuple(data.get("candidates", ())), rule=data.get("rule"),
                   strategy=data.get("strategy", ""), skipped=dict(data.get("skipped") or {}),
                   decided_at=datetime.fromisoformat(data["decided_at"]), basis=basis)

    def __repr__(self) -> str:
        return (f"Decision({self.order_reference!r}, {self.method.value}, "
                f"provider={self.provider!r}, candidates={list(self.candidates)}, "
                f"rule={self.rule!r}, strategy={self.strategy!r})")
