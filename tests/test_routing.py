"""Routing: rules, strategies, eligibility, the circuit breaker, health, decisions."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from ulid import ULID

from pasarela.config import InvalidConfigError, RouteConfig, load_config
from pasarela.errors import ErrorCode
from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import Ineligibility, Provider, ProviderSettings
from pasarela.routing import (
    Decision,
    HealthStat,
    MappingHealth,
    Router,
    StoreHealth,
)
from pasarela.store import Store
from pasarela.store.schema import payments
from pasarela.testing.fake import FakeProvider, FakeSettings


# A Wednesday, 10:00 in Lima (UTC-5).
WEDNESDAY_10_LIMA = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = WEDNESDAY_10_LIMA) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Alpha(Provider):
    name = "alpha"
    display_name = "Alpha"
    methods = frozenset({Method.CARD, Method.WALLET})
    countries = frozenset({"PE"})
    currencies = frozenset({"PEN", "USD"})


class Beta(Provider):
    name = "beta"
    display_name = "Beta"
    methods = frozenset({Method.CASH, Method.CARD})
    currencies = frozenset({"PEN"})
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {"PEN": (100, 150_000)}


def providers(fees: Mapping[str, Mapping[str, Any]] | None = None,
              disabled: tuple[str, ...] = ()) -> dict[str, Provider]:
    fees = fees or {}
    return {
        "fake": FakeProvider(FakeSettings(fees=fees.get("fake", {}),
                                          enabled="fake" not in disabled)),
        "alpha": Alpha(ProviderSettings(fees=fees.get("alpha", {}),
                                        enabled="alpha" not in disabled)),
        "beta": Beta(ProviderSettings(fees=fees.get("beta", {}),
                                      enabled="beta" not in disabled)),
    }


def router(routes: list[Any], *, clock: Clock | None = None, **kwargs: Any) -> Router:
    fees = kwargs.pop("fees", None)
    disabled = kwargs.pop("disabled", ())
    return Router.from_config(routes, providers(fees, disabled), clock=clock or Clock(), **kwargs)


DEFAULT = {"name": "default", "use": ["fake"]}

ROSA = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                phone="+51 987 654 321", document=("DNI", "45678912"))
EMPRESA = Customer(first_name="Ana", last_name="Flores", email="compras@ventas.empresa.pe",
                   document=("RUC", "20100066603"))


def order(reference: str = "pedido-1", amount: str = "PEN 149.90", *, country: str = "PE",
          customer: Customer | None = None, metadata: Mapping[str, str] | None = None) -> Order:
    return Order(reference=reference, amount=Money.parse(amount), country=country,
                 customer=customer, metadata=metadata or {})


def matched(when: Mapping[str, Any], the_order: Order, method: str = "card",
            clock: Clock | None = None) -> Decision:
    """Decide with one rule (to alpha) before the default (to fake)."""
    decision = router([{"name": "rule", "when": when, "use": ["fake"]}, DEFAULT],
                      clock=clock).decide(the_order, method)
    assert decision.rule in ("rule", "default")
    return decision


# --- matching each key ------------------------------------------------------------------


class TestMatching:
    @pytest.mark.parametrize(("when", "kwargs", "hit", "why"), [
        ({"country": "PE"}, {}, True, ""),
        ({"country": "pe"}, {}, True, ""),
        ({"country": ["CO", "PE"]}, {}, True, ""),
        ({"country": "CO"}, {}, False, "country PE is not CO"),
        ({"country": ["CO", "CL"]}, {}, False, "country PE is not one of CL, CO"),
        ({"currency": "PEN"}, {}, True, ""),
        ({"currency": "USD"}, {}, False, "currency PEN is not USD"),
        ({"currency": ["USD", "PEN"]}, {"amount": "USD 10.00"}, True, ""),
    ])
    def test_country_and_currency(self, when, kwargs, hit, why):
        decision = matched(when, order(**kwargs))
        assert (decision.rule == "rule") is hit
        if not hit:
            assert f"routes[0] 'rule': no match: {why}" in decision.explanation

    @pytest.mark.parametrize(("when", "method", "hit"), [
        ({"method": "card"}, "card", True),
        ({"method": "cash"}, "card", False),
        ({"method": ["cash", "wallet"]}, "wallet", True),
        ({"method": ["cash", "wallet"]}, "card", False),
    ])
    def test_method(self, when, method, hit):
        assert (matched(when, order(), method).rule == "rule") is hit

    @pytest.mark.parametrize(("amount", "hit", "why"), [
        ("PEN 10.00", True, ""),  # bounds are inclusive
        ("PEN 1500.00", True, ""),
        ("PEN 9.99", False, "amount is below the minimum PEN 10.00"),
        ("PEN 1500.01", False, "amount is above the maximum PEN 1500.00"),
        ("USD 100.00", False, "its amount bounds are in PEN; the order is in USD"),
    ])
    def test_amount_range_in_the_orders_currency(self, amount, hit, why):
        when = {"amount": {"min": "PEN 10", "max": "PEN 1500"}}
        decision = matched(when, order(amount=amount))
        assert (decision.rule == "rule") is hit
        if not hit:
            assert f"routes[0] 'rule': no match: {why}" in decision.explanation

    @pytest.mark.parametrize(("customer", "when", "hit", "why"), [
        (EMPRESA, {"document": "RUC"}, True, ""),
        (EMPRESA, {"document": ["dni", "ruc"]}, True, ""),
        (ROSA, {"document": "RUC"}, False, "customer document is not RUC"),
        (None, {"document": "RUC"}, False, "the customer gave no document"),
        (ROSA, {"phone": True}, True, ""),
        (EMPRESA, {"phone": True}, False, "the customer has no phone"),
        (EMPRESA, {"phone": False}, True, ""),
        (ROSA, {"phone": False}, False, "the customer has a phone"),
        (ROSA, {"email_domain": "example.pe"}, True, ""),
        (EMPRESA, {"email_domain": "empresa.pe"}, True, ""),  # a subdomain matches
        (EMPRESA, {"email_domain": "presa.pe"}, False, "customer email domain is not presa.pe"),
        (None, {"email_domain": "empresa.pe"}, False, "the customer gave no email"),
        (EMPRESA, {"document": "RUC", "email_domain": "example.pe"}, False,
         "customer email domain is not example.pe"),
    ])
    def test_customer(self, customer, when, hit, why):
        decision = matched({"customer": when}, order(customer=customer))
        assert (decision.rule == "rule") is hit
        if not hit:
            assert f"routes[0] 'rule': no match: {why}" in decision.explanation

    @pytest.mark.parametrize(("metadata", "when", "hit"), [
        ({"channel": "app"}, {"channel": "app"}, True),
        ({"channel": "web"}, {"channel": "app"}, False),
        ({"channel": "web"}, {"channel": ["app", "web"]}, True),
        ({"channel": "web"}, {"channel": True}, True),
        ({}, {"channel": True}, False),
        ({}, {"channel": False}, True),
        ({"channel": "web"}, {"channel": False}, False),
        ({"tier": "2"}, {"tier": 2}, True),
    ])
    def test_metadata(self, metadata, when, hit):
        assert (matched({"metadata": when}, order(metadata=metadata)).rule == "rule") is hit

    @pytest.mark.parametrize(("utc", "window", "hit", "why"), [
        # Lima is UTC-5 all year.
        ("2026-03-04T13:00", {"from": "08:00", "to": "20:00"}, True, ""),
        ("2026-03-04T12:59", {"from": "08:00", "to": "20:00"}, False,
         "Lima time 07:59 is outside 08:00-20:00"),
        ("2026-03-05T01:00", {"from": "08:00", "to": "20:00"}, False,  # 20:00: `to` exclusive
         "Lima time 20:00 is outside 08:00-20:00"),
        ("2026-03-05T04:00", {"from": "22:00", "to": "06:00"}, True, ""),  # 23:00, wraps
        ("2026-03-05T10:00", {"from": "22:00", "to": "06:00"}, True, ""),  # 05:00
        ("2026-03-04T16:00", {"from": "22:00", "to": "06:00"}, False,
         "Lima time 11:00 is outside 22:00-06:00"),
        ("2026-03-04T15:00", {"days": ["mon", "tue", "wed"]}, True, ""),
        ("2026-03-07T15:00", {"days": ["mon", "tue", "wed"]}, False,
         "Lima time sat 10:00 is not on mon, tue, wed"),
        ("2026-03-05T02:00", {"days": ["wed"]}, True, ""),  # Thu 02:00 UTC is Wed 21:00 Lima
    ])
    def test_time_windows_in_lima_time(self, utc, window, hit, why):
        clock = Clock(datetime.fromisoformat(utc).replace(tzinfo=UTC))
        decision = matched({"time": window}, order(), clock=clock)
        assert (decision.rule == "rule") is hit
        if not hit:
            assert f"routes[0] 'rule': no match: {why}" in decision.explanation

    def test_every_condition_must_hold(self):
        when = {"country": "PE", "method": "card", "amount": {"max": "PEN 500"},
                "customer": {"phone": True}, "metadata": {"channel": "app"}}
        assert matched(when, order(customer=ROSA, metadata={"channel": "app"})).rule == "rule"
        assert matched(when, order(customer=ROSA)).rule == "default"


class TestRules:
    def test_first_matching_rule_wins(self):
        routes = [
            {"name": "cash only", "when": {"method": "cash"}, "use": ["beta"]},
            {"name": "peru", "when": {"country": "PE"}, "use": ["alpha"]},
            {"name": "cards", "when": {"method": "card"}, "use": ["beta"]},
            DEFAULT,
        ]
        decision = router(routes).decide(order(), "card")
        assert (decision.rule, decision.rule_index, decision.provider) == ("peru", 1, "alpha")
        assert decision.explanation[1:3] == (
            "routes[0] 'cash only': no match: method card is not cash",
            "routes[1] 'peru': matched (country PE)",
        )
        assert not any("'cards'" in line for line in decision.explanation)

    def test_default_catches_the_rest(self):
        routes = [{"name": "cash", "when": {"method": "cash"}, "use": ["beta"]},
                  {"name": "everything else", "when": {}, "use": ["alpha", "fake"]}]
        decision = router(routes).decide(order(), "wallet")
        assert decision.rule == "everything else"
        assert "routes[1] 'everything else': matched (default rule: no conditions)" in (
            decision.explanation)

    def test_without_routes_an_implicit_default_follows_preference(self):
        r = router([], preference=("beta", "alpha"))
        decision = r.decide(order(), "card")
        assert decision.rule == "default"
        assert decision.rule_index is None
        assert decision.candidates == ("beta", "alpha", "fake")
        assert any("implicit default rule: matched" in line for line in decision.explanation)

    def test_routes_from_the_configuration_file(self, tmp_path):
        path = tmp_path / "pasarela.toml"
        path.write_text("""
