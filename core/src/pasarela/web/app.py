"""The webhook server: a Starlette app to run beside (or inside) a host application.

:func:`create_app` wraps a :class:`~pasarela.api.Pasarela` or
:class:`~pasarela.api.AsyncPasarela` in three routes:

``POST /webhooks/{provider}``
    The provider's delivery goes to ``handle_webhooks`` (verify the raw bytes,
    dedupe, apply, commit) together with the others that arrived meanwhile (group
    commit: :class:`~pasarela.web.batcher.WebhookBatcher`); its reply is returned as is, after the
    commit. Before that the app refuses, with a structured log event and without
    touching the store: a provider that is not installed (404), a body over
    ``max_body`` bytes (413), a content type the provider does not send (415). A
    failure to reach the provider (when the core fetches the object to verify it)
    or a busy or unreachable store answers 503, so the provider delivers again;
    anything unexpected answers 500, which it retries too.
``GET /healthz``
    200 when the store answers, 503 otherwise (JSON).
``GET /metrics``
    Prometheus exposition from a registry of the app's own: this process's counters
    and histograms, updated as things happen (:class:`pasarela.web.metrics.
    ProcessMetrics`), and the gauges read from the store by an index at scrape time
    (:class:`pasarela.web.metrics.StoreCollector`); see :mod:`pasarela.web.metrics`.

Mount it in a host app with ``app.mount("/pasarela", create_app(pasarela))``. A sync
:class:`~pasarela.api.Pasarela` is called in a worker thread. The app never closes
the pasarela it was given.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio.to_thread

from pasarela.extras import MissingExtraError


try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import BaseRoute, Route
except ModuleNotFoundError as exc:  # pip install 'pasarela[server]'
    raise MissingExtraError("pasarela.web.app", "server", name=exc.name) from exc

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.logs import get_logger
from pasarela.provider import Operation, WebhookHeaders, WebhookReply
from pasarela.registry import merchant_of
from pasarela.web.batcher import WebhookBatcher
from pasarela.web.metrics import ProcessMetrics, StoreCollector
from pasarela.web.webhook_rules import DEFAULT_CONTENT_TYPES, RETRY_LATER, accepted_content_types


if TYPE_CHECKING:
    from pasarela.web.pay_page import PageSettings


__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "RETRY_LATER",
    "accepted_content_types",
    "create_app",
]

log = get_logger("pasarela")

def create_app(pasarela: AsyncPasarela | Pasarela, *, max_body: int = 65536,
               pages: PageSettings | None = None,
               inline_batches: bool | None = None, merchant: str | None = None) -> Starlette:
    """The webhook, health and metrics app over *pasarela* (see the module docs).

    *merchant*: serve that merchant only (``pasarela --merchant NAME serve``): the
    webhooks of its own accounts (``/webhooks/NAME.ACCOUNT``; any other account is
    404, as one not configured), the customer page of its own payments, its own
    console at ``/m/NAME/admin`` (not the deployment's ``/admin`` nor another
    merchant's) and its branding. ``/healthz`` and ``/metrics`` stay the
    deployment's. An unknown merchant is ``NotFoundError``.

    *inline_batches*: whether an :class:`~pasarela.api.AsyncPasarela`'s webhook
    batches do their store work on the event loop instead of a worker thread. The
    default is yes for SQLite (local, short, and under the GIL a thread only adds
    handoffs: a batch holds the loop for a few milliseconds) and no for PostgreSQL
    (network round trips). Provider calls always stay async.
    """
    if not isinstance(pasarela, AsyncPasarela | Pasarela):
        raise TypeError(f"create_app needs a Pasarela or AsyncPasarela, not {pasarela!r}")
    if max_body <= 0:
        raise ValueError("max_body must be positive")
    if merchant is not None:
        pasarela.merchants.service(merchant)  # NotFoundError: no such merchant
    registry = CollectorRegistry()
    process = ProcessMetrics(registry, pasarela.store).start()
    registry.register(StoreCollector(pasarela.store))
    batcher = WebhookBatcher(pasarela, inline=inline_batches)

    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["provider"]
        adapter = (pasarela.providers.get(name) if merchant is None
                   or merchant_of(name) == merchant else None)
        if adapter is None or not adapter.supports(Operation.WEBHOOK):
            process.webhook("unknown", 404)
            return _refuse(404, "unknown provider", name[:64], "unknown_provider")
        accepted = accepted_content_types(adapter)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in accepted:
            process.webhook(name, 415)
            return _refuse(415, f"content type must be one of {', '.join(sorted(accepted))}",
                           name, "unsupported_media_type", media_type=media_type[:100])
        body = await _read_body(request, max_body)
        if body is None:
            process.webhook(name, 413)
            return _refuse(413, f"body larger than {max_body} bytes", name, "body_too_large")
        # The query string goes with the headers (Mercado Pago signs its data.id);
        # most deliveries have none, and an empty one parses to nothing.
        query = request.query_params.multi_items() if request.scope["query_string"] else ()
        headers = WebhookHeaders(request.headers.items(), query=query)
        try:
            reply = await batcher.submit((name, headers, body))
        except RETRY_LATER as exc:
            log.warning("webhook_deferred", provider=name, error=type(exc).__name__,
                        detail=str(exc)[:300])
            process.webhook(name, 503, time.perf_counter() - started)
            return JSONResponse({"error": "temporarily unavailable; deliver again"}, 503,
                                headers={"Retry-After": "5"})
        except Exception:
            log.exception("webhook_failed", provider=name)
            process.webhook(name, 500, time.perf_counter() - started)
            return JSONResponse({"error": "internal error; deliver again"}, 500)
        process.webhook(name, reply.status_code, time.perf_counter() - started)
        return _reply(reply)

    async def healthz(request: Request) -> Response:
        ok = await anyio.to_thread.run_sync(pasarela.store.ping)
        if ok:
            return JSONResponse({"status": "ok", "store": "ok"})
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, 503)

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        payload = await anyio.to_thread.run_sync(encoder, registry)
        return Response(payload, headers={"Content-Type": content_type})

    routes: list[BaseRoute] = [
        Route("/webhooks/{provider}", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    # --- hook: customer page /pay and dashboard /admin (pasarela.web.pay_page, issue #9); off
    # unless a page secret or admin token is given in *pages* or the environment.
    from pasarela.web import pay_page as _pages  # noqa: PLC0415 - keeps Jinja2 lazy

    routes += _pages.routes(pasarela, pages, merchant=merchant)
    app = Starlette(routes=routes)
    app.state.pasarela = pasarela
    app.state.registry = registry
    app.state.metrics = process  # the engine's meters hold it weakly: it lives with the app
    return app


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than *limit* (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _refuse(status: int, message: str, provider: str, reason: str, **context: str) -> Response:
    log.warning("webhook_rejected", provider=provider, reason=reason, status=status, **context)
    return JSONResponse({"error": message}, status)


def _reply(reply: WebhookReply) -> Response:
    return Response(reply.body, status_code=reply.status_code,
                    headers={"Content-Type": reply.content_type})
