"""Fixtures: the sandbox and a notification receiver on loopback (pasarela's pytest
plugin serves both: ``pasarela_sandbox``, ``pasarela_receiver``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.sandbox import create_app
from ulid import ULID

from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox


@pytest.fixture
def served(pasarela_sandbox: Callable[..., ServedSandbox]) -> Iterator[ServedSandbox]:
    """The running sandbox, reset to its start for each test (a fast second attempt
    for notifications); its deliveries under way finish before the next test."""
    served = pasarela_sandbox(create_app, seed=7, webhook_retry_delay=0.05)
    yield served
    served.sandbox.courier.drain(timeout=10)


@pytest.fixture
def receiver(pasarela_receiver: WebhookReceiver) -> WebhookReceiver:
    """A merchant endpoint that records notifications (``statuses``: its answers)."""
    return pasarela_receiver


@pytest.fixture
def settings(served: ServedSandbox) -> PagoEfectivoSettings:
    """The settings the sandbox's banner shows, with two retries."""
    return PagoEfectivoSettings(**served.settings(), max_retries=2)


@pytest.fixture
def provider(settings: PagoEfectivoSettings) -> PagoEfectivoProvider:
    return PagoEfectivoProvider(settings)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def make_order(**changes: Any) -> Order:
    values: dict[str, Any] = {
        "reference": "pedido-1042",
        "amount": Money.of("149.90", "PEN"),
        "country": "PE",
        "description": "Audífonos inalámbricos",
        "customer": Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                             phone="+51 987 654 321", document=("DNI", "45678912")),
    }
    values.update(changes)
    return Order(**values)


def make_request(order: Order | None = None, **changes: Any) -> CreateRequest:
    order = order or make_order()
    values: dict[str, Any] = {
        "payment_id": str(ULID()),
        "idempotency_key": "pedido-1042",
        "order": order,
        "method": Method.CASH,
        "amount": order.amount,
        "expires_at": None,
    }
    values.update(changes)
    return CreateRequest(**values)


@pytest.fixture
def create_request() -> CreateRequest:
    return make_request()


@pytest.fixture
def order_factory() -> Callable[..., Order]:
    """``order_factory(**changes)``: Rosa's order for S/ 149.90, changed."""
    return make_order


@pytest.fixture
def request_factory() -> Callable[..., CreateRequest]:
    """``request_factory(order=None, **changes)``: a CreateRequest for the order."""
    return make_request


@pytest.fixture
def now() -> datetime:
    return datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
