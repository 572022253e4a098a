"""The worked example of docs/costs.md: its fee tables read from the page, its store
planted, and every figure checked against the hand-computed arithmetic there."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pasarela.reconcile.cost_model import CostSetup, cost_report
from pasarela.store import Store

from .conftest import DEC, NOV, Planter


DOC = Path(__file__).resolve().parents[2] / "docs" / "costs.md"


def example_tables() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8").split("## Worked example", 1)[1]
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None, "docs/costs.md lost its worked example"
    return {name: table["fees"] for name, table in
            tomllib.loads(block.group(1))["providers"].items()}


def plant_example(plant: Planter) -> None:
    at = NOV + timedelta(days=2)
    for i in range(200):
        pid = plant.payment("pagoefectivo", "cash", 12500, at + timedelta(minutes=i),
                            fee=505 if i < 100 else None)
        if i < 4:
            plant.refund(pid, 12500, at + timedelta(days=3, minutes=i))
    for i in range(10):
        plant.payment("pagoefectivo", "cash", 12500, at + timedelta(hours=5, minutes=i),
                      status="expired")
    for i in range(10):
        plant.payment("culqi", "card", 20000, at + timedelta(hours=8, minutes=i),
                      chargeback=i == 0)
    plant.payment("dlocal", "card", 10000, at + timedelta(hours=9), currency="USD")


@pytest.fixture
def report(store: Store, plant: Planter) -> Any:
    plant_example(plant)
    setup = CostSetup.from_tables(example_tables())
    return cost_report(store, NOV, DEC, setup, as_of=datetime(2026, 11, 1, tzinfo=UTC))


def row(report: Any, provider: str) -> Any:
    [line] = [line for line in report.lines if line.provider == provider]
    return line


def test_pagoefectivo_direct(report: Any) -> None:
    pe = row(report, "pagoefectivo")
    assert (pe.method, pe.network, pe.month, pe.currency) == ("cash", "pagoefectivo",
                                                               "2026-11", "PEN")
    assert (pe.attempts, pe.succeeded, pe.volume, pe.average_ticket) == (210, 200, 2500000,
                                                                          12500)
    assert pe.tier == "from PEN 20000.00"
    assert (pe.commission, pe.igv, pe.fx, pe.expected_fee) == (85000, 15400, 0, 100400)
    assert (pe.with_actual, pe.expected_settled, pe.actual_fee, pe.fee_difference) == (
        100, 50200, 50500, 300)
    assert pe.per_payment == 100700
    assert (pe.fixed, pe.shortfall, pe.transit) == (17700, 20650, 1644)
    assert (pe.refunds, pe.refunded, pe.refund_fees) == (4, 50000, 944)
    assert (pe.disputes, pe.dispute_fees, pe.dispute_lost) == (0, 0, 0)
    assert pe.total == 141638
    assert pe.to_dict()["effective_rate"] == "5.666%"


def test_aggregator_with_markup_and_a_chargeback(report: Any) -> None:
    culqi = row(report, "culqi")
    assert (culqi.network, culqi.volume, culqi.succeeded) == ("visa", 200000, 10)
    assert (culqi.commission, culqi.igv, culqi.expected_fee, culqi.markup) == (
        8300, 1490, 9790, 1000)
    assert culqi.transit == 460
    assert (culqi.disputes, culqi.dispute_fees, culqi.dispute_lost) == (1, 5900, 20000)
    assert culqi.total == 36150
    assert culqi.to_dict()["effective_rate"] == "18.075%"


def test_dollars_settled_in_soles(report: Any) -> None:
    dlocal = row(report, "dlocal")
    assert (dlocal.currency, dlocal.commission, dlocal.igv, dlocal.fx) == ("USD", 400, 0, 250)
    assert dlocal.total == 650
    assert (dlocal.settlement_currency, dlocal.fx_settled) == ("PEN", 938)


def test_everything_in_soles(report: Any) -> None:
    assert report.totals == {"PEN": 141638 + 36150, "USD": 650}
    assert (report.total_converted, report.volume_converted) == (180226, 2737500)
    assert report.to_dict()["total"]["effective_rate"] == "6.584%"
    assert report.unconverted == ()


def test_the_renewal_notice_warning(report: Any) -> None:
    [notice] = report.notices
    assert (notice.code, notice.provider) == ("renewal_notice_due", "pagoefectivo")
    assert notice.values == {"renews_on": "2027-01-01", "notice_by": "2026-11-02",
                             "term_months": "12", "early_termination": "PEN 2000.00",
                             "days_left": "1"}


def test_networks_side_by_side(report: Any) -> None:
    networks = {(n["network"], n["currency"]): n for n in report.to_dict()["networks"]}
    assert set(networks) == {("pagoefectivo", "PEN"), ("visa", "PEN"), ("card", "USD")}
    [culqi] = networks[("visa", "PEN")]["providers"]
    assert culqi["per_payment_rate"] == "4.895%"  # 97.90 / 2,000.00
