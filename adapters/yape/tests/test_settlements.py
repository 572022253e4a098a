"""Settlement lines from Culqi's charges list: pure parts, paging, and a reconciliation
end to end through ``pasarela.Pasarela`` against the sandbox."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pasarela_yape
import pytest
import sqlalchemy as sa
from pasarela_yape import YapeProvider
from pasarela_yape.culqi.api import (
    build_charges_list_request,
    charge_fee,
    parse_charges_page,
    settlement_lines,
)

from pasarela.api import Pasarela
from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import ProviderUnavailableError
from pasarela.fees import FeeSchedule
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.provider import Operation
from pasarela.reconcile import differences, reconcile, run_key
from pasarela.reconcile.sources import provider_lines
from pasarela.store.reconcile_schema import settlement_lines as settlement_table


SINCE = datetime(2020, 5, 20, tzinfo=UTC)
UNTIL = datetime(2020, 5, 21, tzinfo=UTC)

#: A charge shaped like the cassette's (``ChargeTest.test_charge_create__successful__visa``),
#: captured, with our metadata.
CHARGE: dict[str, Any] = {
    "duplicated": False, "object": "charge", "id": "chr_test_Hj7RxQ1igDSznRiP",
    "creation_date": 1589954486000, "amount": 1000, "amount_refunded": 0,
    "current_amount": 1000, "installments": 1, "installments_amount": 1000,
    "currency_code": "PEN", "email": "richard@piedpiper.com", "description": "Venta de prueba",
    "source": {"object": "token", "id": "ype_test_JHAv7ZGConm79OXU", "type": "yape"},
    "outcome": {"type": "venta_exitosa", "code": "AUT0000",
                "merchant_message": "La operación de venta ha sido autorizada exitosamente",
                "user_message": "Su compra ha sido exitosa."},
    "fraud_score": 62.0, "dispute": False, "capture": True, "reference_code": "1MQiw8epWJ",
    "authorization_code": "fhKkdL",
    "metadata": {"order_reference": "pedido-7", "pasarela_payment_id": "01JPAY"},
    "total_fee": 47,
    "fee_details": {"fixed_fee": {}, "variable_fee": {"currency_code": "PEN",
                                                      "commision": 0.0399, "total": 40}},
    "total_fee_taxes": 7, "transfer_amount": 953, "paid": False,
    "statement_descriptor": "CULQI*", "transfer_id": None, "capture_date": 1589954486000,
}


def charge(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(CHARGE)
    out.update(changes)
    return out


# --- pure parts ------------------------------------------------------------------------


def test_a_captured_charge_is_one_paid_line_with_its_fee(h: Any) -> None:
    [line] = settlement_lines(CHARGE, SINCE, UNTIL)
    assert line.provider == "yape"
    assert line.provider_reference == "chr_test_Hj7RxQ1igDSznRiP"
    assert line.order_reference == "pedido-7"
    assert line.amount == Money(1000, "PEN")
    assert line.fee == Money(47, "PEN")  # total_fee: 40 of commission + 7 of IGV
    assert line.status == "paid"
    assert line.occurred_at == datetime(2020, 5, 20, 6, 1, 26, tzinfo=UTC)
    assert line.raw["transfer_amount"] == 953


def test_the_fee_already_includes_the_igv_and_is_rebuilt_without_total_fee() -> None:
    assert charge_fee(CHARGE) == Money(47, "PEN")
    assert CHARGE["amount"] - CHARGE["transfer_amount"] == CHARGE["total_fee"]
    assert charge_fee(charge(total_fee=None)) == Money(47, "PEN")  # 40 + 7
    assert charge_fee(charge(total_fee=None, total_fee_taxes=None)) == Money(40, "PEN")
    assert charge_fee(charge(total_fee=None, fee_details=None)) is None
    [line] = settlement_lines(charge(total_fee=None, fee_details=None), SINCE, UNTIL)
    assert line.fee is None


def test_a_refunded_charge_adds_a_refunded_line_for_the_payment() -> None:
    paid, refunded = settlement_lines(
        charge(amount_refunded=300, current_amount=700), SINCE, UNTIL)
    assert (paid.status, paid.amount, paid.fee) == ("paid", Money(1000, "PEN"), Money(47, "PEN"))
    assert refunded.status == "refunded"
    assert refunded.amount == Money(300, "PEN")  # what was refunded
    assert refunded.fee is None
    assert refunded.raw["amount_refunded"] == 300
    assert refunded.provider_reference == paid.provider_reference


@pytest.mark.parametrize("changes", [
    {"outcome": {"type": "venta_denegada", "decline_code": "insufficient_funds"}},
    {"capture": False},  # authorized only: no money taken
    {"creation_date": int(UNTIL.timestamp() * 1000)},  # the window excludes its end
    {"creation_date": int(SINCE.timestamp() * 1000) - 1},
    {"amount": None},
    {"id": None},
])
def test_charges_that_settle_nothing_give_no_line(changes: dict[str, Any]) -> None:
    assert settlement_lines(charge(**changes), SINCE, UNTIL) == []


def test_a_charge_without_order_reference_still_has_its_charge_id() -> None:
    [line] = settlement_lines(charge(metadata={}), SINCE, UNTIL)
    assert line.order_reference is None
    assert line.provider_reference == CHARGE["id"]


def test_the_list_request_filters_by_creation_date_in_seconds(h: Any) -> None:
    settings = h.make_settings("https://api.example")
    until = datetime(2020, 5, 21, 0, 0, 0, 500_000, tzinfo=UTC)
    request = build_charges_list_request(settings, SINCE, until)
    assert request.method == "GET"
    assert request.url.path == "/v2/charges"
    assert dict(request.url.params) == {
        "creation_date_from": str(int(SINCE.timestamp())),
        "creation_date_to": str(int(until.timestamp()) + 1),  # widened to a whole second
        "limit": "100",
    }
    assert request.headers["authorization"] == f"Bearer {h.SK}"
    after = build_charges_list_request(settings, SINCE, UNTIL, after="chr_test_X", limit=5)
    assert after.url.params["after"] == "chr_test_X"
    assert after.url.params["limit"] == "5"


def test_a_list_page_gives_its_charges_and_the_next_cursor() -> None:
    body = {"data": [CHARGE, {"object": "order", "id": "ord_test_1"}, "junk"],
            "paging": {"previous": None, "next": None,
                       "cursors": {"before": CHARGE["id"], "after": "chr_test_next"}}}
    assert parse_charges_page(body) == ([CHARGE], "chr_test_next")
    by_url = {"data": [], "paging": {"next": "https://api.culqi.com/v2/charges?limit=1&after=chr_u",
                                     "cursors": {"after": None}}}
    assert parse_charges_page(by_url) == ([], "chr_u")
    assert parse_charges_page({"data": [CHARGE], "paging": {}}) == ([CHARGE], None)
    assert parse_charges_page({"data": [CHARGE]}) == ([CHARGE], None)
    with pytest.raises(ProviderUnavailableError):
        parse_charges_page({"object": "error"})


# --- the flow: paging ---------------------------------------------------------------------


def run_settlements(provider: YapeProvider, client: httpx.Client, since: datetime,
                    until: datetime) -> list[Any]:
    steps = run_flow(provider, Operation.SETTLEMENTS,
                     lambda: provider.settlements(since, until), sleep_scale=0.0)
    return list(drive(steps, client))


def test_the_flow_follows_the_cursor_to_the_last_page(h: Any) -> None:
    pages = {
        None: ([charge(id="chr_test_1")], {"cursors": {"after": "chr_test_1"}}),
        "chr_test_1": ([charge(id="chr_test_2", amount_refunded=1000)],
                       {"next": "http://culqi.test/v2/charges?after=chr_test_2"}),
        "chr_test_2": ([charge(id="chr_test_3")], {"cursors": {"after": None}, "next": None}),
    }
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        asked.append(after)
        data, paging = pages[after]
        return httpx.Response(200, json={"data": data, "paging": paging})

    provider = YapeProvider(h.make_settings("http://culqi.test"))
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        lines = run_settlements(provider, client, SINCE, UNTIL)
    assert asked == [None, "chr_test_1", "chr_test_2"]
    assert [(line.provider_reference, line.status) for line in lines] == [
        ("chr_test_1", "paid"), ("chr_test_2", "paid"), ("chr_test_2", "refunded"),
        ("chr_test_3", "paid")]


def test_culqi_lists_settlements_and_takes_no_references(h: Any) -> None:
    assert YapeProvider.settlements_by_reference is False
    provider = YapeProvider(h.make_settings("http://culqi.test"))
    # The contract's keyword is accepted (and not needed): the same listing is asked.
    listed = next(provider.settlements(SINCE, UNTIL))
    given = next(provider.settlements(SINCE, UNTIL, references=["chr_test_1"]))
    assert given.url == listed.url


def test_the_flow_stops_when_a_cursor_comes_back(h: Any) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json={"data": [CHARGE],
                                         "paging": {"cursors": {"after": "chr_test_same"}}})

    provider = YapeProvider(h.make_settings("http://culqi.test"))
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        lines = run_settlements(provider, client, SINCE, UNTIL)
    assert calls == 2
    assert len(lines) == 2  # the same charge twice: the core flags the repeat a duplicate


def test_the_sandbox_pages_its_charges_list(h: Any, sandbox: Any, monkeypatch: Any) -> None:
    provider = YapeProvider(h.make_settings(sandbox.url))
    since = datetime.now(UTC) - timedelta(minutes=1)
    with httpx.Client() as client:
        for amount in (1500, 2500, 3500):
            payment = h.create_request(h.order(f"{amount / 100:.2f}"),
                                       payment_id=f"01JSETTLE{amount}", phone="900000001",
                                       code="425251")
            made = drive(run_flow(provider, Operation.CREATE,
                                  lambda p=payment: provider.create(p)), client)
            assert made.status is Status.SUCCEEDED
        until = datetime.now(UTC) + timedelta(minutes=1)
        monkeypatch.setattr(provider.acquirer, "page_size", 2)
        lines = run_settlements(provider, client, since, until)
        listed = client.get(f"{sandbox.url}/v2/charges", params={"limit": "2"},
                            headers={"authorization": f"Bearer {h.SK}"}).json()
        unknown = client.get(f"{sandbox.url}/v2/charges", params={"after": "chr_test_nope"},
                             headers={"authorization": f"Bearer {h.SK}"})
    assert unknown.status_code == 400
    assert unknown.headers["x-sandbox-param"] == "after"
    assert sorted(line.amount.minor for line in lines) == [1500, 2500, 3500]
    assert {line.status for line in lines} == {"paid"}
    assert listed["paging"]["cursors"]["after"] == listed["data"][-1]["id"]
    assert "after=" in listed["paging"]["next"]
    # 3.99 % + IGV (18 % of the commission), as the sandbox charges.
    assert {line.amount.minor: line.fee.minor for line in lines} == {
        1500: 60 + 11, 2500: 100 + 18, 3500: 140 + 25}


# --- end to end: pay, refund, reconcile -------------------------------------------------


@pytest.fixture
def make(tmp_path: Path, sandbox: Any, h: Any) -> Iterator[Callable[..., Pasarela]]:
    opened: list[Pasarela] = []

    def build(**yape: Any) -> Pasarela:
        table = {"public_key": h.PK, "secret_key": h.SK, "base_url": sandbox.url,
                 "timeout": 5.0, "max_retries": 0, **yape}
        config = {"store": {"url": f"sqlite:///{tmp_path / 'pasarela.db'}"},
                  "providers": {"yape": table}}
        pasarela = Pasarela.from_config(config, plugins=[pasarela_yape],
                                        load_entrypoints=False)
        opened.append(pasarela)
        return pasarela

    yield build
    for pasarela in opened:
        pasarela.close()


def reconcile_yape(pasarela: Pasarela, since: datetime, until: datetime,
                   fees: dict[str, Any]) -> Any:
    service = pasarela.service
    schedules = {("yape", "wallet"): FeeSchedule.from_mapping(fees, method="wallet")}
    with httpx.Client() as client:
        lines = provider_lines(service, client, "yape", since, until)
        return reconcile(service.store, lines, provider="yape", since=since, until=until,
                         service=service, fee_schedules=schedules)


def paid_and_refunded(pasarela: Pasarela, h: Any) -> tuple[Any, Any]:
    first = pasarela.pay(h.order("40.00", reference="pedido-1"), method="wallet",
                         idempotency_key="k-s1", phone="900000001", code="425251")
    second = pasarela.pay(h.order("75.50", reference="pedido-2"), method="wallet",
                          idempotency_key="k-s2", phone="900000001", code="425251")
    assert first.status is Status.SUCCEEDED
    assert second.status is Status.SUCCEEDED
    pasarela.refund(second.id, Money.of("20.00", "PEN"), reason="solicitud_comprador")
    assert pasarela.get(second.id).status is Status.PARTIALLY_REFUNDED
    return first, second


def test_reconciliation_matches_the_charges_to_our_payments(
        make: Callable[..., Pasarela], h: Any) -> None:
    pasarela = make()
    since = datetime.now(UTC) - timedelta(minutes=5)
    first, second = paid_and_refunded(pasarela, h)
    until = datetime.now(UTC) + timedelta(minutes=5)

    summary = reconcile_yape(pasarela, since, until, {"percent": "3.99", "igv": True})

    assert summary.lines == 3
    assert summary.counts["matched"] == 3, list(differences(pasarela.store, summary.run_key))
    assert summary.unresolved == 0
    assert list(differences(pasarela.store, summary.run_key)) == []
    with pasarela.store.engine.connect() as conn:
        rows = conn.execute(sa.select(settlement_table).where(
            settlement_table.c.run_key == run_key("yape", since, until))).all()
    got = sorted((r.payment_id, r.provider_reference, r.status, r.amount_minor, r.fee_minor,
                  r.matched_by, r.order_reference) for r in rows)
    assert got == sorted([
        # 40.00: 3.99 % is 1.60, IGV 0.29; 75.50: 3.01 and 0.54.
        (first.id, first.provider_reference, "paid", 4000, 160 + 29, "provider_reference",
         "pedido-1"),
        (second.id, second.provider_reference, "paid", 7550, 301 + 54, "provider_reference",
         "pedido-2"),
        (second.id, second.provider_reference, "refunded", 2000, None, "provider_reference",
         "pedido-2"),
    ])

    again = reconcile_yape(pasarela, since, until, {"percent": "3.99", "igv": True})
    assert again.skipped == 3  # the same run: nothing recorded twice


def test_reconciliation_flags_fees_other_than_the_schedule(
        make: Callable[..., Pasarela], h: Any) -> None:
    pasarela = make()
    since = datetime.now(UTC) - timedelta(minutes=5)
    first, second = paid_and_refunded(pasarela, h)
    until = datetime.now(UTC) + timedelta(minutes=5)

    # A schedule of 3.44 % + IGV expects 1.38 + 0.25 on 40.00, not the 1.89 charged.
    summary = reconcile_yape(pasarela, since, until, {"percent": "3.44", "igv": True})

    assert summary.counts["fee_mismatch"] == 2
    assert summary.counts["matched"] == 1  # the refunded line carries no fee
    found = {d.payment_id: d for d in differences(pasarela.store, summary.run_key)}
    assert found[first.id].expected == str(Money(138 + 25, "PEN"))
    assert found[first.id].actual == str(Money(189, "PEN"))
    assert found[second.id].actual == str(Money(355, "PEN"))
