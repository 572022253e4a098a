"""The adapter's exchanges, pinned: recorded against the sandbox, replayed offline.

The cassettes under ``cassettes/test_cassettes/`` hold an approval-code payment
(Yape token, charge), the search that finds a charge whose answer was lost, a
partial refund asked about by its id and found by ours, and a wallet QR order
created (Culqi's checkout for it as the next action), fetched and deleted; bodies are matched after
secret scrubbing. CI replays them with the network blocked: a change in what the
adapter sends fails here. To record again, delete the YAML files and run::

    pytest adapters/yape/tests/test_cassettes.py --record-mode=once

which serves the sandbox on 127.0.0.1:8802 with the clock fixed for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pasarela_yape import YapeProvider, YapeSettings
from pasarela_yape.sandbox import create_app

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.next_action import OpenCheckout
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.cassettes import base_vcr_config
from pasarela.testing.helpers import serve_app


BASE = "http://127.0.0.1:8802"
PK = "pk_test_cassette0000001"
SK = "sk_test_cassette0000001"
NOW = datetime.fromisoformat("2030-01-15T10:00:00-05:00")


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return base_vcr_config(secret_fields=YapeProvider.secret_fields, secret_values=[PK, SK])


@pytest.fixture
def recording_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the sandbox on :8802 only while recording; replay needs no server."""
    if (request.config.getoption("--record-mode") or "none") == "none":
        yield
        return
    app = create_app(public_key=PK, secret_key=SK, seed=4, clock=lambda: NOW)
    with serve_app(app, port=8802):
        yield


def provider() -> YapeProvider:
    settings = YapeSettings(public_key=PK, secret_key=SK, base_url=BASE, max_retries=0)
    return YapeProvider(settings, clock=lambda: NOW)


def request(payment_id: str, **params: Any) -> CreateRequest:
    order = Order(reference="pedido-2030", amount=Money.of("80.00", "PEN"),
                  description="Zapatillas de running",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe", phone="+51 987 654 321"))
    return CreateRequest(payment_id=payment_id, idempotency_key=payment_id, order=order,
                         method=Method.WALLET, amount=order.amount,
                         expires_at=NOW + timedelta(minutes=20), params=params)


def payment(create: CreateRequest, status: Status, reference: str | None) -> Payment:
    return Payment(id=create.payment_id, order_reference=create.order.reference,
                   idempotency_key=create.idempotency_key, provider="yape",
                   method=Method.WALLET, amount=create.amount, status=status, version=2,
                   created_at=NOW, updated_at=NOW, provider_reference=reference,
                   order=create.order)


def run(yape: YapeProvider, operation: Operation, make: Any) -> Any:
    with httpx.Client() as client:
        return drive(run_flow(yape, operation, make, sleep_scale=0), client)


@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recording_sandbox")
def test_approval_code_charge_search_and_refund_replayed() -> None:
    yape = provider()
    create = request("01JH5ZQ0CASSETTEYAPE000001", phone="900000001", code="425251")
    charged = run(yape, Operation.CREATE, lambda: yape.create(create))
    assert charged.status is Status.SUCCEEDED
    assert charged.reference.startswith("chr_test_")
    lost = payment(create, Status.UNKNOWN, None)  # as if the charge's answer was lost
    found = run(yape, Operation.GET, lambda: yape.get(lost))
    assert found.status is Status.SUCCEEDED
    assert found.reference == charged.reference
    paid = payment(create, Status.SUCCEEDED, charged.reference)
    refund = run(yape, Operation.REFUND, lambda: yape.refund(
        paid, Money.of("30.00", "PEN"), refund_id="01JH5ZQ0CASSETTEREFUND0001",
        reason="solicitud_comprador"))
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.amount == Money.of("30.00", "PEN")
    ours = Refund(id="01JH5ZQ0CASSETTEREFUND0001", payment_id=paid.id,
                  amount=Money.of("30.00", "PEN"), status=RefundStatus.PENDING, created_at=NOW,
                  provider_reference=refund.reference)
    by_id = run(yape, Operation.GET_REFUND, lambda: yape.get_refund(paid, ours))
    assert (by_id.status, by_id.reference) == (RefundStatus.SUCCEEDED, refund.reference)
    lost_refund = Refund(id=ours.id, payment_id=paid.id, amount=ours.amount,
                         status=RefundStatus.PENDING, created_at=NOW)
    found_refund = run(yape, Operation.GET_REFUND, lambda: yape.get_refund(paid, lost_refund))
    assert (found_refund.status, found_refund.reference) == (RefundStatus.SUCCEEDED,
                                                             refund.reference)


@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recording_sandbox")
def test_qr_order_create_get_delete_replayed() -> None:
    yape = provider()
    create = request("01JH5ZQ0CASSETTEQR00000001", flow="qr")
    created = run(yape, Operation.CREATE, lambda: yape.create(create))
    assert created.status is Status.PENDING
    assert isinstance(created.next_action, OpenCheckout)
    assert created.next_action.settings["order"] == created.reference
    assert created.next_action.script_url == f"{BASE}/checkout-js"
    assert created.expires_at == NOW + timedelta(minutes=20)
    pending = payment(create, Status.PENDING, created.reference)
    assert run(yape, Operation.GET, lambda: yape.get(pending)).status is Status.PENDING
    canceled = run(yape, Operation.CANCEL, lambda: yape.cancel(pending))
    assert canceled.status is Status.CANCELED
