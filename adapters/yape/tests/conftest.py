"""Fixtures: the Culqi cassettes beside the repository, and servers on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pasarela_yape import YapeProvider, YapeSettings
from pasarela_yape.sandbox import create_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order, Payment
from pasarela.money import Money
from pasarela.provider import CreateRequest


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


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # A pre-bound socket misses asyncio's TCP_NODELAY: without it every keep-alive
        # answer waits ~40 ms for a delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none",
                                http="h11", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], Served]]:
    """Serve any ASGI app on loopback for one test."""
    started: list[Served] = []

    def start(app: Any) -> Served:
        started.append(Served(app))
        return started[-1]

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Served]:
    served = Served(create_app(public_key=PK, secret_key=SK, seed=7))
    yield served
    served.stop()


class Control:
    """Drives the sandbox's ``/_control/`` endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def post(self, path: str, **body: Any) -> Any:
        response = self.http.post(f"/_control{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def config(self, **knobs: Any) -> Any:
        return self.post("/config", **knobs)

    def fault(self, route: str, kind: str, count: int = 1) -> Any:
        return self.post("/faults", route=route, kind=kind, count=count)

    def webhooks(self) -> list[dict[str, Any]]:
        response = self.http.get("/_control/webhooks", params={"wait": "1"})
        assert response.status_code == 200
        return list(response.json()["deliveries"])


@pytest.fixture
def sandbox(sandbox_server: Served) -> Iterator[Control]:
    control = Control(sandbox_server.url)
    control.post("/reset")
    yield control
    control.http.close()


class Receiver:
    """A webhook endpoint that records what it gets and answers *status*."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.status = 200
        self.on_receive: Callable[[bytes], None] | None = None

        async def hook(request: Request) -> JSONResponse:
            body = await request.body()
            self.received.append(body)
            if self.on_receive is not None:
                self.on_receive(body)
            return JSONResponse({"ok": self.status < 300}, status_code=self.status)

        self.served = Served(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
        self.url = f"{self.served.url}/hook"


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.served.stop()


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.received.clear()
    receiver_server.status = 200
    receiver_server.on_receive = None
    return receiver_server


class Clock:
    """A settable clock for the adapter (the sandbox has its own, moved by control)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_settings(base_url: str = "http://127.0.0.1:9", **overrides: Any) -> YapeSettings:
    values: dict[str, Any] = {"public_key": PK, "secret_key": SK, "base_url": base_url,
                              "timeout": 5.0, "max_retries": 0}
    values.update(overrides)
    return YapeSettings(**values)


@pytest.fixture
def provider(sandbox: Control, clock: Clock) -> YapeProvider:
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
