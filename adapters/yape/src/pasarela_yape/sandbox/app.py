"""The Starlette app: Culqi v2 paths, and ``/_control/`` to play the customer and faults.

API (as Culqi; JSON; ``Authorization: Bearer``):

- ``POST /v2/tokens/yape`` (``pk_test_``) phone + 6-digit approval code -> ``ype_test_`` token
- ``POST /v2/charges``, ``GET /v2/charges``, ``GET /v2/charges/{id}`` (``sk_test_``)
- ``POST /v2/orders``, ``GET /v2/orders``, ``GET|DELETE /v2/orders/{id}``
- ``POST /v2/refunds``, ``GET /v2/refunds/{id}``

Control (no auth; for tests, the demo and benchmarks):

- ``GET /_control`` knobs and counts; ``POST /_control/config`` change knobs
- ``POST /_control/orders/{id}/pay`` ``{"wallet": "yape"|"plin", "late": false}``
- ``POST /_control/orders/{id}/expire``; ``POST /_control/sweep`` (expire due orders)
- ``POST /_control/clock`` ``{"advance": seconds}``
- ``POST /_control/faults`` ``{"route": "POST /v2/charges", "kind": "500"|"500_after"|
  "hang"|"hang_after", "count": 1}``
- ``GET /_control/webhooks``; ``POST /_control/webhooks/flush``;
  ``POST /_control/webhooks/replay`` ``{"event_id": "evt_..."}``
- ``POST /_control/reset``
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pasarela_yape.sandbox.knobs import Knobs
from pasarela_yape.sandbox.state import CulqiError, Sandbox, public
from pasarela_yape.sandbox.webhooks import Courier


__all__ = ["create_app"]

Handler = Callable[[Request, Any], dict[str, Any]]
FAULT_KINDS = ("500", "500_after", "hang", "hang_after")


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


def _server_error(path: str) -> JSONResponse:
    # The shape of the genuine Culqi 500 in the recorded cassettes: not an error object.
    return _json({
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "status": 500, "error": "Internal Server Error",
        "message": "sandbox fault: the request failed inside Culqi", "path": path,
    }, 500)


async def _hold(request: Request, seconds: float) -> None:
    """Keep the answer back for *seconds*, or until the client gives up."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.02)


