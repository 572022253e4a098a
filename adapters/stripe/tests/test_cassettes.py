"""The adapter's exchanges, pinned: recorded against the sandbox, replayed offline.

The cassette under ``cassettes/test_cassettes/`` holds a create left for Stripe.js,
its server-side confirmation, a get, a partial refund, and a declined
create-and-confirm followed by the cancel that closes it; bodies are matched after
secret scrubbing. CI replays it with the network blocked, so a change in what the
adapter sends fails here. To record again, delete the YAML file and run::

    pytest adapters/stripe/tests/test_cassettes.py --record-mode=once

which serves the sandbox on 127.0.0.1:8812 with a fixed clock and seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pasarela_stripe import StripeDeclinedError, StripeProvider, StripeSettings
from pasarela_stripe.sandbox import create_app

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment, RefundStatus
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.cassettes import base_vcr_config
from pasarela.testing.helpers import serve_app


BASE = "http://127.0.0.1:8812"
KEY = "sk_test_pasarela_cassette_0000000000"
NOW = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return base_vcr_config(secret_fields=StripeProvider.secret_fields, secret_values=[KEY])


@pytest.fixture
def recording_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the sandbox on :8812 only while recording; replay needs no server."""
    if (request.config.getoption("--record-mode") or "none") == "none":
        yield
        return
    app = create_app(api_key=KEY, seed=1, clock=lambda: NOW)
    with serve_app(app, port=8812):
        yield


def _request(key: str, **params: Any) -> CreateRequest:
    order = Order(reference=key, amount=Money.of("149.90", "PEN"), description="Audífonos")
    return CreateRequest(payment_id=f"01JH5ZQ0{key.upper()}", idempotency_key=key,
                         order=order, method=Method.CARD, amount=order.amount,
                         expires_at=None, params=params)


@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recording_sandbox")
def test_card_exchanges_replayed() -> None:
    provider = StripeProvider(StripeSettings(api_key=KEY, base_url=BASE, max_retries=0))

    def run(operation: Operation, make: Any) -> Any:
        with httpx.Client() as client:
            return drive(run_flow(provider, operation, make, sleep_scale=0), client)

    req = _request("cassette-1")
    created = run(Operation.CREATE, lambda: provider.create(req))
    assert created.status is Status.PENDING
    payment = Payment(id=req.payment_id, order_reference=req.order.reference,
                      idempotency_key=req.idempotency_key, provider="stripe",
                      method=Method.CARD, amount=req.amount, status=Status.PENDING, version=2,
                      created_at=NOW, updated_at=NOW, provider_reference=created.reference)
    confirmed = run(Operation.CONFIRM,
                    lambda: provider.confirm(payment, {"payment_method": "pm_card_visa"}))
    assert confirmed.status is Status.SUCCEEDED
    assert run(Operation.GET, lambda: provider.get(payment)).status is Status.SUCCEEDED
    refund = run(Operation.REFUND, lambda: provider.refund(
        payment, Money.of("49.90", "PEN"), refund_id="01JH5ZQ0REFUND1", reason="duplicate"))
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.amount == Money(4990, "PEN")
    declined = _request("cassette-2", payment_method="pm_card_chargeDeclined")
    with pytest.raises(StripeDeclinedError) as info:
        run(Operation.CREATE, lambda: provider.create(declined))
    assert info.value.decline_code == "generic_decline"
