"""The adapter's exchanges, pinned: recorded against the sandbox, replayed offline.

The cassette under ``cassettes/test_cassettes/`` holds a PagoEfectivo cash create, its
get and cancel, a Yape token and payment, a partial refund and its get. CI replays it
with the network blocked, so a change in what the adapter sends fails here. To record
again, delete the YAML file and run::

    pytest adapters/mercadopago/tests/test_cassettes.py --record-mode=once

which serves the sandbox on 127.0.0.1:8814 with a fixed clock and seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest
from pasarela_mercadopago import MercadoPagoProvider, MercadoPagoSettings
from pasarela_mercadopago.sandbox import ACCESS_TOKEN, PUBLIC_KEY, create_app

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.cassettes import base_vcr_config
from pasarela.testing.helpers import serve_app


BASE = "http://127.0.0.1:8814"
NOW = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return base_vcr_config(secret_fields=MercadoPagoProvider.secret_fields,
                           secret_values=[ACCESS_TOKEN], extra_headers=("x-idempotency-key",))


@pytest.fixture
def recording_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the sandbox on :8814 only while recording; replay needs no server."""
    if (request.config.getoption("--record-mode") or "none") == "none":
        yield
        return
    with serve_app(create_app(seed=1, clock=lambda: NOW), port=8814):
        yield


def _request(key: str, method: Method, **params: Any) -> CreateRequest:
    order = Order(reference=key, amount=Money.of("149.90", "PEN"), description="Audífonos",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe"))
    return CreateRequest(payment_id=f"01JH5ZQ0{key.upper()}", idempotency_key=key,
                         order=order, method=method, amount=order.amount,
                         expires_at=NOW + timedelta(days=2), params=params)


def _payment(req: CreateRequest, reference: str | None) -> Payment:
    return Payment(id=req.payment_id, order_reference=req.order.reference,
                   idempotency_key=req.idempotency_key, provider="mercadopago",
                   method=req.method, amount=req.amount, status=Status.PENDING, version=2,
                   created_at=NOW, updated_at=NOW, provider_reference=reference, order=req.order)


@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recording_sandbox")
def test_cash_wallet_and_refund_exchanges_replayed() -> None:
    provider = MercadoPagoProvider(MercadoPagoSettings(
        access_token=ACCESS_TOKEN, public_key=PUBLIC_KEY, base_url=BASE, max_retries=0),
        clock=lambda: NOW)

    def run(operation: Operation, make: Any) -> Any:
        with httpx.Client() as client:
            return drive(run_flow(provider, operation, make, sleep_scale=0), client)

    cash = _request("cassette-cash", Method.CASH)
    created = run(Operation.CREATE, lambda: provider.create(cash))
    assert created.status is Status.PENDING
    assert created.next_action.type == "show_cash_code"
    payment = _payment(cash, created.reference)
    assert run(Operation.GET, lambda: provider.get(payment)).status is Status.PENDING
    assert run(Operation.CANCEL, lambda: provider.cancel(payment)).status is Status.CANCELED

    yape = _request("cassette-yape", Method.WALLET, phone="111111111", otp="123456")
    paid = run(Operation.CREATE, lambda: provider.create(yape))
    assert paid.status is Status.SUCCEEDED
    wallet = attrs.evolve(_payment(yape, paid.reference), status=Status.SUCCEEDED)
    made = run(Operation.REFUND, lambda: provider.refund(
        wallet, Money.of("49.90", "PEN"), refund_id="01JH5ZQ0REFUND1", reason="duplicate"))
    assert made.status is RefundStatus.SUCCEEDED
    assert made.amount == Money(4990, "PEN")
    ours = Refund(id="01JH5ZQ0REFUND1", payment_id=wallet.id, amount=Money(4990, "PEN"),
                  status=RefundStatus.PENDING, created_at=NOW, provider_reference=made.reference)
    again = run(Operation.GET_REFUND, lambda: provider.get_refund(wallet, ours))
    assert (again.reference, again.status) == (made.reference, RefundStatus.SUCCEEDED)
