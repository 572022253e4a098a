"""The webhook server: a Starlette app to run beside (or inside) a host application.

:func:`create_app` wraps a :class:`~pasarela.api.Pasarela` or
:class:`~pasarela.api.AsyncPasarela` in three routes:

``POST /webhooks/{provider}``
    The provider's delivery goes to ``handle_webhooks`` (verify the raw bytes,
    dedupe, apply, commit) together with the others that arrived meanwhile (group
    commit: :class:`WebhookBatcher`); its reply is returned as is, after the
    commit. Before that the app refuses, with a structured log event and without
    touching the store: a provider that is not installed (404), a body over
    ``max_body`` bytes (413), a content type the provider does not send (415). A
    failure to reach the provider (when the core fetches the object to verify it)
    or a busy or unreachable store answers 503, so the provider delivers again;
    anything unexpected answers 500, which it retries too.
``GET /healthz``
    200 when the store answers, 503 otherwise (JSON).
``GET /metrics``
    Prometheus exposition from a registry of the app's own. Every series except
    ``pasarela_webhook_requests_total`` is computed from the store at scrape time,
    so each replica of the server shows the same figures: payments by provider,
    method and status; success rate per provider; unknown payments; webhook
    verification failures (rejected deliveries); outbox lag; and the provider call
    latency histogram, built from the recorded exchanges (each scrape reads only
    the exchanges recorded since the previous one).

Mount it in a host app with ``app.mount("/pasarela", create_app(pasarela))``. A sync
:class:`~pasarela.api.Pasarela` is called in a worker thread. The app never closes
the pasarela it was given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread
import attrs
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.engine.webhooks import Incoming
from pasarela.errors import ConcurrencyConflictError, ConfigurationError, ProviderError
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.provider import Operation, Provider, WebhookReply
from pasarela.store import Store
from pasarela.store.schema import exchanges, payments, webhook_deliveries


if TYPE_CHECKING:
    from pasarela.web.pay_page import PageSettings


__all__ = [
    "DEFAULT_CONTENT_TYPES",
    "LATENCY_BUCKETS",
    "RETRY_LATER",
    "StoreCollector",
    "WebhookBatcher",
    "accepted_content_types",
    "create_app",
]

log = get_logger("pasarela")

#: What a provider may send when its class declares no ``webhook_content_types``.
DEFAULT_CONTENT_TYPES: Final = frozenset({"application/json", "application/x-www-form-urlencoded"})
#: Upper bounds (seconds) of the provider call latency histogram.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_SUCCEEDED: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})
_FINISHED: Final = _SUCCEEDED | {Status.FAILED, Status.CANCELED, Status.EXPIRED}
#: Errors after which the delivery should come again: 503, not 500.
RETRY_LATER: Final = (ProviderError, ConcurrencyConflictError, ConfigurationError,
                       sa.exc.OperationalError, sa.exc.InterfaceError)


def create_app(pasarela: AsyncPasarela | Pasarela, *, max_body: int = 65536,
               pages: PageSettings | None = None,
               inline_batches: bool | None = None) -> Starlette:
    """The webhook, health and metrics app over *pasarela* (see the module docs).

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
    registry = CollectorRegistry()
    requests = Counter(
        "pasarela_webhook_requests", "Webhook requests answered by this process.",
        ["provider", "code"], registry=registry,
    )
    registry.register(StoreCollector(pasarela.store))
    batcher = WebhookBatcher(pasarela, inline=inline_batches)

    async def webhook(request: Request) -> Response:
        name = request.path_params["provider"]
        adapter = pasarela.providers.get(name)
        if adapter is None or not adapter.supports(Operation.WEBHOOK):
            requests.labels("unknown", "404").inc()
            return _refuse(404, "unknown provider", name[:64], "unknown_provider")
        accepted = accepted_content_types(adapter)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in accepted:
            requests.labels(name, "415").inc()
            return _refuse(415, f"content type must be one of {', '.join(sorted(accepted))}",
                           name, "unsupported_media_type", media_type=media_type[:100])
        body = await _read_body(request, max_body)
        if body is None:
            requests.labels(name, "413").inc()
            return _refuse(413, f"body larger than {max_body} bytes", name, "body_too_large")
        headers = dict(request.headers.items())
        try:
            reply = await batcher.submit((name, headers, body))
        except RETRY_LATER as exc:
            log.warning("webhook_deferred", provider=name, error=type(exc).__name__,
                        detail=str(exc)[:300])
            requests.labels(name, "503").inc()
            return JSONResponse({"error": "temporarily unavailable; deliver again"}, 503,
                                headers={"Retry-After": "5"})
        except Exception:
            log.exception("webhook_failed", provider=name)
            requests.labels(name, "500").inc()
            return JSONResponse({"error": "internal error; deliver again"}, 500)
        requests.labels(name, str(reply.status_code)).inc()
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

    routes += _pages.routes(pasarela, pages)
    app = Starlette(routes=routes)
    app.state.pasarela = pasarela
    app.state.registry = registry
    return app