[providers.fake]
fees = { percent = "3.5", fixed = "PEN 0.50", igv = true }

[[routes]]
name = "cash for mid-size orders"
when = { country = "PE", method = "cash", amount = { max = "PEN 1500" } }
use = ["beta", "fake"]

[[routes]]
name = "cards"
when = { method = "card" }
use = ["fake", "alpha"]
strategy = "cheapest"

[[routes]]
name = "default"
use = ["fake"]
""", encoding="utf-8")
        config = load_config(path)
        assert isinstance(config.routes[0], RouteConfig)
        fees = {"alpha": {"percent": "4", "igv": True}, "fake": config.providers["fake"]["fees"]}
        r = Router.from_config(config.routes, providers(fees), clock=Clock())
        assert r.decide(order(), "cash").candidates == ("beta", "fake")
        assert r.decide(order(amount="PEN 2000"), "cash").rule == "default"
        cards = r.decide(order(amount="PEN 100.00"), "card")
        assert cards.fees == {"fake": Money.of("4.72", "PEN"), "alpha": Money.of("4.72", "PEN")}
        assert cards.candidates == ("fake", "alpha")  # a tie keeps the listed order


# --- configuration errors ---------------------------------------------------------------


def errors_of(routes: list[Any], **kwargs: Any) -> list[str]:
    with pytest.raises(InvalidConfigError) as info:
        router(routes, **kwargs)
    return info.value.errors


class TestConfigErrors:
    def test_a_default_rule_is_required(self):
        errors = errors_of([{"name": "cards", "when": {"method": "card"}, "use": ["fake"]}])
        assert len(errors) == 1
        assert errors[0].startswith("routes: no default rule")

    @pytest.mark.parametrize(("when", "path"), [
        ({"colour": "red"}, "routes[0].when.colour: unknown condition"),
        ({"customer": {"age": 30}}, "routes[0].when.customer.age: unknown condition"),
        ({"amount": {"max": "PEN 10", "avg": "PEN 5"}}, "routes[0].when.amount.avg: unknown"),
        ({"time": {"from": "08:00", "to": "20:00", "tz": "UTC"}}, "routes[0].when.time.tz"),
    ])
    def test_unknown_keys_name_their_path(self, when, path):
        errors = errors_of([{"name": "r", "when": when, "use": ["fake"]}, DEFAULT])
        assert any(e.startswith(path) for e in errors), errors

    @pytest.mark.parametrize(("when", "expected"), [
        ({"method": "cheque"}, "routes[0].when.method: unknown method 'cheque'"),
        ({"currency": "XYZ"}, "routes[0].when.currency: unknown currency 'XYZ'"),
        ({"country": 51}, "routes[0].when.country: expected a string or a list of strings"),
        ({"amount": {"max": "1500"}}, "routes[0].when.amount.max: expected an amount"),
        ({"amount": {"min": "PEN 10", "max": "USD 100"}},
         "routes[0].when.amount.max: must be in the same currency as min"),
        ({"amount": {"min": "PEN 100", "max": "PEN 10"}},
         "routes[0].when.amount.max: must not be less than min"),
        ({"customer": {"document": "LICENCIA"}}, "routes[0].when.customer.document: unknown"),
        ({"customer": {"phone": "yes"}}, "routes[0].when.customer.phone: expected true"),
        ({"time": {"from": "8am", "to": "20:00"}}, "routes[0].when.time.from: expected a time"),
        ({"time": {"from": "08:00"}}, "routes[0].when.time: give both from and to"),
        ({"time": {"from": "08:00", "to": "08:00"}}, "routes[0].when.time.to: must differ"),
        ({"time": {"days": ["lunes"]}}, "routes[0].when.time.days: unknown day(s) lunes"),
    ])
    def test_bad_values_name_their_path(self, when, expected):
        errors = errors_of([{"name": "r", "when": when, "use": ["fake"]}, DEFAULT])
        assert any(e.startswith(expected) for e in errors), errors

    @pytest.mark.parametrize(("rule", "expected"), [
        ({"strategy": "random"}, "routes[0].strategy: expected one of ordered, weighted, "
                                 "cheapest, healthiest"),
        ({"use": ["fake", "stripe"]}, "routes[0].use[1]: provider 'stripe' is not configured"),
        ({"use": ["fake", "fake"]}, "routes[0].use[1]: fake is listed twice"),
        ({"use": []}, "routes[0].use: name at least one provider"),
        ({"strategy": "weighted", "weights": {"fake": 0, "alpha": 0}, "use": ["fake", "alpha"]},
         "routes[0].weights: the weights must add up to more than 0"),
        ({"strategy": "weighted", "use": [{"provider": "fake", "weight": -1}]},
         "routes[0].use[0].weight: expected a whole number 0 or more"),
        ({"strategy": "weighted", "use": ["fake", "alpha"], "weights": {"fake": 1}},
         "routes[0].weights.alpha: expected a whole number"),
        ({"strategy": "weighted", "use": ["fake"], "weights": {"fake": 1, "beta": 1}},
         "routes[0].weights.beta: beta is not in use"),
        ({"weights": {"fake": 1}}, "routes[0].weights: weights apply only to strategy "
                                   "'weighted'"),
        ({"min_sample": 5}, "routes[0]: min_sample and exploration apply only to strategy "
                            "'healthiest'"),
        ({"strategy": "healthiest", "exploration": 0.1},
         "routes[0].exploration: expected a percentage as a string"),
        ({"strategy": "cheapest", "use": ["fake", "alpha"]},
         "routes[0].use[0]: strategy 'cheapest' needs a fee schedule (providers.fake.fees)"),
        ({"priority": 1}, "routes[0].priority: unknown setting"),
    ])
    def test_bad_rules_name_their_path(self, rule, expected):
        errors = errors_of([{"name": "r", "when": {"method": "card"}, "use": ["fake"], **rule},
                            DEFAULT])
        assert any(e.startswith(expected) for e in errors), errors

    def test_shadowed_rules_are_refused(self):
        routes = [
            {"name": "peru", "when": {"country": "PE"}, "use": ["fake"]},
            {"name": "peru cards", "when": {"country": "PE", "method": "card"}, "use": ["alpha"]},
            {"name": "small", "when": {"amount": {"max": "PEN 100"}}, "use": ["fake"]},
            {"name": "tiny", "when": {"amount": {"min": "PEN 1", "max": "PEN 50"},
                                      "metadata": {"x": "1"}}, "use": ["fake"]},
            {"name": "tiny usd", "when": {"amount": {"max": "USD 50"}}, "use": ["fake"]},
            DEFAULT,
        ]
        errors = errors_of(routes)
        assert errors == [
            "routes[1]: never matches: routes[0] 'peru' comes first and is an earlier rule "
            "matching every order it matches",
            "routes[3]: never matches: routes[2] 'small' comes first and is an earlier rule "
            "matching every order it matches",
        ]

    def test_the_default_must_be_last(self):
        errors = errors_of([DEFAULT, {"name": "cards", "when": {"method": "card"},
                                      "use": ["alpha"]}])
        assert errors == ["routes[1]: never matches: routes[0] 'default' comes first and is "
                          "the default rule"]

    def test_a_rule_named_default_has_no_conditions(self):
        errors = errors_of([{"name": "default", "when": {"method": "card"}, "use": ["fake"]},
                            {"name": "rest", "use": ["fake"]}])
        assert errors == ["routes[0].when: the rule named 'default' must have no conditions"]

    def test_fee_schedule_in_the_wrong_currency(self):
        errors = errors_of([DEFAULT], fees={"beta": {"fixed": "USD 0.30"}})
        assert errors == ["providers.beta.fees.fixed: USD 0.30 is in a currency the provider "
                          "does not accept (accepts: PEN)"]

    def test_every_problem_is_reported_at_once(self):
        errors = errors_of([{"name": "a", "when": {"colour": "x"}, "use": ["nope"]},
                            {"name": "b", "when": {"method": "x"}, "use": ["fake"]}])
        assert len(errors) == 4, errors  # colour, nope, method x, no default


# --- strategies --------------------------------------------------------------------------


def weighted_router(**kwargs: Any) -> Router:
    return router([{"name": "split", "when": {"method": "card"}, "strategy": "weighted",
                    "use": [{"provider": "alpha", "weight": 70},
                            {"provider": "beta", "weight": 30}]}, DEFAULT], **kwargs)


class TestWeighted:
    def test_same_reference_same_provider(self):
        first = weighted_router().decide(order("pedido-42"), "card")
        again = weighted_router().decide(order("pedido-42", "PEN 10.00"), "card")
        assert first.provider == again.provider
        assert first.candidates == again.candidates
        assert set(first.candidates) == {"alpha", "beta"}  # the other is the failover

    def test_split_stays_within_statistical_bounds_over_10000_orders(self):
        r = weighted_router()
        counts = Counter(r.decide(order(f"pedido-{i}"), "card").provider for i in range(10_000))
        expected, sd = 7000, math.sqrt(10_000 * 0.7 * 0.3)  # binomial: sd about 46
        assert abs(counts["alpha"] - expected) < 4 * sd, counts
        assert counts["alpha"] + counts["beta"] == 10_000

    def test_weights_table_and_zero_weight(self):
        r = router([{"name": "split", "when": {"method": "card"}, "strategy": "weighted",
                     "use": ["alpha", "beta", "fake"],
                     "weights": {"alpha": 1, "beta": 1, "fake": 0}}, DEFAULT])
        firsts = Counter(r.decide(order(f"p-{i}"), "card").provider for i in range(500))
        assert set(firsts) == {"alpha", "beta"}  # weight 0: failover only
        assert all(r.decide(order(f"p-{i}"), "card").candidates[-1] == "fake"
                   for i in range(50))

    def test_explains_the_bucket(self):
        decision = weighted_router().decide(order("pedido-7"), "card")
        line = next(x for x in decision.explanation if x.startswith("strategy weighted"))
        assert line.startswith("strategy weighted (alpha=70, beta=30): reference 'pedido-7' "
                               "falls in bucket ")
        assert line.endswith(f"so {decision.provider} first")

    @pytest.mark.parametrize("reference", ["pedido-1", "pedido-42", "p-7", "ñandú-2026"])
    def test_the_bucket_is_blake2b_of_the_reference_keyed_by_the_rule(self, reference):
        """The same reference goes to the same provider from one version to the next:
        the bucket is the first 8 bytes of blake2b keyed by the rule's name, big endian,
        modulo the weights' total."""
        import hashlib

        key = hashlib.blake2b(b"split", digest_size=16).digest()
        for person, modulo in ((b"weighted", 100), (b"explore", 10_000), (b"explore-pick", 3)):
            digest = hashlib.blake2b(reference.encode(), digest_size=8, key=key,
                                     person=person).digest()
            expected = int.from_bytes(digest, "big") % modulo
            assert weighted_router().rules[0].bucket(reference, person, modulo) == expected
        digest = hashlib.blake2b(reference.encode(), digest_size=8, key=key,
                                 person=b"weighted").digest()
        first = "alpha" if int.from_bytes(digest, "big") % 100 < 70 else "beta"
        assert weighted_router().decide(order(reference), "card").provider == first

    def test_an_ineligible_pick_falls_to_the_next(self):
        r = weighted_router()
        big = [f"p-{i}" for i in range(200)]  # beta's maximum is PEN 1500
        decisions = [r.decide(order(ref, "PEN 2000.00"), "card") for ref in big]
        assert {d.provider for d in decisions} == {"alpha"}
        assert all(d.skipped == {"beta": "amount above maximum PEN 1500.00"} for d in decisions)


