"""Rules: the ``when`` conditions of a ``[[routes]]`` entry, compiled into fast checks."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from itertools import accumulate
from typing import Any, Final

import attrs

from pasarela.errors import PasarelaError
from pasarela.model import Method
from pasarela.money import Money
from pasarela.routing.facts import Check, Facts, Moment, exponent_of, listed, money_text


WHEN_KEYS: Final = ("country", "currency", "method", "network", "amount", "customer", "metadata",
                    "time")
_CUSTOMER_KEYS: Final = ("document", "phone", "email_domain")
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_MIN_SAMPLE: Final = 20
DEFAULT_EXPLORATION: Final = Decimal("5")


@attrs.frozen(kw_only=True)
class _Conditions:
    countries: frozenset[str] | None = None
    currencies: frozenset[str] | None = None
    methods: frozenset[Method] | None = None
    #: The networks the caller asked for (``pay(..., network=)``) that match.
    networks: frozenset[str] | None = None
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
                             (self.networks, other.networks),
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
    checks: tuple[Check, ...] = attrs.field(default=(), repr=False)
    description: str = ""
    #: How the explanation names the rule: ``routes[2] 'cards'``.
    label: str = attrs.field(init=False)
    _miss: str = attrs.field(init=False, repr=False)
    _matched: str = attrs.field(init=False, repr=False)
    _ordered: str = attrs.field(init=False, repr=False)
    _by_weight: tuple[str, ...] = attrs.field(init=False, repr=False)
    #: The weighted order when each provider is picked first (by its place in the rule).
    _by_pick: tuple[tuple[str, ...], ...] = attrs.field(init=False, repr=False)
    _cumulative: tuple[int, ...] = attrs.field(init=False, repr=False)
    _shares: str = attrs.field(init=False, repr=False)
    _salt: bytes = attrs.field(init=False, repr=False)
    #: blake2b keyed with the salt, one per person :meth:`bucket` is asked with.
    _hashers: dict[bytes, hashlib.blake2b] = attrs.field(init=False, repr=False)
    #: The amount band, when it is all the rule checks beyond country, currency and
    #: method (the router bisects runs of such rules).
    band: Band | None = attrs.field(init=False, repr=False)

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
        by_weight = tuple(name for _, _, name in ranked)
        object.__setattr__(self, "_by_weight", by_weight)
        object.__setattr__(self, "_by_pick", tuple(
            (picked, *(n for n in by_weight if n != picked))
            for picked in self.providers[:len(self.weights)]))
        object.__setattr__(self, "_cumulative", tuple(accumulate(self.weights)))
        shares = ", ".join(f"{n}={w}" for n, w in zip(self.providers, self.weights, strict=False))
        object.__setattr__(self, "_shares", f"strategy weighted ({shares})")
        salt = hashlib.blake2b(self.name.encode(), digest_size=16).digest()
        object.__setattr__(self, "_salt", salt)
        object.__setattr__(self, "_hashers", {
            person: hashlib.blake2b(digest_size=8, key=salt, person=person)
            for person in (b"weighted", b"explore", b"explore-pick")})
        cond = self.conditions
        only_amount = (len(self.checks) == 1 and attrs.evolve(
            cond, countries=None, currencies=None, methods=None, amount=None).empty)
        object.__setattr__(self, "band", amount_band(cond) if only_amount else None)

    @property
    def is_default(self) -> bool:
        return self.conditions.empty

    def static_miss(self, country: str, currency: str, method: Method) -> str | None:
        """Why no order with these three facts can match, or None if one may."""
        cond = self.conditions
        if cond.methods is not None and method not in cond.methods:
            return f"method {method.value} is not {listed(sorted(m.value for m in cond.methods))}"
        if cond.countries is not None and country not in cond.countries:
            return f"country {country} is not {listed(sorted(cond.countries))}"
        if cond.currencies is not None and currency not in cond.currencies:
            return f"currency {currency} is not {listed(sorted(cond.currencies))}"
        if cond.amount is not None and cond.amount[0] != currency:
            return f"its amount bounds are in {cond.amount[0]}; the order is in {currency}"
        return None

    def bucket(self, reference: str, salt: bytes, modulo: int) -> int:
        """A number in ``range(modulo)`` fixed by the rule, *reference* and *salt*: the
        first 8 bytes of blake2b keyed by the rule's name with *salt* as its person, big
        endian, modulo *modulo* (a copy of the keyed hash started once per rule)."""
        prepared = self._hashers.get(salt)
        if prepared is None:
            digest = hashlib.blake2b(reference.encode(), digest_size=8, key=self._salt,
                                     person=salt).digest()
        else:
            hasher = prepared.copy()
            hasher.update(reference.encode())
            digest = hasher.digest()
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


def compile_when(when: Any, path: str, errors: list[str]) -> tuple[_Conditions, list[str]]:
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
                        exponent_of(code)
                    except PasarelaError:
                        errors.append(f"{where}: unknown currency {code!r}")
            found["countries" if key == "country" else "currencies"] = values
            said.append(f"{key} {listed(sorted(values))}")
        elif key == "method":
            names = _str_set(value, where, errors)
            methods = set()
            for name in sorted(names):
                try:
                    methods.add(Method(name))
                except ValueError:
                    errors.append(f"{where}: unknown method {name!r}; one of "
                                  f"{', '.join(m.value for m in Method)}")
            found["methods"] = frozenset(methods)
            said.append(f"method {listed(sorted(names))}")
        elif key == "network":
            names = _str_set(value, where, errors)
            found["networks"] = frozenset(name.lower() for name in names)
            said.append(f"network {listed(sorted(found['networks']))}")
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
            said.append(f"customer document {listed(sorted(kinds))}")
        elif key == "phone":
            if not isinstance(raw, bool):
                errors.append(f"{where}: expected true (has a phone) or false (has none)")
                continue
            found["phone"] = raw
            said.append("customer has a phone" if raw else "customer has no phone")
        elif key == "email_domain":
            domains = frozenset(d.lower().lstrip("@") for d in _str_set(raw, where, errors))
            found["domains"] = domains
            said.append(f"customer email domain {listed(sorted(domains))}")
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
            said.append(f"metadata {key} {listed(sorted(values))}")
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


#: An amount condition: its bounds in minor units (inclusive) and why an amount
#: below or above them does not match.
Band = tuple[int | None, int | None, str, str]


def amount_band(cond: _Conditions) -> Band | None:
    """*cond*'s amount bounds and their misses, or None without any."""
    if cond.amount is None:
        return None
    currency, low, high = cond.amount
    below = f"amount is below the minimum {money_text(low, currency)}" if low else ""
    above = f"amount is above the maximum {money_text(high, currency)}" if high else ""
    return low, high, below, above


