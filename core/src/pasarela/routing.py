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

import hashlib
import threading
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from itertools import accumulate
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol
from zoneinfo import ZoneInfo

import attrs

from pasarela.config import InvalidConfigError
from pasarela.errors import PasarelaError
from pasarela.fees import FeeSchedule
from pasarela.model import Method, Order
from pasarela.money import Money, currency_exponent
from pasarela.provider import Provider


if TYPE_CHECKING:
    from pasarela.store import Store

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


#: Time windows in rules are in Lima time (UTC-5, no daylight saving since 1994).
LIMA: Final = ZoneInfo("America/Lima")
STRATEGIES: Final = ("ordered", "weighted", "cheapest", "healthiest")
WHEN_KEYS: Final = ("country", "currency", "method", "amount", "customer", "metadata", "time")
_ROUTE_KEYS: Final = ("name", "use", "when", "strategy", "weights", "min_sample", "exploration")
_CUSTOMER_KEYS: Final = ("document", "phone", "email_domain")
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_MIN_SAMPLE: Final = 20
DEFAULT_EXPLORATION: Final = Decimal("5")
_PLAN_CACHE_MAX: Final = 4096


@cache
def _exponent(currency: str) -> int:
    return currency_exponent(currency)


def _money_text(minor: int, currency: str) -> str:
    exponent = _exponent(currency)
    if exponent == 0:
        return f"{currency} {minor}"
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{currency} {sign}{whole}.{part:0{exponent}d}"


