"""Reading ``[[routes]]``: each entry (a ``RouteConfig`` or a raw table) into a :class:`Rule`,
every problem named with its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pasarela.provider import Provider
from pasarela.routing.rules import (
    DEFAULT_EXPLORATION,
    Rule,
    compile_checks,
    compile_when,
)
from pasarela.routing.strategies import STRATEGIES


_ROUTE_KEYS: Final = ("name", "use", "when", "strategy", "weights", "min_sample", "exploration")


def _route_fields(route: Any, path: str, errors: list[str]) -> dict[str, Any] | None:
    """The fields of a route, from a ``RouteConfig`` or a raw mapping."""
    if isinstance(route, Mapping):
        for key in route:
            if key not in _ROUTE_KEYS:
                errors.append(f"{path}.{key}: unknown setting; known: {', '.join(_ROUTE_KEYS)}")
        if "name" not in route or "use" not in route:
            errors.append(f"{path}: needs name and use")
            return None
        return {key: route.get(key) for key in _ROUTE_KEYS}
    return {key: getattr(route, key, None) for key in _ROUTE_KEYS}


def compile_route(index: int, route: Any, providers: Mapping[str, Provider],
                   errors: list[str], *, min_sample: int, exploration: Decimal) -> Rule | None:
    path = f"routes[{index}]"
    fields = _route_fields(route, path, errors)
    if fields is None:
        return None
    name = fields["name"]
    if not isinstance(name, str) or not name.strip():
        errors.append(f"{path}.name: must not be empty")
        name = f"#{index}"
    strategy = fields["strategy"] or "ordered"
    if strategy not in STRATEGIES:
        errors.append(f"{path}.strategy: expected one of {', '.join(STRATEGIES)}")
    raw_use = fields["use"]
    if isinstance(raw_use, str | Mapping):
        raw_use = [raw_use]
    if not isinstance(raw_use, list | tuple) or not raw_use:
        errors.append(f"{path}.use: name at least one provider")
        raw_use = []
    names: list[str] = []
    weights: dict[str, Any] = {}
    for i, item in enumerate(raw_use):
        where = f"{path}.use[{i}]"
        if isinstance(item, Mapping):
            extra = sorted(set(item) - {"provider", "weight"})
            if extra:
                errors.append(f"{where}.{extra[0]}: unknown setting; known: provider, weight")
            item_name = item.get("provider")
            if "weight" in item:
                weights[str(item_name)] = (item["weight"], f"{where}.weight")
        else:
            item_name = item
        if not isinstance(item_name, str) or not item_name:
            errors.append(f"{where}: expected a provider name")
            continue
        if item_name in names:
            errors.append(f"{where}: {item_name} is listed twice")
            continue
        if item_name not in providers:
            configured = ", ".join(sorted(providers)) or "none"
            errors.append(f"{where}: provider {item_name!r} is not configured "
                          f"(configured: {configured}); add [providers.{item_name}]")
        names.append(item_name)
    table = fields["weights"]
    if table:
        if weights:
            errors.append(f"{path}.weights: give weights in use or in weights, not both")
        elif not isinstance(table, Mapping):
            errors.append(f"{path}.weights: expected a table of provider = weight")
        else:
            for key, raw in table.items():
                if key not in names:
                    errors.append(f"{path}.weights.{key}: {key} is not in use")
                weights[key] = (raw, f"{path}.weights.{key}")
    weight_values: list[int] = []
    if strategy == "weighted":
        for item_name in names:
            raw, where = weights.get(item_name, (None, f"{path}.weights.{item_name}"))
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                errors.append(f"{where}: expected a whole number 0 or more")
                raw = 0
            weight_values.append(raw)
        if names and sum(weight_values) <= 0:
            errors.append(f"{path}.weights: the weights must add up to more than 0")
    elif weights:
        errors.append(f"{path}.weights: weights apply only to strategy 'weighted'")
    rule_min, rule_exploration = min_sample, exploration
    if fields["min_sample"] is not None or fields["exploration"] is not None:
        if strategy != "healthiest":
            errors.append(f"{path}: min_sample and exploration apply only to strategy "
                          "'healthiest'")
        if fields["min_sample"] is not None:
            rule_min = fields["min_sample"]
            if isinstance(rule_min, bool) or not isinstance(rule_min, int) or rule_min < 1:
                errors.append(f"{path}.min_sample: expected a whole number 1 or more")
                rule_min = min_sample
        if fields["exploration"] is not None:
            rule_exploration = parse_share(fields["exploration"], f"{path}.exploration", errors)
    if strategy == "cheapest":
        for i, item_name in enumerate(names):
            provider = providers.get(item_name)
            if provider is not None and not provider.settings.fees:
                errors.append(f"{path}.use[{i}]: strategy 'cheapest' needs a fee schedule "
                              f"(providers.{item_name}.fees)")
    conditions, said = compile_when(fields["when"] or {}, f"{path}.when", errors)
    if name == "default" and not conditions.empty:
        errors.append(f"{path}.when: the rule named 'default' must have no conditions")
    return Rule(index=index, name=name, strategy=strategy, providers=tuple(names),
                weights=tuple(weight_values), min_sample=rule_min,
                exploration=rule_exploration, conditions=conditions,
                checks=compile_checks(conditions),
                description="; ".join(said) if said else "default rule: no conditions")


def parse_share(value: Any, path: str, errors: list[str]) -> Decimal:
    try:
        if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
            raise InvalidOperation
        out = Decimal(str(value))
    except InvalidOperation:
        errors.append(f'{path}: expected a percentage as a string, e.g. "5"')
        return DEFAULT_EXPLORATION
    if not out.is_finite() or not 0 <= out <= 100:
        errors.append(f"{path}: must be a percentage from 0 to 100")
        return DEFAULT_EXPLORATION
    return out


def shadowed(rules: Sequence[Rule]) -> list[str]:
    """Errors for rules that can never match because an earlier rule takes their orders."""
    errors = []
    for j, later in enumerate(rules):
        for earlier in rules[:j]:
            if earlier.conditions.covers(later.conditions):
                what = ("the default rule" if earlier.is_default
                        else "an earlier rule matching every order it matches")
                errors.append(f"routes[{later.index}]: never matches: {earlier.label} comes "
                              f"first and is {what}")
                break
    return errors
