"""The sandbox as a Starlette app: PagoEfectivo's five endpoints, the CIP page, and
control routes under ``/_control`` that play the bank agent.

API (as PE spec v1.1): ``POST /v1/authorizations``, ``POST /v1/cips``,
``POST /v1/cips/search``, ``PATCH /v1/cips/{cip}``, ``DELETE /v1/cips/{cip}``;
``GET /payment/{guid}.html`` is the ``cipUrl`` page.

Control: the routes every sandbox has (``GET /_control`` lists them: knobs, clock,
faults, the notification log, reset; see :mod:`pasarela.testing.sandbox.control`),
and PagoEfectivo's own::

    POST /_control/notification-url     {"url": "http://127.0.0.1:8000/webhooks/pagoefectivo"}
    POST /_control/tokens/expire        every issued token expires now
    GET  /_control/stats                calls per operation, CIPs, tokens
    GET  /_control/cips                 every CIP;  GET /_control/cips/{cip}: one
    POST /_control/cips/{cip}/pay       a bank agent takes the money ({"race": false,
                                        "notify": true}; race: an expired CIP is paid as
                                        if one second before its expiry)
    POST /_control/cips/{cip}/expire    the CIP's dateExpiry becomes now
    POST /_control/cips/{cip}/refund    send cip.refunded (an unverified event)
    POST /_control/cips/{cip}/notify    send the cip.paid notification again

One-shot faults (``POST /_control/faults``) name an operation (``authorization``,
``create``, ``search``, ``update``, ``delete`` or ``any``) and a kind: ``500`` (166,
nothing done), ``401``, ``508``, ``timeout`` (done, then the answer waits
``seconds``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pasarela import jsontext
from pasarela.testing.sandbox import ControlRoute, hold, sandbox_app
from pasarela_pagoefectivo.sandbox.state import STATUS_NAMES, Acted, Answer, PagoEfectivoSandbox


__all__ = ["create_app"]

_FAULT_CODES = {"500": "166", "401": "401", "508": "508"}


def _respond(answer: Answer) -> Response:
    status, body = answer
    return Response(jsontext.dumps(body), status_code=status,
                    media_type="application/json; charset=utf-8")


def _sandbox(request: Request) -> PagoEfectivoSandbox:
    sandbox: PagoEfectivoSandbox = request.app.state.sandbox
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
    request: Request, operation: str, handle: Callable[[PagoEfectivoSandbox, Any, str], Answer]
) -> Response:
    sandbox = _sandbox(request)
    language = _language(request)
    fault = sandbox.take_fault(operation)
    if fault is not None and fault.kind in _FAULT_CODES:
        answer = sandbox.error(_FAULT_CODES[fault.kind], language)
    else:
        refused = None
        if operation != "authorization":
            refused = sandbox.check_token(request.headers.get("authorization"), language)
        answer = refused or handle(sandbox, await _body(request), language)
        if fault is not None and fault.kind == "timeout":
            await hold(request, fault.seconds)  # done, but the answer comes too late
    await sandbox.wait_latency()
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


def _control(sandbox: PagoEfectivoSandbox) -> list[ControlRoute]:
    async def notification_url(request: Request, body: dict[str, Any]) -> Any:
        url = body.get("url")
        if url is not None and not isinstance(url, str):
            raise ValueError("url: must be text or null")
        return sandbox.configure({"webhook_url": url})

    async def tokens_expire(request: Request, body: dict[str, Any]) -> Any:
        return {"expired": sandbox.expire_tokens()}

    async def stats(request: Request, body: dict[str, Any]) -> Any:
        return {"calls": dict(sandbox.calls), "cips": len(sandbox.cips),
                "tokens": len(sandbox.tokens)}

    async def listed(request: Request, body: dict[str, Any]) -> Response:
        cip = request.path_params.get("cip")
        if cip is None:
            return _respond((200, {"cips": [sandbox.describe(r)
                                            for r in sandbox.cips.values()]}))
        record = next((r for r in sandbox.cips.values() if str(r.number) == cip), None)
        if record is None:
            return _respond((404, {"error": f"no CIP {cip}"}))
        return _respond((200, sandbox.describe(record)))

    async def action(request: Request, body: dict[str, Any]) -> Response:
        cip, name = request.path_params["cip"], request.path_params["action"]
        acted: Acted
        if name == "pay":
            acted = sandbox.pay(cip, race=bool(body.get("race", False)),
                                notify=bool(body.get("notify", True)))
        elif name == "expire":
            acted = sandbox.expire(cip)
        elif name == "refund":
            acted = sandbox.refund(cip)
        elif name == "notify":
            acted = sandbox.resend(cip)
        else:
            acted = (404, {"error": f"unknown action {name!r}"}), []
        answer, sent = acted
        await sandbox.courier.settled(sent)
        return _respond(answer)

    return [
        ControlRoute("/notification-url", ("POST",), notification_url,
                     '{"url": ...}: where notifications go (the webhook_url knob)'),
        ControlRoute("/tokens/expire", ("POST",), tokens_expire, "every token expires now"),
        ControlRoute("/stats", ("GET",), stats, "calls per operation, CIPs, tokens"),
        ControlRoute("/cips", ("GET",), listed, "every CIP"),
        ControlRoute("/cips/{cip}", ("GET",), listed, "one CIP"),
        ControlRoute("/cips/{cip}/{action}", ("POST",), action,
                     "pay (a bank agent takes the money; {\"race\": true} pays an expired "
                     "CIP), expire, refund, notify (send cip.paid again)"),
    ]


def create_app(**options: Any) -> Starlette:
    """The sandbox ASGI app. *options* go to :class:`PagoEfectivoSandbox`
    (``access_key``, ``secret_key``, ``service_id``, ``clock``, ``seed``,
    ``first_cip``) or are knobs (``webhook_url``, ``max_amount``, ``latency``,
    ``strict``, ...). ``app.state.sandbox`` is the sandbox."""
    sandbox = PagoEfectivoSandbox(**options)
    api = [
        Route("/v1/authorizations", authorizations, methods=["POST"]),
        Route("/v1/cips", cips, methods=["POST"]),
        Route("/v1/cips/search", search, methods=["POST"]),
        Route("/v1/cips/{cip}", one_cip, methods=["PATCH", "DELETE"]),
        Route("/payment/{guid}.html", cip_page, methods=["GET"]),
    ]
    return sandbox_app(sandbox, api=api, control=_control(sandbox))
