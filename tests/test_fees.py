"""Fee schedules: percent, fixed, minimum, IGV on the fee, FX spread, refund fee."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasarela.errors import ConfigurationError
from pasarela.fees import FeeSchedule
from pasarela.money import Money


PEN = "PEN"


def pen(text: str) -> Money:
    return Money.of(text, PEN)


def usd(text: str) -> Money:
    return Money.of(text, "USD")


class TestFee:
    def test_percent_plus_fixed_with_igv(self):
        schedule = FeeSchedule.from_mapping({"percent": "3.5", "fixed": "PEN 0.50", "igv": True})
        # (3.50 + 0.50) + 18 % IGV
        assert schedule.fee(pen("100.00")) == pen("4.72")

    def test_igv_is_on_the_rounded_commission(self):
        schedule = FeeSchedule.from_mapping({"percent": "3.5", "fixed": "PEN 0.50", "igv": True})
        parts = schedule.breakdown(pen("149.90"))
        # 5.2465 + 0.50 = 5.7465 -> 5.75; IGV 1.035 -> 1.04 (as the invoice states it)
        assert (parts.commission, parts.igv, parts.fx) == (pen("5.75"), pen("1.04"), pen("0"))
        assert parts.total == pen("6.79") == schedule.fee(pen("149.90"))

    def test_without_igv(self):
        schedule = FeeSchedule.from_mapping({"percent": "3.5", "fixed": "PEN 0.50"})
        assert schedule.fee(pen("100.00")) == pen("4.00")

    def test_minimum_raises_the_commission_before_igv(self):
        schedule = FeeSchedule.from_mapping({"percent": "3.5", "minimum": "PEN 1.00", "igv": True})
        parts = schedule.breakdown(pen("10.00"))  # 0.35 is below the minimum
        assert (parts.commission, parts.igv, parts.total) == (pen("1.00"), pen("0.18"),
                                                             pen("1.18"))
        assert "raised to the minimum PEN 1.00" in parts.notes
        assert schedule.fee(pen("100.00")) == pen("4.13")  # 3.50 + 0.63: above the minimum

    def test_rounds_half_up(self):
        schedule = FeeSchedule.from_mapping({"percent": "0.5"})
        assert schedule.fee(pen("1.00")) == pen("0.01")  # 0.5 céntimo rounds up
        assert schedule.fee(pen("0.99")) == pen("0.00")  # 0.495 rounds down

    def test_empty_schedule_costs_nothing(self):
        assert FeeSchedule.from_mapping({}).fee(pen("149.90")) == pen("0")

    def test_fx_spread_when_currency_differs_from_settlement(self):
        schedule = FeeSchedule.from_mapping({
            "percent": "3.99", "fixed": ["PEN 0.50", "USD 0.15"], "igv": True,
            "settlement_currency": "PEN", "fx_spread": "2.5",
        })
        dollars = schedule.breakdown(usd("100.00"))
        # commission 3.99 + 0.15 = 4.14; IGV 0.7452 -> 0.75; spread 2.5 % = 2.50, no IGV on it
        assert (dollars.commission, dollars.igv, dollars.fx) == (usd("4.14"), usd("0.75"),
                                                                usd("2.50"))
        assert dollars.total == usd("7.39") == schedule.fee(usd("100.00"))
        assert any("FX spread 2.5% to settle in PEN" in note for note in dollars.notes)
        soles = schedule.breakdown(pen("100.00"))
        assert soles.fx == pen("0")
        assert soles.total == pen("5.30")  # 4.49 + 0.81, no spread

    def test_fixed_in_another_currency_is_left_out_and_said(self):
        schedule = FeeSchedule.from_mapping({"percent": "3.99", "fixed": "PEN 0.50"})
        parts = schedule.breakdown(usd("100.00"))
        assert parts.total == usd("3.99")
        assert parts.notes == ("no fixed fee counted: the schedule has none in USD "
                               "(PEN 0.50)",)

    def test_refund_fee_with_igv(self):
        schedule = FeeSchedule.from_mapping({"refund_fixed": "PEN 2.00", "igv": True})
        assert schedule.refund_fee(pen("50.00")) == pen("2.36")
        assert FeeSchedule.from_mapping({"igv": True}).refund_fee(pen("50.00")) == pen("0")
        assert schedule.refund_fee(usd("50.00")) == usd("0")

    def test_method_table_overrides_the_base(self):
        data = {"percent": "3.5", "fixed": "PEN 0.50", "igv": True, "card": {"percent": "4.2"}}
        card = FeeSchedule.from_mapping(data, method="card")
        assert card.percent == Decimal("4.2")
        assert card.fee(pen("100.00")) == pen("5.55")  # (4.20 + 0.50) * 1.18 = 5.546
        assert FeeSchedule.from_mapping(data, method="cash").fee(pen("100.00")) == pen("4.72")
        assert FeeSchedule.from_mapping(data).fee(pen("100.00")) == pen("4.72")

    def test_accepts_money_values_already_structured(self):
        schedule = FeeSchedule.from_mapping({"percent": 3, "fixed": pen("0.50")})
        assert schedule.fee(pen("100.00")) == pen("3.50")


@given(
    percent=st.decimals(min_value=0, max_value=10, places=2),
    fixed=st.integers(min_value=0, max_value=500),
    minimum=st.integers(min_value=0, max_value=500),
    igv=st.booleans(),
    spread=st.sampled_from(["0", "1.5", "2.5"]),
    minor=st.integers(min_value=1, max_value=10_000_000),
    currency=st.sampled_from(["PEN", "USD"]),
)
def test_total_is_the_sum_of_the_parts_and_grows_with_the_amount(
        percent, fixed, minimum, igv, spread, minor, currency):
    schedule = FeeSchedule.from_mapping({
        "percent": str(percent), "fixed": f"PEN {fixed / 100:.2f}",
        "minimum": f"PEN {minimum / 100:.2f}", "igv": igv,
        "settlement_currency": "PEN", "fx_spread": spread,
    })
    parts = schedule.breakdown(Money(minor, currency))
    assert parts.total.minor == parts.commission.minor + parts.igv.minor + parts.fx.minor
    assert schedule.fee_minor(minor, currency) == parts.total.minor >= 0
    assert schedule.fee_minor(minor + 1, currency) >= parts.total.minor


class TestErrors:
    @pytest.mark.parametrize(("data", "path", "text"), [
        ({"percent": "3", "fixd": "PEN 1"}, "fees.fixd", "unknown fee setting"),
        ({"percent": 3.5}, "fees.percent", "as strings"),
        ({"percent": "abc"}, "fees.percent", "not a number"),
        ({"percent": "-1"}, "fees.percent", "from 0 to 100"),
        ({"percent": "101"}, "fees.percent", "from 0 to 100"),
        ({"igv": "yes"}, "fees.igv", "true or false"),
        ({"fx_spread": "2.5"}, "fees.fx_spread", "needs settlement_currency"),
        ({"settlement_currency": "XYZ"}, "fees.settlement_currency", "unknown currency"),
        ({"fixed": "PEN x"}, "fees.fixed", "amount like"),
        ({"fixed": 5}, "fees.fixed", "amount like"),
        ({"minimum": "PEN -1.00"}, "fees.minimum", "negative"),
        ({"fixed": ["PEN 0.50", "PEN 0.60"]}, "fees.fixed[1]", "more than one amount in PEN"),
        ({"card": {"fixd": "PEN 1"}}, "fees.card.fixd", "unknown fee setting"),
        ({"card": "4.2"}, "fees.card", "expected a table"),
    ])
    def test_names_the_setting(self, data, path, text):
        with pytest.raises(ConfigurationError) as info:
            FeeSchedule.from_mapping(data)
        assert info.value.path == path
        assert text in str(info.value)

    def test_path_prefix_is_the_callers(self):
        with pytest.raises(ConfigurationError, match=r"^providers\.x\.fees\.percent: "):
            FeeSchedule.from_mapping({"percent": 1.5}, path="providers.x.fees")

    def test_amount_in_a_currency_the_provider_does_not_accept(self):
        with pytest.raises(ConfigurationError) as info:
            FeeSchedule.from_mapping({"fixed": ["PEN 0.50", "USD 0.15"]}, currencies={"PEN"})
        assert info.value.path == "fees.fixed"
        assert "USD 0.15 is in a currency the provider does not accept (accepts: PEN)" in str(
            info.value)

    def test_settlement_in_a_currency_the_provider_does_not_accept(self):
        with pytest.raises(ConfigurationError) as info:
            FeeSchedule.from_mapping({"settlement_currency": "USD"}, currencies={"PEN"})
        assert info.value.path == "fees.settlement_currency"

    def test_wrong_currency_in_a_method_table(self):
        with pytest.raises(ConfigurationError) as info:
            FeeSchedule.from_mapping({"card": {"fixed": "USD 0.30"}}, currencies={"PEN"})
        assert info.value.path == "fees.card.fixed"
