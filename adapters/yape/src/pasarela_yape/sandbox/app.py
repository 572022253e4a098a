"""The Starlette app: Culqi v2 paths, and ``/_control/`` to play the customer.

API (as Culqi; JSON; ``Authorization: Bearer``):

- ``POST /v2/tokens/yape`` (``pk_test_``) phone + 6-digit approval code -> ``ype_test_`` token
- ``POST /v2/charges``, ``GET /v2/charges``, ``GET /v2/charges/{id}`` (``sk_test_``)
- ``POST /v2/orders``, ``GET /v2/orders``, ``GET|DELETE /v2/orders/{id}``
- ``POST /v2/refunds``, ``GET /v2/refunds``, ``GET /v2/refunds/{id}``

Culqi's Custom Checkout, a stand-in (:mod:`pasarela_yape.sandbox.checkout`):
``GET /checkout-js`` and the frame it opens, ``GET /checkout/orders/{id}``, which pays
the order through ``/_control/orders/{id}/pay``.

Control (no auth): the routes every sandbox has (``GET /_control`` lists them:
knobs, clock, one-shot faults, the webhook log, flush, replay, reset; see
:mod:`pasarela.testing.sandbox.control`), and Culqi's own:

- ``POST /_control/orders/{id}/pay`` ``{"wallet": "yape"|"plin", "late": false}``
- ``POST /_control/orders/{id}/expire``; ``POST /_control/sweep`` (expire due orders)

A refusal of a field answers Culqi's error body and, for tests only, the field in an
``X-Sandbox-Param`` header (no recorded Culqi error names its field).

A one-shot fault names a route (``{"operation": "POST /v2/charges", "kind":
"500"|"500_after"|"hang"|"hang_after", "times": 1}``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pasarela.testing.sandbox import ControlRoute, Delivery, hold, sandbox_app
from pasarela_yape.sandbox.answers import CulqiError, public
from pasarela_yape.sandbox.checkout import checkout_routes
from pasarela_yape.sandbox.state import CulqiSandbox


__all__ = ["create_app"]

Handler = Callable[[Request, Any], dict[str, Any]]


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


def _server_error(path: str) -> JSONResponse:
    # The shape of the genuine Culqi 500 in the recorded cassettes: not an error object.
    return _json({
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": 500, "error": "Internal Server Error",
        "message": "sandbox fault: the request failed inside Culqi", "path": path,
    }, 500)


def _api_routes(sandbox: CulqiSandbox) -> list[Route]:
    def api(route: str, key: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            fault = sandbox.take_fault(route)
            kind = fault.kind if fault is not None else None
            if kind in ("500", "hang"):
                if fault is not None and kind == "hang":
                    await hold(request, fault.seconds)
                await sandbox.wait_latency()
                return _server_error(request.url.path)
            extra: dict[str, str] = {}
            try:
                sandbox.check_key(request.headers.get("authorization"), key)
                body: Any = None
                if request.method == "POST":
                    raw = await request.body()
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError:
                        body = None
                    if not isinstance(body, dict):
                        raise CulqiError(400, "invalid_request_error",
                                         "El cuerpo de la petición debe ser un objeto JSON.")
                payload = handler(request, body)
                status = 201 if request.method == "POST" else 200
            except CulqiError as exc:
                payload, status = exc.body, exc.status
                if exc.param:  # for tests; Culqi's error body names no field
                    extra["X-Sandbox-Param"] = exc.param
            if fault is not None and kind == "hang_after":
                await hold(request, fault.seconds)
            await sandbox.wait_latency()
            if kind == "500_after":
                return _server_error(request.url.path)
            return JSONResponse(payload, status_code=status, headers=extra)

        return endpoint

    def listed(request: Request, kind: str) -> dict[str, Any]:
        found = sandbox.search(kind, dict(request.query_params))
        after = found["paging"]["cursors"]["after"]
        if after:
            found["paging"]["next"] = str(request.url.include_query_params(after=after))
        return found

    get_order = api("GET /v2/orders/{id}", "sk",
                    lambda r, b: public(sandbox.order(r.path_params["id"])))
    delete_order = api("DELETE /v2/orders/{id}", "sk",
                       lambda r, b: sandbox.delete_order(r.path_params["id"]))

    async def order_ops(request: Request) -> Response:
        return await (delete_order if request.method == "DELETE" else get_order)(request)

    return [
        Route("/v2/tokens/yape", api("POST /v2/tokens/yape", "pk",
                                     lambda r, b: sandbox.create_yape_token(b)),
              methods=["POST"]),
        Route("/v2/charges", api("POST /v2/charges", "sk",
                                 lambda r, b: sandbox.create_charge(b)), methods=["POST"]),
        Route("/v2/charges", api("GET /v2/charges", "sk", lambda r, b: listed(r, "charges")),
              methods=["GET"]),
        Route("/v2/charges/{id}", api("GET /v2/charges/{id}", "sk",
                                      lambda r, b: sandbox.get_charge(r.path_params["id"])),
              methods=["GET"]),
        Route("/v2/orders", api("POST /v2/orders", "sk", lambda r, b: sandbox.create_order(b)),
              methods=["POST"]),
        Route("/v2/orders", api("GET /v2/orders", "sk", lambda r, b: listed(r, "orders")),
              methods=["GET"]),
        Route("/v2/orders/{id}", order_ops, methods=["GET", "DELETE"]),
        Route("/v2/refunds", api("POST /v2/refunds", "sk",
                                 lambda r, b: sandbox.create_refund(b)), methods=["POST"]),
        Route("/v2/refunds", api("GET /v2/refunds", "sk", lambda r, b: listed(r, "refunds")),
              methods=["GET"]),
        Route("/v2/refunds/{id}", api("GET /v2/refunds/{id}", "sk",
                                      lambda r, b: sandbox.get_refund(r.path_params["id"])),
              methods=["GET"]),
    ]


def _control(sandbox: CulqiSandbox) -> list[ControlRoute]:
    async def changed(order: dict[str, Any]) -> list[Delivery]:
        sent = sandbox.send_webhook(sandbox.order_event(order))
        await sandbox.courier.settled(sent)
        return sent

    async def pay(request: Request, body: dict[str, Any]) -> Any:
        paid = sandbox.pay_order(request.path_params["id"], str(body.get("wallet", "yape")),
                                 late=bool(body.get("late", False)))
        sent = await changed(paid)
        return {"order": public(paid), "wallet": paid["_wallet"],
                "webhooks": [d.describe() for d in sent]}

    async def expire(request: Request, body: dict[str, Any]) -> Any:
        expired = sandbox.expire_order(request.path_params["id"])
        sent = await changed(expired)
        return {"order": public(expired), "webhooks": [d.describe() for d in sent]}

    async def sweep(request: Request, body: dict[str, Any]) -> Any:
        sent: list[Delivery] = []
        for order_id in sandbox.due_orders():
            sent += await changed(sandbox.expire_order(order_id))
        return {"webhooks": [d.describe() for d in sent]}

    return [
        ControlRoute("/orders/{id}/pay", ("POST",), pay,
                     '{"wallet": "yape"|"plin", "late": false}: the customer pays a QR order'),
        ControlRoute("/orders/{id}/expire", ("POST",), expire, "the QR order expires now"),
        ControlRoute("/sweep", ("POST",), sweep, "expire the orders whose time is up"),
    ]


def create_app(**options: Any) -> Starlette:
    """The Yape (Culqi) sandbox as an ASGI app.

    Options: every :class:`~pasarela_yape.sandbox.knobs.CulqiKnobs` field
    (``latency``, ``fail_rate``, ``webhook_url``, ``duplicate_webhooks``,
    ``lose_webhooks``, ``reorder_webhooks``, ``yape_outcomes``, ...), plus ``seed``
    (reproducible ids and faults), ``clock`` (a ``() -> datetime``, the base of the
    sandbox's clock), and ``public_key`` / ``secret_key`` to accept only those exact
    keys (else any ``pk_test_``/``sk_test_``).
    """
    sandbox = CulqiSandbox(**options)
    return sandbox_app(sandbox, api=[*_api_routes(sandbox), *checkout_routes(sandbox)],
                       control=_control(sandbox))