def _listed(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else "one of " + ", ".join(values)


# --- what routing looks at ----------------------------------------------------------


class _Facts:
    """The parts of an order rules look at (no personal data)."""

    __slots__ = ("country", "currency", "document", "email_domain", "metadata", "minor",
                 "phone", "reference")

    def __init__(self, reference: str, minor: int, currency: str, country: str,
                 metadata: Mapping[str, str], document: str | None, phone: bool,
                 email_domain: str | None) -> None:
        self.reference = reference
        self.minor = minor
        self.currency = currency
        self.country = country
        self.metadata = metadata
        self.document = document
        self.phone = phone
        self.email_domain = email_domain

    @classmethod
    def of(cls, order: Order) -> _Facts:
        customer = order.customer
        if customer is None:
            document, phone, domain = None, False, None
        else:
            document = customer.document.kind if customer.document is not None else None
            phone = customer.phone is not None
            domain = customer.email.rpartition("@")[2].lower() if customer.email else None
        amount = order.amount
        return cls(order.reference, amount.minor, amount.currency, order.country,
                   order.metadata, document, phone, domain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "amount": {"minor": self.minor, "currency": self.currency},
            "country": self.country,
            "metadata": dict(self.metadata),
            "customer": {"document": self.document, "phone": self.phone,
                         "email_domain": self.email_domain},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> _Facts:
        amount = data["amount"]
        customer = data.get("customer") or {}
        return cls(str(data["reference"]), int(amount["minor"]), str(amount["currency"]),
                   str(data.get("country", "PE")), dict(data.get("metadata") or {}),
                   customer.get("document"), bool(customer.get("phone")),
                   customer.get("email_domain"))

    def order(self) -> Order:
        """An order with these facts, for provider eligibility on replay."""
        return Order(reference=self.reference, amount=Money(self.minor, self.currency),
                     country=self.country, metadata=self.metadata)


class _Moment:
    """The decision's time, converted to Lima time only if a rule asks."""

    __slots__ = ("_local", "now")

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._local: datetime | None = None

    def local(self) -> datetime:
        if self._local is None:
            self._local = self.now.astimezone(LIMA)
        return self._local


_Check = Callable[[_Facts, _Moment], "str | None"]


# --- rules ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _Conditions:
    countries: frozenset[str] | None = None
    currencies: frozenset[str] | None = None
    methods: frozenset[Method] | None = None
    amount: tuple[str, int | None, int | None] | None = None
    documents: frozenset[str] | None = None
    phone: bool | None = None
    domains: frozenset[str] | None = None
    metadata: tuple[tuple[str, str, frozenset[str]], ...] = ()
    days: frozenset[int] | None = None
    minutes: tuple[int, int] | None = None

    @property
    def empty(self) -> bool:
        return self == _Conditions()

    def covers(self, other: _Conditions) -> bool:
        """Whether every order *other* matches is matched by these conditions too."""
        for mine, theirs in ((self.countries, other.countries),
                             (self.currencies, other.currencies),
                             (self.methods, other.methods),
                             (self.documents, other.documents),
                             (self.domains, other.domains),
                             (self.days, other.days)):
            if mine is not None and (theirs is None or not theirs <= mine):
                return False
        if self.phone is not None and self.phone != other.phone:
            return False
        if self.amount is not None:
            if other.amount is None or other.amount[0] != self.amount[0]:
                return False
            low, high = self.amount[1:]
            other_low, other_high = other.amount[1:]
            if low is not None and (other_low is None or other_low < low):
                return False
            if high is not None and (other_high is None or other_high > high):
                return False
        theirs_meta = {key: (kind, values) for key, kind, values in other.metadata}
        for key, kind, values in self.metadata:
            if key not in theirs_meta:
                return False
            other_kind, other_values = theirs_meta[key]
            if kind == "present" and other_kind == "absent":
                return False
            if kind == "absent" and other_kind != "absent":
                return False
            if kind == "values" and (other_kind != "values" or not other_values <= values):
                return False
        if self.minutes is not None:
            return other.minutes is not None and _minute_set(other.minutes) <= _minute_set(
                self.minutes)
        return True


def _minute_set(window: tuple[int, int]) -> frozenset[int]:
    start, end = window
    if start < end:
        return frozenset(range(start, end))
    return frozenset(range(start, 1440)) | frozenset(range(end))


@attrs.frozen(kw_only=True, eq=False)
class Rule:
    """One compiled ``[[routes]]`` entry."""

    index: int
    name: str
    strategy: str
    providers: tuple[str, ...]
    weights: tuple[int, ...] = ()
    min_sample: int = DEFAULT_MIN_SAMPLE
    exploration: Decimal = DEFAULT_EXPLORATION
    implicit: bool = False
    conditions: _Conditions = attrs.field(factory=_Conditions, repr=False)
    checks: tuple[_Check, ...] = attrs.field(default=(), repr=False)
    description: str = ""
    #: How the explanation names the rule: ``routes[2] 'cards'``.
    label: str = attrs.field(init=False)
    _miss: str = attrs.field(init=False, repr=False)
    _matched: str = attrs.field(init=False, repr=False)
    _ordered: str = attrs.field(init=False, repr=False)
    _by_weight: tuple[str, ...] = attrs.field(init=False, repr=False)
    _cumulative: tuple[int, ...] = attrs.field(init=False, repr=False)
    _shares: str = attrs.field(init=False, repr=False)
    _salt: bytes = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        label = ("implicit default rule" if self.implicit
                 else f"routes[{self.index}] {self.name!r}")
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "_miss", f"{label}: no match: ")
        object.__setattr__(self, "_matched", f"{label}: matched ({self.description})")
        object.__setattr__(self, "_ordered",
                           f"strategy ordered: try in listed order {', '.join(self.providers)}")
        ranked = sorted(zip(self.weights, range(len(self.weights)), self.providers,
                            strict=False), key=lambda item: (-item[0], item[1]))
        object.__setattr__(self, "_by_weight", tuple(name for _, _, name in ranked))
        object.__setattr__(self, "_cumulative", tuple(accumulate(self.weights)))
        shares = ", ".join(f"{n}={w}" for n, w in zip(self.providers, self.weights, strict=False))
        object.__setattr__(self, "_shares", f"strategy weighted ({shares})")
        object.__setattr__(self, "_salt",
                           hashlib.blake2b(self.name.encode(), digest_size=16).digest())

    @property
    def is_default(self) -> bool:
        return self.conditions.empty

    def static_miss(self, country: str, currency: str, method: Method) -> str | None:
        """Why no order with these three facts can match, or None if one may."""
        cond = self.conditions
        if cond.methods is not None and method not in cond.methods:
            return f"method {method.value} is not {_listed(sorted(m.value for m in cond.methods))}"
        if cond.countries is not None and country not in cond.countries:
            return f"country {country} is not {_listed(sorted(cond.countries))}"
        if cond.currencies is not None and currency not in cond.currencies:
            return f"currency {currency} is not {_listed(sorted(cond.currencies))}"
        if cond.amount is not None and cond.amount[0] != currency:
            return f"its amount bounds are in {cond.amount[0]}; the order is in {currency}"
        return None

    def bucket(self, reference: str, salt: bytes, modulo: int) -> int:
        """A number in ``range(modulo)`` fixed by the rule, *reference* and *salt*."""
        digest = hashlib.blake2b(reference.encode(), digest_size=8, key=self._salt,
                                 person=salt).digest()
        return int.from_bytes(digest, "big") % modulo


def _str_set(value: Any, path: str, errors: list[str], *, upper: bool = False) -> frozenset[str]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items or not all(isinstance(item, str) and item.strip() for item in items):
        errors.append(f"{path}: expected a string or a list of strings")
        return frozenset()
    return frozenset(item.strip().upper() if upper else item.strip() for item in items)


def _parse_minutes(value: Any, path: str, errors: list[str]) -> int | None:
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hours, minutes = value[:2], value[3:]
        if hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60:
            return int(hours) * 60 + int(minutes)
        if value == "24:00":
            return 1440
    errors.append(f"{path}: expected a time like '08:00'")
    return None


def _compile_when(when: Any, path: str, errors: list[str]) -> tuple[_Conditions, list[str]]:
    """The conditions of a ``when`` table, and a description of each for people."""
    if not isinstance(when, Mapping):
        errors.append(f"{path}: expected a table")
        return _Conditions(), []
    found: dict[str, Any] = {}
    said: list[str] = []
    for key, value in when.items():
        where = f"{path}.{key}"
        if key not in WHEN_KEYS:
            errors.append(f"{where}: unknown condition; known: {', '.join(WHEN_KEYS)}")
        elif key in ("country", "currency"):
            values = _str_set(value, where, errors, upper=True)
            if key == "currency":
                for code in sorted(values):
                    try:
                        _exponent(code)
                    except PasarelaError:
                        errors.append(f"{where}: unknown currency {code!r}")
            found["countries" if key == "country" else "currencies"] = values
            said.append(f"{key} {_listed(sorted(values))}")
        elif key == "method":
            names = _str_set(value, where, errors)
            methods = set()
            for name in sorted(names):
                try:
                    methods.add(Method(name))
                except ValueError:
                    errors.append(f"{where}: unknown method {name!r}; one of cash, wallet, card")
            found["methods"] = frozenset(methods)
            said.append(f"method {_listed(sorted(names))}")
        elif key == "amount":
            found["amount"] = _compile_amount(value, where, errors, said)
        elif key == "customer":
            _compile_customer(value, where, errors, found, said)
        elif key == "metadata":
            found["metadata"] = _compile_metadata(value, where, errors, said)
        else:
            _compile_time(value, where, errors, found, said)
    return _Conditions(**found), said


def _compile_amount(value: Any, path: str, errors: list[str],
                    said: list[str]) -> tuple[str, int | None, int | None] | None:
    if not isinstance(value, Mapping) or not value:
        errors.append(f"{path}: expected a table like {{min = \"PEN 10\", max = \"PEN 1500\"}}")
        return None
    bounds: dict[str, Money] = {}
    for key, raw in value.items():
        if key not in ("min", "max"):
            errors.append(f"{path}.{key}: unknown setting; known: min, max")
            continue
        try:
            if not isinstance(raw, str):
                raise TypeError
            bounds[key] = Money.parse(raw)
        except (PasarelaError, TypeError):
            errors.append(f"{path}.{key}: expected an amount like 'PEN 1500'")
    if not bounds:
        return None
    currencies = {money.currency for money in bounds.values()}
    if len(currencies) > 1:
        errors.append(f"{path}.max: must be in the same currency as min")
        return None
    low, high = bounds.get("min"), bounds.get("max")
    if low is not None and high is not None and low.minor > high.minor:
        errors.append(f"{path}.max: must not be less than min")
    parts = ([f"at least {low}"] if low else []) + ([f"at most {high}"] if high else [])
    said.append("amount " + " and ".join(parts))
    return (currencies.pop(), low.minor if low else None, high.minor if high else None)


def _compile_customer(value: Any, path: str, errors: list[str], found: dict[str, Any],
                      said: list[str]) -> None:
    if not isinstance(value, Mapping):
        errors.append(f"{path}: expected a table")
        return
    for key, raw in value.items():
        where = f"{path}.{key}"
        if key == "document":
            kinds = _str_set(raw, where, errors, upper=True)
            for kind in sorted(kinds - {"DNI", "CE", "RUC", "PAS"}):
                errors.append(f"{where}: unknown document type {kind!r}; one of DNI, CE, RUC, PAS")
            found["documents"] = kinds
            said.append(f"customer document {_listed(sorted(kinds))}")
        elif key == "phone":
            if not isinstance(raw, bool):
                errors.append(f"{where}: expected true (has a phone) or false (has none)")
                continue
            found["phone"] = raw
            said.append("customer has a phone" if raw else "customer has no phone")
        elif key == "email_domain":
            domains = frozenset(d.lower().lstrip("@") for d in _str_set(raw, where, errors))
            found["domains"] = domains
            said.append(f"customer email domain {_listed(sorted(domains))}")
        else:
            errors.append(f"{where}: unknown condition; known: {', '.join(_CUSTOMER_KEYS)}")


def _compile_metadata(value: Any, path: str, errors: list[str],
                      said: list[str]) -> tuple[tuple[str, str, frozenset[str]], ...]:
    if not isinstance(value, Mapping) or not value:
        errors.append(f"{path}: expected a table of keys")
        return ()
    out: list[tuple[str, str, frozenset[str]]] = []
    for key, raw in value.items():
        where = f"{path}.{key}"
        if isinstance(raw, bool):
            out.append((key, "present" if raw else "absent", frozenset()))
            said.append(f"metadata {key} {'present' if raw else 'absent'}")
        elif isinstance(raw, int):
            out.append((key, "values", frozenset({str(raw)})))
            said.append(f"metadata {key} = {raw}")
        else:
            values = _str_set(raw, where, errors)
            out.append((key, "values", values))
            said.append(f"metadata {key} {_listed(sorted(values))}")
    return tuple(out)


def _compile_time(value: Any, path: str, errors: list[str], found: dict[str, Any],
                  said: list[str]) -> None:
    if not isinstance(value, Mapping) or not value:
        errors.append(f"{path}: expected a table like {{from = \"08:00\", to = \"20:00\"}}")
        return
    for key in value:
        if key not in ("from", "to", "days"):
            errors.append(f"{path}.{key}: unknown setting; known: from, to, days")
    if ("from" in value) != ("to" in value):
        errors.append(f"{path}: give both from and to, or neither")
    elif "from" in value:
        start = _parse_minutes(value["from"], f"{path}.from", errors)
        end = _parse_minutes(value["to"], f"{path}.to", errors)
        if start is not None and end is not None:
            if start in (end, 1440):
                errors.append(f"{path}.to: must differ from from (omit both for all day)")
            else:
                found["minutes"] = (start, end % 1440)
                said.append(f"Lima time from {value['from']} to {value['to']}")
    if "days" in value:
        names = _str_set(value["days"], f"{path}.days", errors)
        bad = sorted(n for n in names if n.lower()[:3] not in _DAYS or len(n) < 3)
        if bad:
            errors.append(f"{path}.days: unknown day(s) {', '.join(bad)}; use {', '.join(_DAYS)}")
        found["days"] = frozenset(_DAYS.index(n.lower()[:3]) for n in names if n not in bad)
        said.append(f"on {', '.join(d for d in _DAYS if _DAYS.index(d) in found['days'])}")


def _checks(cond: _Conditions) -> tuple[_Check, ...]:
    """The conditions not settled by country, currency and method, as fast checks."""
    out: list[_Check] = []
    if cond.amount is not None:
        _, low, high = cond.amount
        currency = cond.amount[0]
        below = f"amount is below the minimum {_money_text(low, currency)}" if low else ""
        above = f"amount is above the maximum {_money_text(high, currency)}" if high else ""

        def amount(facts: _Facts, moment: _Moment) -> str | None:
            if low is not None and facts.minor < low:
                return below
            if high is not None and facts.minor > high:
                return above
            return None

        out.append(amount)
    if cond.documents is not None:
        kinds = cond.documents
        doc_miss = f"customer document is not {_listed(sorted(kinds))}"

        def document(facts: _Facts, moment: _Moment) -> str | None:
            if facts.document in kinds:
                return None
            return doc_miss if facts.document else "the customer gave no document"

        out.append(document)
    if cond.phone is not None:
        want = cond.phone
        phone_miss = "the customer has no phone" if want else "the customer has a phone"

        def phone(facts: _Facts, moment: _Moment) -> str | None:
            return None if facts.phone is want else phone_miss

        out.append(phone)
    if cond.domains is not None:
        domains = cond.domains
        suffixes = tuple("." + d for d in domains)
        domain_miss = f"customer email domain is not {_listed(sorted(domains))}"

        def email(facts: _Facts, moment: _Moment) -> str | None:
            got = facts.email_domain
            if got is None:
                return "the customer gave no email"
            if got in domains or got.endswith(suffixes):
                return None
            return domain_miss

        out.append(email)
    for key, kind, values in cond.metadata:
        out.append(_metadata_check(key, kind, values))
    if cond.days is not None or cond.minutes is not None:
        days, window = cond.days, cond.minutes

        def when(facts: _Facts, moment: _Moment) -> str | None:
            local = moment.local()
            if days is not None and local.weekday() not in days:
                listed = ", ".join(_DAYS[d] for d in sorted(days))
                return f"Lima time {_DAYS[local.weekday()]} {local:%H:%M} is not on {listed}"
            if window is not None:
                minute = local.hour * 60 + local.minute
                start, end = window
                inside = start <= minute < end if start < end else (minute >= start or minute < end)
                if not inside:
                    return (f"Lima time {local:%H:%M} is outside {start // 60:02d}:{start % 60:02d}"
                            f"-{end // 60:02d}:{end % 60:02d}")
            return None

        out.append(when)
    return tuple(out)


def _metadata_check(key: str, kind: str, values: frozenset[str]) -> _Check:
    if kind == "present":
        miss = f"metadata has no {key}"

        def present(facts: _Facts, moment: _Moment) -> str | None:
            return None if key in facts.metadata else miss

        return present
    if kind == "absent":
        miss = f"metadata has {key}"

        def absent(facts: _Facts, moment: _Moment) -> str | None:
            return miss if key in facts.metadata else None

        return absent
    miss = f"metadata {key} is not {_listed(sorted(values))}"

    def value(facts: _Facts, moment: _Moment) -> str | None:
        return None if facts.metadata.get(key) in values else miss

    return value


# --- reading [[routes]] ---------------------------------------------------------------


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


def _compile_route(index: int, route: Any, providers: Mapping[str, Provider],
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
            rule_exploration = _share(fields["exploration"], f"{path}.exploration", errors)
    if strategy == "cheapest":
        for i, item_name in enumerate(names):
            provider = providers.get(item_name)
            if provider is not None and not provider.settings.fees:
                errors.append(f"{path}.use[{i}]: strategy 'cheapest' needs a fee schedule "
                              f"(providers.{item_name}.fees)")
    conditions, said = _compile_when(fields["when"] or {}, f"{path}.when", errors)
    if name == "default" and not conditions.empty:
        errors.append(f"{path}.when: the rule named 'default' must have no conditions")
    return Rule(index=index, name=name, strategy=strategy, providers=tuple(names),
                weights=tuple(weight_values), min_sample=rule_min,
                exploration=rule_exploration, conditions=conditions,
                checks=_checks(conditions),
                description="; ".join(said) if said else "default rule: no conditions")


def _share(value: Any, path: str, errors: list[str]) -> Decimal:
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


# --- health and the circuit breaker ---------------------------------------------------


@attrs.frozen
class HealthStat:
    """Recent outcomes of one provider and method."""

    successes: int
    attempts: int

    @property
    def rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0


class HealthSource(Protocol):
    """Recent success numbers per provider and method (for ``healthiest``)."""

    def stats(self, provider: str, method: Method) -> HealthStat | None:
        """The recent outcomes of *provider* for *method*, or None when there are none."""


class MappingHealth:
    """Health numbers given as a mapping ``{(provider, method): HealthStat}``."""

    def __init__(self, data: Mapping[tuple[str, str], HealthStat]) -> None:
        self.data = {(name, str(method)): stat for (name, method), stat in data.items()}

    def stats(self, provider: str, method: Method) -> HealthStat | None:
        return self.data.get((provider, str(method)))


#: Payment statuses that count as a success, and as a failure, for health.
HEALTH_SUCCESS: Final = frozenset({"pending", "processing", "succeeded", "partially_refunded",
                                   "refunded", "expired", "canceled"})
HEALTH_FAILURE: Final = frozenset({"failed", "unknown"})


class StoreHealth:
    """Success rates from the payments of the last *window*, cached for *ttl*.

    One grouped query serves every provider and method. Payments are chosen by
    id, a ULID that starts with its creation time, so the primary key index serves
    the window. A payment counts as a success once the provider accepted it
    (pending and later, an expiry or cancel included), as a failure when it failed
    or its outcome is unknown; payments still ``created`` are in flight and not
    counted.
    """

    def __init__(self, store: Store, *, window: timedelta = timedelta(hours=1),
                 ttl: timedelta = timedelta(seconds=30),
                 clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.window = window
        self.ttl = ttl
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.queries = 0
        self._data: dict[tuple[str, str], HealthStat] = {}
        self._fetched_at: datetime | None = None
        self._lock = threading.Lock()

    def stats(self, provider: str, method: Method) -> HealthStat | None:
        now = self.clock()
        fetched = self._fetched_at
        if fetched is None or now - fetched >= self.ttl or now < fetched:
            with self._lock:
                if self._fetched_at is fetched:
                    self._data = self._query(now)
                    self._fetched_at = now
        return self._data.get((provider, str(method)))

    def _query(self, now: datetime) -> dict[tuple[str, str], HealthStat]:
        import sqlalchemy as sa  # noqa: PLC0415
        from ulid import ULID  # noqa: PLC0415

        from pasarela.store.schema import payments  # noqa: PLC0415

        since_ms = max(0, int((now - self.window).timestamp() * 1000))
        lowest = str(ULID.from_bytes(since_ms.to_bytes(6, "big") + bytes(10)))
        query = (sa.select(payments.c.provider, payments.c.method, payments.c.status,
                           sa.func.count())
                 .where(payments.c.id >= lowest)
                 .group_by(payments.c.provider, payments.c.method, payments.c.status))
        counts: dict[tuple[str, str], list[int]] = {}
        with self.store.engine.connect() as conn:
            for provider, method, status, count in conn.execute(query):
                if status in HEALTH_SUCCESS or status in HEALTH_FAILURE:
                    tally = counts.setdefault((provider, method), [0, 0])
                    tally[1] += count
                    if status in HEALTH_SUCCESS:
                        tally[0] += count
        self.queries += 1
        return {key: HealthStat(ok, total) for key, (ok, total) in counts.items()}


class CircuitBreaker:
    """Skip a provider and method after *threshold* consecutive failures, for *cool_off*.

    After the cool-off the provider is tried again: a success closes the circuit, a
    failure opens it again at once. State is in memory, per process, fed by
    :meth:`Router.record_outcome`.
    """

    def __init__(self, *, threshold: int = 5, cool_off: timedelta = timedelta(seconds=60)) -> None:
        if threshold < 1:
            raise ValueError("threshold must be 1 or more")
        self.threshold = threshold
        self.cool_off = cool_off
        self._failures: dict[tuple[str, str], int] = {}
        self._open_until: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def record(self, provider: str, method: Method | str, ok: bool, *, now: datetime) -> None:
        key = (provider, str(method))
        with self._lock:
            if ok:
                self._failures.pop(key, None)
                self._open_until.pop(key, None)
                return
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            if failures >= self.threshold:
                self._open_until[key] = now + self.cool_off

    def blocked(self, provider: str, method: Method | str, now: datetime) -> str | None:
        """Why *provider* is skipped for *method* at *now*, or None if it is not."""
        if not self._open_until:
            return None
        until = self._open_until.get((provider, str(method)))
        if until is None or now >= until:
            return None
        failures = self._failures.get((provider, str(method)), 0)
        return (f"circuit open after {failures} consecutive {method} failures, "
                f"until {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")


# --- decisions ------------------------------------------------------------------------


_NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})


class _Basis:
    """What a decision was made from, and what it keeps to work out the rest on demand."""

    __slots__ = ("currency", "extra", "facts", "fee_minor", "notes", "overridden_by",
                 "reference", "rendered", "requested", "rule_index", "schedules", "trace")

    def __init__(self, reference: str, currency: str, rule_index: int | None,
                 requested: str | None, trace: tuple[str, ...], facts: _Facts | None,
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
    _basis: _Basis = attrs.field(repr=False, alias="basis")

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
            lines.append(f"order {facts.reference}: {_money_text(facts.minor, facts.currency)}"
                         f", country {facts.country}, method {self.method.value}")
        lines.extend(basis.trace)
        if self.strategy == "cheapest":
            costs = ", ".join(f"{name} {_money_text(self._fee_of(name), self.currency)}"
                              for name in self.candidates)
            lines.append(f"strategy cheapest: expected fees {costs or 'none eligible'}")
        if self.provider is None:
            lines.append("no candidate can take this order")
        else:
            rest = (f"; failover order {', '.join(self.candidates)}"
                    if len(self.candidates) > 1 else "")
            fee = _money_text(self._fee_of(self.provider), self.currency)
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
        basis = _Basis(old.reference, old.currency, old.rule_index, old.requested, old.trace,
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
        basis = _Basis(data["order_reference"], data["currency"], data.get("rule_index"),
                       data.get("requested_provider"), (), None, _NOTHING, fees,
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


# --- the router -----------------------------------------------------------------------

_Health = Callable[[str, Method], "HealthStat | None"]
_Blocked = Callable[[str, Method, datetime], "str | None"]
_Plan = tuple[tuple[tuple[str, ...], "Rule | None"], ...]


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
        share = _share(exploration, "exploration", errors)
        rules: list[Rule] = []
        for index, route in enumerate(routes):
            rule = _compile_route(index, route, providers, errors, min_sample=min_sample,
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
        errors += _shadowed(rules)
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
               requested_provider: str | None = None) -> Decision:
        """Route *order* paid by *method*: the provider, the failover order and why."""
        how = method if type(method) is Method else Method(method)
        breaker = self.breaker
        blocked = breaker.blocked if breaker._open_until else None
        health = self.health
        return self._decide(_Facts.of(order), order, how, self.clock(), requested_provider,
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
        facts = _Facts.from_dict(inputs["order"])
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
                 at: datetime | None = None) -> Decision:
        """Decide as :meth:`decide` does, at *at*, ignoring the circuit breaker."""
        how = method if isinstance(method, Method) else Method(method)
        return self._decide(_Facts.of(order), order, how, at or self.clock(), None,
                            self._health_lookup(), None)

    def _health_lookup(self) -> _Health | None:
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
        plan = tuple(steps)
        if len(self._plans) >= _PLAN_CACHE_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    def _decide(self, facts: _Facts, order: Order, method: Method, now: datetime,
                requested: str | None, health: _Health | None,
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
            moment = _Moment(now)
            for misses, step in plan:
                if misses:
                    trace.extend(misses)
                if step is None:
                    break
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
            why = "not configured" if provider is None else provider.ineligibility(order, method)
            if why is None and blocked is not None:
                why = blocked(name, method, now)
                if why is not None:
                    circuits[name] = why
            if why is None:
                eligible.append(name)
            else:
                skipped[name] = why
                trace.append(f"candidate {name}: skipped: {why}")
        schedules = self._schedules.get(method, _NOTHING)
        fee_minor: dict[str, int] | None = None
        snapshot: dict[str, list[int]] = {}
        if rule is None or strategy == "ordered":
            ordered = eligible
            if rule is not None and len(names) > 1:
                trace.append(rule._ordered)
        elif strategy == "weighted":
            ordered = self._weighted(rule, facts, eligible, trace)
        elif strategy == "cheapest":
            fee_minor = {n: schedules[n].fee_minor(facts.minor, facts.currency)
                         if n in schedules else 0 for n in eligible}
            ordered = sorted(eligible, key=fee_minor.__getitem__)  # stable: ties keep order
        else:
            ordered = self._healthiest(rule, facts, method, eligible, health, trace, snapshot)
        extra: Mapping[str, Any] = _NOTHING
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
            basis=_Basis(facts.reference, facts.currency,
                         None if rule is None or rule.implicit else rule.index, requested,
                         tuple(trace), facts, schedules, fee_minor, extra),
        )

    @staticmethod
    def _weighted(rule: Rule, facts: _Facts, eligible: list[str], lines: list[str]) -> list[str]:
        total = rule._cumulative[-1]
        bucket = rule.bucket(facts.reference, b"weighted", total)
        picked = rule.providers[bisect_right(rule._cumulative, bucket)]
        lines.append(f"{rule._shares}: reference {facts.reference!r} falls in "
                     f"bucket {bucket} of {total}, so {picked} first")
        order = [picked, *(n for n in rule._by_weight if n != picked)]
        if len(eligible) == len(order):
            return order
        return [n for n in order if n in eligible]

    @staticmethod
    def _healthiest(rule: Rule, facts: _Facts, method: Method, eligible: list[str],
                    health: _Health | None, lines: list[str],
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


def _shadowed(rules: Sequence[Rule]) -> list[str]:
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
