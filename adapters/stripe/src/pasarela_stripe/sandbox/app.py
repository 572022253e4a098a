"""The Stripe sandbox as a Starlette app: Stripe's HTTP surface plus control routes.

API (Stripe's paths, Bearer or Basic auth with an ``sk_test_`` key, form bodies
in bracket notation, Stripe's error shape, idempotency as
:mod:`.simulator` describes)::

    POST /v1/payment_intents                  GET /v1/payment_intents/search
    GET  /v1/payment_intents/{id}             POST /v1/payment_intents/{id}/confirm
    POST /v1/payment_intents/{id}/cancel      POST /v1/refunds
    GET  /v1/refunds/{id}   GET /v1/refunds   (payment_intent, charge, limit, starting_after)
    GET  /v1/charges/{id}   GET /v1/events/{id}
    GET  /v1/balance_transactions             (created[gte|gt|lt|lte], type, currency,
                                               limit, starting_after, expand[]=data.source)

The events an API call makes are handed to the courier once its answer is sent.

Control (JSON): the routes every sandbox has (``GET /_control`` lists them: knobs,
clock, faults, the webhook log, flush, replay, reset; see
:mod:`pasarela.testing.sandbox.control`), and Stripe's own::

    POST /_control/webhook               {"url", "secret" | "secrets"}
    POST /_control/payment_intents/{id}/authenticate   {"outcome": "succeed" | "fail"}
    POST /_control/payment_intents/{id}/settle         {"outcome": "succeed" | "fail"}
    POST /_control/refunds/{id}/settle                 {"status": "succeeded" | "failed"}
    GET  /_control/events                signed bodies and headers, delivery attempts
    POST /_control/events/{id}/send      deliver one event now
    GET  /_sandbox/3ds/{id}              the 3-D Secure page a redirect_to_url points at
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pasarela.testing.sandbox import ControlRoute, Delivery, sandbox_app
from pasarela_stripe import form
from pasarela_stripe.sandbox.objects import API_VERSION, new_id
from pasarela_stripe.sandbox.simulator import SERVER_ERROR, StripeSandbox
from pasarela_stripe.sandbox.state import APIError


__all__ = ["create_app"]

_VERSION_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")

Operation = Callable[[dict[str, Any]], dict[str, Any]]


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, indent=2).encode("utf-8")


def _json(status: int, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    return Response(_dumps(payload), status, media_type="application/json",
                    headers=dict(headers))


async def call(sandbox: StripeSandbox, request: Request, route: str,
               operation: Operation) -> Response:
    """Run one API *operation* with auth, faults, idempotency, latency and events."""
    request_id = new_id("req", sandbox.random, 14)
    version = request.headers.get("stripe-version", API_VERSION)
    key = request.headers.get("idempotency-key")
    headers = {"Request-Id": request_id, "Stripe-Version": version}
    if key is not None:
        headers["Idempotency-Key"] = key
    try:
        sandbox.authenticate(request.headers.get("authorization", ""))
        if not _VERSION_RE.match(version):
            raise APIError(400, "invalid_request_error",
                           f"Invalid Stripe API version: {version}", saved=False)
        after = sandbox.refuse(route)
        body = await request.body()
        try:
            params = form.decode(body if request.method == "POST" else request.url.query)
        except (form.FormError, UnicodeDecodeError) as exc:
            raise APIError(400, "invalid_request_error", str(exc),
                           param=getattr(exc, "param", None), saved=False) from None
        saved = fingerprint = None
        if request.method == "POST" and key is not None:
            fingerprint = json.dumps([request.method, request.url.path, params], sort_keys=True)
            saved = sandbox.saved_answer(key, fingerprint)
    except APIError as exc:
        await sandbox.wait_latency()
        return _json(exc.status, exc.body(), {**headers, **exc.headers})
    if saved is not None:
        await sandbox.wait_latency()
        return Response(saved.body, saved.status, media_type="application/json",
                        headers={**headers, "Idempotent-Replayed": "true"})
    account = sandbox.account
    account.request_id, account.idempotency_key = request_id, key
    extra: dict[str, str] = {}
    try:
        status, payload, save = 200, operation(params), True
    except APIError as exc:
        status, payload, save = exc.status, exc.body(), exc.saved
        extra = exc.headers
    finally:
        account.request_id = account.idempotency_key = None
    if after is not None:  # done, then a 5xx: what became of it is not said
        error = APIError(500, "api_error", SERVER_ERROR,
                         headers={"Stripe-Should-Retry": "false"})
        status, payload, save, extra = 500, error.body(), True, error.headers
    content = _dumps(payload)
    if key is not None and fingerprint is not None and save:
        sandbox.save(key, fingerprint, status, content)
    webhooks = sandbox.take_webhooks()
    task = BackgroundTask(sandbox.courier.send_all, webhooks) if webhooks else None
    await sandbox.wait_latency()  # after the work: a client that gave up left it done
    return Response(content, status, media_type="application/json",
                    headers={**headers, **extra}, background=task)


def _api_routes(sandbox: StripeSandbox) -> list[Route]:
    def api(route: str, make: Callable[[Request], Operation]
            ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await call(sandbox, request, route, make(request))

        return endpoint

    def base(request: Request) -> str:
        return sandbox.base_url or str(request.base_url)

    def search(request: Request) -> Operation:
        def run(params: dict[str, Any]) -> dict[str, Any]:
            query = params.get("query")
            if not isinstance(query, str):
                raise APIError(400, "invalid_request_error", "Missing required param: query.",
                               param="query", code="parameter_missing", saved=False)
            raw_limit = params.get("limit", "10")
            limit = int(raw_limit) if isinstance(raw_limit, str) and raw_limit.isdigit() else 10
            return sandbox.account.search_intents(query, max(1, min(limit, 100)))
        return run

    def found(kind: str, table: Callable[[], Mapping[str, dict[str, Any]]]
              ) -> Callable[[Request], Operation]:
        def make(request: Request) -> Operation:
            ident = request.path_params["id"]

            def run(params: dict[str, Any]) -> dict[str, Any]:
                obj = table().get(ident)
                if obj is None:
                    raise APIError(404, "invalid_request_error", f"No such {kind}: '{ident}'",
                                   code="resource_missing", param="id", saved=False)
                return obj
            return run
        return make

    def create(request: Request) -> Operation:
        return lambda params: sandbox.account.create_intent(params, base_url=base(request))

    def retrieve(request: Request) -> Operation:
        return lambda params: sandbox.account.retrieve_intent(request.path_params["intent"])

    def confirm(request: Request) -> Operation:
        return lambda params: sandbox.account.confirm_intent(
            request.path_params["intent"], params, base_url=base(request))

    def cancel(request: Request) -> Operation:
        return lambda params: sandbox.account.cancel_intent(request.path_params["intent"],
                                                            params)

    def refund(request: Request) -> Operation:
        return sandbox.account.create_refund

    def retrieve_refund(request: Request) -> Operation:
        return lambda params: sandbox.account.retrieve_refund(request.path_params["id"])

    def list_refunds(request: Request) -> Operation:
        return sandbox.account.list_refunds

    def balance(request: Request) -> Operation:
        return sandbox.account.list_balance_transactions

    intent = "/v1/payment_intents/{intent}"
    routes: list[tuple[str, str, Callable[[Request], Operation]]] = [
        ("POST", "/v1/payment_intents", create),
        ("GET", "/v1/payment_intents/search", search),
        ("GET", intent, retrieve),
        ("POST", intent + "/confirm", confirm),
        ("POST", intent + "/cancel", cancel),
        ("POST", "/v1/refunds", refund),
        ("GET", "/v1/refunds", list_refunds),
        ("GET", "/v1/refunds/{id}", retrieve_refund),
        ("GET", "/v1/charges/{id}", found("charge", lambda: sandbox.account.charges)),
        ("GET", "/v1/balance_transactions", balance),
        ("GET", "/v1/events/{id}", found("event", lambda: sandbox.account.events)),
    ]

    async def not_found(request: Request) -> Response:
        error = APIError(404, "invalid_request_error",
                         f"Unrecognized request URL ({request.method}: {request.url.path}).")
        return _json(404, error.body(), {})

    async def three_d_secure(request: Request) -> Response:
        intent_id = request.path_params["id"]
        found_intent = sandbox.account.intents.get(intent_id)
        if found_intent is None:
            return HTMLResponse("<h1>Unknown PaymentIntent</h1>", 404)
        amount = f"{found_intent['currency'].upper()} {found_intent['amount'] / 100:.2f}"
        action = f"/_control/payment_intents/{intent_id}/authenticate"
        page = f"""<!doctype html><html lang="es"><head><meta charset="utf-8">
