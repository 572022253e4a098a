"""Fixtures: the Culqi cassettes beside the repository, and the sandbox and a webhook
receiver on loopback (from pasarela's pytest plugin: ``pasarela_sandbox``,
``pasarela_receiver``, ``pasarela_serve``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pasarela_yape import YapeProvider, YapeSettings
from pasarela_yape.sandbox import create_app

from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order, Payment
from pasarela.money import Money
from pasarela.provider import CreateRequest
from pasarela.testing.helpers import Served
from pasarela.testing.pytest_plugin import SandboxPool
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import Clock, ServedSandbox


PK = "pk_test_yape0000000001"
SK = "sk_test_yape0000000001"


def repo_root() -> Path:
    """The repository root, found from this file (adapters/yape/tests/conftest.py)."""
    root = Path(__file__).resolve().parents[3]
    assert (root / "core").is_dir(), root
    assert (root / "adapters").is_dir(), root
    return root


@pytest.fixture(scope="session")
def culqi_cassettes() -> Path:
    """``../shared/peers/culqi/cassettes-*`` beside the repository root."""
    peers = repo_root().parent / "shared" / "peers" / "culqi"
    found = sorted(peers.glob("cassettes-*")) if peers.is_dir() else []
    if not found:
        reason = f"Culqi's recorded cassettes are not at {peers} (../shared/peers/culqi)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must have them")
        pytest.skip(reason)
    return found[-1]


@pytest.fixture
def serve(pasarela_serve: Callable[[Any], Served]) -> Callable[[Any], Served]:
    """Serve any ASGI app on loopback for one test (``.url`` is its base URL)."""
    return pasarela_serve


@pytest.fixture(scope="session")
def sandbox_server(pasarela_sandbox_pool: SandboxPool) -> ServedSandbox:
    """The sandbox on loopback, requiring the keys PK and SK (as it is, not reset)."""
    return pasarela_sandbox_pool.get(create_app, public_key=PK, secret_key=SK, seed=7)


@pytest.fixture
def sandbox(pasarela_sandbox: Callable[..., ServedSandbox]) -> ServedSandbox:
    """The same sandbox, reset to its start for the test; drive it with ``post``,
    ``config``, ``fault``, ``webhooks`` and ``http``."""
    return pasarela_sandbox(create_app, public_key=PK, secret_key=SK, seed=7)


@pytest.fixture
def receiver(pasarela_receiver: WebhookReceiver) -> WebhookReceiver:
    """A webhook endpoint that records what it gets (``bodies``) and answers ``status``."""
    return pasarela_receiver


@pytest.fixture
def clock() -> Clock:
    """A settable clock for the adapter (the sandbox has its own, moved by control):
    the wall clock plus ``offset``."""
    return Clock()


def make_settings(base_url: str = "http://127.0.0.1:9", **overrides: Any) -> YapeSettings:
    values: dict[str, Any] = {"public_key": PK, "secret_key": SK, "base_url": base_url,
                              "timeout": 5.0, "max_retries": 0}
    values.update(overrides)
    return YapeSettings(**values)


@pytest.fixture
def provider(sandbox: ServedSandbox, clock: Clock) -> YapeProvider:
    """The Yape provider pointed at a freshly reset sandbox."""
    return YapeProvider(make_settings(sandbox.url), clock=clock)


def customer(**overrides: Any) -> Customer:
    values: dict[str, Any] = {"first_name": "Rosa", "last_name": "Quispe",
                              "email": "rosa@example.pe", "phone": "+51 987 654 321"}
    values.update(overrides)
    return Customer(**values)


def order(amount: str = "25.00", **overrides: Any) -> Order:
    values: dict[str, Any] = {"reference": "pedido-1042", "amount": Money.of(amount, "PEN"),
                              "description": "Audífonos inalámbricos", "customer": customer()}
    values.update(overrides)
    return Order(**values)


def create_request(
    the_order: Order | None = None, *, payment_id: str = "01J0000000PAYMENT000000001",
    expires_at: datetime | None = None, **params: Any,
) -> CreateRequest:
    the_order = the_order or order()
    return CreateRequest(payment_id=payment_id, idempotency_key=f"key-{payment_id}",
                         order=the_order, method=Method.WALLET, amount=the_order.amount,
                         expires_at=expires_at, params=params)


def payment_for(request: CreateRequest, *, status: Status = Status.PENDING,
                reference: str | None = None, created_at: datetime | None = None,
                **extra: Any) -> Payment:
    now = created_at or datetime.now(UTC)
    return Payment(id=request.payment_id, order_reference=request.order.reference,
                   idempotency_key=request.idempotency_key, provider="yape",
                   method=Method.WALLET, amount=request.amount, status=status, version=1,
                   created_at=now, updated_at=now, provider_reference=reference,
                   order=request.order, **extra)


class Helpers:
    """The builders above, for tests (``--import-mode=importlib`` cannot import conftest)."""

    PK = PK
    SK = SK
    customer = staticmethod(customer)
    order = staticmethod(order)
    create_request = staticmethod(create_request)
    payment_for = staticmethod(payment_for)
    make_settings = staticmethod(make_settings)
    repo_root = staticmethod(repo_root)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