class TestCheapest:
    FEES: ClassVar[dict[str, dict[str, Any]]] = {
        "alpha": {"percent": "2.0", "fixed": "PEN 2.00"},
        "beta": {"percent": "4.0"},
        "fake": {"percent": "3.0", "card": {"percent": "5.0"}},
    }

    def cheapest(self) -> Router:
        return router([{"name": "cheap", "strategy": "cheapest", "when": {"method": "card"},
                        "use": ["fake", "alpha", "beta"]}, DEFAULT], fees=self.FEES)

    def test_picks_by_expected_fee_for_that_amount(self):
        small = self.cheapest().decide(order(amount="PEN 50.00"), "card")
        # alpha 1.00 + 2.00 = 3.00, beta 2.00, fake (card) 2.50
        assert small.candidates == ("beta", "fake", "alpha")
        large = self.cheapest().decide(order(amount="PEN 1000.00"), "card")
        # alpha 22.00, beta 40.00, fake 50.00
        assert large.candidates == ("alpha", "beta", "fake")
        assert large.fee == Money.of("22.00", "PEN")
        assert ("strategy cheapest: expected fees alpha PEN 22.00, beta PEN 40.00, "
                "fake PEN 50.00") in large.explanation

    def test_uses_the_method_fee_table(self):
        decision = self.cheapest().decide(order(amount="PEN 100.00"), "card")
        assert decision.fees["fake"] == Money.of("5.00", "PEN")


