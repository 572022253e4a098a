"""A toy provider's sandbox built on the toolkit, to test the toolkit by itself."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pasarela.testing.sandbox import (
    ControlRoute,
    Credential,
    Knobs,
    Sandbox,
    ServedSandbox,
    Webhook,
    count,
    hold,
    json_response,
    sandbox_app,
    seconds,
)


TOY_KEY = "toy_test_0123456789"
TOY_SECRET = "toy-webhook-secret"


@attrs.define(kw_only=True)
class ToyKnobs(Knobs):
    """The shared knobs, a toy limit, and a fast retry (redeclared default)."""

    webhook_retry_delay: float = seconds(0.01, "seconds before the first retry (fast)")
    max_items: int = count(10, "most items the toy account holds")


class ToySandbox(Sandbox):
    name = "toy"
    title = "Toy Payments"
    default_port = 8899
    knobs_class = ToyKnobs
    operations = ("create",)
    fault_kinds = ("500", "hang_after")

    def __init__(self, **options: Any) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        super().__init__(**options)

    def clear(self) -> None:
        self.items.clear()

    def counts(self) -> dict[str, int]:
        return {"items": len(self.items)}

    def credentials(self) -> list[Credential]:
        return [Credential("api_key", TOY_KEY), Credential("webhook_secret", TOY_SECRET)]

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        body = json.dumps(webhook.payload, separators=(",", ":")).encode()
        signature = hmac.new(TOY_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "Toy-Signature": signature}


def toy_app(**options: Any) -> Starlette:
    """The toy sandbox's app: ``POST /v1/items`` and ``POST /_control/items/{id}/ship``."""
    sandbox = ToySandbox(**options)

    async def create(request: Request) -> Response:
        fault = sandbox.take_fault("create")
        if fault is not None and fault.kind == "500":
            await sandbox.wait_latency()
            return json_response({"error": "boom"}, 500)
        item = {"id": f"it_{len(sandbox.items) + 1}", "state": "new",
                "created": sandbox.now().isoformat()}
        sandbox.items[item["id"]] = item
        if fault is not None:
            await hold(request, fault.seconds)
        await sandbox.wait_latency()
        return json_response(item, 201)

    async def ship(request: Request, body: dict[str, Any]) -> Any:
        item = sandbox.items[request.path_params["id"]]
        item["state"] = "shipped"
        event = {"id": f"ev_{item['id']}_{len(sandbox.courier.deliveries)}",
                 "type": "item.shipped", "item": dict(item)}
        sent = sandbox.send_webhook(Webhook(event["id"], event["type"], event, item["id"]))
        await sandbox.courier.settled(sent)
        return {"webhooks": [d.describe() for d in sent]}

    control = [ControlRoute("/items/{id}/ship", ("POST",), ship, "ship an item")]
    return sandbox_app(sandbox, api=[Route("/v1/items", create, methods=["POST"])],
                       control=control)


@pytest.fixture
def toy(pasarela_sandbox: Callable[..., ServedSandbox]) -> ServedSandbox:
    """The toy sandbox on loopback, reset."""
    return pasarela_sandbox(toy_app, seed=3)


@pytest.fixture
def toy_factory() -> Callable[..., Starlette]:
    return toy_app
