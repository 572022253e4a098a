"""Fixtures: the dLocal sandbox on loopback (pasarela's ``pasarela_sandbox``), its
settings, a notification receiver, and sample orders and requests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pasarela_dlocal import DlocalProvider, DlocalSettings
from pasarela_dlocal.sandbox import create_app

from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox


@pytest.fixture
def served(pasarela_sandbox: Callable[..., ServedSandbox]) -> Iterator[ServedSandbox]:
    # Retries in real time, fast; test_notification_schedule.py plays dLocal's own waits.
    served = pasarela_sandbox(create_app, seed=5, webhook_retry_delay=0.05,
                              notification_schedule="fast")
    yield served
    served.sandbox.courier.drain(timeout=10)


@pytest.fixture
def sandbox(served: ServedSandbox) -> Any:
    return served.sandbox


@pytest.fixture
def receiver(pasarela_receiver: WebhookReceiver) -> WebhookReceiver:
    return pasarela_receiver


@pytest.fixture
def settings(served: ServedSandbox) -> DlocalSettings:
    return DlocalSettings(**served.settings(), max_retries=1)


@pytest.fixture
def provider(settings: DlocalSettings) -> DlocalProvider:
    return DlocalProvider(settings)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


_IDS = itertools.count(1)


def new_id() -> str:
    """A payment id like the core's (26 upper-case characters), unique in the run."""
    return f"01JDLOCAL{next(_IDS):017d}"


def make_order(**changes: Any) -> Order:
    values: dict[str, Any] = {
        "reference": "pedido-2042", "amount": Money.of("149.90", "PEN"),
        "description": "Audífonos inalámbricos",
        "customer": Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                             phone="+51 987 654 321", document=("DNI", "45678912")),
    }
    values.update(changes)
    return Order(**values)


def make_request(method: Method = Method.CASH, order: Order | None = None,
                 **params: Any) -> CreateRequest:
    order = order or make_order()
    if method is Method.CARD:
        params.setdefault("card_token", "CV-sandbox-token")
    return CreateRequest(payment_id=new_id(), idempotency_key=new_id(), order=order,
                         method=method, amount=order.amount, expires_at=None, params=params)
