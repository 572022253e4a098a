"""The sandbox as a Starlette app: dLocal's Payins paths, and control routes under
``/_control`` that play the customer.

API: ``POST /payments``, ``POST /secure_payments``, ``GET /payments/{id}``,
``GET /payments/{id}/status``, ``POST /payments/{id}/cancel``, ``POST /refunds``,
``GET /refunds/{id}/status``; every request signed (``V2-HMAC-SHA256``).

Control: the routes every sandbox has (``GET /_control``) and dLocal's own::

    POST /_control/payments/{id}/pay       the customer pays the ticket or the transfer
    POST /_control/payments/{id}/expire    a pending payment is cancelled (status 400)
    POST /_control/payments/{id}/notify    send the payment's notification again
    POST /_control/refunds/{id}/settle     {"status": "SUCCESS" | "REJECTED"}

A status code in a payment's ``description`` forces that status, as in dLocal's own
sandbox (docs.dlocal.com/reference/payment-status-codes).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pasarela.testing.sandbox import ControlRoute, hold, sandbox_app
from pasarela_dlocal import api
from pasarela_dlocal.sandbox.simulator import Answer, DlocalSandbox


__all__ = ["create_app"]


def _respond(answer: Answer) -> Response:
    status, body = answer
    return Response(api.dumps(body), status_code=status, media_type="application/json")


async def _api(request: Request, operation: str, handle: Any) -> Response:
    sandbox: DlocalSandbox = request.app.state.sandbox
    raw = await request.body()
    fault = sandbox.take_fault(operation)
    if fault is not None and fault.kind == "500":
        answer: Answer = (500, {"message": "Internal server error."})
    else:
        refused = sandbox.authenticate(request.headers, raw)
        body: Any = None
        if refused is None and raw:
            try:
                body = api.loads(raw)
            except ValueError:
                refused = (400, {"code": 5000, "message": "Invalid request."})
        with sandbox.lock:
            answer = refused or handle(sandbox, body, request)
        if fault is not None and fault.kind == "timeout":
            await hold(request, fault.seconds)
    await sandbox.wait_latency()
    return _respond(answer)


async def payments(request: Request) -> Response:
    card = request.url.path.endswith("/secure_payments")
    return await _api(request, "create", lambda s, body, r: s.create(
        body, card=card, base_url=str(r.base_url)))


async def payment(request: Request) -> Response:
    pid = request.path_params["pid"]
    return await _api(request, "get", lambda s, body, r: s.get(pid))


async def payment_status(request: Request) -> Response:
    pid = request.path_params["pid"]
    return await _api(request, "get", lambda s, body, r: s.get(pid, status_only=True))


async def cancel(request: Request) -> Response:
    pid = request.path_params["pid"]
    return await _api(request, "cancel", lambda s, body, r: s.cancel(pid))


async def refunds(request: Request) -> Response:
    return await _api(request, "refund", lambda s, body, r: s.refund(body))


async def refund_status(request: Request) -> Response:
    rid = request.path_params["rid"]
    return await _api(request, "get_refund", lambda s, body, r: s.get_refund(rid))


def _control(sandbox: DlocalSandbox) -> list[ControlRoute]:
    async def act(request: Request, body: dict[str, Any]) -> Response:
        pid, name = request.path_params["pid"], request.path_params["action"]
        with sandbox.lock:
            if name == "pay":
                answer, sent = sandbox.pay(pid)
            elif name == "expire":
                answer, sent = sandbox.expire(pid)
            elif name == "notify":
                answer, sent = sandbox.resend(pid)
            else:
                answer, sent = (404, {"message": f"unknown action {name!r}"}), []
        await sandbox.courier.settled(sent)
        return _respond(answer)

    async def settle(request: Request, body: dict[str, Any]) -> Response:
        with sandbox.lock:
            answer, sent = sandbox.settle_refund(request.path_params["rid"],
                                                 str(body.get("status", "SUCCESS")))
        await sandbox.courier.settled(sent)
        return _respond(answer)

    return [
        ControlRoute("/payments/{pid}/{action}", ("POST",), act,
                     "pay (the customer pays the ticket or transfer), expire, notify"),
        ControlRoute("/refunds/{rid}/settle", ("POST",), settle,
                     '{"status": "SUCCESS" | "REJECTED"}: a pending refund ends'),
    ]


def create_app(**options: Any) -> Starlette:
    """The sandbox ASGI app. *options* go to :class:`DlocalSandbox` (``x_login``,
    ``x_trans_key``, ``secret_key``, ``clock``, ``seed``) or are knobs
    (``webhook_url``, ``usd_rate``, ``refund_status``, ...)."""
    sandbox = DlocalSandbox(**options)
    api_routes = [
        Route("/payments", payments, methods=["POST"]),
        Route("/secure_payments", payments, methods=["POST"]),
        Route("/payments/{pid}", payment, methods=["GET"]),
        Route("/payments/{pid}/status", payment_status, methods=["GET"]),
        Route("/payments/{pid}/cancel", cancel, methods=["POST"]),
        Route("/refunds", refunds, methods=["POST"]),
        Route("/refunds/{rid}/status", refund_status, methods=["GET"]),
    ]
    return sandbox_app(sandbox, api=api_routes, control=_control(sandbox))
