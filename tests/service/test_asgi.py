"""The ASGI app: webhooks, health and metrics, over the fake gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar

import attrs
import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount

from pasarela import hookimpl
from pasarela.lifecycle import Status
from pasarela.store.schema import webhook_deliveries
from pasarela.testing.fake import FakeProvider, sign_fake_webhook
from pasarela.testing.helpers import capture_events
from pasarela.web.app import create_app

from .conftest import make_order


pytestmark = pytest.mark.anyio


@asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def pending_payment(p: Any, ref: str = "pedido-1", **kw: Any) -> Any:
    return await p.pay(make_order(ref), method="cash", idempotency_key=ref, **kw)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# --- webhooks ---------------------------------------------------------------------


async def test_good_delivery_is_applied_once(store_url, make_async, gateway):
    p = make_async(url=store_url)
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    async with client_for(create_app(p)) as client:
        first = await client.post("/webhooks/fake", headers=headers, content=body)
        again = await client.post("/webhooks/fake", headers=headers, content=body)
    assert first.status_code == 200
    assert first.json() == {"received": True}
    assert first.headers["content-type"] == "application/json"
    assert again.status_code == 200
    done = await p.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert [(t.source, t.target) for t in done.history] == [
        (Status.CREATED, Status.PENDING), (Status.PENDING, Status.SUCCEEDED)]


async def test_sync_pasarela_is_served_from_a_thread(make_sync, gateway):
    p = make_sync()
    payment = p.pay(make_order("pedido-s"), method="cash", idempotency_key="s")
    headers, body = gateway.settle(payment.provider_reference)
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
        health = await client.get("/healthz")
    assert response.status_code == 200
    assert health.status_code == 200
    assert p.get(payment.id).status is Status.SUCCEEDED


async def test_forged_and_unsigned_deliveries_are_400_and_change_nothing(make_async, gateway):
    p = make_async()
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    forged = body.replace(b"succeeded", b"succeedeX")
    async with client_for(create_app(p)) as client:
        bad_sig = await client.post("/webhooks/fake", headers=headers, content=forged)
        unsigned = await client.post("/webhooks/fake", content=body,
                                     headers={"Content-Type": "application/json"})
        other_secret = await client.post("/webhooks/fake", content=body, headers=sign_fake_webhook(
            body, "whsec_wrong", int(gateway.clock().timestamp())))
    assert [r.status_code for r in (bad_sig, unsigned, other_secret)] == [400, 400, 400]
    assert (await p.get(payment.id)).status is Status.PENDING


async def test_replayed_old_delivery_is_400(make_async, gateway, clock):
    p = make_async()
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    clock.now += timedelta(minutes=10)
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 400
    assert (await p.get(payment.id)).status is Status.PENDING


async def test_signed_body_that_is_not_json_is_400(make_async, gateway):
    p = make_async()
    body = b"<xml>not json</xml>"
    headers = sign_fake_webhook(body, gateway.webhook_secret, int(gateway.clock().timestamp()))
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 400


async def test_unknown_provider_is_404_and_records_nothing(make_async):
    p = make_async()
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/nope", content=b"{}",
                                     headers={"Content-Type": "application/json"})
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 404
    assert response.json() == {"error": "unknown provider"}
    assert 'provider="nope"' not in metrics
    assert samples(metrics)[("pasarela_webhook_requests_total",
                             (("code", "404"), ("merchant", ""), ("provider", "unknown")))] == 1


async def test_get_on_the_webhook_route_is_405(make_async):
    async with client_for(create_app(make_async())) as client:
        response = await client.get("/webhooks/fake")
    assert response.status_code == 405


async def test_body_over_the_limit_is_413(make_async, gateway):
    p = make_async()
    big = b'{"pad":"' + b"x" * 70_000 + b'"}'
    headers = sign_fake_webhook(big, gateway.webhook_secret, int(gateway.clock().timestamp()))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read until the limit
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    async with client_for(create_app(p)) as client:
        declared = await client.post("/webhooks/fake", headers=headers, content=big)
        streamed = await client.post("/webhooks/fake", headers=headers, content=chunks())
    async with client_for(create_app(p, max_body=100)) as client:
        small_limit = await client.post("/webhooks/fake", headers=headers, content=b"{}" * 60)
    assert [declared.status_code, streamed.status_code, small_limit.status_code] == [413] * 3


async def test_body_at_the_limit_is_accepted(make_async, gateway):
    p = make_async()
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    async with client_for(create_app(p, max_body=len(body))) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_wrong_or_missing_content_type_is_415(make_async, gateway, content_type):
    p = make_async()
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    if content_type:
        headers["Content-Type"] = content_type
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 415
    assert (await p.get(payment.id)).status is Status.PENDING


async def test_json_with_charset_and_form_are_accepted_by_default(make_async, gateway):
    p = make_async()
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    headers["Content-Type"] = "Application/JSON; charset=utf-8"
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
        form = await client.post("/webhooks/fake", content=b"a=1", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert form.status_code == 400  # past the content-type check: the signature is missing


# --- a provider that declares its content type and verifies by fetching --------------


class FetchingProvider(FakeProvider):
    """Signs nothing it can be trusted on: the core fetches the payment instead."""

    name = "fetching"
    webhook_content_types: ClassVar[frozenset[str]] = frozenset({"application/json"})

    def parse_webhook(self, headers, body, *, now):
        return [attrs.evolve(e, verify_by_fetch=True, status=None)
                for e in super().parse_webhook(headers, body, now=now)]


class FetchingPlugin:
    @staticmethod
    @hookimpl
    def pasarela_register_providers(register):
        register.add(FetchingProvider)


def failing_gets(gateway):
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            raise httpx.ConnectError("provider down", request=request)
        return gateway.handle(request)
    return httpx.MockTransport(handle)


async def test_declared_content_types_are_enforced(make_async, gateway):
    p = make_async(plugins=(FetchingPlugin(),), providers={"fetching": {"max_retries": 0}})
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fetching", content=b"a=1", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


async def test_provider_unreachable_during_fetch_is_503_then_retry_applies(make_async, gateway):
    down = make_async(plugins=(FetchingPlugin(),), providers={"fetching": {"max_retries": 0}},
                      transport=failing_gets(gateway))
    payment = await down.pay(make_order("pedido-f"), method="cash", idempotency_key="f",
                             provider="fetching")
    headers, body = gateway.settle(payment.provider_reference)
    async with client_for(create_app(down)) as client:
        response = await client.post("/webhooks/fetching", headers=headers, content=body)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert (await down.get(payment.id)).status is Status.PENDING
    up = make_async(plugins=(FetchingPlugin(),), providers={"fetching": {"max_retries": 0}})
    async with client_for(create_app(up)) as client:
        retried = await client.post("/webhooks/fetching", headers=headers, content=body)
    assert retried.status_code == 200
    assert (await up.get(payment.id)).status is Status.SUCCEEDED


async def test_unexpected_error_is_500(make_async, gateway, monkeypatch):
    p = make_async()

    async def boom(*args: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(p, "handle_webhooks", boom)
    headers, body = gateway.settle((await pending_payment(p)).provider_reference)
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 500


# --- mounting, health, metrics ---------------------------------------------------------


async def test_mounts_inside_a_host_app(make_async, gateway):
    p = make_async()
    payment = await pending_payment(p)
    headers, body = gateway.settle(payment.provider_reference)
    host = Starlette(routes=[Mount("/pasarela", app=create_app(p))])
    async with client_for(host) as client:
        response = await client.post("/pasarela/webhooks/fake", headers=headers, content=body)
        health = await client.get("/pasarela/healthz")
    assert response.status_code == 200
    assert health.json() == {"status": "ok", "store": "ok"}


async def test_healthz_is_503_when_the_store_does_not_answer(make_async, monkeypatch):
    p = make_async()
    async with client_for(create_app(p)) as client:
        assert (await client.get("/healthz")).status_code == 200
        monkeypatch.setattr(p.store, "ping", lambda: False)
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "store": "unreachable"}


def test_create_app_refuses_other_objects():
    with pytest.raises(TypeError):
        create_app(object())  # type: ignore[arg-type]


async def test_metrics_expose_the_named_series(make_async, gateway):
    p = make_async()
    app = create_app(p)  # this process's counters count from here
    paid = await pending_payment(p, "pedido-paid")
    await pending_payment(p, "pedido-waiting")
    unknown = await p.pay(make_order("pedido-lost"), method="card", idempotency_key="lost",
                          scenario="timeout")
    assert unknown.status is Status.UNKNOWN
    declined = await p.pay(make_order("pedido-no"), method="card", idempotency_key="no",
                           scenario="decline")
    assert declined.status is Status.FAILED
    headers, body = gateway.settle(paid.provider_reference)
    async with client_for(app) as client:
        assert (await client.post("/webhooks/fake", headers=headers, content=body)).is_success
        forged = await client.post("/webhooks/fake", headers=headers, content=body + b" ")
        assert forged.status_code == 400
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    names = {name for name, _ in got}
    assert {
        "pasarela_store_up", "pasarela_payments_open", "pasarela_outbox_lag_events",
        "pasarela_outbox_oldest_age_seconds", "pasarela_webhook_requests_total",
        "pasarela_webhook_request_duration_seconds_count",
        "pasarela_payment_transitions_total", "pasarela_payment_time_to_success_seconds_count",
        "pasarela_provider_request_duration_seconds_count",
    } <= names
    # every series has a merchant label
    assert [key for key in got if "merchant" not in dict(key[1])] == []
    fake = (("merchant", ""), ("provider", "fake"))
    assert got[("pasarela_store_up", (("merchant", ""),))] == 1
    open_series = {dict(labels)["status"]: value for (name, labels), value in got.items()
                   if name == "pasarela_payments_open"}
    assert open_series == {"pending": 1, "unknown": 1}
    def moved(method: str, network: str, status: str) -> float:
        return got.get(("pasarela_payment_transitions_total", (
            ("merchant", ""), ("method", method), ("network", network), ("provider", "fake"),
            ("status", status))), 0)
    assert [moved("cash", "pagoefectivo", "pending"), moved("cash", "pagoefectivo", "succeeded"),
            moved("card", "", "unknown"), moved("card", "", "failed")] == [2, 1, 1, 1]
    paid_hist = (*fake[:1], ("method", "cash"), fake[1])
    assert got[("pasarela_payment_time_to_success_seconds_count", paid_hist)] == 1
    # pending x2, succeeded, unknown, failed: five events, none dispatched (worker mode)
    assert got[("pasarela_outbox_lag_events", (("merchant", ""),))] == 5
    assert got[("pasarela_outbox_oldest_age_seconds", (("merchant", ""),))] >= 0
    create = (("merchant", ""), ("operation", "create"), ("outcome", "2xx"),
              ("provider", "fake"))
    calls = got[("pasarela_provider_request_duration_seconds_count", create)]
    outcomes = {dict(labels)["outcome"]: value for (name, labels), value in got.items()
                if name == "pasarela_provider_request_duration_seconds_count"
                and dict(labels)["operation"] == "create"}
    # two codes issued; the decline answered 4xx; the timeout's exchange got no answer
    assert outcomes == {"2xx": 2, "4xx": 1, "error": 1}
    assert got[("pasarela_provider_request_duration_seconds_bucket",
                (("le", "+Inf"), *create))] == calls
    assert got[("pasarela_provider_request_duration_seconds_sum", create)] >= 0
    assert got[("pasarela_webhook_requests_total", (("code", "200"), *fake))] == 1
    assert got[("pasarela_webhook_requests_total", (("code", "400"), *fake))] == 1
    assert got[("pasarela_webhook_request_duration_seconds_count", fake)] == 2


async def test_counters_count_events_as_they_happen_without_reading_the_store(
        make_async, gateway, monkeypatch):
    p = make_async()
    app = create_app(p)
    key = ("pasarela_payment_transitions_total", (
        ("merchant", ""), ("method", "cash"), ("network", "pagoefectivo"), ("provider", "fake"),
        ("status", "pending")))
    async with client_for(app) as client:
        await pending_payment(p, "pedido-a")
        first = samples((await client.get("/metrics")).text)[key]
        again = samples((await client.get("/metrics")).text)[key]
        await pending_payment(p, "pedido-b")
        later = samples((await client.get("/metrics")).text)[key]
        other = make_async()  # another pasarela (its own store) in the same process
        await pending_payment(other, "pedido-c")
        after_other = samples((await client.get("/metrics")).text)[key]
    assert (first, again, later, after_other) == (1, 1, 2, 2)


async def test_metrics_report_the_store_down(make_async, monkeypatch):
    p = make_async()
    app = create_app(p)
    await pending_payment(p, "pedido-a")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("SELECT", {}, Exception("gone"))

    monkeypatch.setattr(p.store, "read_transaction", broken)
    async with client_for(app) as client:
        response = await client.get("/metrics")
    got = samples(response.text)
    assert response.status_code == 200
    assert got[("pasarela_store_up", (("merchant", ""),))] == 0
    assert not any(name == "pasarela_payments_open" for name, _ in got)
    # this process's counters need no store
    assert any(name == "pasarela_payment_transitions_total" for name, _ in got)


async def test_openmetrics_is_negotiated(make_async):
    async with client_for(create_app(make_async())) as client:
        response = await client.get("/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")



async def test_refusals_are_logged_and_leave_the_store_unchanged(make_async):
    p = make_async()
    big = b"{" + b" " * 70_000 + b"}"
    async with client_for(create_app(p)) as client:
        with capture_events() as logs:
            codes = [
                (await client.post("/webhooks/nope", content=b"{}",
                                   headers={"Content-Type": "application/json"})).status_code,
                (await client.post("/webhooks/fake", content=b"{}",
                                   headers={"Content-Type": "text/plain"})).status_code,
                (await client.post("/webhooks/fake", content=big,
                                   headers={"Content-Type": "application/json"})).status_code,
            ]
    assert codes == [404, 415, 413]
    assert [(e["event"], e["reason"], e["status"]) for e in logs] == [
        ("webhook_rejected", "unknown_provider", 404),
        ("webhook_rejected", "unsupported_media_type", 415),
        ("webhook_rejected", "body_too_large", 413),
    ]
    with p.store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries)
                            ).scalar_one() == 0