def band_miss(band: Band, minor: int) -> str | None:
    """Why *minor* is outside *band* (as the rule's amount check says), or None."""
    low, high, below, above = band
    if low is not None and minor < low:
        return below
    if high is not None and minor > high:
        return above
    return None


def compile_checks(cond: _Conditions) -> tuple[Check, ...]:
    """The conditions not settled by country, currency and method, as fast checks."""
    out: list[Check] = []
    if cond.networks is not None:
        networks = cond.networks
        network_miss = f"network is not {listed(sorted(networks))}"

        def network(facts: Facts, moment: Moment) -> str | None:
            if facts.network is None:
                return "the caller asked for no network"
            return None if facts.network in networks else network_miss

        out.append(network)
    band = amount_band(cond)
    if band is not None:
        low, high, below, above = band

        def amount(facts: Facts, moment: Moment) -> str | None:
            if low is not None and facts.minor < low:
                return below
            if high is not None and facts.minor > high:
                return above
            return None

        out.append(amount)
    if cond.documents is not None:
        kinds = cond.documents
        doc_miss = f"customer document is not {listed(sorted(kinds))}"

        def document(facts: Facts, moment: Moment) -> str | None:
            if facts.document in kinds:
                return None
            return doc_miss if facts.document else "the customer gave no document"

        out.append(document)
    if cond.phone is not None:
        want = cond.phone
        phone_miss = "the customer has no phone" if want else "the customer has a phone"

        def phone(facts: Facts, moment: Moment) -> str | None:
            return None if facts.phone is want else phone_miss

        out.append(phone)
    if cond.domains is not None:
        domains = cond.domains
        suffixes = tuple("." + d for d in domains)
        domain_miss = f"customer email domain is not {listed(sorted(domains))}"

        def email(facts: Facts, moment: Moment) -> str | None:
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

        def when(facts: Facts, moment: Moment) -> str | None:
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


def _metadata_check(key: str, kind: str, values: frozenset[str]) -> Check:
    if kind == "present":
        miss = f"metadata has no {key}"

        def present(facts: Facts, moment: Moment) -> str | None:
            return None if key in facts.metadata else miss

        return present
    if kind == "absent":
        miss = f"metadata has {key}"

        def absent(facts: Facts, moment: Moment) -> str | None:
            return miss if key in facts.metadata else None

        return absent
    miss = f"metadata {key} is not {listed(sorted(values))}"

    def value(facts: Facts, moment: Moment) -> str | None:
        return None if facts.metadata.get(key) in values else miss

    return value
