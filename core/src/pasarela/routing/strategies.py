"""Strategies: how a matched rule orders its eligible providers.

``ordered`` keeps the listed order; ``weighted`` splits by weight, deterministic by
order reference; ``cheapest`` sorts by expected fee; ``healthiest`` ranks by recent
success rate, with an exploration share.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from pasarela.fees import FeeSchedule
from pasarela.model import Method
from pasarela.routing.facts import Facts
from pasarela.routing.rules import Rule


if TYPE_CHECKING:
    from pasarela.routing.health import HealthStat


STRATEGIES: Final = ("ordered", "weighted", "cheapest", "healthiest")

HealthLookup = Callable[[str, Method], "HealthStat | None"]


def order_cheapest(facts: Facts, eligible: list[str],
              schedules: Mapping[str, FeeSchedule]) -> tuple[list[str], dict[str, int]]:
    fee_minor = {n: schedules[n].fee_minor(facts.minor, facts.currency)
                 if n in schedules else 0 for n in eligible}
    return sorted(eligible, key=fee_minor.__getitem__), fee_minor  # stable: ties keep order


def order_weighted(rule: Rule, facts: Facts, eligible: list[str], lines: list[str]) -> list[str]:
    total = rule._cumulative[-1]
    bucket = rule.bucket(facts.reference, b"weighted", total)
    picked = rule.providers[bisect_right(rule._cumulative, bucket)]
    lines.append(f"{rule._shares}: reference {facts.reference!r} falls in "
                 f"bucket {bucket} of {total}, so {picked} first")
    order = [picked, *(n for n in rule._by_weight if n != picked)]
    if len(eligible) == len(order):
        return order
    return [n for n in order if n in eligible]

def order_healthiest(rule: Rule, facts: Facts, method: Method, eligible: list[str],
                health: HealthLookup | None, lines: list[str],
                snapshot: dict[str, list[int]]) -> list[str]:
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
    return ranked
