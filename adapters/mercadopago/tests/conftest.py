"""Fixtures: the sandbox on loopback (pasarela's pytest plugin serves it), settings that
reach it, and requests for each method."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pasarela_mercadopago import MercadoPagoProvider, MercadoPagoSettings
from pasarela_mercadopago.sandbox import create_app
from ulid import ULID

from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest
from pasarela.testing.sandbox import ServedSandbox


@pytest.fixture
def served(pasarela_sandbox: Callable[..., ServedSandbox]) -> Iterator[ServedSandbox]:
    served = pasarela_sandbox(create_app, seed=7, webhook_retry_delay=0.05)
    yield served
    served.sandbox.courier.drain(timeout=10)


@pytest.fixture
def settings(served: ServedSandbox) -> MercadoPagoSettings:
    return MercadoPagoSettings(**served.settings(), max_retries=1)


@pytest.fixture
def provider(settings: MercadoPagoSettings) -> MercadoPagoProvider:
    return MercadoPagoProvider(settings)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def card_token(served: ServedSandbox, name: str = "APRO") -> str:
    """A token as MercadoPago.js makes one in the browser (a test card, *name*)."""
    answer = served.http.post(
        f"/v1/card_tokens?public_key={served.sandbox.public_key}",
        json={"card_number": "5031755734530604", "expiration_month": 11,
              "expiration_year": 2030, "security_code": "123",
              "cardholder": {"name": name, "identification": {"type": "DNI",
                                                               "number": "45678912"}}})
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["id"]
    return token


def make_request(method: Method = Method.CASH, *, amount: str = "149.90",
                 **params: Any) -> CreateRequest:
    order = Order(reference=f"pedido-{ULID()}", amount=Money.of(amount, "PEN"),
                  description="Audífonos inalámbricos",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe", phone="+51 987 654 321",
                                    document=("DNI", "45678912")))
    return CreateRequest(payment_id=str(ULID()), idempotency_key=order.reference, order=order,
                         method=method, amount=order.amount, expires_at=None, params=params)


@pytest.fixture(name="card_token")
def card_token_fixture(served: ServedSandbox) -> Callable[..., str]:
    """``card_token(name="APRO")``: a test card's token from the sandbox."""
    return lambda name="APRO": card_token(served, name)


@pytest.fixture(name="make_request")
def make_request_fixture() -> Callable[..., CreateRequest]:
    """``make_request(method, amount="149.90", **params)``: Rosa's order."""
    return make_request
