"""The control routes under ``/_control``: the ones every sandbox has, and the
wrapper a sandbox's own control routes go through.

Shared routes (JSON, no authentication)::

    GET      /_control                  this index: knobs, counts, calls, faults, routes
    GET|POST /_control/config           the knobs; POST sets some: {"latency": 0.2}
    GET|POST /_control/clock            the time; POST {"advance": seconds} or {"set": ISO}
    POST     /_control/faults           a one-shot fault {"operation", "kind", "times", "seconds"}
    GET      /_control/webhooks         the delivery log (?wait=1: after deliveries under way)
    POST     /_control/webhooks/flush   send the held webhooks now
    POST     /_control/webhooks/replay  {"event_id"}: send a logged webhook again
    POST     /_control/reset            back to the start (state, faults, webhooks, clock, knobs)

A control route that makes webhooks answers once those due now are finished
(retries included); delayed and held ones are not waited for. A refused body is a
400 ``{"error": "field: why"}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pasarela.testing.sandbox.courier import Delivery
from pasarela.testing.sandbox.knobs import jsonable


if TYPE_CHECKING:
    from pasarela.testing.sandbox.base import Sandbox


__all__ = ["PREFIX", "ControlHandler", "ControlRoute", "control_routes", "json_response",
           "read_body", "shared_routes"]

PREFIX = "/_control"

ControlHandler = Callable[[Request, dict[str, Any]], Awaitable[Any]]


@attrs.frozen
class ControlRoute:
    """A control route: *path* under ``/_control``, its *methods*, what it does."""

    path: str
    methods: tuple[str, ...]
    handler: ControlHandler
    doc: str

    def line(self) -> str:
        """``POST /_control/reset  back to the start``, for the index and the banner."""
        return f"{'|'.join(self.methods):<8} {PREFIX}{self.path:<24} {self.doc}"


def json_response(payload: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """*payload* as JSON (decimals and times as text)."""
    body = json.dumps(jsonable(payload), ensure_ascii=False).encode("utf-8")
    return Response(body, status, headers=headers, media_type="application/json")


async def read_body(request: Request) -> dict[str, Any]:
    """A control body: a JSON object, a form, or nothing (an empty object)."""
    raw = await request.body()
    if not raw:
        return {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8")))
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("expected a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _endpoint(sandbox: Sandbox, handler: ControlHandler) -> Callable[[Request],
                                                                    Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request, await read_body(request))
        except Exception as exc:
            mapped = sandbox.control_error(exc)
            if mapped is not None:
                return json_response(mapped[1], mapped[0])
            if isinstance(exc, ValueError | TypeError):  # a ValidationError is a ValueError
                return json_response({"error": str(exc)}, 400)
            raise
        if isinstance(result, Response):
            return result
        return json_response(result)

    return endpoint


async def settled(sandbox: Sandbox, deliveries: Sequence[Delivery]) -> list[dict[str, Any]]:
    """Wait for *deliveries* due now; describe them all."""
    await sandbox.courier.settled(deliveries)
    return [d.describe() for d in deliveries]


def shared_routes(sandbox: Sandbox) -> list[ControlRoute]:
    """The control routes every sandbox has (the index comes from :func:`control_routes`)."""

    async def config(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            return sandbox.knobs.describe()
        return sandbox.configure(body)

    async def clock(request: Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            if "set" in body:
                moment = datetime.fromisoformat(str(body["set"]))
                if moment.tzinfo is None:
                    raise ValueError("set: the time needs a UTC offset")
                sandbox.clock.set(moment)
            else:
                advance = body.get("advance", 0)
                if isinstance(advance, bool) or not isinstance(advance, int | float):
                    raise ValueError("advance: must be a number of seconds")
                sandbox.clock.advance(float(advance))
        offset = sandbox.clock.offset / timedelta(seconds=1)
        return {"now": sandbox.now().isoformat(), "offset": offset}

    async def faults(request: Request, body: dict[str, Any]) -> Any:
        sandbox.add_fault(body)
        return {"faults": sandbox.faults.describe()}

    async def webhooks(request: Request, body: dict[str, Any]) -> Any:
        if request.query_params.get("wait"):
            await anyio.to_thread.run_sync(sandbox.courier.drain)
        return {"deliveries": sandbox.courier.log(), "held": len(sandbox.courier.held)}

    async def flush(request: Request, body: dict[str, Any]) -> Any:
        return {"webhooks": await settled(sandbox, sandbox.courier.flush())}

    async def replay(request: Request, body: dict[str, Any]) -> Any:
        event_id = body.get("event_id")
        again = sandbox.courier.replay(str(event_id))
        if not again:
            return json_response({"error": f"event_id: no webhook {event_id!r} was sent"}, 404)
        return {"webhooks": await settled(sandbox, again)}

    async def reset(request: Request, body: dict[str, Any]) -> Any:
        await anyio.to_thread.run_sync(sandbox.reset)
        return {"reset": True}

    return [
        ControlRoute("/config", ("GET", "POST"), config,
                     'the knobs; POST sets some: {"latency": 0.2}'),
        ControlRoute("/clock", ("GET", "POST"), clock,
                     'the time; POST {"advance": seconds} or {"set": "2030-01-01T00:00:00Z"}'),
        ControlRoute("/faults", ("POST",), faults,
                     'a one-shot fault: {"operation", "kind", "times": 1, "seconds": 30}'),
        ControlRoute("/webhooks", ("GET",), webhooks,
                     "the webhook delivery log (?wait=1: once those under way are done)"),
        ControlRoute("/webhooks/flush", ("POST",), flush, "send the held webhooks now"),
        ControlRoute("/webhooks/replay", ("POST",), replay,
                     '{"event_id": ...}: send a logged webhook again'),
        ControlRoute("/reset", ("POST",), reset,
                     "back to the start: state, faults, webhooks, clock, knobs"),
    ]


def control_routes(sandbox: Sandbox, own: Sequence[ControlRoute] = ()) -> list[Route]:
    """Starlette routes for the index, the shared routes and the sandbox's *own*."""
    listed = [*shared_routes(sandbox), *own]

    async def index(request: Request, body: dict[str, Any]) -> Any:
        return {
            "sandbox": sandbox.name, "now": sandbox.now().isoformat(),
            "knobs": sandbox.knobs.describe(),
            "counts": {**sandbox.counts(), "webhooks": len(sandbox.courier.deliveries),
                       "held": len(sandbox.courier.held)},
            "calls": dict(sandbox.calls), "faults": sandbox.faults.describe(),
            "routes": [route.line() for route in listed],
        }

    routes = [Route(PREFIX, _endpoint(sandbox, index), methods=["GET"])]
    routes += [Route(PREFIX + r.path, _endpoint(sandbox, r.handler), methods=list(r.methods))
               for r in listed]
    return routes
