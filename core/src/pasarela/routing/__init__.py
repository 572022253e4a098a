"""Routing: which provider takes an order, chosen by configuration, with the reasons.

The ``[[routes]]`` of ``pasarela.toml`` compile once into a :class:`Router`::

    [[routes]]
    name = "cash for mid-size orders"
    when = { country = "PE", method = "cash", amount = { max = "PEN 1500" } }
    use = ["pagoefectivo"]

    [[routes]]
    name = "cards"
    when = { method = "card" }
    use = [{ provider = "stripe", weight = 70 }, { provider = "culqi", weight = 30 }]
    strategy = "weighted"

    [[routes]]
    name = "default"
    use = ["pagoefectivo", "yape", "stripe"]

**Conditions** (``when``), all of which must hold: ``country``, ``currency`` and
``method`` (a value or a list); ``amount = {min = "PEN 10", max = "PEN 1500"}``
(inclusive, in the order's currency: an order in another currency does not match);
``customer = {document = "RUC" | [...], phone = true | false, email_domain =
"empresa.pe" | [...]}`` (a domain matches its subdomains too); ``metadata = {key =
"value" | ["a", "b"] | true | false}`` (``true``: the key is present, ``false``:
absent); ``time = {from = "08:00", to = "20:00", days = ["mon", ...]}`` in Lima time
(``to`` is exclusive; ``from`` after ``to`` wraps past midnight; ``days`` is the
local day of the moment checked).

**The first matching rule wins.** A rule with no conditions is the default and must
be last; a configuration with routes but no default is an error. Without any
``[[routes]]`` an implicit default takes every configured provider in
``checkout.preference`` order. A rule that can never match because an earlier rule
takes all its orders is an error, as is any unknown key, with its path.

**Strategies** order the rule's providers: ``ordered`` (as listed), ``weighted``
(a split by weight, deterministic by order reference, so a retry lands on the same
provider; ``use = [{provider, weight}]`` or a ``weights`` table), ``cheapest`` (by
the expected fee from each provider's fee schedule), ``healthiest`` (by the recent
success rate per provider and method from a :class:`HealthSource`; providers with
fewer than ``min_sample`` attempts rank last, and an ``exploration`` share of
orders, chosen by reference, tries a less proven one first).

**Eligibility** comes after the rule: :meth:`Provider.ineligibility` (enabled,
method, country, currency, amount limits) and a :class:`CircuitBreaker` (after
``threshold`` consecutive failures of a provider and method it is skipped for a
cool-off; after it, a success closes the circuit and a failure opens it again at
once). A matched rule whose providers are all
ineligible leaves the order unroutable: rules below it are not consulted.

A :class:`Decision` carries the chosen provider, the ordered candidates for
failover, the rule, the strategy, the expected fee per candidate and an
``explanation`` naming each rule tried and each candidate skipped, with why.
``to_dict()`` is what is stored with the attempt (no personal data: the customer is
reduced to document type, phone present and email domain) and
:meth:`Router.replay` decides again from it.
"""

from __future__ import annotations

from pasarela.routing.breaker import CircuitBreaker
from pasarela.routing.decision import Decision
from pasarela.routing.health import HEALTH_FAILURE as HEALTH_FAILURE
from pasarela.routing.health import HEALTH_SUCCESS as HEALTH_SUCCESS
from pasarela.routing.health import HealthSource, HealthStat, MappingHealth, StoreHealth
from pasarela.routing.router import Router
from pasarela.routing.rules import DEFAULT_EXPLORATION as DEFAULT_EXPLORATION
from pasarela.routing.rules import DEFAULT_MIN_SAMPLE as DEFAULT_MIN_SAMPLE
from pasarela.routing.rules import WHEN_KEYS as WHEN_KEYS
from pasarela.routing.rules import Rule
from pasarela.routing.strategies import STRATEGIES
from pasarela.timezones import LIMA


__all__ = [
    "LIMA",
    "STRATEGIES",
    "CircuitBreaker",
    "Decision",
    "HealthSource",
    "HealthStat",
    "MappingHealth",
    "Router",
    "Rule",
    "StoreHealth",
]
