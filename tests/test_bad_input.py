"""Bad input gets the library's typed error naming the field, and nothing is written.

``PASARELA_FUZZ_SCALE=N`` multiplies every property test's examples by N (a fuzz run:
``PASARELA_FUZZ_SCALE=20 .venv/bin/pytest tests/test_bad_input.py``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pasarela.api import Pasarela
from pasarela.errors import ProviderValidationError, ValidationError
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


SCALE = max(1, int(os.environ.get("PASARELA_FUZZ_SCALE", "1")))


def _refusal(func: Any, *args: Any) -> Any:
    """The typed refusal *func* raised (ours, or a provider's field rules checked before
    any I/O), or None when it succeeded; any other exception propagates."""
    try:
        func(*args)
    except (ValidationError, ProviderValidationError) as exc:
        return exc
    return None


@pytest.mark.parametrize(("data", "field"), [
    (None, "order"),
    ([], "order"),
    ({"reference": "o-1", "amount": {"minor": None, "currency": "PEN"}}, "amount.minor"),
    ({"reference": "o-1", "amount": {"minor": "100", "currency": "PEN"}}, "amount.minor"),
    ({"reference": "o-1", "amount": {"minor": 100, "currency": None}}, "amount.currency"),
    ({"reference": "o-1", "amount": {"value": [], "currency": "PEN"}}, "amount.value"),
    ({"reference": "o-1", "amount": "PEN 10.00", "expires_at": "mañana"}, "expires_at"),
    ({"reference": "o-1", "amount": "PEN 10.00", "expires_at": 5}, "expires_at"),
    ({"reference": "o-1", "amount": "PEN 10.00", "expires_at": "2026-12-01T10:00"},
     "expires_at"),
    ({"reference": "o-1", "amount": "PEN 10.00", "customer": ["Rosa"]}, "customer"),
    ({"reference": "o-\x00", "amount": "PEN 10.00"}, "reference"),
    ({"reference": "o-1", "amount": "PEN 10.00", "description": "caf\udce9"}, "description"),
    ({"reference": "o-1", "amount": "PEN 10.00", "metadata": {"k": "a\x00b"}}, "metadata.k"),
    ({"reference": "o-1", "amount": "PEN 1e999999999"}, "amount"),
])
def test_malformed_orders_name_the_field(data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Order.from_dict(data)
    assert refused.value.field == field


@pytest.mark.parametrize("text", ["1e999999999", "-1e999999999", "9" * 400, "1e21",
                                  "92233720368547758.08"])
def test_huge_amounts_are_refused_not_overflowed(text: str) -> None:
    with pytest.raises(ValidationError, match="too large"):
        Money.of(text, "PEN")


def test_the_largest_storable_amount_is_accepted() -> None:
    assert Money.of("92233720368547758.07", "PEN").minor == 2**63 - 1


@settings(max_examples=300 * SCALE)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["reference", "amount", "minor", "currency", "value", "customer",
                         "first_name", "last_name", "email", "phone", "document",
                         "metadata", "expires_at", "country", "description"]),
        inner, max_size=6),
    max_leaves=12))
def test_order_from_any_json_is_an_order_or_a_typed_error(data: Any) -> None:
    refused = _refusal(Order.from_dict, data)  # anything untyped propagates and fails
    assert refused is None or refused.field


@settings(max_examples=300 * SCALE)
@given(st.one_of(st.text(max_size=30), st.decimals(allow_nan=True), st.integers(),
                 st.floats(), st.none(), st.booleans()),
       st.one_of(st.sampled_from(["PEN", "USD", "JPY", "KWD", "pen", "XXX", ""]),
                 st.text(max_size=4), st.none()))
def test_money_of_anything_is_money_or_a_typed_error(amount: Any, currency: Any) -> None:
    refused = _refusal(Money.of, amount, currency)
    assert refused is None or refused.field


@pytest.fixture
def pasarela(store_url: str) -> Any:
    clock = ManualClock()
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    with Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False, clock=clock,
                  transport=FakeGateway(clock=clock).transport(),
                  store=Store(store_url, upgrade=True)) as p:
        yield p


def _rows(pasarela: Pasarela) -> int:
    with pasarela.store.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM payments")).scalar_one())


@pytest.mark.parametrize(("key", "field"), [
    ("pedido-\x00-1", "idempotency_key"),
    ("pedido-\udcff", "idempotency_key"),
    ("", "idempotency_key"),
    ("k" * 256, "idempotency_key"),
])
def test_pay_refuses_unstorable_keys_and_writes_nothing(pasarela: Pasarela, key: str,
                                                        field: str) -> None:
    order = Order(reference="o-1", amount=Money.of("10.00", "PEN"),
                  customer=Customer(first_name="Rosa", last_name="Quispe"))
    with pytest.raises(ValidationError) as refused:
        pasarela.pay(order, method="cash", idempotency_key=key)
    assert refused.value.field == field
    assert _rows(pasarela) == 0


@settings(max_examples=60 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(min_size=0, max_size=20), method=st.sampled_from(["cash", "card", "bogus"]),
       description=st.text(max_size=20))
def test_pay_gives_a_payment_or_a_typed_error_and_no_row_on_error(
        pasarela: Pasarela, key: str, method: str, description: str) -> None:
    before = _rows(pasarela)

    def pay() -> None:
        order = Order(reference="o-1", amount=Money.of("10.00", "PEN"),
                      description=description)
        pasarela.pay(order, method=method, idempotency_key=f"{json.dumps(key)}-{before}")

    refused = _refusal(pay)
    if refused is None:
        assert _rows(pasarela) == before + 1
    else:
        assert isinstance(refused, ProviderValidationError) or refused.field
        assert _rows(pasarela) == before


def test_header_unsafe_keys_are_sent_hashed_by_one_rule() -> None:
    from pasarela.provider import header_key

    assert header_key("pedido-1042") == "pedido-1042"
    hashed = header_key("pedido-ñandú-7")
    assert hashed.startswith("sha256:")
    assert hashed.isascii()
    assert hashed == header_key("pedido-ñandú-7")  # a retry is recognised
    assert header_key("with space").startswith("sha256:")
    assert header_key("k" * 256).startswith("sha256:")


def test_a_non_ascii_key_pays_and_replays(pasarela: Pasarela) -> None:
    order = Order(reference="o-ñ", amount=Money.of("10.00", "PEN"),
                  customer=Customer(first_name="Rosa", last_name="Ñique",
                                    email="rosa@example.pe"))
    first = pasarela.pay(order, method="card", idempotency_key="pedido-ñandú-7")
    assert first.idempotency_key == "pedido-ñandú-7"
    assert pasarela.pay(order, method="card", idempotency_key="pedido-ñandú-7").id == first.id
