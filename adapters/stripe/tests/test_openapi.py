"""Stripe's OpenAPI spec as the oracle for what the adapter sends and the sandbox answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pasarela_stripe.api import (
    build_cancel,
    build_confirm,
    build_create,
    build_get,
    build_get_refund,
    build_list_refunds,
    build_refund,
    build_search,
    parse_intent,
)
from pasarela_stripe.settings import StripeSettings

from pasarela.model import Method, Order, Payment
from pasarela.money import Money
from pasarela.provider import CreateRequest


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def form_request(path: str, body: str, method: str = "POST") -> httpx.Request:
    return httpx.Request(method, f"https://api.stripe.com{path}", content=body.encode(),
                         headers={"Authorization": "Bearer sk_test_x",
                                  "Content-Type": "application/x-www-form-urlencoded"})


# --- the helper itself: the two fixes work, and the validator still refuses -----------


def test_valid_create_validates_with_bracket_notation(stripe_spec: Any) -> None:
    body = stripe_spec.validate_request(form_request(
        "/v1/payment_intents",
        "amount=1099&currency=pen&payment_method_types[]=card&metadata[order]=x"
        "&payment_method_options[card][request_three_d_secure]=any",
    ))
    assert body["amount"] == 1099
    assert body["payment_method_types"] == ["card"]
    assert body["metadata"] == {"order": "x"}
    assert body["payment_method_options"] == {"card": {"request_three_d_secure": "any"}}


@pytest.mark.parametrize("body", [
    "currency=pen",                                   # amount is required
    "amount=abc&currency=pen",                        # amount is an integer
    "amount=100&currency=pen&capture_method=later",   # not in the enum
    "amount=100&currency=pen&invented=1",             # additionalProperties: false
])
def test_invalid_create_is_refused(stripe_spec: Any, body: str) -> None:
    with pytest.raises(AssertionError):
        stripe_spec.validate_request(form_request("/v1/payment_intents", body))


def test_payment_intent_fixture_validates_as_a_200(stripe_spec: Any,
                                                   stripe_fixtures: dict[str, Any]) -> None:
    fixture = stripe_fixtures["payment_intent"]
    request = httpx.Request("GET", f"https://api.stripe.com/v1/payment_intents/{fixture['id']}",
                            headers={"Authorization": "Bearer sk_test_x"})
    response = httpx.Response(200, json=fixture)
    stripe_spec.validate_response(request, response)
    broken = {**fixture, "status": "paid"}
    with pytest.raises(AssertionError):
        stripe_spec.validate_response(request, httpx.Response(200, json=broken))


def test_the_null_fix_is_needed(spec_factory: Any, stripe_fixtures: dict[str, Any]) -> None:
    """Without fix 1, the fixture's null expandable fields are refused."""
    strict = spec_factory(False)
    fixture = stripe_fixtures["payment_intent"]
    request = httpx.Request("GET", f"https://api.stripe.com/v1/payment_intents/{fixture['id']}")
    with pytest.raises(AssertionError):
        strict.validate_response(request, httpx.Response(200, json=fixture))


def test_fixture_parses_through_the_adapter(stripe_fixtures: dict[str, Any]) -> None:
    fixture = stripe_fixtures["payment_intent"]
    reported = parse_intent(fixture)
    assert reported.reference == fixture["id"]
    assert reported.raw_status == "requires_payment_method"
    assert reported.status.value == "pending"
    assert reported.amount == Money(1099, "USD")
    assert reported.next_action is not None
    assert reported.next_action.client_secret == fixture["client_secret"]  # type: ignore[attr-defined]


def test_current_fixture_still_parses(current_stripe_fixtures: dict[str, Any]) -> None:
    fixture = current_stripe_fixtures["payment_intent"]
    assert parse_intent(fixture).reference == fixture["id"]


# --- every request the adapter builds validates ----------------------------------------------


@pytest.fixture
def settings() -> StripeSettings:
    return StripeSettings(api_key="sk_test_abc", return_url="https://tienda.pe/vuelta",
                          statement_descriptor_suffix="PEDIDO")


def _order() -> Order:
    return Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"),
                 description="Audífonos inalámbricos", metadata={"canal": "web"})


def _create(params: dict[str, Any]) -> CreateRequest:
    order = _order()
    return CreateRequest(payment_id="01JDPAY", idempotency_key="pedido-1042", order=order,
                         method=Method.CARD, amount=order.amount, expires_at=None, params=params)


def _payment() -> Payment:
    order = _order()
    return Payment(id="01JDPAY", order_reference=order.reference, idempotency_key="pedido-1042",
                   provider="stripe", method=Method.CARD, amount=order.amount,
                   status="succeeded", version=3, created_at=NOW, updated_at=NOW,  # type: ignore[arg-type]
                   provider_reference="pi_123", order=order)


@pytest.mark.parametrize("request_", [
    pytest.param(lambda s: build_create(s, _create({})), id="create"),
    pytest.param(lambda s: build_create(s, _create({"payment_method": "pm_card_visa"})),
                 id="create-confirm"),
    pytest.param(lambda s: build_confirm(s, "pi_123", "pm_card_visa", key="k"), id="confirm"),
    pytest.param(lambda s: build_get(s, "pi_123"), id="get"),
    pytest.param(lambda s: build_search(s, "01JDPAY"), id="search"),
    pytest.param(lambda s: build_cancel(s, "pi_123", key="k"), id="cancel"),
    pytest.param(lambda s: build_refund(s, "pi_123", Money(500, "PEN"), refund_id="01JDREF",
                                        payment_id="01JDPAY", reason="requested_by_customer"),
                 id="refund"),
    pytest.param(lambda s: build_refund(s, "pi_123", Money(500, "PEN"), refund_id="01JDREF",
                                        payment_id="01JDPAY", reason="talla equivocada"),
                 id="refund-free-reason"),
    pytest.param(lambda s: build_get_refund(s, "re_123"), id="get-refund"),
    pytest.param(lambda s: build_list_refunds(s, "pi_123"), id="list-refunds"),
    pytest.param(lambda s: build_list_refunds(s, "pi_123", starting_after="re_9", limit=3),
                 id="list-refunds-next-page"),
])
def test_built_requests_validate(stripe_spec: Any, settings: StripeSettings,
                                 request_: Any) -> None:
    request = request_(settings)
    stripe_spec.validate_request(request)


def test_create_body_is_what_stripe_reads(stripe_spec: Any, settings: StripeSettings) -> None:
    body = stripe_spec.validate_request(
        build_create(settings, _create({"payment_method": "pm_card_visa"})))
    assert body == {
        "amount": 14990,
        "currency": "pen",
        "payment_method_types": ["card"],
        "metadata": {"payment_id": "01JDPAY", "order_reference": "pedido-1042", "canal": "web"},
        "description": "Audífonos inalámbricos",
        "statement_descriptor_suffix": "PEDIDO",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "return_url": "https://tienda.pe/vuelta",
    }


def test_status_maps_cover_exactly_what_the_spec_names(stripe_spec: Any) -> None:
    """Every PaymentIntent status of the spec's enum, and every Refund status its
    description names, has a meaning here, and nothing else does."""
    import re

    from pasarela_stripe.api import INTENT_STATUSES, REFUND_STATUSES

    schemas = stripe_spec.raw["components"]["schemas"]
    intent = set(schemas["payment_intent"]["properties"]["status"]["enum"]) - {None}
    assert set(INTENT_STATUSES) == intent
    described = schemas["refund"]["properties"]["status"]["description"]
    assert set(REFUND_STATUSES) == set(re.findall(r"`([a-z_]+)`", described))