class TestHealthiest:
    def healthiest(self, stats: Mapping[str, tuple[int, int]], *, exploration: str = "0",
                   min_sample: int = 20) -> Router:
        health = MappingHealth({(name, "card"): HealthStat(*pair)
                                for name, pair in stats.items()})
        return router([{"name": "health", "strategy": "healthiest", "when": {"method": "card"},
                        "use": ["fake", "alpha", "beta"], "min_sample": min_sample,
                        "exploration": exploration}, DEFAULT], health=health)

    def test_best_rate_first_and_too_few_samples_last(self):
        r = self.healthiest({"fake": (80, 100), "alpha": (95, 100), "beta": (19, 19)})
        decision = r.decide(order(), "card")
        assert decision.candidates == ("alpha", "fake", "beta")  # beta: 19 < 20 attempts
        line = next(x for x in decision.explanation if x.startswith("strategy healthiest"))
        assert "alpha 95.0% of 100" in line
        assert "beta 19 attempt(s), fewer than 20" in line

    def test_without_numbers_the_listed_order(self):
        decision = self.healthiest({}).decide(order(), "card")
        assert decision.candidates == ("fake", "alpha", "beta")

    def test_exploration_share_tries_the_unproven_deterministically(self):
        r = self.healthiest({"fake": (90, 100), "alpha": (95, 100), "beta": (1, 1)},
                            exploration="20")
        firsts = Counter(r.decide(order(f"p-{i}"), "card").provider for i in range(2000))
        assert set(firsts) == {"alpha", "beta"}  # exploration prefers the unproven
        assert abs(firsts["beta"] - 400) < 4 * math.sqrt(2000 * 0.2 * 0.8), firsts
        explored = next(f"p-{i}" for i in range(2000)
                        if r.decide(order(f"p-{i}"), "card").provider == "beta")
        again = r.decide(order(explored), "card")
        assert again.provider == "beta"
        assert any(line.startswith(f"exploring: reference '{explored}' is in the 20% "
                                   "exploration share") for line in again.explanation)

    def test_no_exploration_when_the_share_is_zero(self):
        r = self.healthiest({"fake": (90, 100), "alpha": (95, 100)})
        assert {r.decide(order(f"p-{i}"), "card").provider for i in range(300)} == {"alpha"}


