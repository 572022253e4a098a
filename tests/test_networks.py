"""Networks vs providers: what a payment runs on (a PagoEfectivo code, Yape, a card
brand) and who collects it; routing conditions on the network asked for; the line
people read; refund parameters; the delivery URL's query handed to adapters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import pytest

from pasarela.errors import ValidationError
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment
from pasarela.money import Money
from pasarela.provider import (
    Flow,
    Operation,
    Provider,
    ProviderPayment,
    ProviderRefund,
    WebhookEvent,
    WebhookHeaders,
    collected_by,
)
from pasarela.routing import Router
from pasarela.store import Store

from .store.conftest import new_payment


NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


class Direct(Provider):
    name = "direct"
    display_name = "PagoEfectivo"
    methods = frozenset({Method.CASH})
    currencies = frozenset({"PEN"})
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {Method.CASH: ("pagoefectivo",)}


class Aggregator(Provider):
    name = "aggregator"
    display_name = "Mercado Pago"
    methods = frozenset({Method.CASH, Method.WALLET, Method.CARD})
    currencies = frozenset({"PEN"})
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {
        Method.CASH: ("pagoefectivo",), Method.WALLET: ("yape",), Method.CARD: ("visa",)}


class Plin(Provider):
    name = "plinpay"
    display_name = "Plin Pay"
    methods = frozenset({Method.WALLET})
    currencies = frozenset({"PEN"})
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {Method.WALLET: ("plin",)}


def order() -> Order:
    return Order(reference="pedido-1", amount=Money.of("80.00", "PEN"))


def providers() -> dict[str, Provider]:
    return {cls.name: cls(cls.settings_class()) for cls in (Direct, Aggregator, Plin)}


# --- the line people read -----------------------------------------------------------


def test_the_line_names_the_network_and_who_collects_it() -> None:
    assert collected_by(Method.CASH, "pagoefectivo", "Mercado Pago") == (
        "Código PagoEfectivo, cobrado por Mercado Pago")
    assert collected_by(Method.CASH, "pagoefectivo", "Mercado Pago", language="en") == (
        "PagoEfectivo code, collected by Mercado Pago")
    assert collected_by(Method.WALLET, "yape", "dLocal") == "Yape, cobrado por dLocal"
    # the network collected directly is not named twice
    assert collected_by(Method.CASH, "pagoefectivo", "PagoEfectivo") == "Código PagoEfectivo"
    # a card's brand is unknown before the card
    assert collected_by(Method.CARD, None, "Stripe") == "Tarjeta, cobrado por Stripe"


def test_a_provider_declares_its_network_per_method() -> None:
    aggregator = Aggregator(Aggregator.settings_class())
    assert aggregator.default_network(Method.CASH) == "pagoefectivo"
    assert aggregator.default_network(Method.WALLET) == "yape"
    assert aggregator.default_network(Method.CARD) is None  # the brand comes with the card
    assert aggregator.network_ineligibility(Method.WALLET, "yape") is None
    assert str(aggregator.network_ineligibility(Method.WALLET, "plin")) == (
        "does not take wallet on plin")


# --- routing ------------------------------------------------------------------------


def test_routing_conditions_match_the_network_asked_for() -> None:
    router = Router.from_config([
        {"name": "plin", "when": {"method": "wallet", "network": "plin"},
         "use": ["plinpay", "aggregator"]},
        {"name": "default", "when": {}, "use": ["aggregator", "plinpay"]},
    ], providers(), clock=lambda: NOW)
    asked = router.decide(order(), Method.WALLET, network="plin")
    assert asked.rule == "plin"
    assert asked.provider == "plinpay"
    # the aggregator does not take wallet on plin: skipped, with the reason
    assert asked.skipped == {"aggregator": "does not take wallet on plin"}
    plain = router.decide(order(), Method.WALLET)
    assert plain.rule == "default"
    assert any("the caller asked for no network" in line for line in plain.explanation)
    # a stored decision replays with the network it was asked for
    assert router.replay(asked.to_dict()).provider == "plinpay"


def test_an_unknown_condition_still_names_network_among_the_known() -> None:
    from pasarela.config import InvalidConfigError

    with pytest.raises(InvalidConfigError) as bad:
        Router.from_config([{"name": "x", "when": {"colour": "red"}, "use": ["direct"]},
                            {"name": "d", "when": {}, "use": ["direct"]}], providers())
    assert "network" in str(bad.value)


# --- the payment stores it ----------------------------------------------------------


def test_network_charge_and_rate_are_stored_and_read_back(store: Store) -> None:
    payment = new_payment(network="pagoefectivo", charged=Money.of("40.00", "USD"),
                          fx_rate=Decimal("0.266845"))
    stored, _ = store.create_payment(payment, fingerprint="f" * 64)
    again = store.get_payment(stored.id)
    assert again.network == "pagoefectivo"
    assert again.charged == Money.of("40.00", "USD")
    assert again.fx_rate == Decimal("0.266845")
    assert isinstance(again.fx_rate, Decimal)
    moved = store.update_payment(stored.id, expected_version=again.version, network="visa",
                                 fx_rate=Decimal("3.75"))
    assert (moved.network, moved.fx_rate) == ("visa", Decimal("3.75"))


def test_a_float_rate_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as bad:
        ProviderPayment(status=Status.PENDING, fx_rate=0.2668)  # type: ignore[arg-type]
    assert bad.value.field == "fx_rate"


# --- refund parameters --------------------------------------------------------------


class NoParams(Provider):
    """An adapter written before refund parameters: its refund takes none."""

    name = "noparams"
    display_name = "No params"
    methods = frozenset({Method.CASH})
    currencies = frozenset({"PEN"})

    def refund(self, payment: Payment, amount: Money, *, refund_id: str,  # type: ignore[override]
               reason: str) -> Flow[ProviderRefund]:
        raise AssertionError("not called")
        yield  # pragma: no cover


def test_refund_params_reach_only_adapters_that_take_them() -> None:
    from pasarela.engine.refunds import takes_refund_params
    from pasarela.testing.fake import FakeProvider, FakeSettings

    assert takes_refund_params(FakeProvider(FakeSettings()))
    assert not takes_refund_params(NoParams(NoParams.settings_class()))


# --- the delivery URL's query -------------------------------------------------------


def test_webhook_headers_carry_the_query_and_keep_it_when_copied() -> None:
    headers = WebhookHeaders({"X-Signature": "ts=1,v1=ab"},
                             query=[("data.id", "123"), ("type", "payment"), ("data.id", "9")])
    assert headers.query == {"data.id": "123", "type": "payment"}  # the first of a repeat
    assert WebhookHeaders(headers).query == headers.query
    assert WebhookHeaders({}).query == {}
    assert dict(headers) == {"x-signature": "ts=1,v1=ab"}  # the query is not a header


class Recording(Provider):
    name = "recording"
    display_name = "Recording"
    methods = frozenset({Method.CASH})
    currencies = frozenset({"PEN"})
    operations = frozenset({*Provider.operations, Operation.WEBHOOK})
    seen: ClassVar[list[Mapping[str, str]]] = []

    def parse_webhook(self, headers: WebhookHeaders, body: bytes, *, now: datetime
                      ) -> list[WebhookEvent]:
        Recording.seen.append(dict(headers.query))
        return [WebhookEvent(event_id="e1", type="ping", provider_reference=None)]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_asgi_app_hands_the_query_to_the_adapter(sqlite_url: str,
                                                           anyio_backend: str) -> None:
    from pasarela import AsyncPasarela, hookimpl
    from pasarela.web.app import create_app

    class Plugin:
        @hookimpl
        def pasarela_register_providers(self, register: Any) -> None:
            register.add(Recording)

    p = AsyncPasarela({"store": {"url": sqlite_url}, "providers": {"recording": {}}},
                      plugins=[Plugin()], load_entrypoints=False,
                      store=Store(sqlite_url, upgrade=True))
    Recording.seen.clear()
    try:
        transport = httpx.ASGITransport(app=create_app(p))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            reply = await client.post("/webhooks/recording?data.id=123&type=payment",
                                      headers={"content-type": "application/json"},
                                      content=b"{}")
    finally:
        await p.aclose()
    assert reply.status_code == 200, reply.text
    assert Recording.seen == [{"data.id": "123", "type": "payment"}]
