"""Fixtures: the sandbox and a notification receiver served by uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.sandbox import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
    Knobs,
    Sandbox,
    create_app,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from ulid import ULID

from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest
from pasarela.testing.helpers import serve_app as serve


@attrs.define
class Served:
    url: str
    sandbox: Sandbox

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}/_control{path}", timeout=5, **kwargs)


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[Served]:
    sandbox = Sandbox(seed=7)
    with serve(create_app(sandbox=sandbox)) as url:
        yield Served(url, sandbox)


@pytest.fixture
def served(_sandbox_server: Served) -> Iterator[Served]:
    """The running sandbox, reset to its defaults for each test."""
    sandbox = _sandbox_server.sandbox
    sandbox.reset()
    sandbox.knobs = Knobs()
    sandbox.notifier.retry_delay = 0.05
    yield _sandbox_server
    sandbox.notifier.wait(len(sandbox.notifier.deliveries), timeout=10)


@attrs.define
class Receiver:
    """A merchant endpoint that records notifications and answers with *statuses*."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = attrs.Factory(list)
    statuses: list[int] = attrs.Factory(list)
    lock: threading.Lock = attrs.Factory(threading.Lock)
    handler: Callable[[dict[str, str], bytes], int] | None = None

    def wait(self, count: int, timeout: float = 10) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise TimeoutError(f"received {len(self.received)} of {count}")


@pytest.fixture(scope="session")
def _receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()

    async def hook(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        with receiver.lock:
            receiver.received.append((headers, body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
        if receiver.handler is not None:
            status = receiver.handler(headers, body)
        return Response(b"{}", status_code=status, media_type="application/json")

    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        receiver.url = f"{url}/hook"
        yield receiver


@pytest.fixture
def receiver(_receiver_server: Receiver) -> Receiver:
    with _receiver_server.lock:
        _receiver_server.received.clear()
        _receiver_server.statuses.clear()
    _receiver_server.handler = None
    return _receiver_server


@pytest.fixture
def settings(served: Served) -> PagoEfectivoSettings:
    return PagoEfectivoSettings(base_url=served.url, access_key=DEFAULT_ACCESS_KEY,
                                secret_key=DEFAULT_SECRET_KEY, service_id=DEFAULT_SERVICE_ID,
                                max_retries=2)


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
