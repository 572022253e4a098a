"""Strategies: how a matched rule orders its eligible providers.

``ordered`` keeps the listed order; ``weighted`` splits by weight, deterministic by
order reference; ``cheapest`` sorts by expected fee; ``healthiest`` ranks by recent
success rate, with an exploration share.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from pasarela.fees import FeeSchedule
from pasarela.model import Method
from pasarela.routing.facts import Facts
from pasarela.routing.rules import Rule


if TYPE_CHECKING:
    from pasarela.routing.health import HealthStat


STRATEGIES: Final = ("ordered", "weighted", "cheapest", "healthiest")

HealthLookup = Callable[[str, Method], "HealthStat | None"]


def order_cheapest(facts: Facts, eligible: Sequence[str],
                   schedules: Mapping[str, FeeSchedule]) -> tuple[tuple[str, ...], dict[str, int]]:
    fee_minor = {n: schedules[n].fee_minor(facts.minor, facts.currency)
                 if n in schedules else 0 for n in eligible}
    return tuple(sorted(eligible, key=fee_minor.__getitem__)), fee_minor  # stable: ties keep order


def order_weighted(rule: Rule, facts: Facts,
                   eligible: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
    """The eligible in the order the order's reference falls in, and its bucket (the
    explanation's line is :func:`weighted_line`, written when read)."""
    bucket = rule.bucket(facts.reference, b"weighted", rule._cumulative[-1])
    order = rule._by_pick[bisect_right(rule._cumulative, bucket)]
    if len(eligible) == len(order):
        return order, bucket
    return tuple(n for n in order if n in eligible), bucket


def weighted_line(rule: Rule, reference: str, bucket: int) -> str:
    """The weighted strategy's line of the explanation for *reference* in *bucket*."""
    picked = rule.providers[bisect_right(rule._cumulative, bucket)]
    return (f"{rule._shares}: reference {reference!r} falls in "
            f"bucket {bucket} of {rule._cumulative[-1]}, so {picked} first")


def order_healthiest(rule: Rule, facts: Facts, method: Method, eligible: Sequence[str],
                     health: HealthLookup | None, lines: list[str],
                     snapshot: dict[str, list[int]]) -> tuple[str, ...]:
    measured: list[tuple[float, int, str]] = []
    unmeasured: list[str] = []
    said: list[str] = []
    for i, name in enumerate(eligible):
        stat = health(name, method) if health is not None else None
        if stat is not None:
            snapshot[name] = [stat.successes, stat.attempts]
        if stat is not None and stat.attempts >= rule.min_sample:
            measured.append((-stat.rate, i, name))
            said.append(f"{name} {stat.rate:.1%} of {stat.attempts}")
        else:
            unmeasured.append(name)
            count = stat.attempts if stat is not None else 0
            said.append(f"{name} {count} attempt(s), fewer than {rule.min_sample}")
    ranked = [name for _, _, name in sorted(measured)] + unmeasured
    lines.append(f"strategy healthiest (minimum {rule.min_sample} attempts, exploration "
                 f"{rule.exploration}%): {'; '.join(said) or 'none eligible'}")
    threshold = int(rule.exploration * 100)
    if len(ranked) > 1 and threshold:
        bucket = rule.bucket(facts.reference, b"explore", 10_000)
        if bucket < threshold:
            pool = [n for n in ranked[1:] if n in unmeasured] or ranked[1:]
            pick = pool[rule.bucket(facts.reference, b"explore-pick", len(pool))]
            ranked.remove(pick)
            ranked.insert(0, pick)
            lines.append(f"exploring: reference {facts.reference!r} is in the "
                         f"{rule.exploration}% exploration share, so {pick} first")
    return tuple(ranked)
