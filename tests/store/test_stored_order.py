"""A payment read back from the store is built from the store's own row: the
customer's phone, written in E.164 after it was validated, is not parsed again."""

from __future__ import annotations

import phonenumbers
import pytest

from pasarela.errors import ValidationError
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store._rows import stored_order


ROSA = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                phone="+51 987 654 321", document=("DNI", "45678912"))
ORDER = Order(reference="p-1", amount=Money(1500, "PEN"), customer=ROSA,
              metadata={"channel": "app"})


def test_a_stored_order_is_the_order_from_dict_builds() -> None:
    data = ORDER.to_dict()
    assert stored_order(data) == Order.from_dict(data) == ORDER
    assert stored_order(data).customer == ROSA
    assert stored_order({**data, "customer": None}) == Order.from_dict({**data, "customer": None})


def test_its_e164_phone_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    data = ORDER.to_dict()

    def parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stored phone was parsed again")

    monkeypatch.setattr(phonenumbers, "parse", parse)
    read = stored_order(data)
    assert read.customer is not None
    assert read.customer.phone == "+51987654321"


def test_a_phone_not_in_e164_goes_through_the_customer_checks() -> None:
    data = ORDER.to_dict()
    customer = {**data["customer"], "phone": "987 654 321"}
    assert stored_order({**data, "customer": customer}).customer == ROSA
    with pytest.raises(ValidationError) as caught:
        stored_order({**data, "customer": {**customer, "phone": "12"}})
    assert caught.value.field == "customer.phone"
