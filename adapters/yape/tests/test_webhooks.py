"""Culqi webhook deliveries: ``data`` is a JSON string inside the JSON; nothing is signed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pasarela_yape import YapeProvider

from pasarela.errors import WebhookError
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.provider import WebhookHeaders


NOW = datetime(2030, 1, 1, tzinfo=UTC)

# The shape Culqi's own PrestaShop module receives (providers.md §4.4).
ORDER_PAID = {
    "object": "order", "id": "ord_live_BfjQayoI9DhEwUBG", "amount": 1320,
    "payment_code": "36338442", "currency_code": "PEN", "description": "Orden de compra 416",
    "order_number": "#id-2570", "state": "paid", "total_fee": None, "net_amount": None,
    "fee_details": None, "creation_date": 1596247975, "expiration_date": 1596334374,
    "updated_at": None, "paid_at": None, "available_on": None, "metadata": {},
}


def delivery(data: Any, **event: Any) -> bytes:
    body = {"object": "event", "id": "evt_live_Tf1WJVWcSHF9R3HA",
            "type": "order.status.changed", "creation_date": 1596248428134, "data": data}
    body.update(event)
    return json.dumps(body).encode()


@pytest.fixture
def yape(h: Any) -> YapeProvider:
    return YapeProvider(h.make_settings())


def test_order_status_changed_with_data_as_a_json_string(yape: YapeProvider) -> None:
    (event,) = yape.parse_webhook(WebhookHeaders(), delivery(json.dumps(ORDER_PAID)), now=NOW)
    assert event.event_id == "evt_live_Tf1WJVWcSHF9R3HA"
    assert event.type == "order.status.changed"
    assert event.provider_reference == "ord_live_BfjQayoI9DhEwUBG"
    assert event.verify_by_fetch is True  # Culqi signs nothing: the core fetches the order
    assert event.status is Status.SUCCEEDED
    assert event.amount == Money(1320, "PEN")
    assert event.occurred_at == datetime(2020, 8, 1, 2, 20, 28, 134000, tzinfo=UTC)
    assert event.raw["data"]["state"] == "paid"


def test_data_already_decoded_is_accepted(yape: YapeProvider) -> None:
    (event,) = yape.parse_webhook(WebhookHeaders(), delivery(ORDER_PAID), now=NOW)
    assert event.provider_reference == "ord_live_BfjQayoI9DhEwUBG"


@pytest.mark.parametrize(("state", "status"), [
    ("pending", Status.PENDING), ("expired", Status.EXPIRED), ("deleted", Status.CANCELED),
    ("something-new", None),
])
def test_order_states_are_informational(yape: YapeProvider, state: str, status: Any) -> None:
    body = delivery(json.dumps({**ORDER_PAID, "state": state}))
    (event,) = yape.parse_webhook(WebhookHeaders(), body, now=NOW)
    assert event.status is status
    assert event.verify_by_fetch is True


def test_charge_events_point_at_the_charge(yape: YapeProvider) -> None:
    charge = {"object": "charge", "id": "chr_test_1", "amount": 2500, "currency_code": "PEN",
              "capture": True, "outcome": {"type": "venta_exitosa"}}
    (event,) = yape.parse_webhook(
        WebhookHeaders(), delivery(json.dumps(charge), type="charge.creation.succeeded"), now=NOW)
    assert event.provider_reference == "chr_test_1"
    assert event.status is Status.SUCCEEDED
    assert event.verify_by_fetch is True


def test_other_objects_carry_nothing_to_apply(yape: YapeProvider) -> None:
    customer = {"object": "customer", "id": "cus_test_1"}
    body = delivery(json.dumps(customer), type="customer.creation.succeeded")
    assert yape.parse_webhook(WebhookHeaders(), body, now=NOW) == []


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[1, 2]", b"\xff\xfe",
    delivery(json.dumps(ORDER_PAID), id=None),
    delivery(json.dumps(ORDER_PAID), id=""),
    delivery(json.dumps(ORDER_PAID), type=None),
    delivery(json.dumps(ORDER_PAID), object="charge"),
    delivery("{not json"),
    delivery(json.dumps([ORDER_PAID])),
    delivery(None),
    delivery(json.dumps({**ORDER_PAID, "id": "chr_test_1"})),
    delivery(json.dumps({**ORDER_PAID, "id": None})),
    delivery(json.dumps({"object": "charge", "id": "ord_test_1"})),
])
def test_malformed_deliveries_are_webhook_errors(yape: YapeProvider, body: bytes) -> None:
    with pytest.raises(WebhookError) as caught:
        yape.parse_webhook(WebhookHeaders(), body, now=NOW)
    assert caught.value.provider == "yape"
    assert yape.webhook_reply(caught.value).status_code == 400


def test_a_good_delivery_is_acknowledged(yape: YapeProvider) -> None:
    assert yape.webhook_reply(None).status_code == 200
