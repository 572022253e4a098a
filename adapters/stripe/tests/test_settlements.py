"""Reconciliation input: balance transactions as settlement lines.

Parsing with literal answers, the request against Stripe's spec, the cursor
pagination, the sandbox's ``GET /v1/balance_transactions``, and the core's
reconciliation of payments made through ``Pasarela`` against the sandbox.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pasarela_stripe import StripeProvider, StripeSettings
from pasarela_stripe.api import (
    build_balance_transactions,
    parse_transactions,
    settlement_line,
)
from pasarela_stripe.sandbox import StripeSandbox as Sandbox
from pasarela_stripe.sandbox.state import card_fee

from pasarela.api import Pasarela
from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import ProviderError, ValidationError
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.provider import Operation, SettlementLine
from pasarela.reconcile import Category, differences, reconcile
from pasarela.reconcile.sources import provider_lines


KEY = "sk_test_pasarela_4eC39HqLyjWDarjtT1zdp7dc"
AUTH = {"Authorization": f"Bearer {KEY}"}
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)


def charge_txn(txn_id: str = "txn_1", *, intent: Any = "pi_1", amount: int = 14990,
               fee: int = 640, created: int = 1_763_900_000, source: Any = None,
               **extra: Any) -> dict[str, Any]:
    if source is None:
        source = {"id": "ch_1", "object": "charge", "payment_intent": intent,
                  "metadata": {"payment_id": "01JDPAY", "order_reference": "pedido-1042"}}
    return {
        "id": txn_id, "object": "balance_transaction", "amount": amount,
        "available_on": created + 172800, "created": created, "currency": "pen",
        "description": "Audífonos", "exchange_rate": None, "fee": fee,
        "fee_details": [{"amount": fee, "application": None, "currency": "pen",
                         "description": "Stripe processing fees", "type": "stripe_fee"}],
        "net": amount - fee, "reporting_category": "charge", "source": source,
        "status": "pending", "type": "charge", **extra,
    }


def refund_txn(txn_id: str = "txn_2", *, intent: str = "pi_1", amount: int = -2000,
               created: int = 1_763_900_100) -> dict[str, Any]:
    return {
        "id": txn_id, "object": "balance_transaction", "amount": amount,
        "available_on": created, "created": created, "currency": "pen",
        "description": "REFUND FOR CHARGE (Audífonos)", "exchange_rate": None, "fee": 0,
        "fee_details": [], "net": amount, "reporting_category": "refund",
        "source": {"id": "re_1", "object": "refund", "payment_intent": intent,
                   "charge": "ch_1", "metadata": {"refund_id": "01JDREF"}},
        "status": "available", "type": "refund",
    }


def listing(*items: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": list(items), "has_more": has_more,
            "url": "/v1/balance_transactions"}


# --- parsing -------------------------------------------------------------------------------


def test_a_charge_is_a_paid_line_of_the_payment_intent() -> None:
    line = settlement_line(charge_txn())
    assert line is not None
    assert line.provider == "stripe"
    assert line.provider_reference == "pi_1"
    assert line.order_reference == "pedido-1042"
    assert line.amount == Money(14990, "PEN")
    assert line.fee == Money(640, "PEN")
    assert line.status == "paid"
    assert line.occurred_at == datetime.fromtimestamp(1_763_900_000, UTC)
    assert line.raw["id"] == "txn_1"
    assert line.raw["source"] == "ch_1"
    assert line.raw["net"] == 14350
    assert line.raw["fee_details"] == [{"amount": 640, "application": None, "currency": "pen",
                                        "description": "Stripe processing fees",
                                        "type": "stripe_fee"}]


def test_an_expanded_payment_intent_gives_its_id() -> None:
    txn = charge_txn(intent={"id": "pi_9", "object": "payment_intent"}, type="payment")
    line = settlement_line(txn)
    assert line is not None
    assert (line.provider_reference, line.status) == ("pi_9", "paid")


def test_a_refund_is_a_refunded_line_with_its_negative_amount() -> None:
    line = settlement_line(refund_txn())
    assert line is not None
    assert line.status == "refunded"
    assert line.provider_reference == "pi_1"
    assert line.order_reference is None
    assert line.amount == Money(-2000, "PEN")
    assert line.fee == Money(0, "PEN")
    assert line.raw["source"] == "re_1"


@pytest.mark.parametrize("kind", ["payout", "stripe_fee", "adjustment", "transfer"])
def test_other_types_are_skipped(kind: str) -> None:
    assert settlement_line(charge_txn(type=kind, reporting_category=kind)) is None


def test_an_unexpanded_source_has_no_reference() -> None:
    line = settlement_line(charge_txn(source="ch_1"))
    assert line is not None
    assert line.provider_reference is None
    assert line.order_reference is None
    assert line.raw["source"] == "ch_1"


def test_stripe_fixture_parses(stripe_fixtures: dict[str, Any]) -> None:
    fixture = stripe_fixtures["balance_transaction"]
    line = settlement_line(fixture)
    assert line is not None
    assert line.amount == Money(100, "USD")
    assert line.fee == Money(0, "USD")
    assert line.provider_reference is None


@pytest.mark.parametrize("txn", [
    {"object": "charge", "id": "ch_1"},
    {"object": "balance_transaction", "id": "txn_1", "type": "charge", "currency": "pen"},
])
def test_malformed_transactions_are_provider_errors(txn: dict[str, Any]) -> None:
    with pytest.raises(ProviderError):
        settlement_line(txn)


def test_a_page_gives_its_lines_and_the_cursor() -> None:
    page = parse_transactions(listing(
        charge_txn("txn_a"), charge_txn("txn_p", type="payout"), has_more=True))
    assert [line.raw["id"] for line in page.lines] == ["txn_a"]
    assert page.next_cursor == "txn_p"  # the last object, skipped or not
    assert parse_transactions(listing(charge_txn("txn_a"))).next_cursor is None


@pytest.mark.parametrize("data", [
    {"object": "search_result", "data": []},
    {"object": "list", "data": None},
    {"object": "list", "data": [], "has_more": True},
])
def test_bad_lists_are_provider_errors(data: dict[str, Any]) -> None:
    with pytest.raises(ProviderError):
        parse_transactions(data)


# --- the request -----------------------------------------------------------------------------


@pytest.fixture
def settings() -> StripeSettings:
    return StripeSettings(api_key="sk_test_abc")


def test_request_asks_for_the_window_with_sources(settings: StripeSettings) -> None:
    request = build_balance_transactions(
        settings, datetime(2026, 11, 1, 0, 0, 0, 500, tzinfo=UTC), UNTIL,
        starting_after="txn_9")
    assert request.method == "GET"
    assert request.url.path == "/v1/balance_transactions"
    assert request.url.params.multi_items() == [
        ("created[gte]", str(int(SINCE.timestamp()) + 1)),  # whole seconds at or after
        ("created[lt]", str(int(UNTIL.timestamp()))),
        ("limit", "100"),
        ("expand[]", "data.source"),
        ("starting_after", "txn_9"),
    ]
    assert request.headers["Authorization"] == "Bearer sk_test_abc"
    assert "Idempotency-Key" not in request.headers


@pytest.mark.parametrize("cursor", [None, "txn_9"])
def test_request_validates_against_the_spec(stripe_spec: Any, settings: StripeSettings,
                                            cursor: str | None) -> None:
    stripe_spec.validate_request(build_balance_transactions(settings, SINCE, UNTIL,
                                                            starting_after=cursor))


def test_request_refuses_naive_times_and_bad_limits(settings: StripeSettings) -> None:
    with pytest.raises(ValidationError):
        build_balance_transactions(settings, datetime(2026, 11, 1), UNTIL)  # noqa: DTZ001
    with pytest.raises(ValidationError):
        build_balance_transactions(settings, SINCE, UNTIL, limit=101)


def test_stripe_declares_settlements_and_retries_them() -> None:
    assert StripeProvider.supports(Operation.SETTLEMENTS)
    assert Operation.SETTLEMENTS in StripeProvider.retry_safe


def test_stripe_lists_settlements_and_takes_no_references(settings: StripeSettings) -> None:
    assert StripeProvider.settlements_by_reference is False
    provider = StripeProvider(settings)
    # The contract's keyword is accepted (and not needed): the same listing is asked.
    listed = next(provider.settlements(SINCE, UNTIL))
    given = next(provider.settlements(SINCE, UNTIL, references=["pi_1"]))
    assert given.url == listed.url


# --- pagination (a scripted conversation) ------------------------------------------------------


def test_the_flow_follows_the_cursor_until_has_more_is_false(settings: StripeSettings) -> None:
    provider = StripeProvider(settings)
    flow = provider.settlements(SINCE, UNTIL)
    first = next(flow)
    assert "starting_after" not in first.url.params
    second = flow.send(httpx.Response(200, json=listing(
        charge_txn("txn_a", intent="pi_a"), charge_txn("txn_b", type="payout"),
        has_more=True)))
    assert second.url.params["starting_after"] == "txn_b"
    with pytest.raises(StopIteration) as stop:
        flow.send(httpx.Response(200, json=listing(
            refund_txn("txn_c", intent="pi_a"), charge_txn("txn_d", intent="pi_d"))))
    lines: list[SettlementLine] = list(stop.value.value)
    assert [(line.line_no, line.raw["id"], line.status) for line in lines] == [
        (1, "txn_a", "paid"), (2, "txn_c", "refunded"), (3, "txn_d", "paid")]


def test_an_error_page_raises_the_mapped_error(settings: StripeSettings) -> None:
    flow = StripeProvider(settings).settlements(SINCE, UNTIL)
    next(flow)
    with pytest.raises(ProviderError):
        flow.send(httpx.Response(401, json={"error": {"type": "invalid_request_error",
                                                      "message": "Invalid API Key"}}))


# --- the sandbox ---------------------------------------------------------------------------------


def _pay(sandbox: Sandbox, amount: int, currency: str = "pen") -> dict[str, Any]:
    return sandbox.account.create_intent(
        {"amount": str(amount), "currency": currency, "payment_method": "pm_card_visa",
         "confirm": "true", "metadata": {"order_reference": f"o-{amount}"}},
        base_url="http://sandbox")


def _window() -> tuple[int, int]:
    now = int(datetime.now(UTC).timestamp())
    return now - 3600, now + 3600


def test_sandbox_lists_charges_and_refunds_with_fees(client: httpx.Client, sandbox_url: str,
                                                     sandbox: Sandbox) -> None:
    paid = _pay(sandbox, 14990)
    _pay(sandbox, 2000, "usd")
    refund = sandbox.account.create_refund({"payment_intent": paid["id"], "amount": "500"})
    gte, lt = _window()
    response = client.get(f"{sandbox_url}/v1/balance_transactions", headers=AUTH, params=[
        ("created[gte]", str(gte)), ("created[lt]", str(lt)), ("expand[]", "data.source")])
    assert response.status_code == 200  # and it validated against the spec
    body = response.json()
    assert body["has_more"] is False
    refund_txn_, usd, pen = body["data"]  # newest first
    assert (pen["type"], pen["amount"], pen["fee"], pen["net"]) == (
        "charge", 14990, 640, 14350)
    assert pen["fee_details"][0] == {"amount": 640, "application": None, "currency": "pen",
                                     "description": "Stripe processing fees",
                                     "type": "stripe_fee"}
    assert pen["source"]["id"] == paid["latest_charge"]
    assert pen["source"]["payment_intent"] == paid["id"]
    assert (usd["currency"], usd["fee"]) == ("usd", card_fee(2000, "usd")) == ("usd", 102)
    assert refund_txn_["type"] == "refund"
    assert (refund_txn_["amount"], refund_txn_["fee"]) == (-500, 0)
    assert refund_txn_["source"]["id"] == refund["id"]
    assert refund_txn_["id"] == refund["balance_transaction"]
    charge = sandbox.account.charges[paid["latest_charge"]]
    assert pen["id"] == charge["balance_transaction"]


def test_sandbox_transactions_match_the_fixture_shape(stripe_spec: Any, sandbox: Sandbox,
                                                      stripe_fixtures: dict[str, Any]) -> None:
    _pay(sandbox, 14990)
    (txn,) = sandbox.account.balance_transactions.values()
    assert set(txn) == set(stripe_fixtures["balance_transaction"])
    stripe_spec.validate_object("balance_transaction", txn)


def test_sandbox_pages_with_starting_after_and_filters(client: httpx.Client, sandbox_url: str,
                                                       sandbox: Sandbox) -> None:
    for amount in (1000, 2000, 3000):
        _pay(sandbox, amount)
    gte, lt = _window()
    url = f"{sandbox_url}/v1/balance_transactions"
    first = client.get(url, headers=AUTH, params={"limit": "2"}).json()
    assert [t["amount"] for t in first["data"]] == [3000, 2000]
    assert first["has_more"] is True
    assert isinstance(first["data"][0]["source"], str)  # not expanded unless asked
    rest = client.get(url, headers=AUTH, params={
        "limit": "2", "starting_after": first["data"][-1]["id"]}).json()
    assert [t["amount"] for t in rest["data"]] == [1000]
    assert rest["has_more"] is False
    assert client.get(url, headers=AUTH, params={"created[lt]": str(gte)}).json()["data"] == []
    assert len(client.get(url, headers=AUTH, params={
        "created[gte]": str(gte), "created[lt]": str(lt), "type": "charge"}).json()["data"]) == 3


@pytest.mark.parametrize(("params", "status"), [
    ({"limit": "0"}, 400),
    ({"limit": "101"}, 400),
    ({"expand[]": "data.source.customer"}, 400),
    ({"starting_after": "txn_nobody"}, 404),
    ({"ending_before": "txn_1"}, 400),
    ({"created[after]": "1"}, 400),
    ({"created[gte]": "yesterday"}, 400),
])
def test_sandbox_refuses_bad_listings(sandbox_url: str, sandbox: Sandbox,
                                      params: dict[str, str], status: int) -> None:
    response = httpx.get(f"{sandbox_url}/v1/balance_transactions", headers=AUTH, params=params)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_pending_refund_moves_the_balance_only_when_it_succeeds(sandbox: Sandbox) -> None:
    paid = _pay(sandbox, 5000)
    sandbox.account.refund_status = "pending"
    refund = sandbox.account.create_refund({"payment_intent": paid["id"]})
    assert [t["type"] for t in sandbox.account.balance_transactions.values()] == ["charge"]
    sandbox.account.settle_refund(refund["id"], "succeeded")
    kinds = [(t["type"], t["amount"]) for t in sandbox.account.balance_transactions.values()]
    assert kinds == [("charge", 5000), ("refund", -5000)]


def test_the_provider_reads_every_page_from_the_sandbox(
        sandbox: Sandbox, sandbox_key: str, client: httpx.Client) -> None:
    intents = [_pay(sandbox, 1000 + n) for n in range(105)]
    provider = StripeProvider(StripeSettings(api_key=sandbox_key,
                                             base_url=sandbox.url))  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    exchanges: list[Any] = []
    lines = list(drive(run_flow(provider, Operation.SETTLEMENTS,
                                lambda: provider.settlements(now - timedelta(hours=1),
                                                             now + timedelta(hours=1)),
                                record=exchanges.append, sleep_scale=0), client))
    assert len(exchanges) == 2
    assert len(lines) == 105
    assert [line.line_no for line in lines] == list(range(1, 106))
    assert {line.provider_reference for line in lines} == {i["id"] for i in intents}
    assert all(line.fee == Money(card_fee(line.amount.minor, "pen"), "PEN") for line in lines)


# --- end to end: the core's reconciliation --------------------------------------------------


#: The sandbox's schedule (3.6 % + PEN 1.00 / USD 0.30) as pasarela's fee setting.
FEES = {"percent": "3.6", "fixed": ["PEN 1.00", "USD 0.30"]}


@pytest.fixture
def pasarela(tmp_path: Path, sandbox: Sandbox, sandbox_key: str, webhook_secret: str,
             checking_transport: Any) -> Iterator[Pasarela]:
    config = {
        "store": {"url": f"sqlite:///{tmp_path}/pasarela.db"},
        "providers": {"stripe": {
            "api_key": sandbox_key, "base_url": sandbox.url,  # type: ignore[attr-defined]
            "webhook_secrets": [webhook_secret], "max_retries": 1, "fees": FEES,
        }},
    }
    p = Pasarela.from_config(config, transport=checking_transport)
    yield p
    p.close()


def test_reconciling_stripe_matches_our_payments_and_reads_the_fees(
        pasarela: Pasarela, sandbox: Sandbox, checking_transport: Any, wire: Any) -> None:
    def order(ref: str, amount: str) -> Order:
        return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos")

    one = pasarela.pay(order("rec-1", "149.90"), method="card", idempotency_key="rec-1",
                       payment_method="pm_card_visa")
    two = pasarela.pay(order("rec-2", "80.00"), method="card", idempotency_key="rec-2",
                       payment_method="pm_card_mastercard")
    assert one.status is Status.SUCCEEDED
    assert two.status is Status.SUCCEEDED
    pasarela.refund(two.id, Money.of("20.00", "PEN"), reason="requested_by_customer")
    assert pasarela.get(two.id).status is Status.PARTIALLY_REFUNDED

    now = datetime.now(UTC)
    since, until = now - timedelta(hours=1), now + timedelta(hours=1)
    service = pasarela.service
    with httpx.Client(transport=checking_transport) as client:
        lines = list(provider_lines(service, client, "stripe", since, until))
    by_status = sorted((line.status, line.provider_reference, line.amount, line.fee)
                       for line in lines)
    assert by_status == sorted([
        ("paid", one.provider_reference, Money(14990, "PEN"), Money(640, "PEN")),
        ("paid", two.provider_reference, Money(8000, "PEN"), Money(388, "PEN")),
        ("refunded", two.provider_reference, Money(-2000, "PEN"), Money(0, "PEN")),
    ])
    # the fee pasarela expected when it routed each payment is the one Stripe charged
    assert one.routing["expected_fee"] == {"minor": 640, "currency": "PEN"}

    summary = reconcile(service.store, lines, provider="stripe", since=since, until=until,
                        service=service)
    found = list(differences(service.store, summary.run_key))
    # Both payments and the refund line (-20.00 of the 80.00 payment) match.
    assert summary.counts[Category.MATCHED] == 3, (dict(summary.counts), found)
    assert summary.counts[Category.FEE_MISMATCH] == 0
    assert summary.counts[Category.MISSING_AT_PROVIDER] == 0
    assert summary.counts[Category.MISSING_IN_BOOKS] == 0
    assert summary.counts[Category.AMOUNT_MISMATCH] == 0
    assert found == []
    # one page was enough, asked for with the window and the sources expanded
    (listed,) = [r for r in wire.requests if r.url.path == "/v1/balance_transactions"]
    assert listed.url.params.get_list("expand[]") == ["data.source"]
    assert listed.url.params["created[gte]"] == str(math.ceil(since.timestamp()))
