"""The Mercado Pago sandbox as a Starlette app: the Payments API paths plus control.

API (Bearer access token; JSON; Mercado Pago's error shape)::

    POST /v1/payments              GET /v1/payments/search      GET|PUT /v1/payments/{id}
    POST /v1/payments/{id}/refunds GET /v1/payments/{id}/refunds[/{refund}]
    POST /platforms/pci/yape/v1/payment?public_key=    POST /v1/card_tokens?public_key=
    POST /v1/account/release_report   GET /v1/account/release_report/list
    GET  /v1/account/release_report/{file_name}     GET|POST|PUT .../release_report/config
    GET  /sandbox/tickets/{id}     the PagoEfectivo ticket page (external_resource_url)

Control: the shared routes, and::

    GET  /_control/payments                 every payment
    POST /_control/payments/{id}/pay        a bank agent takes the cash (pending ticket)
    POST /_control/payments/{id}/expire     the ticket expires now

One-shot faults name ``create``, ``get``, ``search``, ``cancel``, ``refund``,
``get_refund``, ``yape_token``, ``card_token``, ``report`` (or ``any``): ``500``,
``500_after`` (done, then 500), ``hang``, ``hang_after``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pasarela.testing.sandbox import ControlRoute, hold, sandbox_app
from pasarela_mercadopago.sandbox.state import ApiError, MercadoPagoSandbox


__all__ = ["create_app"]

Answer = tuple[int, Any]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # only to write JSON numbers: the text below is exact
    raise TypeError(type(value).__name__)


def _dumps(payload: Any) -> bytes:
    # Decimals are written as exact JSON numbers: each becomes a marked string first.
    def mark(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return f"\u0000{obj:f}\u0000"
        if isinstance(obj, dict):
            return {k: mark(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [mark(v) for v in obj]
        return obj

    text = json.dumps(mark(payload), ensure_ascii=False)
    return text.replace('"\\u0000', "").replace('\\u0000"', "").encode("utf-8")


def _respond(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(payload), status, media_type="application/json", headers=headers)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid JSON body", code=1) from None


async def _api(request: Request, operation: str,
               run: Callable[[MercadoPagoSandbox, Any], Answer], *, auth: bool = True
               ) -> Response:
    sandbox: MercadoPagoSandbox = request.app.state.sandbox
    fault = sandbox.take_fault(operation)
    try:
        if auth:
            sandbox.authenticate(request.headers.get("authorization", ""))
        else:
            sandbox.check_public_key(request.query_params.get("public_key"))
        if fault is not None and fault.kind == "500":
            raise ApiError(500, "internal_error", error="internal_error")
        if fault is not None and fault.kind == "hang":
            await hold(request, fault.seconds)
            raise ApiError(500, "internal_error", error="internal_error")
        body = await _body(request)
        with sandbox.lock:
            status, payload = run(sandbox, body)
    except ApiError as exc:
        await sandbox.wait_latency()
        headers = {"X-Sandbox-Param": exc.param} if exc.param else None
        return _respond(exc.status, exc.body(), headers)
    if fault is not None and fault.kind == "500_after":
        await sandbox.wait_latency()
        return _respond(500, ApiError(500, "internal_error", error="internal_error").body())
    if fault is not None and fault.kind == "hang_after":
        await hold(request, fault.seconds)
    await sandbox.wait_latency()
    return _respond(status, payload)


def _routes() -> list[Route]:
    async def payments(request: Request) -> Response:
        key = request.headers.get("x-idempotency-key")
        base = str(request.base_url)
        return await _api(request, "create", lambda s, body: s.idempotent(
            key, "payments", lambda: s.create_payment(body, base)))

    async def search(request: Request) -> Response:
        query = dict(request.query_params)
        return await _api(request, "search", lambda s, body: (200, s.search(query)))

    async def one(request: Request) -> Response:
        ident = request.path_params["id"]
        if request.method == "PUT":
            return await _api(request, "cancel", lambda s, body: (200, s.update(ident, body)))
        return await _api(request, "get", lambda s, body: (200, s.payment(ident)))

    async def refunds(request: Request) -> Response:
        ident = request.path_params["id"]
        if request.method == "GET":
            return await _api(request, "get_refund", lambda s, body: (
                200, (s.payment(ident), s.refunds.get(ident, []))[1]))
        key = request.headers.get("x-idempotency-key")
        return await _api(request, "refund", lambda s, body: s.idempotent(
            key, f"refunds:{ident}", lambda: s.refund(ident, body)))

    async def one_refund(request: Request) -> Response:
        ident, refund = request.path_params["id"], request.path_params["refund"]
        return await _api(request, "get_refund", lambda s, body: (
            200, s.get_refund(ident, refund)))

    async def yape(request: Request) -> Response:
        return await _api(request, "yape_token", lambda s, body: (200, s.yape_token(body)),
                          auth=False)

    async def card(request: Request) -> Response:
        return await _api(request, "card_token", lambda s, body: (201, s.card_token(body)),
                          auth=False)

    async def report(request: Request) -> Response:
        return await _api(request, "report", lambda s, body: (202, s.generate_report(body)))

    async def report_list(request: Request) -> Response:
        return await _api(request, "report", lambda s, body: (200, list(s.reports)))

    async def report_config(request: Request) -> Response:
        def run(s: MercadoPagoSandbox, body: Any) -> Answer:
            if request.method != "GET" and isinstance(body, dict):
                s.report_config.update({k: v for k, v in body.items()
                                        if k in ("separator", "display_timezone",
                                                 "file_name_prefix", "columns")})
            return 200, dict(s.report_config)
        return await _api(request, "report", run)

    async def report_file(request: Request) -> Response:
        sandbox: MercadoPagoSandbox = request.app.state.sandbox
        fault = sandbox.take_fault("report")
        if request.headers.get("authorization", "") != f"Bearer {sandbox.access_token}":
            return _respond(401, ApiError(401, "invalid access token",
                                          error="unauthorized").body())
        if fault is not None and fault.kind in ("500", "500_after"):
            return _respond(500, ApiError(500, "internal_error", error="internal_error").body())
        content = sandbox.report_files.get(request.path_params["file_name"])
        if content is None:
            return _respond(404, ApiError(404, "report not found", error="not_found").body())
        await sandbox.wait_latency()
        return Response(content, 200, media_type="text/csv")

    async def ticket(request: Request) -> Response:
        sandbox: MercadoPagoSandbox = request.app.state.sandbox
        found = sandbox.payments.get(request.path_params["id"])
        if found is None or found["payment_method_id"] != "pagoefectivo_atm":
            return HTMLResponse("<!doctype html><title>Mercado Pago</title>", 404)
        code = html.escape(str(found["transaction_details"]["payment_method_reference_id"]))
        return HTMLResponse(
            f"<!doctype html><html lang=es><meta charset=utf-8><title>PagoEfectivo {code}"
            f"</title><h1>Código PagoEfectivo: {code}</h1><p>Monto: S/ "
            f"{html.escape(str(found['transaction_amount']))}</p><p>Estado: "
            f"{html.escape(found['status'])}</p><p>(sandbox de Mercado Pago)</p></html>")

    return [
        Route("/v1/payments", payments, methods=["POST"]),
        Route("/v1/payments/search", search, methods=["GET"]),
        Route("/v1/payments/{id}", one, methods=["GET", "PUT"]),
        Route("/v1/payments/{id}/refunds", refunds, methods=["GET", "POST"]),
        Route("/v1/payments/{id}/refunds/{refund}", one_refund, methods=["GET"]),
        Route("/platforms/pci/yape/v1/payment", yape, methods=["POST"]),
        Route("/v1/card_tokens", card, methods=["POST"]),
        Route("/v1/account/release_report", report, methods=["POST"]),
        Route("/v1/account/release_report/list", report_list, methods=["GET"]),
        Route("/v1/account/release_report/config", report_config,
              methods=["GET", "POST", "PUT"]),
        Route("/v1/account/release_report/{file_name}", report_file, methods=["GET"]),
        Route("/sandbox/tickets/{id}", ticket, methods=["GET"]),
    ]


def _control(sandbox: MercadoPagoSandbox) -> list[ControlRoute]:
    async def listed(request: Request, body: dict[str, Any]) -> Response:
        return _respond(200, list(sandbox.payments.values()))

    async def action(request: Request, body: dict[str, Any]) -> Response:
        ident, name = request.path_params["id"], request.path_params["action"]
        with sandbox.lock:
            if name == "pay":
                payment = sandbox.pay_ticket(ident)
            elif name == "expire":
                payment = sandbox.expire(ident)
            else:
                return _respond(404, {"error": f"unknown action {name!r}"})
        # Waited for off the event loop: the receiver may fetch the payment from this
        # sandbox before it answers the notification (pasarela verifies by fetching).
        await anyio.to_thread.run_sync(lambda: sandbox.courier.drain(timeout=10))
        return _respond(200, payment)

    return [
        ControlRoute("/payments", ("GET",), listed, "every payment"),
        ControlRoute("/payments/{id}/{action}", ("POST",), action,
                     "pay (a bank agent takes the cash for a pending ticket), expire"),
    ]


def create_app(**options: Any) -> Starlette:
    """The sandbox ASGI app (``sandbox_factory`` of the provider). *options* go to
    :class:`MercadoPagoSandbox` (``access_token``, ``public_key``, ``webhook_secret``,
    ``clock``, ``seed``) or are knobs (``webhook_url``, ``latency``, ...)."""
    sandbox = MercadoPagoSandbox(**options)
    return sandbox_app(sandbox, api=_routes(), control=_control(sandbox))
