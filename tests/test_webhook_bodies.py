"""A pathological delivery is its own 4xx: it never changes another delivery's answer."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pasarela.api import Pasarela
from pasarela.errors import WebhookError
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.provider import WebhookEvent
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin, sign_fake_webhook
from pasarela.testing.helpers import ManualClock


@pytest.fixture
def setup(store_url: str) -> Any:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    with Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False, clock=clock,
                  transport=gateway.transport(), store=Store(store_url, upgrade=True)) as p:
        yield p, gateway, clock


def _signed(body: bytes, clock: ManualClock) -> tuple[str, dict[str, str], bytes]:
    return "fake", sign_fake_webhook(body, "whsec_fake_123", int(clock().timestamp())), body


def test_a_deep_body_is_a_400_and_the_rest_of_its_batch_is_applied(setup: Any) -> None:
    pasarela, gateway, clock = setup
    payments = [pasarela.pay(Order(reference=f"o-{i}", amount=Money.of("10.00", "PEN"),
                                   customer=Customer(first_name="R", last_name="Q",
                                                     email="r@example.pe")),
                             method="cash", idempotency_key=f"k-{i}") for i in range(4)]
    good = [gateway.settle(p.provider_reference) for p in payments]
    deep = b"[" * 5000 + b"]" * 5000  # valid JSON, deeper than Python's recursion limit
    wrong_type = json.dumps({"id": {"not": "a string"}, "type": 7}).encode()
    batch = [("fake", headers, body) for headers, body in good[:2]]
    batch += [_signed(deep, clock), _signed(wrong_type, clock)]
    batch += [("fake", headers, body) for headers, body in good[2:]]
    started = time.monotonic()
    replies = pasarela.handle_webhooks(batch)
    assert time.monotonic() - started < 10
    codes = [r.status_code if not isinstance(r, Exception) else repr(r) for r in replies]
    assert codes == [200, 200, 400, 400, 200, 200]
    assert all(pasarela.get(p.id).status is Status.SUCCEEDED for p in payments)
    # one by one, the same answers
    assert pasarela.handle_webhook(*_signed(deep, clock)).status_code == 400


@pytest.mark.parametrize(("field", "value"), [
    ("event_id", "evt_\x00"), ("event_id", "e" * 256), ("event_id", ""), ("event_id", 7),
    ("type", "t" * 65), ("provider_reference", "fp_\ud800"), ("payment_id", "p" * 65),
])
def test_an_event_with_unstorable_ids_is_malformed(field: str, value: Any) -> None:
    fields: dict[str, Any] = {"event_id": "evt_1", "type": "payment.succeeded",
                              "provider_reference": "fp_1", field: value}
    with pytest.raises(WebhookError, match=f"malformed event: {field}"):
        WebhookEvent(**fields)


def test_a_signed_event_with_a_nul_in_its_reference_is_a_400_on_every_store(setup: Any) -> None:
    pasarela, _, clock = setup
    body = json.dumps({"id": "evt_nul", "type": "payment.succeeded",
                       "data": {"id": "fp_\u0000", "status": "succeeded", "amount": 1,
                                "currency": "PEN"}}).encode()
    assert pasarela.handle_webhook(*_signed(body, clock)).status_code == 400
