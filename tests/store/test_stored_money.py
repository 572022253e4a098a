"""Money read back from a row (``store._rows.stored_money``) without Money's checks of a
currency already checked: the same value as ``Money(minor, currency)``, or the same
error, whatever the columns hold."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import pasarela.store._rows as rows
from pasarela.errors import ValidationError
from pasarela.money import MAX_MINOR, Money
from pasarela.store._rows import payment_from_row, stored_money


class _Text(str):
    """A str subclass (not what a driver returns; it must still be Money's answer)."""


VALUES: list[tuple[Any, Any]] = [
    (2500, "PEN"), (0, "PEN"), (-1, "USD"), (MAX_MINOR, "PEN"), (-MAX_MINOR, "JPY"),
    (MAX_MINOR + 1, "PEN"), (-MAX_MINOR - 1, "PEN"), (True, "PEN"), (False, "PEN"),
    (2500.0, "PEN"), ("2500", "PEN"), (None, "PEN"), (2500, "pen"), (2500, "XXX"),
    (2500, "ZZZ"), (2500, None), (2500, ["PEN"]), (2500, b"PEN"), (2500, _Text("PEN")),
    (2500, ""), (2500, "PEN "),
]


def _outcome(build: Any, minor: Any, currency: Any) -> tuple[str, Any]:
    try:
        money = build(minor, currency)
    except ValidationError as exc:
        return "error", (str(exc), exc.field)
    assert type(money) is Money
    return "money", (money, type(money.minor), type(money.currency), money.exponent)


@pytest.mark.parametrize(("minor", "currency"), VALUES)
def test_stored_money_is_moneys_answer_before_and_after_its_currency_is_known(
        minor: Any, currency: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "STORED_CURRENCIES", set())
    expected = _outcome(Money, minor, currency)
    assert _outcome(stored_money, minor, currency) == expected  # unknown: Money checks
    for known in ("PEN", "USD", "JPY"):
        stored_money(1, known)
    assert _outcome(stored_money, minor, currency) == expected  # known: the fast path
    assert {"PEN", "USD", "JPY"} == rows.STORED_CURRENCIES


def test_a_currency_built_with_validators_off_is_not_taken_as_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "STORED_CURRENCIES", set())
    with attrs.validators.disabled():
        stored_money(1, "ZZZ")
    assert "ZZZ" not in rows.STORED_CURRENCIES
    with pytest.raises(ValidationError):
        stored_money(1, "ZZZ")


def test_a_payment_read_back_has_the_money_money_builds() -> None:
    row = {"id": "01J", "order_reference": "o", "idempotency_key": "k", "provider": "fake",
           "method": "cash", "amount_minor": 2500, "currency": "PEN", "status": "pending",
           "version": 2, "created_at": rows.utc_now(), "updated_at": rows.utc_now(),
           "provider_reference": "r", "expires_at": None, "next_action": None,
           "refunded_minor": 100, "error_code": None, "error_message": None,
           "next_check_at": None, "check_attempts": 0, "routing": None, "order": None,
           "charged_minor": 90, "charged_currency": "USD", "fx_rate": "0.27"}
    for _ in range(2):  # the currencies unknown, then known
        payment = payment_from_row(row)
        assert (payment.amount, payment.refunded, payment.charged) == (
            Money(2500, "PEN"), Money(100, "PEN"), Money(90, "USD"))
    with pytest.raises(ValidationError):
        payment_from_row({**row, "amount_minor": MAX_MINOR + 1})
