"""Money: integer minor units, no floats, no mixing, Babel formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasarela.errors import ValidationError
from pasarela.money import Money


class TestConstruction:
    def test_of_string_gives_minor_units(self):
        assert Money.of("149.90", "PEN") == Money(14990, "PEN")

    def test_parse_with_thousands_separator(self):
        assert Money.parse("PEN 1,500") == Money(150000, "PEN")

    def test_zero_decimal_currency(self):
        assert Money.of("1500", "JPY").minor == 1500

    @pytest.mark.parametrize("bad", [12.5, 1.0])
    def test_float_refused(self, bad):
        with pytest.raises(ValidationError, match="float") as info:
            Money.of(bad, "PEN")
        assert info.value.field == "amount"

    def test_float_minor_refused(self):
        with pytest.raises(ValidationError):
            Money(12.5, "PEN")  # type: ignore[arg-type]

    def test_too_many_decimals(self):
        with pytest.raises(ValidationError, match="2 decimals"):
            Money.of("1.005", "PEN")

    @pytest.mark.parametrize("code", ["XYZ", "pen", "", "XXX"])
    def test_unknown_or_lower_currency(self, code):
        Money(100, "PEN")  # a code that passed is remembered; these still fail
        with pytest.raises(ValidationError) as info:
            Money(100, code)
        assert info.value.field == "currency"

    @pytest.mark.parametrize("code", [None, 604, ["PEN"], b"PEN"])
    def test_currency_not_text(self, code):
        Money(100, "PEN")
        with pytest.raises(ValidationError) as info:
            Money(100, code)  # type: ignore[arg-type]
        assert info.value.field == "currency"

    @pytest.mark.parametrize("text", ["12.50", "PEN", "PEN twelve", "PEN 1.2.3"])
    def test_parse_rejects_garbage(self, text):
        with pytest.raises(ValidationError):
            Money.parse(text)


class TestArithmetic:
    def test_add_and_compare(self):
        total = Money.of("1.10", "PEN") + Money.of("2.20", "PEN")
        assert total == Money.of("3.30", "PEN")
        assert Money.of("1", "PEN") < total

    def test_mixing_currencies_is_an_error(self):
        with pytest.raises(ValidationError, match="mix"):
            Money.of("1", "PEN") + Money.of("1", "USD")

    @given(st.integers(-10**12, 10**12), st.integers(-10**12, 10**12))
    def test_addition_is_exact(self, a, b):
        assert (Money(a, "PEN") + Money(b, "PEN")).minor == a + b

    @given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False))
    def test_decimal_round_trip(self, value):
        money = Money.of(value, "PEN")
        assert money.amount == value
        assert Money.parse(str(money)) == money


class TestFormatting:
    def test_es_pe(self):
        # Babel separates the symbol with a no-break space.
        assert Money.of("1234.5", "PEN").format("es_PE") == "S/\u00a01,234.50"

    @given(st.integers(min_value=-(10**15), max_value=10**15),
           st.sampled_from(["PEN", "USD", "CLP", "JPY", "KWD", "EUR"]),
           st.sampled_from(["es_PE", "en_US", "zh_CN", "de_DE", "en"]))
    def test_format_is_babels_text_of_the_amount(self, minor, currency, locale):
        # Made once an amount (a cache): the text is Babel's for that amount, in any
        # order of calls.
        from babel.numbers import format_currency

        money = Money(minor, currency)
        assert money.format(locale) == format_currency(money.amount, currency, locale=locale)

    def test_format_of_an_unknown_locale_fails_every_time(self):
        # As Babel fails, and again: a failure is not kept as a text.
        from babel.core import UnknownLocaleError

        for _ in range(2):
            with pytest.raises(UnknownLocaleError):
                Money(100, "PEN").format("xx_NOPE")

    def test_decimal_string(self):
        assert Money(100, "PEN").decimal_string() == "1.00"
        assert Money.of("0.5", "USD").amount == Decimal("0.50")