class WebhookBatcher:
    """Group commit for webhook deliveries.

    Each request queues its delivery and waits. When no batch is running, one
    waiting request leads: after a few turns of the event loop (deliveries already
    on the wire join in), it takes every delivery queued so far (at most *limit*)
    and hands them to ``handle_webhooks`` in one call (one transaction where no
    provider call is needed; its store work on the event loop for SQLite, in one
    worker thread hop otherwise); while that runs, new requests
    queue up for the next batch. When it ends, every waiting request wakes at once:
    those it carried answer, and one of the others leads the next batch. A lone
    delivery is a batch of one, so nothing waits for company. Every request is
    answered only after the batch that holds it has committed. The batch runs
    shielded from cancellation: a provider that hangs up does not abort the
    deliveries of the others it carries.
    """

    def __init__(self, pasarela: AsyncPasarela | Pasarela, *, limit: int = 256,
                 inline: bool | None = None) -> None:
        self._pasarela = pasarela
        self._limit = limit
        # On the loop for an embedded SQLite store under AsyncPasarela (see create_app).
        self._inline = (isinstance(pasarela, AsyncPasarela)
                        and (pasarela.store.dialect == "sqlite" if inline is None else inline))
        self._queue: list[_Pending] = []
        self._running: anyio.Event | None = None  # set when the running batch ends
        self._last = 0  # how many the last batch carried

    async def submit(self, delivery: Incoming) -> WebhookReply:
        """The reply for *delivery*; raises what applying it raised."""
        mine = _Pending(delivery)
        self._queue.append(mine)
        while not mine.answered():
            if self._running is not None:
                await self._running.wait()
                continue
            self._running = done = anyio.Event()
            try:
                await self._lead()
            finally:
                self._running = None
                done.set()
        if isinstance(mine.result, Exception):
            raise mine.result
        assert mine.result is not None
        return mine.result

    async def _lead(self) -> None:
        # Let deliveries already on the wire in: a few turns of the event loop, and
        # a few more while fewer are queued than the last batch carried (the
        # providers whose deliveries it answered are sending their next ones).
        for turn in range(32):
            queued = len(self._queue)
            if queued >= self._limit or (turn >= 4 and queued >= self._last):
                break
            await anyio.sleep(0)
            if turn >= 4 and len(self._queue) == queued and queued >= self._last // 2:
                break
        batch = self._queue[:self._limit]
        self._last = len(batch)
        del self._queue[:self._limit]
        with anyio.CancelScope(shield=True):
            try:
                results = await self._run([p.delivery for p in batch])
            except Exception as exc:  # each request answers it
                results = [exc] * len(batch)
        for pending, result in zip(batch, results, strict=True):
            pending.result = result

    async def _run(self, deliveries: list[Incoming]) -> list[WebhookReply | Exception]:
        if isinstance(self._pasarela, AsyncPasarela):
            return await self._pasarela.handle_webhooks(deliveries, inline=self._inline)
        return await anyio.to_thread.run_sync(self._pasarela.handle_webhooks, deliveries)


@attrs.define
class _Pending:
    delivery: Incoming
    result: WebhookReply | Exception | None = None

    def answered(self) -> bool:
        return self.result is not None


def accepted_content_types(adapter: Provider) -> frozenset[str]:
    """The media types *adapter* sends webhooks as: its class's
    ``webhook_content_types`` when declared, else :data:`DEFAULT_CONTENT_TYPES`."""
    declared: Iterable[str] | None = getattr(type(adapter), "webhook_content_types", None)
    if not declared:
        return DEFAULT_CONTENT_TYPES
    return frozenset(t.lower() for t in declared)


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


# --- metrics from the store ---------------------------------------------------------