# --- eligibility and the breaker ---------------------------------------------------------


class TestEligibility:
    def test_skipped_candidates_say_why(self):
        r = router([{"name": "cards", "when": {"method": "card"},
                     "use": ["beta", "alpha", "fake"]}, DEFAULT], disabled=("alpha",))
        decision = r.decide(order(amount="PEN 2000.00"), "card")
        assert decision.provider == "fake"
        assert decision.skipped == {"beta": "amount above maximum PEN 1500.00",
                                    "alpha": "disabled in configuration"}
        assert "candidate beta: skipped: amount above maximum PEN 1500.00" in (
            decision.explanation)
        assert "candidate alpha: skipped: disabled in configuration" in decision.explanation

    def test_no_fall_through_when_the_matched_rule_has_no_eligible_provider(self):
        r = router([{"name": "wallets", "when": {"method": "wallet"}, "use": ["alpha"]},
                    DEFAULT])
        decision = r.decide(order(country="US", amount="USD 10.00"), "wallet")
        assert decision.rule == "wallets"
        assert decision.provider is None
        assert decision.candidates == ()
        assert decision.reason == ("rule 'wallets' (ordered): no candidate can take it "
                                   "(alpha: does not serve US)")
        assert decision.explanation[-1] == "no candidate can take this order"

    def test_requested_provider(self):
        r = router([DEFAULT])
        decision = r.decide(order(), "card", requested_provider="alpha")
        assert (decision.provider, decision.rule, decision.strategy) == ("alpha", None,
                                                                         "requested")
        refused = r.decide(order(), "cash", requested_provider="alpha")
        assert refused.provider is None
        assert refused.skipped == {"alpha": "does not offer cash"}


    @settings(max_examples=60, deadline=None)
    @given(minor=st.sampled_from([1, 99, 100, 101, 149_999, 150_000, 150_001, 10**9]),
           currency=st.sampled_from(["PEN", "USD"]),
           country=st.sampled_from(["PE", "US"]),
           method=st.sampled_from(list(Method)))
    def test_each_skip_is_what_the_provider_itself_answers(self, minor, currency, country,
                                                           method):
        """The router finds each provider's eligibility once per country, currency
        and method; every order still gets the provider's own answer, at each bound."""
        r = router([{"name": "all", "use": ["beta", "alpha", "fake"]}], disabled=("fake",))
        for _ in range(2):  # found, then from what was found
            the_order = order(amount=f"{currency} {Money(minor, currency).amount}",
                              country=country)
            decision = r.decide(the_order, method)
            for name, provider in r.providers.items():
                unfit = provider.ineligibility(the_order, method)
                if unfit is None:
                    assert name in decision.candidates
                else:
                    assert decision.skipped[name] == unfit.message

    def test_a_provider_answering_eligibility_itself_is_asked_for_every_order(self):
        asked: list[int] = []

        class Picky(Alpha):
            name = "picky"

            def ineligibility(self, order: Order, method: Method) -> Ineligibility | None:
                asked.append(order.amount.minor)
                unfit = super().ineligibility(order, method)
                if unfit is None and order.amount.minor % 2:
                    return Ineligibility(ErrorCode.AMOUNT_OUT_OF_RANGE, "odd amounts refused")
                return unfit

        r = Router.from_config([{"name": "all", "use": ["picky", "fake"]}],
                               {"picky": Picky(ProviderSettings()),
                                "fake": FakeProvider(FakeSettings())}, clock=Clock())
        assert r.decide(order(amount="PEN 10.00"), "card").provider == "picky"
        odd = r.decide(order(amount="PEN 10.01"), "card")
        assert odd.provider == "fake"
        assert odd.skipped == {"picky": "odd amounts refused"}
        assert asked == [1000, 1001]