<title>3-D Secure (sandbox)</title></head><body>
<h1>Autenticación 3-D Secure (sandbox)</h1><p>{intent_id}: {amount}</p>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="succeed">
<button type="submit">Completar autenticación</button></form>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="fail">
<button type="submit">Fallar autenticación</button></form></body></html>"""
        return HTMLResponse(page)

    return [
        *(Route(path, api(f"{method} {path}", make), methods=[method])
          for method, path, make in routes),
        Route("/v1/{rest:path}", not_found, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/3ds/{id}", three_d_secure, methods=["GET"]),
    ]


def _control(sandbox: StripeSandbox) -> list[ControlRoute]:
    async def delivered() -> list[Delivery]:
        """Send the events the control action made, and wait for them."""
        sent = sandbox.courier.send_all(sandbox.take_webhooks())
        await sandbox.courier.settled(sent)
        return sent

    async def webhook(request: Request, body: dict[str, Any]) -> Any:
        secrets = body.get("secrets") or ([body["secret"]] if body.get("secret") else None)
        changes: dict[str, Any] = {"webhook_url": body.get("url")}
        if secrets:
            changes["webhook_secrets"] = list(secrets)
        sandbox.configure(changes)
        return {"webhook_url": sandbox.knobs.webhook_url}

    async def authenticate(request: Request, body: dict[str, Any]) -> Any:
        outcome = body.get("outcome", "succeed")
        intent = sandbox.account.authenticate(request.path_params["id"], outcome == "succeed")
        await delivered()
        return_url = sandbox.account.return_urls.get(intent["id"])
        if return_url and "form" in request.headers.get("content-type", ""):
            query = urlencode({
                "payment_intent": intent["id"],
                "payment_intent_client_secret": intent["client_secret"],
                "redirect_status": "succeeded" if outcome == "succeed" else "failed",
            })
            separator = "&" if "?" in return_url else "?"
            return RedirectResponse(f"{return_url}{separator}{query}", 303)
        return intent

    async def settle(request: Request, body: dict[str, Any]) -> Any:
        intent = sandbox.account.settle(request.path_params["id"],
                                        body.get("outcome", "succeed") == "succeed")
        await delivered()
        return intent

    async def settle_refund(request: Request, body: dict[str, Any]) -> Any:
        refund = sandbox.account.settle_refund(request.path_params["id"],
                                               str(body.get("status", "succeeded")))
        await delivered()
        return refund

    async def events(request: Request, body: dict[str, Any]) -> Any:
        wanted_type = request.query_params.get("type")
        wanted_object = request.query_params.get("object")
        log = sandbox.courier.log()
        out = []
        for event in sandbox.account.events.values():
            obj = event["data"]["object"]
            if wanted_type and event["type"] != wanted_type:
                continue
            if wanted_object and wanted_object not in (obj.get("id"), obj.get("payment_intent")):
                continue
            signed_body, headers = sandbox.signed(event)
            out.append({
                "id": event["id"], "type": event["type"], "created": event["created"],
                "object": obj.get("id"), "body": signed_body.decode("utf-8"),
                "headers": headers,
                "deliveries": [d for d in log if d["event_id"] == event["id"]],
            })
        return out

    async def send(request: Request, body: dict[str, Any]) -> Any:
        event = sandbox.account.events.get(request.path_params["id"])
        if event is None:
            raise APIError(404, "invalid_request_error",
                           f"No such event: '{request.path_params['id']}'")
        sent = sandbox.courier.send_now(sandbox.webhook(event))
        await sandbox.courier.settled(sent)
        return {"webhooks": [d.describe() for d in sent]}

    return [
        ControlRoute("/webhook", ("POST",), webhook,
                     '{"url", "secret" or "secrets"}: where events go, signed with what'),
        ControlRoute("/payment_intents/{id}/authenticate", ("POST",), authenticate,
                     '{"outcome": "succeed"|"fail"}: the customer completes 3-D Secure'),
        ControlRoute("/payment_intents/{id}/settle", ("POST",), settle,
                     '{"outcome": "succeed"|"fail"}: finish a processing intent'),
        ControlRoute("/refunds/{id}/settle", ("POST",), settle_refund,
                     '{"status": "succeeded"|"failed"}: finish a pending refund'),
        ControlRoute("/events", ("GET",), events,
                     "events, signed now, with their deliveries (?type=, ?object=)"),
        ControlRoute("/events/{id}/send", ("POST",), send, "deliver one event now"),
    ]


def create_app(
    *,
    webhook_secret: str | None = None,
    webhook_secrets: list[str] | None = None,
    **options: Any,
) -> Starlette:
    """The sandbox's ASGI app (``sandbox_factory`` of :class:`StripeProvider`).

    *options* go to :class:`StripeSandbox` (``api_key``, ``base_url``, ``seed``,
    ``clock``: a ``() -> datetime``) or are knobs (``webhook_url``, ``latency``,
    ``fail_rate``, ...); ``webhook_secret`` (default ``whsec_pasarela_sandbox``) is
    the endpoint secret, ``webhook_secrets`` signs with several at once.
    """
    if webhook_secrets:
        options["webhook_secrets"] = list(webhook_secrets)
    elif webhook_secret:
        options["webhook_secrets"] = [webhook_secret]
    sandbox = StripeSandbox(**options)
    return sandbox_app(sandbox, api=_api_routes(sandbox), control=_control(sandbox))
