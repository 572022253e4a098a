"""The adapter's exchanges, pinned: recorded against the sandbox, replayed offline.

The cassette under ``cassettes/test_cassettes/`` holds one create (authorization
and CIP), one search and one delete, bodies matched after secret scrubbing. CI
replays it with the network blocked; a change in what the adapter sends fails
here. To record again, delete the YAML file and run::

    pytest adapters/pagoefectivo/tests/test_cassettes.py --record-mode=once

which serves the sandbox on 127.0.0.1:8801 with the clock fixed for the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.sandbox import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
    create_app,
)

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order, Payment
from pasarela.money import Money
from pasarela.next_action import ShowCashCode
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.cassettes import base_vcr_config
from pasarela.testing.helpers import serve_app


BASE = "http://127.0.0.1:8801"
NOW = datetime.fromisoformat("2030-01-15T10:00:00-05:00")
PAYMENT_ID = "01JH5ZQ0CASSETTE0000000001"


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return base_vcr_config(secret_fields=PagoEfectivoProvider.secret_fields,
                             secret_values=[DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY])


@pytest.fixture
def recording_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Serve the sandbox on :8801 only while recording; replay needs no server."""
    if (request.config.getoption("--record-mode") or "none") == "none":
        yield
        return
    app = create_app(clock=lambda: NOW, seed=1)
    with serve_app(app, port=8801):
        yield


@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recording_sandbox")
def test_create_search_delete_replayed() -> None:
    provider = PagoEfectivoProvider(
        PagoEfectivoSettings(base_url=BASE, access_key=DEFAULT_ACCESS_KEY,
                             secret_key=DEFAULT_SECRET_KEY, service_id=DEFAULT_SERVICE_ID),
        clock=lambda: NOW,
    )
    order = Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"),
                  description="Audífonos inalámbricos",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe", phone="+51 987 654 321",
                                    document=("DNI", "45678912")))
    request = CreateRequest(payment_id=PAYMENT_ID, idempotency_key="pedido-1042", order=order,
                            method=Method.CASH, amount=order.amount,
                            expires_at=NOW + timedelta(hours=48))
    with httpx.Client() as client:
        created = drive(run_flow(provider, Operation.CREATE, lambda: provider.create(request)),
                        client)
        assert created.status is Status.PENDING
        assert isinstance(created.next_action, ShowCashCode)
        assert created.expires_at == NOW + timedelta(hours=48)
        payment = Payment(id=PAYMENT_ID, order_reference="pedido-1042",
                          idempotency_key="pedido-1042", provider="pagoefectivo",
                          method="cash", amount=order.amount, status=Status.PENDING,
                          version=2, created_at=NOW, updated_at=NOW,
                          provider_reference=created.reference)
        found = drive(run_flow(provider, Operation.GET, lambda: provider.get(payment)), client)
        assert (found.status, found.reference) == (Status.PENDING, created.reference)
        canceled = drive(run_flow(provider, Operation.CANCEL, lambda: provider.cancel(payment)),
                         client)
        assert canceled.status is Status.CANCELED