def create_app(**options: Any) -> Starlette:
    """The Yape (Culqi) sandbox as an ASGI app.

    Options: every :class:`~pasarela_yape.sandbox.knobs.Knobs` field (``latency``,
    ``error_rate``, ``webhook_url``, ``duplicates``, ``lose``, ``reorder``,
    ``yape_outcomes``, ...), plus ``seed`` (reproducible ids and faults),
    ``clock`` (a ``() -> float`` of Unix seconds), and ``public_key`` /
    ``secret_key`` to accept only those exact keys (else any ``pk_test_``/``sk_test_``).
    """
    extra = {k: options.pop(k) for k in ("seed", "clock", "public_key", "secret_key")
             if k in options}
    initial = dict(options)
    sandbox = Sandbox(_knobs(Knobs(), initial), **extra)
    courier = Courier(sandbox)

    def api(route: str, key: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            knobs = sandbox.knobs
            if knobs.latency > 0:
                await asyncio.sleep(knobs.latency)
            fault = sandbox.take_fault(route)
            if fault == "500" or (
                fault is None and knobs.error_rate > 0
                and sandbox.random.random() < knobs.error_rate
            ):
                return _server_error(request.url.path)
            if fault == "hang":
                await _hold(request, knobs.hang_seconds)
                return _server_error(request.url.path)
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
            if fault == "500_after":
                return _server_error(request.url.path)
            if fault == "hang_after":
                await _hold(request, knobs.hang_seconds)
            return _json(payload, status)

        return endpoint

    # --- Culqi API --------------------------------------------------------------------

    def token(request: Request, body: Any) -> dict[str, Any]:
        return sandbox.create_yape_token(body)

    def charge(request: Request, body: Any) -> dict[str, Any]:
        return sandbox.create_charge(body)

    def listed(request: Request, kind: str) -> dict[str, Any]:
        found = sandbox.search(kind, dict(request.query_params))
        after = found["paging"]["cursors"]["after"]
        if after:
            found["paging"]["next"] = str(request.url.include_query_params(after=after))
        return found

    def charges(request: Request, body: Any) -> dict[str, Any]:
        return listed(request, "charges")

    def get_charge(request: Request, body: Any) -> dict[str, Any]:
        return sandbox.get_charge(request.path_params["id"])

    def order(request: Request, body: Any) -> dict[str, Any]:
        return sandbox.create_order(body)

    def orders(request: Request, body: Any) -> dict[str, Any]:
        return listed(request, "orders")

    def get_order(request: Request, body: Any) -> dict[str, Any]:
        return public(sandbox.order(request.path_params["id"]))

    def delete_order(request: Request, body: Any) -> dict[str, Any]:
        return sandbox.delete_order(request.path_params["id"])

    def refund(request: Request, body: Any) -> dict[str, Any]:
        return sandbox.create_refund(body)

    def get_refund(request: Request, body: Any) -> dict[str, Any]:
        found = sandbox.refunds.get(request.path_params["id"])
        if found is None:
            raise CulqiError(404, "resource_error", "No existe una devolución con ese id.")
        return found

    async def order_ops(request: Request) -> Response:
        if request.method == "DELETE":
            return await api("DELETE /v2/orders/{id}", "sk", delete_order)(request)
        return await api("GET /v2/orders/{id}", "sk", get_order)(request)

    # --- control ------------------------------------------------------------------------

    async def control_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise CulqiError(400, "invalid_request_error", "expected a JSON object")
        return body

    def control(
        handler: Callable[[Request, dict[str, Any]], Awaitable[Any]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return _json(await handler(request, await control_body(request)))
            except CulqiError as exc:
                return _json(exc.body, exc.status)
            except (ValueError, TypeError) as exc:
                return _json({"error": str(exc)}, 400)

        return endpoint

    async def state(request: Request, body: dict[str, Any]) -> Any:
        return {
            "now": sandbox.now(),
            "knobs": attrs.asdict(sandbox.knobs),
            "counts": {"tokens": len(sandbox.tokens), "charges": len(sandbox.charges),
                       "orders": len(sandbox.orders), "refunds": len(sandbox.refunds),
                       "webhooks": len(courier.log), "held": len(courier.held)},
            "faults": sandbox.faults,
        }

    async def config(request: Request, body: dict[str, Any]) -> Any:
        sandbox.knobs = _knobs(sandbox.knobs, body)
        return attrs.asdict(sandbox.knobs)

    async def pay(request: Request, body: dict[str, Any]) -> Any:
        paid = sandbox.pay_order(request.path_params["id"], str(body.get("wallet", "yape")),
                                 late=bool(body.get("late", False)))
        sent = await courier.emit(courier.event("order.status.changed", paid))
        return {"order": public(paid), "wallet": paid["_wallet"], "webhooks": sent}

    async def expire(request: Request, body: dict[str, Any]) -> Any:
        expired = sandbox.expire_order(request.path_params["id"])
        sent = await courier.emit(courier.event("order.status.changed", expired))
        return {"order": public(expired), "webhooks": sent}

    async def sweep(request: Request, body: dict[str, Any]) -> Any:
        out = []
        for order_id in sandbox.due_orders():
            expired = sandbox.expire_order(order_id)
            out.extend(await courier.emit(courier.event("order.status.changed", expired)))
        return {"webhooks": out}

    async def clock(request: Request, body: dict[str, Any]) -> Any:
        advance = body.get("advance", 0)
        if isinstance(advance, bool) or not isinstance(advance, int | float):
            raise ValueError("advance must be a number of seconds")
        sandbox.offset += float(advance)
        return {"now": sandbox.now(), "offset": sandbox.offset}

    async def faults(request: Request, body: dict[str, Any]) -> Any:
        route, kind = body.get("route"), body.get("kind")
        count = body.get("count", 1)
        if not isinstance(route, str) or " " not in route:
            raise ValueError("route must look like 'POST /v2/charges'")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        sandbox.faults.setdefault(route, []).extend([kind] * count)
        return {"faults": sandbox.faults}

    async def webhooks(request: Request, body: dict[str, Any]) -> Any:
        if request.query_params.get("wait"):
            await courier.drain()
        return {"deliveries": courier.log, "held": len(courier.held)}

    async def flush(request: Request, body: dict[str, Any]) -> Any:
        return {"webhooks": await courier.flush()}

    async def replay(request: Request, body: dict[str, Any]) -> Any:
        found = next((e for e in courier.log if e["event_id"] == body.get("event_id")), None)
        if found is None:
            raise CulqiError(404, "resource_error", "no such event")
        entry = {**found, "status": "queued", "attempts": [], "duplicate": True}
        courier.log.append(entry)
        await courier.deliver(entry)
        return {"webhooks": [entry]}

    async def reset(request: Request, body: dict[str, Any]) -> Any:
        sandbox.tokens.clear()
        sandbox.charges.clear()
        sandbox.orders.clear()
        sandbox.refunds.clear()
        sandbox.faults.clear()
        sandbox.offset = 0.0
        sandbox.knobs = _knobs(Knobs(), initial)
        courier.log.clear()
        courier.held.clear()
        return {"reset": True}

    routes = [
        Route("/v2/tokens/yape", api("POST /v2/tokens/yape", "pk", token), methods=["POST"]),
        Route("/v2/charges", api("POST /v2/charges", "sk", charge), methods=["POST"]),
        Route("/v2/charges", api("GET /v2/charges", "sk", charges), methods=["GET"]),
        Route("/v2/charges/{id}", api("GET /v2/charges/{id}", "sk", get_charge),
              methods=["GET"]),
        Route("/v2/orders", api("POST /v2/orders", "sk", order), methods=["POST"]),
        Route("/v2/orders", api("GET /v2/orders", "sk", orders), methods=["GET"]),
        Route("/v2/orders/{id}", order_ops, methods=["GET", "DELETE"]),
        Route("/v2/refunds", api("POST /v2/refunds", "sk", refund), methods=["POST"]),
        Route("/v2/refunds/{id}", api("GET /v2/refunds/{id}", "sk", get_refund),
              methods=["GET"]),
        Route("/_control", control(state), methods=["GET"]),
        Route("/_control/config", control(config), methods=["POST"]),
        Route("/_control/orders/{id}/pay", control(pay), methods=["POST"]),
        Route("/_control/orders/{id}/expire", control(expire), methods=["POST"]),
        Route("/_control/sweep", control(sweep), methods=["POST"]),
        Route("/_control/clock", control(clock), methods=["POST"]),
        Route("/_control/faults", control(faults), methods=["POST"]),
        Route("/_control/webhooks", control(webhooks), methods=["GET"]),
        Route("/_control/webhooks/flush", control(flush), methods=["POST"]),
        Route("/_control/webhooks/replay", control(replay), methods=["POST"]),
        Route("/_control/reset", control(reset), methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    app.state.courier = courier
    return app


def _knobs(base: Knobs, changes: dict[str, Any]) -> Knobs:
    names = {f.name for f in attrs.fields(Knobs)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise TypeError(f"unknown sandbox option(s): {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(names))}")
    updates = dict(changes)
    if "yape_outcomes" in updates:
        outcomes = updates["yape_outcomes"]
        if not isinstance(outcomes, dict):
            raise TypeError("yape_outcomes must map phone to a decline code or null")
        # Merged into the current matrix: name only the phones that change.
        updates["yape_outcomes"] = {**base.yape_outcomes, **{
            str(k): (None if v in (None, "approve", "approved") else str(v))
            for k, v in outcomes.items()
        }}
    for name in ("latency", "error_rate", "hang_seconds", "webhook_delay", "lose", "token_ttl"):
        if name in updates:
            value = updates[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise TypeError(f"{name} must be a non-negative number")
            updates[name] = float(value)
    return attrs.evolve(base, **updates)
