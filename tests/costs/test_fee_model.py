"""The fee model's new keys: tiers, categories, markup, refunds and chargebacks,
monthly fees, commitment, transit, rates, contracts; and their errors, each naming
the setting at fault."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pasarela.errors import ConfigurationError
from pasarela.fees import AccountTerms, FeeSchedule, add_months
from pasarela.money import Money
from pasarela.reconcile.cost_model import CostSetup, RateTable, cost_report
from pasarela.store import Store

from .conftest import DEC, NOV, Planter


def pen(text: str) -> Money:
    return Money.of(text, "PEN")


class TestPerPayment:
    def test_markup_is_charged_with_the_percent(self) -> None:
        s = FeeSchedule.from_mapping({"percent": "3.5", "markup": "0.5", "igv": True})
        # 4.0 % of 100.00 = 4.00, IGV 0.72
        assert s.fee(pen("100.00")) == pen("4.72")

    def test_category_overrides_then_method(self) -> None:
        table = {"percent": "3.5", "category": "high_risk",
                 "categories": {"high_risk": {"percent": "4.5"}},
                 "card": {"fixed": "PEN 0.30"}}
        assert FeeSchedule.from_mapping(table, method="cash").fee(pen("100.00")) == pen("4.50")
        assert FeeSchedule.from_mapping(table, method="card").fee(pen("100.00")) == pen("4.80")

    def test_tier_in_force_by_volume_and_by_count(self) -> None:
        s = FeeSchedule.from_mapping({"percent": "3.5", "tiers": [
            {"from": "PEN 10000.00", "percent": "3.0"},
            {"from": "PEN 50000.00", "percent": "2.5", "fixed": "PEN 0.10"}]})
        assert s.tier_index({"PEN": 999_999}, 0) is None
        assert s.tier_index({"PEN": 1_000_000}, 0) == 0
        assert s.tier_index({"PEN": 5_000_000}, 0) == 1
        assert s.in_tier(1).fee(pen("100.00")) == pen("2.60")
        assert s.in_tier(None).fee(pen("100.00")) == pen("3.50")
        c = FeeSchedule.from_mapping({"percent": "3.5",
                                      "tiers": [{"from_count": 1000, "percent": "3.2"}]})
        assert c.tier_index({}, 999) is None
        assert c.tier_index({}, 1000) == 0

    def test_refund_percent_and_chargeback(self) -> None:
        s = FeeSchedule.from_mapping({"igv": True, "refund_fixed": "PEN 1.00",
                                      "refund_percent": "1", "chargeback_fixed": "PEN 40.00"})
        # 1.00 + 1 % of 55.55 (0.5555) = 1.5555 -> 1.56; IGV 0.2808 -> 0.28
        assert s.refund_fee(pen("55.55")) == pen("1.84")
        assert s.chargeback_fee_minor("PEN") == 4720
        assert s.chargeback_fee_minor("USD") == 0


class TestAccount:
    def test_shortfall_and_transit(self) -> None:
        t = AccountTerms.from_mapping({"commitment": {"volume": "PEN 10000.00"},
                                       "cost_of_capital": "10"})
        # below by 1,234.56 at the base 3.5 %: 43.2096 -> 43.21
        assert t.shortfall_minor(876544, "PEN", Decimal("3.5")) == 4321
        assert t.shortfall_minor(1_000_000, "PEN", Decimal("3.5")) == 0
        assert t.shortfall_minor(0, "USD", Decimal("3.5")) == 0
        # 10,000.00 × 3 days × 10 % / 365 = 8.219... -> 8.22
        assert t.transit_minor(1_000_000, 3) == 822
        assert t.transit_minor(1_000_000, 0) == 0

    def test_contract_terms_roll_over_when_auto_renewing(self) -> None:
        t = AccountTerms.from_mapping({"contract": {
            "start": "2025-03-31", "term_months": 12, "auto_renew": True, "notice_days": 30}})
        assert t.contract is not None
        assert t.contract.term_at(date(2026, 5, 1)) == (date(2026, 3, 31), date(2027, 3, 31))
        assert t.contract.notice_deadline(date(2026, 5, 1)) == date(2027, 3, 1)
        assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)


@pytest.mark.parametrize(("table", "path", "message"), [
    ({"tiers": {"from": "PEN 1.00"}}, "fees.tiers", "list of tiers"),
    ({"tiers": [{"percent": "3"}]}, "fees.tiers[0]", "give one threshold"),
    ({"tiers": [{"from": "PEN 9.00"}, {"from": "PEN 5.00"}]}, "fees.tiers[1].from",
     "tiers go up"),
    ({"tiers": [{"from": "PEN 9.00"}, {"from_count": 5}]}, "fees.tiers[1]",
     "same threshold"),
    ({"tiers": [{"from": "PEN 1.00", "colour": "red"}]}, "fees.tiers[0].colour", "unknown"),
    ({"markup": 0.5}, "fees.markup", "strings"),
    ({"settlement_days": "2"}, "fees.settlement_days", "whole number"),
    ({"settlement_days": -1}, "fees.settlement_days", "at least 0"),
    ({"category": "high_risk"}, "fees.category", "no categories.high_risk"),
    ({"categories": {"x": {"monthly": "PEN 1.00"}}}, "fees.categories.x.monthly", "unknown"),
    ({"monthly": "PEN 1.00"}, "fees.monthly", "table of fees"),
    ({"monthly": {"platform": "lots"}}, "fees.monthly.platform", "amount"),
    ({"commitment": {"shortfall_percent": "3"}}, "fees.commitment.volume", "needs volume"),
    ({"cost_of_capital": "120"}, "fees.cost_of_capital", "0 to 100"),
    ({"fx_rates": {"USDPEN": "3.7"}}, "fees.fx_rates.USDPEN", "BASE/QUOTE"),
    ({"fx_rates": {"USD/PEN": "-1"}}, "fees.fx_rates.USD/PEN", "positive"),
    ({"contract": {"term_months": 12}}, "fees.contract.start", "required"),
    ({"contract": {"start": "soon", "term_months": 12}}, "fees.contract.start", "not a date"),
    ({"contract": {"start": "2026-01-01", "term_months": 0}}, "fees.contract.term_months",
     "at least 1"),
    ({"contract": {"start": "2026-01-01", "term_months": 1, "auto_renew": "yes"}},
     "fees.contract.auto_renew", "true or false"),
    ({"card": {"contract": {}}}, "fees.card.contract", "unknown"),
])
def test_errors_name_the_setting(table: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FeeSchedule.from_mapping(table, path="fees")
    assert caught.value.path == path
    assert message in str(caught.value)


def test_an_amount_the_provider_does_not_accept() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FeeSchedule.from_mapping({"monthly": {"support": "USD 10.00"}}, path="fees",
                                 currencies={"PEN"})
    assert caught.value.path == "fees.monthly.support"


def test_rate_file(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("month,base,quote,rate\n,USD,PEN,3.70\n2026-11,USD,PEN,3.80\n",
                    encoding="utf-8")
    table = RateTable.read(path)
    assert table.rate("USD", "PEN", "2026-11") == Decimal("3.80")
    assert table.rate("USD", "PEN", "2026-10") == Decimal("3.70")
    assert table.convert(10000, "PEN", "USD", "2026-10") == 2703  # 100 / 3.70 = 27.027
    assert table.rate("EUR", "PEN", "2026-11") is None
    path.write_text("month,base,quote,rate\nnov,USD,PEN,3.7\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not a month") as caught:
        RateTable.read(path)
    assert caught.value.path.endswith(":2.month")
    path.write_text("base,quote\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="missing column"):
        RateTable.read(path)


def test_shortfall_projected_for_the_month_in_progress(store: Store, plant: Planter) -> None:
    # 15 of November's 30 days gone, PEN 6,000.00 so far: PEN 12,000.00 projected
    # against a PEN 20,000.00 commitment: 8,000.00 × 2 % = 160.00, + IGV = 188.80.
    for i in range(6):
        plant.payment("pe", "cash", 100000, NOV + timedelta(days=i))
    setup = CostSetup.from_tables({"pe": {"igv": True, "commitment": {
        "volume": "PEN 20000.00", "shortfall_percent": "2"}}})
    report = cost_report(store, NOV, DEC, setup, as_of=datetime(2026, 11, 16, tzinfo=UTC))
    [notice] = report.notices
    assert notice.code == "shortfall_projected"
    assert notice.values["projected"] == "PEN 12000.00"
    assert notice.values["charge"] == "PEN 188.80"
    # The month as it stands: 14,000.00 short × 2 % = 280.00 + IGV 50.40.
    [line] = report.lines
    assert line.shortfall == 33040


def test_fixed_fees_shared_by_volume_and_charged_in_a_quiet_month(
        store: Store, plant: Planter) -> None:
    plant.payment("pe", "cash", 10000, NOV + timedelta(days=1))
    plant.payment("pe", "wallet", 20000, NOV + timedelta(days=1))
    setup = CostSetup.from_tables({"pe": {"monthly": {"platform": "PEN 100.00"}}})
    report = cost_report(store, NOV, DEC + timedelta(days=31), setup, as_of=NOV)
    fixed = {(line.method, line.month): line.fixed for line in report.lines}
    # 100.00 split 1:2 (33.33 / 66.67), and December has no payment: a row of its own
    assert fixed == {("cash", "2026-11"): 3333, ("wallet", "2026-11"): 6667,
                     ("-", "2026-12"): 10000}
