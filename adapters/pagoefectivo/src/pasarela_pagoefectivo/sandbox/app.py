"""The sandbox as a Starlette app: PagoEfectivo's five endpoints, the CIP page, and
control endpoints under ``/_control`` that play the bank agent and inject faults.

API (as PE spec v1.1): ``POST /v1/authorizations``, ``POST /v1/cips``,
``POST /v1/cips/search``, ``PATCH /v1/cips/{cip}``, ``DELETE /v1/cips/{cip}``;
``GET /payment/{guid}.html`` is the ``cipUrl`` page.

Control::

    GET  /_control                      what is here
    GET  /_control/config               knobs;  POST: set knobs ({"latency": 0.2, ...})
    POST /_control/notification-url     {"url": "http://127.0.0.1:8000/webhooks/pagoefectivo"}
    POST /_control/faults               {"operation": "create", "kind": "500"|"401"|"508"|"timeout",
                                         "seconds": 30, "times": 1}
    POST /_control/clock                {"advance": 3600} or {"set": "2030-01-01T00:00:00-05:00"}
    POST /_control/tokens/expire        every issued token expires now
    POST /_control/reset                forget CIPs, tokens, faults, deliveries, clock offset
    GET  /_control/stats                calls per endpoint
    GET  /_control/cips                 every CIP;  GET /_control/cips/{cip}: one
    POST /_control/cips/{cip}/pay       a bank agent takes the money ({"race": false,
                                        "notify": true}; race: an expired CIP is paid as
                                        if one second before its expiry)
    POST /_control/cips/{cip}/expire    the CIP's dateExpiry becomes now
    POST /_control/cips/{cip}/refund    send cip.refunded (an unverified event)
    POST /_control/cips/{cip}/notify    send the cip.paid notification again
    GET  /_control/notifications        the delivery log (attempts, status codes)
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pasarela_pagoefectivo import jsontext
from pasarela_pagoefectivo.sandbox.knobs import Fault
from pasarela_pagoefectivo.sandbox.state import STATUS_NAMES, Answer, Sandbox


__all__ = ["create_app"]

_FAULT_CODES = {"500": "166", "401": "401", "508": "508"}


def _respond(answer: Answer) -> Response:
    status, body = answer
    return Response(jsontext.dumps(body), status_code=status,
                    media_type="application/json; charset=utf-8")


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _language(request: Request) -> str:
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "es"


async def _api(
    request: Request, operation: str, handle: Callable[[Sandbox, Any, str], Answer]
) -> Response:
    sandbox = _sandbox(request)
    language = _language(request)
    if sandbox.knobs.latency:
        await anyio.sleep(sandbox.knobs.latency)
    fault = sandbox.take_fault(operation)
    if fault is not None and fault.kind in _FAULT_CODES:
        return _respond(sandbox.error(_FAULT_CODES[fault.kind], language))
    if operation != "authorization":
        refused = sandbox.check_token(request.headers.get("authorization"), language)
        if refused is not None:
            return _respond(refused)
    answer = handle(sandbox, await _body(request), language)
    if fault is not None and fault.kind == "timeout":
        await anyio.sleep(fault.seconds)  # done, but the answer comes too late
    return _respond(answer)


async def authorizations(request: Request) -> Response:
    return await _api(request, "authorization", lambda s, body, lang: s.authorize(body, lang))


async def cips(request: Request) -> Response:
    origin = request.headers.get("origin")
    base = str(request.base_url)
    return await _api(request, "create", lambda s, body, lang: s.create(
        body, origin=origin, base_url=base, language=lang))


async def search(request: Request) -> Response:
    return await _api(request, "search", lambda s, body, lang: s.search(body, lang))


async def one_cip(request: Request) -> Response:
    cip = request.path_params["cip"]
    if request.method == "PATCH":
        return await _api(request, "update", lambda s, body, lang: s.update(cip, body, lang))
    return await _api(request, "delete", lambda s, body, lang: s.delete(cip, lang))


async def cip_page(request: Request) -> Response:
    sandbox = _sandbox(request)
    guid = request.path_params["guid"].upper()
    record = next((r for r in sandbox.cips.values() if r.guid == guid), None)
    if record is None or record.removed_at is not None:
        return HTMLResponse("<!doctype html><title>PagoEfectivo</title>", status_code=404)
    status = STATUS_NAMES[record.status(sandbox.now())]
    amount = html.escape(record.money().format("es_PE"))
    return HTMLResponse(
        "<!doctype html><html lang=es><meta charset=utf-8><title>CIP "
        f"{record.number}</title><h1>Código de pago (CIP): {record.number}</h1>"
        f"<p>Monto: {amount}</p><p>Vence: {html.escape(record.expires_at.isoformat())}</p>"
        f"<p>Estado: {html.escape(status)}</p><p>(sandbox)</p></html>"
    )


# --- control --------------------------------------------------------------------------


async def control_index(request: Request) -> Response:
    return Response(__doc__ or "", media_type="text/plain; charset=utf-8")


async def control_config(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "GET":
        return _respond((200, sandbox.describe_knobs()))
    body = await _body(request)
    if not isinstance(body, dict):
        return _respond((400, {"error": "expected a JSON object of knobs"}))
    try:
        return _respond((200, sandbox.configure(body)))
    except (ValueError, TypeError, ArithmeticError) as exc:
        return _respond((400, {"error": str(exc)}))


async def control_notification_url(request: Request) -> Response:
    body = await _body(request)
    url = body.get("url") if isinstance(body, dict) else None
    if url is not None and not isinstance(url, str):
        return _respond((400, {"error": "url must be text or null"}))
    return _respond((200, _sandbox(request).configure({"notification_url": url})))


async def control_faults(request: Request) -> Response:
    body = await _body(request)
    if not isinstance(body, dict):
        return _respond((400, {"error": "expected {operation, kind, seconds?, times?}"}))
    try:
        fault = Fault(str(body.get("operation", "any")), str(body.get("kind", "")),
                      float(body.get("seconds", 30)), int(body.get("times", 1)))
        _sandbox(request).add_fault(fault)
    except (ValueError, TypeError, ArithmeticError) as exc:
        return _respond((400, {"error": str(exc)}))
    return _respond((200, {"queued": len(_sandbox(request).faults)}))


async def control_clock(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await _body(request)
    if request.method == "POST":
        if not isinstance(body, dict):
            return _respond((400, {"error": "expected {advance} or {set}"}))
        try:
            if "set" in body:
                target = datetime.fromisoformat(str(body["set"]))
                if target.tzinfo is None:
                    raise ValueError("set needs an offset")
                sandbox.offset += target - sandbox.now()
            else:
                sandbox.offset += timedelta(seconds=float(body.get("advance", 0)))
        except (ValueError, TypeError, ArithmeticError) as exc:
            return _respond((400, {"error": str(exc)}))
    return _respond((200, {"now": sandbox.now().isoformat()}))


async def control_tokens_expire(request: Request) -> Response:
    return _respond((200, {"expired": _sandbox(request).expire_tokens()}))


async def control_reset(request: Request) -> Response:
    _sandbox(request).reset()
    return _respond((200, {"reset": True}))


async def control_stats(request: Request) -> Response:
    sandbox = _sandbox(request)
    return _respond((200, {"calls": dict(sandbox.calls), "cips": len(sandbox.cips),
                           "tokens": len(sandbox.tokens)}))


async def control_cips(request: Request) -> Response:
    sandbox = _sandbox(request)
    cip = request.path_params.get("cip")
    if cip is None:
        return _respond((200, {"cips": [sandbox.describe(r) for r in sandbox.cips.values()]}))
    record = next((r for r in sandbox.cips.values() if str(r.number) == cip), None)
    if record is None:
        return _respond((404, {"error": f"no CIP {cip}"}))
    return _respond((200, sandbox.describe(record)))


async def control_cip_action(request: Request) -> Response:
    sandbox = _sandbox(request)
    cip, action = request.path_params["cip"], request.path_params["action"]
    body = await _body(request)
    options = body if isinstance(body, dict) else {}
    if action == "pay":
        answer = sandbox.pay(cip, race=bool(options.get("race", False)),
                             notify=bool(options.get("notify", True)))
    elif action == "expire":
        answer = sandbox.expire(cip)
    elif action == "refund":
        answer = sandbox.refund(cip)
    elif action == "notify":
        answer = sandbox.resend(cip)
    else:
        answer = (404, {"error": f"unknown action {action!r}"})
    return _respond(answer)


async def control_notifications(request: Request) -> Response:
    deliveries = list(_sandbox(request).notifier.deliveries)
    return _respond((200, {"deliveries": [d.to_dict() for d in deliveries]}))


def create_app(**options: Any) -> Starlette:
    """The sandbox ASGI app. *options* go to :class:`Sandbox` (``access_key``,
    ``secret_key``, ``service_id``, ``clock``, ``seed``, ``first_cip``,
    ``notifier``) or are knobs (``notification_url``, ``max_amount``, ``latency``,
    ``strict``, ...). ``app.state.sandbox`` is the :class:`Sandbox`."""
    sandbox: Sandbox = options.pop("sandbox", None) or Sandbox(**options)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.notifier.close()

    routes = [
        Route("/v1/authorizations", authorizations, methods=["POST"]),
        Route("/v1/cips", cips, methods=["POST"]),
        Route("/v1/cips/search", search, methods=["POST"]),
        Route("/v1/cips/{cip}", one_cip, methods=["PATCH", "DELETE"]),
        Route("/payment/{guid}.html", cip_page, methods=["GET"]),
        Route("/_control", control_index, methods=["GET"]),
        Route("/_control/config", control_config, methods=["GET", "POST"]),
        Route("/_control/notification-url", control_notification_url, methods=["POST"]),
        Route("/_control/faults", control_faults, methods=["POST"]),
        Route("/_control/clock", control_clock, methods=["GET", "POST"]),
        Route("/_control/tokens/expire", control_tokens_expire, methods=["POST"]),
        Route("/_control/reset", control_reset, methods=["POST"]),
        Route("/_control/stats", control_stats, methods=["GET"]),
        Route("/_control/cips", control_cips, methods=["GET"]),
        Route("/_control/cips/{cip}", control_cips, methods=["GET"]),
        Route("/_control/cips/{cip}/{action}", control_cip_action, methods=["POST"]),
        Route("/_control/notifications", control_notifications, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
