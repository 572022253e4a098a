"""Pure builders and parsers: form encoding, requests, and literal Stripe answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pasarela_stripe import form
from pasarela_stripe.api import (
    build_cancel,
    build_create,
    build_get,
    build_refund,
    build_search,
    idempotency_key,
    parse_intent,
    parse_json,
    parse_refund,
)
from pasarela_stripe.settings import StripeSettings

from pasarela.errors import ProviderError, ValidationError
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, RefundStatus
from pasarela.money import Money
from pasarela.next_action import ConfirmCard
from pasarela.provider import CreateRequest


SETTINGS = StripeSettings(api_key="sk_test_abc", base_url="http://127.0.0.1:9/")


# --- form ---------------------------------------------------------------------------------


def test_encode_bracket_notation() -> None:
    body = form.encode({"amount": 100, "confirm": True, "payment_method_types": ["card"],
                        "metadata": {"order": "a&b"}, "items": [{"price": "p1"}],
                        "skip": None})
    assert parse_qsl(body) == [("amount", "100"), ("confirm", "true"),
                               ("payment_method_types[]", "card"), ("metadata[order]", "a&b"),
                               ("items[0][price]", "p1")]


def test_decode_reads_what_stripe_clients_send() -> None:
    assert form.decode("a[]=1&a[]=2&m[k]=v&x[0][y]=z&x[1][y]=w&e=") == {
        "a": ["1", "2"], "m": {"k": "v"}, "x": [{"y": "z"}, {"y": "w"}], "e": ""}


@pytest.mark.parametrize("body", ["a=1&a=2", "a[k]=1&a[]=2", "a=1&a[k]=2", "a]=1", "[a]=1"])
def test_decode_refuses_ambiguous_bodies(body: str) -> None:
    with pytest.raises(form.FormError):
        form.decode(body)


keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
scalars = st.text(max_size=12)


@given(st.dictionaries(keys, st.one_of(
    scalars,
    st.lists(scalars, min_size=1, max_size=3),
    st.dictionaries(keys, scalars, min_size=1, max_size=3),
), max_size=5))
def test_encode_decode_roundtrip(params: dict[str, Any]) -> None:
    assert form.decode(form.encode(params)) == params


# --- builders -----------------------------------------------------------------------------


def create_request(**params: Any) -> CreateRequest:
    order = Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"))
    return CreateRequest(payment_id="01JDPAY", idempotency_key="pedido-1042", order=order,
                         method=Method.CARD, amount=order.amount, expires_at=None, params=params)


def test_create_request_headers_and_body() -> None:
    request = build_create(SETTINGS, create_request())
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:9/v1/payment_intents"
    assert request.headers["authorization"] == "Bearer sk_test_abc"
    assert request.headers["stripe-version"] == "2023-08-16"
    assert request.headers["idempotency-key"] == "pedido-1042"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.content.decode())) == {
        "amount": "14990", "currency": "pen", "payment_method_types[]": "card",
        "metadata[payment_id]": "01JDPAY", "metadata[order_reference]": "pedido-1042"}


def test_gets_carry_no_idempotency_key() -> None:
    request = build_get(SETTINGS, "pi_1")
    assert request.method == "GET"
    assert "idempotency-key" not in request.headers
    assert request.url.path == "/v1/payment_intents/pi_1"
    search = build_search(SETTINGS, 'a"b')
    assert search.url.params["query"] == 'metadata["payment_id"]:"a\\"b"'


def test_keys_of_other_operations_are_derived_not_random() -> None:
    assert build_cancel(SETTINGS, "pi_1", key="k:cancel").headers["idempotency-key"] == \
        "k:cancel"
    refund = build_refund(SETTINGS, "pi_1", Money(100, "PEN"), refund_id="01R", payment_id="p")
    assert refund.headers["idempotency-key"] == "refund:01R"
    long = idempotency_key("x" * 300)
    assert len(long) <= 255
    assert long == idempotency_key("x" * 300)


def test_missing_reference_is_refused_before_io() -> None:
    with pytest.raises(ValidationError):
        build_get(SETTINGS, None)
    with pytest.raises(ValidationError):
        build_refund(SETTINGS, None, Money(1, "PEN"), refund_id="r", payment_id="p")


def test_metadata_limits_are_checked_before_io() -> None:
    order = Order(reference="r", amount=Money.of("10", "PEN"), metadata={"k" * 41: "v"})
    req = CreateRequest(payment_id="p", idempotency_key="k", order=order, method=Method.CARD,
                        amount=order.amount, expires_at=None)
    with pytest.raises(ValidationError) as info:
        build_create(SETTINGS, req)
    assert info.value.field == "metadata"


@pytest.mark.parametrize("key", ["talla[m]", "a]b", "[x"])
def test_metadata_keys_with_square_brackets_are_refused_before_io(key: str) -> None:
    """docs.stripe.com/api/metadata: square brackets cannot be used in keys (they would
    also turn into a nested form field, metadata[talla[m]])."""
    order = Order(reference="r", amount=Money.of("10", "PEN"), metadata={key: "v"})
    req = CreateRequest(payment_id="p", idempotency_key="k", order=order, method=Method.CARD,
                        amount=order.amount, expires_at=None)
    with pytest.raises(ValidationError) as info:
        build_create(SETTINGS, req)
    assert info.value.field == "metadata"
    assert key in info.value.message


# --- parsers ------------------------------------------------------------------------------


def pi(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "pi_1", "object": "payment_intent", "amount": 14990, "currency": "pen",
            "status": status, "client_secret": "pi_1_secret_z", "last_payment_error": None,
            "next_action": None, **extra}


@pytest.mark.parametrize(("raw", "status", "step"), [
    ("requires_payment_method", Status.PENDING, "confirm"),
    ("requires_confirmation", Status.PENDING, "confirm"),
    ("requires_action", Status.PENDING, "authenticate"),
    ("processing", Status.PROCESSING, None),
    ("requires_capture", Status.PROCESSING, None),
    ("succeeded", Status.SUCCEEDED, None),
    ("canceled", Status.CANCELED, None),
])
def test_status_map(raw: str, status: Status, step: str | None) -> None:
    response = httpx.Response(200, json=pi(raw))
    reported = parse_intent(parse_json(response))
    assert reported.status is status
    assert reported.raw_status == raw
    if step is None:
        assert reported.next_action is None
    else:
        assert isinstance(reported.next_action, ConfirmCard)
        assert reported.next_action.step == step
        assert reported.next_action.client_secret == "pi_1_secret_z"


def test_requires_action_points_at_the_redirect() -> None:
    action = {"type": "redirect_to_url",
              "redirect_to_url": {"url": "https://hooks.stripe.com/3d_secure/x",
                                  "return_url": "https://tienda.pe"}}
    reported = parse_intent(pi("requires_action", next_action=action))
    assert isinstance(reported.next_action, ConfirmCard)
    assert reported.next_action.url == "https://hooks.stripe.com/3d_secure/x"


def test_failed_attempt_is_failed_only_after_our_own_confirmation() -> None:
    declined = pi("requires_payment_method", last_payment_error={
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds."})
    after = parse_intent(declined, after_confirm=True)
    assert after.status is Status.FAILED
    assert after.failure_code == "insufficient_funds"
    assert after.failure_message == "Your card has insufficient funds."
    assert after.next_action is None
    later = parse_intent(declined)
    assert later.status is Status.PENDING
    assert later.failure_code == "insufficient_funds"


@pytest.mark.parametrize("obj", [
    {"object": "charge", "id": "ch_1"},
    {"object": "payment_intent"},
    pi("mystery"),
])
def test_parse_intent_refuses_other_objects(obj: dict[str, Any]) -> None:
    with pytest.raises(ProviderError):
        parse_intent(obj)


@pytest.mark.parametrize(("raw", "status"), [
    ("pending", RefundStatus.PENDING), ("succeeded", RefundStatus.SUCCEEDED),
    ("failed", RefundStatus.FAILED), ("canceled", RefundStatus.FAILED),
    ("requires_action", RefundStatus.PENDING),
])
def test_refund_status_map(raw: str, status: RefundStatus) -> None:
    refund = parse_refund({"id": "re_1", "object": "refund", "amount": 500, "currency": "usd",
                           "status": raw, "payment_intent": "pi_1",
                           "metadata": {"refund_id": "01R"}})
    assert refund.status is status
    assert refund.amount == Money(500, "USD")
    assert (refund.reference, refund.payment_reference, refund.refund_id) == (
        "re_1", "pi_1", "01R")


def test_a_non_ascii_idempotency_key_becomes_a_header_stripe_takes() -> None:
    """httpx refuses non-ASCII header values; the key is sent hashed by the core's rule."""
    from pasarela_stripe.api import idempotency_key

    from pasarela.provider import header_key

    key = idempotency_key("pedido-ñandú-7")
    assert key == header_key("pedido-ñandú-7")
    assert key.isascii()
    assert len(key) <= 255
