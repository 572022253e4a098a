"""An operation on a stored payment that fails says which payment (``payment_id``)."""

from __future__ import annotations

import pytest

from pasarela.api import Pasarela
from pasarela.errors import (
    IllegalTransitionError,
    ProviderNotFoundError,
    RefundError,
    ValidationError,
)
from pasarela.model import Customer, Order
from pasarela.money import Money


def order() -> Order:
    return Order(reference="pedido-9", amount=Money.of("50.00", "PEN"),
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


def test_refund_errors_name_the_payment(pasarela: Pasarela):
    pending = pasarela.pay(order(), method="cash", idempotency_key="cash")
    with pytest.raises(RefundError) as not_paid:
        pasarela.refund(pending.id)
    paid = pasarela.pay(order(), method="card", idempotency_key="card")
    with pytest.raises(RefundError) as too_much:
        pasarela.refund(paid.id, Money.of("50.01", "PEN"))
    with pytest.raises(ValidationError) as wrong_currency:
        pasarela.refund(paid.id, Money.of("1.00", "USD"))
    assert [e.value.payment_id for e in (not_paid, too_much, wrong_currency)] == [
        pending.id, paid.id, paid.id]


def test_a_refused_operation_names_the_payment(pasarela: Pasarela):
    paid = pasarela.pay(order(), method="card", idempotency_key="card")
    with pytest.raises(IllegalTransitionError) as info:
        pasarela.cancel(paid.id)
    assert info.value.payment_id == paid.id


def test_a_provider_no_longer_configured_names_the_payment(pasarela: Pasarela):
    pending = pasarela.pay(order(), method="cash", idempotency_key="cash")
    paid = pasarela.pay(order(), method="card", idempotency_key="card")
    del pasarela.service.providers["fake"]
    errors: dict[str, str | None] = {}
    for name, operation, payment in (("sync", pasarela.sync, pending),
                                     ("cancel", pasarela.cancel, pending),
                                     ("refund", pasarela.refund, paid)):
        with pytest.raises(ProviderNotFoundError) as info:
            operation(payment.id)
        errors[name] = info.value.payment_id
    assert errors == {"sync": pending.id, "cancel": pending.id, "refund": paid.id}