class TestCircuitBreaker:
    def test_opens_after_consecutive_failures_and_recovers_after_cool_off(self):
        clock = Clock()
        r = router([{"name": "all", "use": ["alpha", "fake"]}], clock=clock, breaker_threshold=3,
                   breaker_cool_off=timedelta(seconds=60))
        for _ in range(2):
            r.record_outcome("alpha", "card", ok=False)
        assert r.decide(order(), "card").provider == "alpha"
        r.record_outcome("alpha", Method.CARD, ok=False)
        tripped = r.decide(order(), "card")
        assert tripped.provider == "fake"
        assert tripped.skipped["alpha"] == ("circuit open after 3 consecutive card failures, "
                                            "until 2026-03-04 15:01:00 UTC")
        assert r.decide(order(), "wallet").provider == "alpha"  # per provider and method
        clock.now += timedelta(seconds=59)
        assert r.decide(order(), "card").provider == "fake"
        clock.now += timedelta(seconds=2)
        assert r.decide(order(), "card").provider == "alpha"  # a trial after the cool-off
        r.record_outcome("alpha", "card", ok=False)  # the trial failed: open again at once
        assert r.decide(order(), "card").provider == "fake"
        clock.now += timedelta(seconds=61)
        r.record_outcome("alpha", "card", ok=True)  # the trial worked: closed, count reset
        r.record_outcome("alpha", "card", ok=False)
        r.record_outcome("alpha", "card", ok=False)
        assert r.decide(order(), "card").provider == "alpha"

    def test_a_success_resets_the_count(self):
        r = router([DEFAULT], breaker_threshold=2)
        r.record_outcome("fake", "card", ok=False)
        r.record_outcome("fake", "card", ok=True)
        r.record_outcome("fake", "card", ok=False)
        assert r.decide(order(), "card").provider == "fake"


# --- decisions: storage, replay, override ------------------------------------------------


