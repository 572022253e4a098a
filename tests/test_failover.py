"""Routing inside pay(): rules pick the provider; failover only when provably nothing
was created at the failed provider; decisions stored and announced."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from pasarela import hookimpl
from pasarela.api import Pasarela
from pasarela.errors import ProviderUnavailableError
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.schema import routing_decisions
from pasarela.testing.fake import FakeGateway, FakeProvider


class BackupProvider(FakeProvider):
    name = "backup"
    display_name = "Backup provider"


class Plugin:
    @hookimpl
    def pasarela_register_providers(self, register):
        register.add(FakeProvider)
        register.add(BackupProvider)


class Decisions:
    def __init__(self):
        self.seen = []

    @hookimpl
    def pasarela_routing_decision(self, decision):
        self.seen.append(decision)


class Router:
    """Sends each provider's requests to its own gateway; a host may be 'down'."""

    def __init__(self):
        self.gateways = {"main.test": FakeGateway(), "backup.test": FakeGateway()}
        self.down: set[str] = set()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.gateways[request.url.host].handle(request)


def order(**kw) -> Order:
    return Order(reference="pedido-7", amount=Money.of("80.00", "PEN"),
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"), **kw)


@pytest.fixture
def net():
    return Router()


@pytest.fixture
def decisions():
    return Decisions()


@pytest.fixture
def pasarela(store_url, net, decisions):
    config = {
        "providers": {"fake": {"base_url": "http://main.test", "max_retries": 0},
                      "backup": {"base_url": "http://backup.test", "max_retries": 0}},
        "routes": [{"name": "cards", "when": {"method": "card"}, "use": ["fake", "backup"]},
                   {"name": "default", "use": ["fake"]}],
    }
    p = Pasarela(config, plugins=[Plugin(), decisions], load_entrypoints=False,
                 transport=httpx.MockTransport(net.handle), store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


def test_connection_refused_fails_over_to_the_next_candidate(pasarela, net, decisions):
    net.down.add("main.test")
    payment = pasarela.pay(order(), method="card", idempotency_key="k")
    assert payment.status is Status.SUCCEEDED
    assert payment.provider == "backup"
    assert len(net.gateways["backup.test"].payments) == 1
    assert payment.routing["attempt"] == 2
    assert [a["provider"] for a in payment.routing["failed_attempts"]] == ["fake"]
    assert [d["provider"] for d in decisions.seen] == ["fake"]
    with pasarela.store.engine.connect() as conn:
        stored = [row.decision["provider"] for row in conn.execute(
            sa.select(routing_decisions).order_by(routing_decisions.c.id))]
    assert stored == ["fake", "backup"]


def test_unknown_outcome_never_fails_over(pasarela, net):
    payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="timeout")
    assert payment.status is Status.UNKNOWN
    assert payment.provider == "fake"
    assert net.gateways["backup.test"].calls == []


def test_decline_never_fails_over(pasarela, net):
    payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="decline")
    assert payment.status is Status.FAILED
    assert net.gateways["backup.test"].calls == []


def test_5xx_is_not_proof_of_nothing_created(pasarela, net):
    # The provider may have made the payment: no failover, and the payment is unknown
    # (asked about by the resolver), never failed on a guess.
    payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="5xx")
    assert payment.status is Status.UNKNOWN
    assert net.gateways["backup.test"].calls == []


def test_last_candidate_down_fails_the_payment(pasarela, net):
    net.down.update({"main.test", "backup.test"})
    with pytest.raises(ProviderUnavailableError) as info:
        pasarela.pay(order(), method="card", idempotency_key="k")
    failed = pasarela.get(info.value.payment_id)
    assert failed.status is Status.FAILED
    assert failed.provider == "backup"


def test_rules_route_by_method(pasarela, net):
    payment = pasarela.pay(order(), method="cash", idempotency_key="k")
    assert payment.provider == "fake"
    assert payment.routing["rule"] == "default"


def test_requested_provider_wins(pasarela):
    payment = pasarela.pay(order(), method="card", provider="backup", idempotency_key="k")
    assert payment.provider == "backup"
    assert payment.routing["strategy"] == "requested"


def test_routing_override_hook(pasarela):
    class PreferBackup:
        @hookimpl
        def pasarela_select_provider(self, order, method, candidates):
            return "backup" if "backup" in candidates else None

    pasarela.plugins.register(PreferBackup())
    payment = pasarela.pay(order(), method="card", idempotency_key="k")
    assert payment.provider == "backup"


def test_breaker_skips_a_provider_that_keeps_failing(pasarela, net):
    net.down.add("main.test")
    for i in range(5):
        assert pasarela.pay(order(), method="card", idempotency_key=f"k{i}").provider == "backup"
    net.down.clear()
    calls = len(net.gateways["main.test"].calls)
    payment = pasarela.pay(order(), method="card", idempotency_key="k-next")
    assert payment.provider == "backup"  # the breaker is open: fake is not even tried
    assert len(net.gateways["main.test"].calls) == calls
    assert "fake" in payment.routing["skipped"]


def test_same_key_replays_even_when_the_route_changed(pasarela, net):
    first = pasarela.pay(order(), method="card", idempotency_key="k")
    net.down.update({"main.test", "backup.test"})
    for i in range(5):
        with pytest.raises(ProviderUnavailableError):
            pasarela.pay(order(), method="card", idempotency_key=f"x{i}")
    assert pasarela.pay(order(), method="card", idempotency_key="k").id == first.id


def test_refusals_of_our_data_do_not_open_the_breaker(pasarela, net):
    from pasarela.errors import ProviderValidationError

    for i in range(6):
        with pytest.raises(ProviderValidationError):
            pasarela.pay(order(), method="card", idempotency_key=f"bad{i}", scenario="invalid")
    assert pasarela.pay(order(), method="card", idempotency_key="good").provider == "fake"
