"""The Stripe sandbox as a Starlette app: Stripe's HTTP surface plus control endpoints.

API (Stripe's paths, Bearer or Basic auth with an ``sk_test_`` key, form bodies
in bracket notation, Stripe's error shape)::

    POST /v1/payment_intents                  GET /v1/payment_intents/search
    GET  /v1/payment_intents/{id}             POST /v1/payment_intents/{id}/confirm
    POST /v1/payment_intents/{id}/cancel      POST /v1/refunds
    GET  /v1/refunds/{id}   GET /v1/charges/{id}   GET /v1/events/{id}
    GET  /v1/balance_transactions             (created[gte|gt|lt|lte], type, currency,
                                               limit, starting_after, expand[]=data.source)

Idempotency as Stripe documents it: the first answer to a POST with an
``Idempotency-Key`` is saved (errors too, once execution began) and replayed for
24 hours to the same key with the same parameters (``Idempotent-Replayed: true``);
the same key with other parameters or on another endpoint is a 400
``idempotency_error``. Parameter validation failures, 401 and 429 are not saved.

Control (JSON)::

    GET/POST /_control/config            knobs, see :class:`Knobs`
    POST /_control/webhook               {"url", "secret" | "secrets"}
    POST /_control/payment_intents/{id}/authenticate   {"outcome": "succeed" | "fail"}
    POST /_control/payment_intents/{id}/settle         {"outcome": "succeed" | "fail"}
    POST /_control/refunds/{id}/settle                 {"status": "succeeded" | "failed"}
    GET  /_control/events                signed bodies and headers, delivery attempts
    POST /_control/events/{id}/send      deliver one event now
    POST /_control/webhooks/flush        deliver the queued events (``webhook_mode=manual``)
    POST /_control/reset                 forget everything
    GET  /_sandbox/3ds/{id}              the 3-D Secure page a redirect_to_url points at
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

import anyio
import attrs
import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pasarela_stripe import form
from pasarela_stripe.sandbox.objects import API_VERSION, new_id
from pasarela_stripe.sandbox.state import Account, APIError
from pasarela_stripe.webhooks import signature_header


__all__ = ["Knobs", "Sandbox", "create_app"]

DEFAULT_WEBHOOK_SECRET: Final = "whsec_pasarela_sandbox"  # noqa: S105 - a test secret
IDEMPOTENCY_TTL: Final = 24 * 3600
_VERSION_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")


@attrs.define(kw_only=True)
class Knobs:
    """Fault and behaviour knobs, settable at creation and by ``POST /_control/config``.

    Attributes:
        latency_ms: delay added to every API answer, after the work is done (so a
            client timeout leaves an executed request behind: an unknown outcome).
        error_rate: share of API requests answered 500 before execution (not saved).
        fail_next: the next N API requests are answered 500 before execution.
        rate_limit_rate: share of API requests answered 429.
        rate_limit_next: the next N API requests are answered 429.
        retry_after: the ``Retry-After`` seconds sent with a 429.
        processing: successful confirmations stop at ``processing`` until settled.
        refund_status: the status new refunds get (``succeeded`` or ``pending``).
        webhook_url: where signed events are POSTed (None: only kept).
        webhook_secrets: signing secrets; one ``v1`` per secret (as during a roll).
        webhook_mode: ``auto`` (deliver after each answer) or ``manual`` (queue).
        duplicate_webhooks: extra copies of each delivery.
        reorder_webhooks: deliver each batch in reverse order.
        drop_webhook_rate: share of deliveries lost.
        webhook_signature: ``valid``, ``invalid`` (wrong secret) or ``stale`` (an hour old).
        webhook_retries: further attempts when the receiver does not answer 2xx.
    """

    latency_ms: int = 0
    error_rate: float = 0.0
    fail_next: int = 0
    rate_limit_rate: float = 0.0
    rate_limit_next: int = 0
    retry_after: int = 1
    processing: bool = False
    refund_status: str = attrs.field(
        default="succeeded", validator=attrs.validators.in_(("succeeded", "pending")))
    webhook_url: str | None = None
    webhook_secrets: list[str] = attrs.field(factory=lambda: [DEFAULT_WEBHOOK_SECRET])
    webhook_mode: str = attrs.field(
        default="auto", validator=attrs.validators.in_(("auto", "manual")))
    duplicate_webhooks: int = 0
    reorder_webhooks: bool = False
    drop_webhook_rate: float = 0.0
    webhook_signature: str = attrs.field(
        default="valid", validator=attrs.validators.in_(("valid", "invalid", "stale")))
    webhook_retries: int = 2

    def update(self, changes: Mapping[str, Any]) -> None:
        names = {f.name: f for f in attrs.fields(type(self))}
        for key, value in changes.items():
            field = names.get(key)
            if field is None:
                raise ValueError(f"unknown knob {key!r}; knobs: {', '.join(sorted(names))}")
            setattr(self, key, value)
        attrs.validate(self)


@attrs.define
class _Saved:
    fingerprint: str
    status: int
    body: bytes
    created: float


class Sandbox:
    """One sandboxed Stripe account with its HTTP behaviour."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        knobs: Knobs | None = None,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.clock = clock
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self.knobs = knobs or Knobs()
        self.reset()

    def reset(self) -> None:
        self.account = Account(clock=self.clock, rng=self.rng)
        self.saved: dict[str, _Saved] = {}
        self.queue: list[dict[str, Any]] = []
        self.deliveries: dict[str, list[dict[str, Any]]] = {}
        self.requests = 0

    # --- the API ------------------------------------------------------------------

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip()).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not header:
            raise APIError(401, "invalid_request_error",
                           "You did not provide an API key. You need to provide your API key in "
                           "the Authorization header, using Bearer auth (e.g. 'Authorization: "
                           "Bearer YOUR_SECRET_KEY').", saved=False)
        valid = key.startswith(("sk_test_", "rk_test_")) and (
            self.api_key is None or key == self.api_key)
        if not valid:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "***"
            raise APIError(401, "invalid_request_error", f"Invalid API Key provided: {shown}",
                           saved=False)

    def _faults(self) -> None:
        knobs = self.knobs
        if knobs.rate_limit_next > 0 or (
            knobs.rate_limit_rate and self.rng.random() < knobs.rate_limit_rate
        ):
            knobs.rate_limit_next = max(0, knobs.rate_limit_next - 1)
            raise APIError(
                429, "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.", code="rate_limit", saved=False,
                headers={"Retry-After": str(knobs.retry_after)})
        if knobs.fail_next > 0 or (knobs.error_rate and self.rng.random() < knobs.error_rate):
            knobs.fail_next = max(0, knobs.fail_next - 1)
            raise APIError(
                500, "api_error",
                "Sorry, something went wrong. We've already been notified of the problem.",
                saved=False, headers={"Stripe-Should-Retry": "true"})

    async def api(
        self,
        request: Request,
        operation: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Response:
        """Run one API *operation* with auth, faults, idempotency and delivery."""
        self.requests += 1
        request_id = new_id("req", self.rng, 14)
        version = request.headers.get("stripe-version", API_VERSION)
        key = request.headers.get("idempotency-key")
        headers = {"Request-Id": request_id, "Stripe-Version": version}
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            self._authenticate(request)
            if not _VERSION_RE.match(version):
                raise APIError(400, "invalid_request_error",
                               f"Invalid Stripe API version: {version}", saved=False)
            self._faults()
            body = await request.body()
            try:
                params = form.decode(body if request.method == "POST" else request.url.query)
            except (form.FormError, UnicodeDecodeError) as exc:
                raise APIError(400, "invalid_request_error", str(exc),
                               param=getattr(exc, "param", None), saved=False) from None
        except APIError as exc:
            return self._json(exc.status, exc.body(), {**headers, **exc.headers})
        if request.method == "POST" and key is not None:
            fingerprint = json.dumps([request.method, request.url.path, params], sort_keys=True)
            saved = self.saved.get(key)
            if saved is not None and saved.created < self.clock() - IDEMPOTENCY_TTL:
                del self.saved[key]
                saved = None
            if saved is not None:
                if saved.fingerprint != fingerprint:
                    error = APIError(
                        400, "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.")
                    return self._json(400, error.body(), headers)
                await self._latency()
                return Response(saved.body, saved.status, media_type="application/json",
                                headers={**headers, "Idempotent-Replayed": "true"})
        self.account.request_id = request_id
        self.account.idempotency_key = key
        extra: dict[str, str] = {}
        try:
            status, payload, save = 200, operation(params), True
        except APIError as exc:
            status, payload, save = exc.status, exc.body(), exc.saved
            extra = exc.headers
        finally:
            self.account.request_id = self.account.idempotency_key = None
        content = _dumps(payload)
        if request.method == "POST" and key is not None and save:
            self.saved[key] = _Saved(fingerprint, status, content, self.clock())
        task = self._take_events()
        await self._latency()
        return Response(content, status, media_type="application/json",
                        headers={**headers, **extra}, background=task)

    async def _latency(self) -> None:
        if self.knobs.latency_ms > 0:
            await anyio.sleep(self.knobs.latency_ms / 1000)

    @staticmethod
    def _json(status: int, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        return Response(_dumps(payload), status, media_type="application/json",
                        headers=dict(headers))

    # --- webhooks -----------------------------------------------------------------

    def _take_events(self) -> BackgroundTask | None:
        batch, self.account.outbox = self.account.outbox, []
        if not batch:
            return None
        if self.knobs.webhook_mode == "manual" or not self.knobs.webhook_url:
            self.queue.extend(batch)
            return None
        return BackgroundTask(self.deliver, batch)

    def signed(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a delivery of *event*, signed now (with the
        signature fault knob applied)."""
        body = json.dumps(event, indent=2).encode("utf-8")
        timestamp = int(self.clock())
        secrets = list(self.knobs.webhook_secrets)
        if self.knobs.webhook_signature == "stale":
            timestamp -= 3600
        elif self.knobs.webhook_signature == "invalid":
            secrets = ["whsec_not_the_endpoint_secret"]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(body, secrets, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        return body, headers

    async def deliver(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST each event of *batch* to the webhook URL, with the delivery knobs."""
        knobs = self.knobs
        order = list(reversed(batch)) if knobs.reorder_webhooks else list(batch)
        results = []
        for event in order:
            if knobs.drop_webhook_rate and self.rng.random() < knobs.drop_webhook_rate:
                self.deliveries.setdefault(event["id"], []).append(
                    {"at": self.clock(), "outcome": "dropped"})
                results.append({"id": event["id"], "outcome": "dropped"})
                continue
            for _ in range(1 + max(0, knobs.duplicate_webhooks)):
                results.append(await self.send(event))
        return results

    async def send(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """One delivery of *event* (with retries), recorded."""
        url = self.knobs.webhook_url
        record: dict[str, Any] = {"id": event["id"], "at": self.clock()}
        if not url:
            record["outcome"] = "no webhook_url"
            return record
        attempts = 1 + max(0, self.knobs.webhook_retries)
        async with httpx.AsyncClient(timeout=10.0) as client:
            for attempt in range(attempts):
                body, headers = self.signed(event)
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    record.update(outcome="error", error=type(exc).__name__, status=None)
                else:
                    record.update(outcome="delivered" if response.is_success else "rejected",
                                  status=response.status_code, error=None)
                    if response.is_success:
                        break
                if attempt + 1 < attempts:
                    await anyio.sleep(0.05 * 2**attempt)
        record["attempts"] = attempt + 1
        self.deliveries.setdefault(event["id"], []).append(record)
        return record

    # --- routes -----------------------------------------------------------------------

    def _base(self, request: Request) -> str:
        return self.base_url or str(request.base_url)

    async def create_intent(self, request: Request) -> Response:
        base = self._base(request)
        return await self.api(request, lambda p: self.account.create_intent(p, base_url=base))

    async def search_intents(self, request: Request) -> Response:
        def run(params: dict[str, Any]) -> dict[str, Any]:
            query = params.get("query")
            if not isinstance(query, str):
                raise APIError(400, "invalid_request_error", "Missing required param: query.",
                               param="query", code="parameter_missing", saved=False)
            raw_limit = params.get("limit", "10")
            limit = int(raw_limit) if isinstance(raw_limit, str) and raw_limit.isdigit() else 10
            return self.account.search_intents(query, max(1, min(limit, 100)))
        return await self.api(request, run)

    async def retrieve_intent(self, request: Request) -> Response:
        intent_id = request.path_params["intent"]
        return await self.api(request, lambda p: self.account.retrieve_intent(intent_id))

    async def confirm_intent(self, request: Request) -> Response:
        intent_id, base = request.path_params["intent"], self._base(request)
        return await self.api(
            request, lambda p: self.account.confirm_intent(intent_id, p, base_url=base))

    async def cancel_intent(self, request: Request) -> Response:
        intent_id = request.path_params["intent"]
        return await self.api(request, lambda p: self.account.cancel_intent(intent_id, p))

    async def create_refund(self, request: Request) -> Response:
        return await self.api(request, self.account_call("create_refund"))

    def account_call(self, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def run(params: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = getattr(self.account, name)(params)
            return result
        return run

    async def retrieve_refund(self, request: Request) -> Response:
        refund_id = request.path_params["id"]
        return await self.api(request, lambda p: self.account.retrieve_refund(refund_id))

    async def retrieve_charge(self, request: Request) -> Response:
        charge_id = request.path_params["id"]

        def run(params: dict[str, Any]) -> dict[str, Any]:
            found = self.account.charges.get(charge_id)
            if found is None:
                raise APIError(404, "invalid_request_error", f"No such charge: '{charge_id}'",
                               code="resource_missing", param="id", saved=False)
            return found
        return await self.api(request, run)

    async def list_balance_transactions(self, request: Request) -> Response:
        return await self.api(request, self.account_call("list_balance_transactions"))

    async def retrieve_event(self, request: Request) -> Response:
        event_id = request.path_params["id"]

        def run(params: dict[str, Any]) -> dict[str, Any]:
            found = self.account.events.get(event_id)
            if found is None:
                raise APIError(404, "invalid_request_error", f"No such event: '{event_id}'",
                               code="resource_missing", param="id", saved=False)
            return found
        return await self.api(request, run)

    async def not_found(self, request: Request) -> Response:
        error = APIError(404, "invalid_request_error",
                         f"Unrecognized request URL ({request.method}: {request.url.path}).")
        return self._json(404, error.body(), {})

    # --- control ------------------------------------------------------------------------

    async def _control_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        if request.headers.get("content-type", "").startswith("application/x-www-form"):
            return form.decode(raw)
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    async def control(self, request: Request) -> Response:
        try:
            data = await self._control_body(request)
            result = await self._control(request, data)
        except APIError as exc:
            return self._json(exc.status, exc.body(), {})
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": {"type": "invalid_request_error",
                                           "message": str(exc)}}, 400)
        task = self._take_events()
        if isinstance(result, Response):
            result.background = task
            return result
        return JSONResponse(result, background=task)

    async def _control(self, request: Request, data: dict[str, Any]) -> Any:
        path = request.url.path
        account = self.account
        if path == "/_control/config":
            if request.method == "POST":
                self.knobs.update(data)
            account.processing = self.knobs.processing
            account.refund_status = self.knobs.refund_status
            return attrs.asdict(self.knobs)
        if path == "/_control/webhook":
            secrets = data.get("secrets") or ([data["secret"]] if data.get("secret") else None)
            changes: dict[str, Any] = {"webhook_url": data.get("url")}
            if secrets:
                changes["webhook_secrets"] = list(secrets)
            self.knobs.update(changes)
            return {"webhook_url": self.knobs.webhook_url}
        if path == "/_control/reset":
            self.reset()
            return {"reset": True}
        if path == "/_control/events":
            return self._events(request)
        if path == "/_control/webhooks/flush":
            batch, self.queue = self.queue, []
            return await self.deliver(batch)
        params = request.path_params
        if path.startswith("/_control/events/") and path.endswith("/send"):
            event = account.events.get(params["id"])
            if event is None:
                raise APIError(404, "invalid_request_error", f"No such event: '{params['id']}'")
            return await self.send(event)
        if path.endswith("/authenticate"):
            outcome = data.get("outcome", "succeed")
            intent = account.authenticate(params["id"], outcome == "succeed")
            return_url = account.return_urls.get(intent["id"])
            if return_url and "form" in request.headers.get("content-type", ""):
                query = urlencode({
                    "payment_intent": intent["id"],
                    "payment_intent_client_secret": intent["client_secret"],
                    "redirect_status": "succeeded" if outcome == "succeed" else "failed",
                })
                separator = "&" if "?" in return_url else "?"
                return RedirectResponse(f"{return_url}{separator}{query}", 303)
            return intent
        if path.startswith("/_control/payment_intents/") and path.endswith("/settle"):
            return account.settle(params["id"], data.get("outcome", "succeed") == "succeed")
        if path.startswith("/_control/refunds/") and path.endswith("/settle"):
            return account.settle_refund(params["id"], str(data.get("status", "succeeded")))
        raise APIError(404, "invalid_request_error", f"no control endpoint {path}")

    def _events(self, request: Request) -> list[dict[str, Any]]:
        wanted_type = request.query_params.get("type")
        wanted_object = request.query_params.get("object")
        out = []
        for event in self.account.events.values():
            obj = event["data"]["object"]
            if wanted_type and event["type"] != wanted_type:
                continue
            if wanted_object and obj.get("id") != wanted_object and \
                    obj.get("payment_intent") != wanted_object:
                continue
            body, headers = self.signed(event)
            out.append({
                "id": event["id"], "type": event["type"], "created": event["created"],
                "object": obj.get("id"), "body": body.decode("utf-8"), "headers": headers,
                "deliveries": self.deliveries.get(event["id"], []),
            })
        return out

    async def three_d_secure(self, request: Request) -> Response:
        intent_id = request.path_params["id"]
        intent = self.account.intents.get(intent_id)
        if intent is None:
            return HTMLResponse("<h1>Unknown PaymentIntent</h1>", 404)
        amount = f"{intent['currency'].upper()} {intent['amount'] / 100:.2f}"
        action = f"/_control/payment_intents/{intent_id}/authenticate"
        page = f"""<!doctype html><html lang="es"><head><meta charset="utf-8">
<title>3-D Secure (sandbox)</title></head><body>
<h1>Autenticación 3-D Secure (sandbox)</h1><p>{intent_id}: {amount}</p>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="succeed">
<button type="submit">Completar autenticación</button></form>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="fail">
<button type="submit">Fallar autenticación</button></form></body></html>"""
        return HTMLResponse(page)


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, indent=2).encode("utf-8")


def create_app(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_secrets: list[str] | None = None,
    seed: int | None = None,
    clock: Callable[[], float] | None = None,
    **knobs: Any,
) -> Starlette:
    """The sandbox's ASGI app (``sandbox_factory`` of :class:`StripeProvider`).

    :param api_key: accept only this ``sk_test_`` key (default: any ``sk_test_``
        or ``rk_test_`` key).
    :param base_url: the sandbox's public address, for 3-D Secure URLs (default:
        the request's).
    :param webhook_url: where to POST signed events.
    :param webhook_secret: the endpoint secret (default ``whsec_pasarela_sandbox``);
        ``webhook_secrets`` signs with several at once.
    :param seed: seeds the ids and the random knobs, for reproducible runs.
    :param clock: unix time source (default :func:`time.time`).
    :param knobs: any :class:`Knobs` field (``latency_ms``, ``error_rate``, ...).
    """
    settings = Knobs()
    changes: dict[str, Any] = dict(knobs)
    if webhook_url is not None:
        changes["webhook_url"] = webhook_url
    if webhook_secrets:
        changes["webhook_secrets"] = list(webhook_secrets)
    elif webhook_secret:
        changes["webhook_secrets"] = [webhook_secret]
    settings.update(changes)
    sandbox = Sandbox(api_key=api_key, base_url=base_url, clock=clock or time.time, seed=seed,
                      knobs=settings)
    sandbox.account.processing = settings.processing
    sandbox.account.refund_status = settings.refund_status
    control = sandbox.control
    routes = [
        Route("/v1/payment_intents", sandbox.create_intent, methods=["POST"]),
        Route("/v1/payment_intents/search", sandbox.search_intents, methods=["GET"]),
        Route("/v1/payment_intents/{intent}", sandbox.retrieve_intent, methods=["GET"]),
        Route("/v1/payment_intents/{intent}/confirm", sandbox.confirm_intent, methods=["POST"]),
        Route("/v1/payment_intents/{intent}/cancel", sandbox.cancel_intent, methods=["POST"]),
        Route("/v1/refunds", sandbox.create_refund, methods=["POST"]),
        Route("/v1/refunds/{id}", sandbox.retrieve_refund, methods=["GET"]),
        Route("/v1/charges/{id}", sandbox.retrieve_charge, methods=["GET"]),
        Route("/v1/balance_transactions", sandbox.list_balance_transactions, methods=["GET"]),
        Route("/v1/events/{id}", sandbox.retrieve_event, methods=["GET"]),
        Route("/v1/{rest:path}", sandbox.not_found, methods=["GET", "POST", "DELETE"]),
        Route("/_control/config", control, methods=["GET", "POST"]),
        Route("/_control/webhook", control, methods=["POST"]),
        Route("/_control/reset", control, methods=["POST"]),
        Route("/_control/events", control, methods=["GET"]),
        Route("/_control/events/{id}/send", control, methods=["POST"]),
        Route("/_control/webhooks/flush", control, methods=["POST"]),
        Route("/_control/payment_intents/{id}/authenticate", control, methods=["POST"]),
        Route("/_control/payment_intents/{id}/settle", control, methods=["POST"]),
        Route("/_control/refunds/{id}/settle", control, methods=["POST"]),
        Route("/_sandbox/3ds/{id}", sandbox.three_d_secure, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
