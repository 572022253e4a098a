"""The webhook path's shortcuts answer what the long way answered: the metrics' children
looked up once, each declared set of media types lower-cased once, the headers the app
built handed to the adapter as they are, and ``pasarela serve`` freezing what start-up
built out of the cyclic collector's way."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from pasarela.lifecycle import Status
from pasarela.model import Method
from pasarela.provider import WebhookHeaders
from pasarela.testing.fake import FakeProvider
from pasarela.web.metrics import ProcessMetrics, labels_of
from pasarela.web.webhook_rules import DEFAULT_CONTENT_TYPES, accepted_content_types

from .test_asgi import pending_payment


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created")}


def _payment(provider: str, status: Status, network: str | None = None) -> Any:
    created = datetime(2026, 11, 1, tzinfo=UTC)
    return SimpleNamespace(provider=provider, method=Method.CASH, network=network,
                           status=status, created_at=created,
                           updated_at=created + timedelta(minutes=7))


def test_process_metrics_count_what_labels_counted() -> None:
    store: Any = object()  # only compared with the writer
    fast_registry = CollectorRegistry()
    fast = ProcessMetrics(fast_registry, store)
    slow_registry = CollectorRegistry()
    slow = ProcessMetrics(slow_registry, store)
    calls = [("fake", 200, 0.004), ("fake", 200, 0.3), ("fake", "200", 2.0),
             ("bodega.pe_usd", 400, 0.02), ("unknown", 404, None), ("fake", 415, None),
             ("fake", 503, 0.5)]
    payments = [_payment("fake", Status.SUCCEEDED), _payment("fake", Status.PROCESSING),
                _payment("fake", Status.SUCCEEDED), _payment("bodega.pe_usd", Status.FAILED,
                                                             "yape"),
                _payment("bodega.pe_usd", Status.SUCCEEDED, "yape")]
    for account, code, seconds in calls:
        fast.webhook(account, code, seconds)
        merchant, provider = labels_of(account)  # what webhook() did before
        slow.webhook_requests.labels(merchant, provider, str(code)).inc()
        if seconds is not None:
            slow.webhook_seconds.labels(merchant, provider).observe(seconds)
    for payment in payments:
        fast.transitioned(object(), payment, Status.PENDING)
        merchant, provider = labels_of(payment.provider)
        slow.transitions.labels(merchant, provider, payment.method.value,
                                payment.network or "", payment.status.value).inc()
        if payment.status is Status.SUCCEEDED:
            slow.time_to_success.labels(merchant, provider, payment.method.value).observe(
                (payment.updated_at - payment.created_at).total_seconds())
    got = _samples(fast_registry)
    assert got == _samples(slow_registry)
    # a refusal counted without a duration opens no duration series
    assert not [key for key in got if key[0].startswith("pasarela_webhook_request_duration")
                and ("provider", "unknown") in key[1]]


def test_declared_media_types_are_lowered_once_and_follow_the_class() -> None:
    class Declares(FakeProvider):
        webhook_content_types = frozenset({"Application/JSON", "text/Plain"})

    class Listed(FakeProvider):
        webhook_content_types: ClassVar[list[str]] = ["Application/JSON"]  # type: ignore[assignment]

    class Silent(FakeProvider):
        webhook_content_types = frozenset()

    adapter: Any = object.__new__(Declares)
    first = accepted_content_types(adapter)
    assert first == {"application/json", "text/plain"}
    assert accepted_content_types(adapter) is first
    Declares.webhook_content_types = frozenset({"application/XML"})
    assert accepted_content_types(adapter) == {"application/xml"}
    assert accepted_content_types(object.__new__(Listed)) == {"application/json"}
    assert accepted_content_types(object.__new__(Silent)) is DEFAULT_CONTENT_TYPES


async def test_the_adapter_reads_the_headers_and_query_it_was_given(
        make_async: Any, gateway: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[WebhookHeaders] = []
    parse = FakeProvider.parse_webhook

    def spy(self: FakeProvider, headers: Any, body: bytes, *, now: datetime) -> Any:
        seen.append(headers)
        return parse(self, headers, body, now=now)

    monkeypatch.setattr(FakeProvider, "parse_webhook", spy)
    p = make_async()
    replies, givens = [], []
    for query in ({"topic": "payment"}, None):
        payment = await pending_payment(p)
        headers, body = gateway.settle(payment.provider_reference)
        given: Any = (WebhookHeaders(headers.items(), query=query) if query else dict(headers))
        givens.append(given)
        replies.append(await p.handle_webhooks([("fake", given, body)]))
        assert (await p.get(payment.id)).status is Status.SUCCEEDED
    assert [r.status_code for reply in replies for r in reply] == [200, 200]
    built, copied = seen
    assert built is givens[0]  # not copied again
    assert built.query == {"topic": "payment"}
    assert type(copied) is WebhookHeaders
    assert copied.query == {}
    assert dict(copied) == {k.lower(): v for k, v in headers.items()}


def test_serve_freezes_what_start_up_built(tmp_path: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from pasarela.cli.serve import serve

    frozen: list[int] = []

    async def serve_nothing(self: Any, sockets: Any = None) -> None:
        frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn.Server, "serve", serve_nothing)
    monkeypatch.setenv("PASARELA_LOAD_PLUGINS", "")
    config = tmp_path / "pasarela.toml"
    url = json.dumps(f"sqlite:///{tmp_path / 'store.db'}")
    config.write_text(f"[store]\nurl = {url}\n\n"
                      '[plugins]\nmodules = ["pasarela.testing.fake"]\n')
    try:
        result = CliRunner().invoke(serve, ["--config", str(config), "--log-level", "warning"])
    finally:
        gc.unfreeze()
    assert result.exit_code == 0, result.output
    assert len(frozen) == 1
    assert frozen[0] > 0


def test_a_sqlite_store_hands_out_the_connection_used_last(tmp_path: Any) -> None:
    """Its page cache is the current one (one that sat idle re-reads what it touches)."""
    from pasarela.store.engine import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    try:
        first, second = engine.connect(), engine.connect()
        ids = (id(first.connection.dbapi_connection), id(second.connection.dbapi_connection))
        first.close()
        second.close()  # returned last
        with engine.connect() as again:
            assert id(again.connection.dbapi_connection) == ids[1]
    finally:
        engine.dispose()