class StoreCollector(Collector):
    """Prometheus series computed from the store at scrape time.

    ``pasarela_store_up`` is 0 (and the other series absent) when the store cannot
    be read. The latency histogram keeps running totals: each scrape adds the
    exchanges whose id is above the last one seen (the first scrape reads them all).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._last_exchange = 0
        # (provider, operation) -> [count per bucket..., count, sum of seconds]
        self._latency: dict[tuple[str, str], list[float]] = {}

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pasarela_store_up", "1 when the store answered this scrape.")
        try:
            lag = self._store.outbox_lag(now=datetime.now(UTC))
            with self._lock, self._store.engine.connect() as conn:
                families = list(self._families(conn, lag))
        except (sa.exc.SQLAlchemyError, ConfigurationError) as exc:
            log.warning("metrics_store_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, conn: sa.Connection, lag: tuple[int, float]) -> Iterator[Metric]:
        yield from self._payment_families(conn)
        failures = CounterMetricFamily(
            "pasarela_webhook_verification_failures",
            "Webhook deliveries rejected as forged, stale or malformed.", labels=["provider"])
        rejected = (
            sa.select(webhook_deliveries.c.provider, sa.func.count())
            .where(webhook_deliveries.c.outcome == "rejected")
            .group_by(webhook_deliveries.c.provider)
        )
        for provider, count in conn.execute(rejected):
            failures.add_metric([provider], int(count))
        yield failures
        yield GaugeMetricFamily("pasarela_outbox_lag_events",
                                "Lifecycle events not yet dispatched.", value=lag[0])
        yield GaugeMetricFamily("pasarela_outbox_oldest_age_seconds",
                                "Age of the oldest undispatched event.", value=lag[1])
        yield self._latency_family(conn)

    def _payment_families(self, conn: sa.Connection) -> Iterator[Metric]:
        query = sa.select(
            payments.c.provider, payments.c.method, payments.c.status, sa.func.count()
        ).group_by(payments.c.provider, payments.c.method, payments.c.status)
        by_status = GaugeMetricFamily("pasarela_payments", "Payments by provider, method and "
                                      "status.", labels=["provider", "method", "status"])
        unknown = GaugeMetricFamily("pasarela_unknown_payments", "Payments whose outcome is "
                                    "unknown (waiting for the resolver).", labels=["provider"])
        rate = GaugeMetricFamily(
            "pasarela_payment_success_rate",
            "Share of finished payments that succeeded (succeeded, partially refunded or "
            "refunded over those plus failed, canceled and expired), per provider.",
            labels=["provider"])
        finished: dict[str, int] = {}
        succeeded: dict[str, int] = {}
        unknowns: dict[str, int] = {}
        for provider, method, status, count in conn.execute(query):
            by_status.add_metric([provider, method, status], int(count))
            state = Status(status)
            unknowns.setdefault(provider, 0)
            if state is Status.UNKNOWN:
                unknowns[provider] += int(count)
            if state in _FINISHED:
                finished[provider] = finished.get(provider, 0) + int(count)
            if state in _SUCCEEDED:
                succeeded[provider] = succeeded.get(provider, 0) + int(count)
        for provider, total in sorted(finished.items()):
            rate.add_metric([provider], succeeded.get(provider, 0) / total)
        for provider, count in sorted(unknowns.items()):
            unknown.add_metric([provider], count)
        yield by_status
        yield rate
        yield unknown

    def _latency_family(self, conn: sa.Connection) -> Metric:
        seconds = exchanges.c.duration_ms / 1000.0
        buckets = [sa.func.sum(sa.case((seconds <= bound, 1), else_=0)) for bound in
                   LATENCY_BUCKETS]
        query = (
            sa.select(exchanges.c.provider, exchanges.c.operation, sa.func.max(exchanges.c.id),
                      sa.func.count(), sa.func.sum(seconds), *buckets)
            .where(exchanges.c.id > self._last_exchange)
            .group_by(exchanges.c.provider, exchanges.c.operation)
        )
        for provider, operation, last, count, total, *counts in conn.execute(query):
            entry = self._latency.setdefault((provider, operation),
                                             [0.0] * (len(LATENCY_BUCKETS) + 2))
            for i, value in enumerate(counts):
                entry[i] += float(value or 0)
            entry[-2] += float(count)
            entry[-1] += float(total or 0.0)
            self._last_exchange = max(self._last_exchange, int(last))
        family = HistogramMetricFamily(
            "pasarela_provider_call_seconds",
            "Provider HTTP call latency, from the recorded exchanges.",
            labels=["provider", "operation"])
        for (provider, operation), entry in sorted(self._latency.items()):
            pairs = [(_bound(b), entry[i]) for i, b in enumerate(LATENCY_BUCKETS)]
            pairs.append(("+Inf", entry[-2]))
            family.add_metric([provider, operation], pairs, sum_value=entry[-1])
        return family


def _bound(value: float) -> str:
    return repr(float(value))