class TestDecision:
    def routes(self) -> list[dict[str, Any]]:
        return [{"name": "cards", "when": {"method": "card", "customer": {"phone": True}},
                 "use": ["alpha", "fake"]}, DEFAULT]

    def test_to_dict_is_json_and_holds_no_personal_data(self):
        r = router(self.routes(), fees={"alpha": {"percent": "3.5", "igv": True}})
        decision = r.decide(order(customer=ROSA, metadata={"channel": "app"}), "card")
        data = json.loads(json.dumps(decision.to_dict()))
        assert data["provider"] == "alpha"
        assert data["rule"] == "cards"
        # 3.5 % of 149.90 = 5.2465 -> 5.25; IGV 0.945 -> 0.95
        assert data["expected_fee"] == {"minor": 620, "currency": "PEN"}
        assert data["inputs"]["order"]["customer"] == {"document": "DNI", "phone": True,
                                                       "email_domain": "example.pe"}
        text = json.dumps(data)
        for secret in ("45678912", "987654321", "rosa@", "Quispe"):
            assert secret not in text

    def test_a_decision_and_the_routers_providers_are_read_only(self):
        r = router([DEFAULT])
        decision = r.decide(order(), "card")
        for field in ("method", "provider", "candidates", "rule", "strategy", "skipped",
                      "decided_at"):
            with pytest.raises(AttributeError):
                setattr(decision, field, None)
        with pytest.raises(TypeError):
            r.providers["fake"] = Alpha(ProviderSettings())  # type: ignore[index]
        assert r.decide(order(), "card").provider == "fake"

    def test_from_dict_round_trip(self):
        decision = router(self.routes()).decide(order(customer=ROSA), "card")
        again = Decision.from_dict(json.loads(json.dumps(decision.to_dict())))
        assert again.to_dict() == decision.to_dict()
        assert again.fee == decision.fee

    def test_replay_gives_the_same_decision_and_other_rules_another(self):
        decision = router(self.routes()).decide(order(customer=ROSA), "card")
        stored = json.loads(json.dumps(decision.to_dict()))
        replayed = router(self.routes()).replay(stored)
        assert replayed.to_dict() == decision.to_dict()
        other = router([{"name": "all to beta", "use": ["beta"]}]).replay(stored)
        assert (other.provider, other.rule) == ("beta", "all to beta")

    def test_replay_uses_the_recorded_open_circuits_and_health(self):
        r = router([{"name": "h", "strategy": "healthiest", "when": {"method": "card"},
                     "use": ["fake", "alpha"], "exploration": "0"}, DEFAULT],
                   health=MappingHealth({("fake", "card"): HealthStat(50, 100),
                                         ("alpha", "card"): HealthStat(99, 100)}),
                   breaker_threshold=1)
        healthy = r.decide(order(), "card")
        assert healthy.candidates == ("alpha", "fake")
        r.record_outcome("alpha", "card", ok=False)
        tripped = r.decide(order(), "card")
        assert tripped.candidates == ("fake",)
        fresh = router([{"name": "h", "strategy": "healthiest", "when": {"method": "card"},
                         "use": ["fake", "alpha"], "exploration": "0"}, DEFAULT])
        assert fresh.replay(tripped.to_dict()).to_dict() == tripped.to_dict()
        assert fresh.replay(healthy.to_dict()).candidates == ("alpha", "fake")

    def test_override_moves_a_candidate_first(self):
        decision = router([{"name": "c", "use": ["alpha", "fake"]}]).decide(order(), "card")
        chosen = decision.overridden("fake", by="pasarela_select_provider")
        assert chosen.provider == "fake"
        assert chosen.candidates == ("fake", "alpha")
        assert chosen.explanation[-1] == ("pasarela_select_provider chose fake; failover order "
                                          "fake, alpha")
        assert chosen.explanation[-2] == "chose alpha (expected fee PEN 0.00); failover order " \
                                         "alpha, fake"
        assert chosen.to_dict()["overridden_by"] == "pasarela_select_provider"
        with pytest.raises(ValueError, match="'beta' is not a candidate"):
            decision.overridden("beta", by="x")

    def test_options_one_decision_per_method(self):
        r = router([{"name": "cash", "when": {"method": "cash"}, "use": ["beta"]},
                    {"name": "rest", "use": ["alpha"]}])
        options = {d.method: d for d in r.options(order())}
        assert list(options) == list(Method)
        assert options[Method.CASH].provider == "beta"
        assert options[Method.WALLET].provider == "alpha"
        assert options[Method.CARD].reason == "rule 'rest' (ordered): alpha"


# --- the explanation always names the deciding rule (property) -------------------------

PROPERTY_ROUTES = [
    {"name": "night cash", "when": {"method": "cash", "time": {"from": "22:00", "to": "06:00"}},
     "use": ["fake"]},
    {"name": "business", "when": {"customer": {"document": "RUC"}, "country": "PE"},
     "use": ["beta", "fake"]},
    {"name": "big peru", "when": {"country": "PE", "amount": {"min": "PEN 1000"}},
     "use": ["alpha", "fake"], "strategy": "weighted", "weights": {"alpha": 3, "fake": 1}},
    {"name": "app", "when": {"metadata": {"channel": "app"}, "method": ["card", "wallet"]},
     "use": ["alpha"]},
    {"name": "dollars", "when": {"currency": "USD", "amount": {"max": "USD 500"}},
     "use": ["fake", "alpha"]},
    {"name": "weekend", "when": {"time": {"days": ["sat", "sun"]}}, "use": ["beta"]},
    {"name": "phone", "when": {"customer": {"phone": True}}, "use": ["fake"]},
    {"name": "default", "use": ["fake", "alpha", "beta"]},
]
PROPERTY_ROUTER = Router.from_config(PROPERTY_ROUTES, providers(), clock=Clock())


@settings(max_examples=300, deadline=None)
@given(
    country=st.sampled_from(["PE", "US", "CO"]),
    currency=st.sampled_from(["PEN", "USD"]),
    minor=st.integers(min_value=100, max_value=500_000),
    method=st.sampled_from(list(Method)),
    customer=st.sampled_from([None, ROSA, EMPRESA]),
    metadata=st.sampled_from([{}, {"channel": "app"}, {"channel": "web"}]),
    at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31),  # noqa: DTZ001
                    timezones=st.just(UTC)),
)
def test_the_explanation_names_the_rule_that_decided(country, currency, minor, method,
                                                     customer, metadata, at):
    the_order = Order(reference="p-1", amount=Money(minor, currency), country=country,
                      customer=customer, metadata=metadata)
    decision = PROPERTY_ROUTER.simulate(the_order, method, at=at)
    assert decision.rule is not None
    index = decision.rule_index
    assert index is not None
    label = f"routes[{index}] {decision.rule!r}"
    matches = [line for line in decision.explanation if ": matched (" in line]
    assert matches == [next(x for x in decision.explanation if x.startswith(label + ": "))]
    assert matches[0].startswith(label + ": matched (")
    tried = [line for line in decision.explanation if line.startswith("routes[")]
    assert [t.split(" ", 1)[0] for t in tried] == [f"routes[{i}]" for i in range(index + 1)]
    assert all(": no match: " in line for line in tried[:-1])


# --- health from the store ---------------------------------------------------------------


