"""The adapter's exchanges, pinned: recorded against the sandbox, replayed offline.

The cassette holds a USD-charged PagoEfectivo ticket, a BCP bank transfer, a card paid
at once, its partial refund and that refund's status; bodies are matched after secret
scrubbing. CI replays it with the network blocked. To record again, delete the YAML
file and run ``pytest adapters/dlocal/tests/test_cassettes.py --record-mode=once``
(the sandbox is served on 127.0.0.1:8815 with a fixed clock and seed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pasarela_dlocal import DlocalProvider, DlocalSettings
from pasarela_dlocal.sandbox import create_app

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.next_action import BankTransfer, ShowCashCode
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.cassettes import base_vcr_config
from pasarela.testing.helpers import serve_app

from .conftest import make_order


BASE = "http://127.0.0.1:8815"
LOGIN, TRANS, SECRET = "cassette-login", "cassette-trans-key", "cassette-secret-key"
NOW = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return base_vcr_config(secret_fields=DlocalProvider.secret_fields,
                           secret_values=[TRANS, SECRET], extra_headers=["x-trans-key"])


@pytest.fixture
def recording_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    if (request.config.getoption("--record-mode") or "none") == "none":
        yield
        return
    app = create_app(x_login=LOGIN, x_trans_key=TRANS, secret_key=SECRET, seed=1,
                     clock=lambda: NOW)
    with serve_app(app, port=8815):
        yield


def _request(n: int, method: Method, **params: Any) -> CreateRequest:
    order = make_order(reference=f"cassette-{n}")
    if method is Method.CARD:
        params.setdefault("card_token", "CV-cassette")
    return CreateRequest(payment_id=f"01JH5ZQ0DLOCAL{n}", idempotency_key=f"cassette-{n}",
                         order=order, method=method, amount=order.amount, expires_at=None,
                         params=params)


@pytest.mark.vcr
@pytest.mark.block_network
@pytest.mark.usefixtures("recording_sandbox")
def test_dlocal_exchanges_replayed() -> None:
    provider = DlocalProvider(DlocalSettings(x_login=LOGIN, x_trans_key=TRANS,
                                             secret_key=SECRET, base_url=BASE, max_retries=0),
                              clock=lambda: NOW)

    def run(operation: Operation, make: Any) -> Any:
        with httpx.Client() as client:
            return drive(run_flow(provider, operation, make, sleep_scale=0), client)

    cash = run(Operation.CREATE, lambda: provider.create(
        _request(1, Method.CASH, currency_to_charge="USD")))
    assert isinstance(cash.next_action, ShowCashCode)
    assert cash.next_action.amount == Money.of("40.00", "USD")
    transfer = run(Operation.CREATE, lambda: provider.create(_request(2, Method.BANK_TRANSFER)))
    assert isinstance(transfer.next_action, BankTransfer)
    card_request = _request(3, Method.CARD)
    card = run(Operation.CREATE, lambda: provider.create(card_request))
    assert card.status is Status.SUCCEEDED
    payment = Payment(id=card_request.payment_id, order_reference="cassette-3",
                      idempotency_key="cassette-3", provider="dlocal", method=Method.CARD,
                      amount=card_request.amount, status=Status.SUCCEEDED, version=2,
                      created_at=NOW, updated_at=NOW, provider_reference=card.reference)
    assert run(Operation.GET, lambda: provider.get(payment)).status is Status.SUCCEEDED
    refund = run(Operation.REFUND, lambda: provider.refund(
        payment, Money.of("49.90", "PEN"), refund_id="01JH5ZQ0REF1", reason="duplicado"))
    assert refund.status is RefundStatus.SUCCEEDED
    ours = Refund(id="01JH5ZQ0REF1", payment_id=payment.id, amount=refund.amount,
                  status=RefundStatus.PENDING, created_at=NOW,
                  provider_reference=refund.reference)
    again = run(Operation.GET_REFUND, lambda: provider.get_refund(payment, ours))
    assert again.status is RefundStatus.SUCCEEDED