def insert_payments(store: Store, at: datetime, provider: str, method: str,
                    statuses: Mapping[str, int]) -> None:
    rows = []
    for status, count in statuses.items():
        for _ in range(count):
            pid = str(ULID.from_timestamp(at.timestamp()))
            rows.append({"id": pid, "idempotency_key": pid, "fingerprint": "x" * 64,
                         "order_reference": pid, "provider": provider, "method": method,
                         "amount_minor": 1000, "currency": "PEN", "status": status,
                         "version": 1, "created_at": at, "updated_at": at})
    with store.engine.begin() as conn:
        conn.execute(sa.insert(payments), rows)


class TestStoreHealth:
    def test_rates_from_recent_payments_cached_for_the_ttl(self, sqlite_url):
        now = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
        clock = Clock(now)
        with Store(sqlite_url, upgrade=True) as store:
            recent = now - timedelta(minutes=10)
            insert_payments(store, recent, "fake", "card",
                            {"succeeded": 6, "pending": 2, "failed": 1, "unknown": 1,
                             "created": 5})
            insert_payments(store, now - timedelta(hours=2), "fake", "card", {"failed": 7})
            insert_payments(store, recent, "fake", "cash", {"expired": 1, "canceled": 1})
            health = StoreHealth(store, window=timedelta(hours=1),
                                 ttl=timedelta(seconds=30), clock=clock)
            assert health.stats("fake", Method.CARD) == HealthStat(8, 10)
            assert health.stats("fake", Method.CASH) == HealthStat(2, 2)
            assert health.stats("alpha", Method.CARD) is None
            assert health.queries == 1  # one grouped query for every provider and method
            insert_payments(store, recent, "fake", "card", {"failed": 10})
            clock.now += timedelta(seconds=29)
            assert health.stats("fake", Method.CARD) == HealthStat(8, 10)  # cached
            assert health.queries == 1
            clock.now += timedelta(seconds=1)
            assert health.stats("fake", Method.CARD) == HealthStat(8, 20)
            assert health.queries == 2

    def test_feeds_the_healthiest_strategy(self, sqlite_url):
        now = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
        with Store(sqlite_url, upgrade=True) as store:
            insert_payments(store, now - timedelta(minutes=5), "fake", "card",
                            {"succeeded": 10, "failed": 10})
            insert_payments(store, now - timedelta(minutes=5), "alpha", "card",
                            {"succeeded": 19, "failed": 1})
            r = router([{"name": "h", "strategy": "healthiest", "use": ["fake", "alpha"],
                         "min_sample": 10, "exploration": "0"}],
                       health=StoreHealth(store, clock=Clock(now)))
            decision = r.decide(order(), "card")
            assert decision.candidates == ("alpha", "fake")
            assert decision.inputs["health"] == {"fake": [10, 20], "alpha": [19, 20]}


# --- amount bands bisected: the same decision and explanation as trying each rule ------

_EDGES = st.one_of(st.none(), st.integers(min_value=1, max_value=60).map(lambda n: n * 500))


@st.composite
def _band_routes(draw: Any) -> list[dict[str, Any]]:
    """Band rules (overlapping, open-ended, out of order) with rules between them
    that end a run (metadata) or that an order rules out by its method (cash)."""
    out: list[dict[str, Any]] = []
    for i in range(draw(st.integers(min_value=1, max_value=12))):
        kind = draw(st.sampled_from(["band", "band", "band", "cash", "metadata"]))
        when: dict[str, Any] = {"country": "PE", "method": "card"}
        if kind == "cash":
            when["method"] = "cash"
        if kind == "metadata":
            when["metadata"] = {"channel": "app"}
        low, high = draw(_EDGES), draw(_EDGES)
        if low is not None and high is not None and low > high:
            low, high = high, low
        amount = {k: f"PEN {v / 100:.2f}" for k, v in (("min", low), ("max", high)) if v}
        if kind == "band":
            when["amount"] = amount or {"min": "PEN 1.00"}
        out.append({"name": f"r{i}", "when": when, "use": ["alpha"]})
    return [*out, DEFAULT]


def _one_by_one(routed: Router, the_order: Order) -> list[str]:
    """The explanation's rule lines as trying every rule in turn gives them."""
    from pasarela.routing.facts import Facts, Moment

    facts, moment, lines = Facts.of(the_order), Moment(routed.clock()), []
    for rule in routed.rules:
        why = rule.static_miss(facts.country, facts.currency, Method.CARD)
        if why is None:
            why = next((w for check in rule.checks
                        if (w := check(facts, moment)) is not None), None)
        if why is None:
            return [*lines, rule.label + ": matched"]
        lines.append(f"{rule.label}: no match: {why}")
    return lines


@settings(max_examples=300, deadline=None)
@given(routes=_band_routes(), minors=st.lists(st.one_of(
    st.integers(min_value=1, max_value=32_000),  # anywhere, or at an edge and beside it
    st.tuples(st.integers(min_value=1, max_value=61), st.sampled_from([-1, 0, 1])).map(
        lambda e: e[0] * 500 + e[1])), min_size=1, max_size=8))
def test_bisected_bands_decide_and_explain_as_each_rule_in_turn(routes, minors):
    try:
        routed = router(routes)
    except InvalidConfigError:  # a rule shadowed by one before it: refused, not routed
        assume(False)
    for minor in minors:
        the_order = Order(reference="p-1", amount=Money(minor, "PEN"), country="PE")
        decision = routed.decide(the_order, Method.CARD)
        lines = [line.split(" (", 1)[0] if ": matched (" in line else line
                 for line in decision.explanation if line.startswith(("routes[", "implicit"))]
        assert lines == _one_by_one(routed, the_order), minor
