"""Group commit: many deliveries applied in one write batch must leave exactly what
applying them one by one leaves, in one transaction, and fall back cleanly."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.errors import ConcurrencyConflictError
from pasarela.lifecycle import Cause, Status
from pasarela.provider import WebhookReply
from pasarela.store import Delivery, Store
from pasarela.store.schema import outbox, payments, transitions, webhook_deliveries
from pasarela.testing.fake import FakeGateway, FakePlugin, sign_fake_webhook
from pasarela.testing.helpers import ManualClock, capture_events
from pasarela.web.app import create_app

from .conftest import make_order
from .test_asgi import client_for


def _pasarela(url: str, gateway: FakeGateway, clock: ManualClock) -> Pasarela:
    config = {"store": {"url": url}, "providers": {"fake": {"max_retries": 0}},
              "events": {"dispatch": "worker"}}
    p = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                 transport=gateway.transport(), clock=clock, store=Store(url, upgrade=True))
    p.service.sleep_scale = 0
    return p


def _scenario(p: Pasarela, gateway: FakeGateway) -> list[tuple[str, dict[str, str], bytes]]:
    """Eight pending payments and the deliveries about them, in a fixed order: repeats,
    two events for one payment in either order, a failure, an amount mismatch, an
    unknown reference, a forged signature, an event with no status."""
    refs = [p.pay(make_order(f"pedido-{i}"), method="cash",
                  idempotency_key=f"k-{i}").provider_reference for i in range(8)]
    assert all(refs)
    out: list[tuple[str, dict[str, str], bytes]] = []

    def add(headers: dict[str, str], body: bytes) -> None:
        out.append(("fake", headers, body))

    paid = gateway.settle(refs[0])
    add(*paid)
    add(*gateway.settle(refs[1], "processing"))
    add(*paid)                                     # a repeat, later in the same batch
    add(*gateway.settle(refs[1], "succeeded"))
    late = gateway.settle(refs[2], "processing")
    add(*gateway.settle(refs[2], "succeeded"))
    add(*late)                                     # stale: arrives after succeeded
    add(*gateway.settle(refs[3], "failed"))
    add(*gateway.settle(refs[4], "succeeded", amount=1))  # amount mismatch
    add(*gateway.settle(refs[5], "expired"))
    headers, body = gateway.settle(refs[6])
    add({**headers, "Fake-Signature": headers["Fake-Signature"][:-4] + "0000"}, body)
    stamp = int(gateway.clock().timestamp())
    for event in ({"id": "evt_unknown", "type": "payment.succeeded",
                   "data": {"id": "fp_999999", "status": "succeeded", "amount": 14990,
                            "currency": "PEN"}},
                  {"id": "evt_note", "type": "payment.note",
                   "data": {"id": refs[7], "status": "note", "amount": 14990,
                            "currency": "PEN"}}):
        raw = json.dumps(event).encode()
        add(sign_fake_webhook(raw, gateway.webhook_secret, stamp), raw)
    add(*paid)                                     # and once more, at the end
    return out


def _snapshot(url: str) -> dict[str, Any]:
    """Everything the deliveries wrote, keyed by order reference (ids differ per run)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            order = dict(conn.execute(sa.select(payments.c.id, payments.c.order_reference)).all())
            state = sorted(
                (r.order_reference, r.status, r.version, r.provider_reference,
                 r.next_check_at is None, r.error_code)
                for r in conn.execute(sa.select(payments)))
            steps = sorted(
                (order[r.payment_id], r.seq, r.source, r.target, r.cause, bool(r.applied),
                 r.reason, r.event_id, r.version)
                for r in conn.execute(sa.select(transitions)))
            events = sorted(
                (order[r.payment_id], r.type,
                 json.dumps({**r.payload, "payment_id": None}, sort_keys=True))
                for r in conn.execute(sa.select(outbox)))
            deliveries = sorted(
                (r.event_id or "", r.event_type or "", r.outcome, r.detail,
                 order.get(r.payment_id, ""))
                for r in conn.execute(sa.select(webhook_deliveries)))
    finally:
        engine.dispose()
    return {"payments": state, "transitions": steps, "outbox": events,
            "deliveries": deliveries}


def test_a_batch_leaves_what_one_by_one_leaves(tmp_path):
    runs = []
    for label in ("single", "batch"):
        clock = ManualClock()
        gateway = FakeGateway(clock=clock)
        url = f"sqlite:///{tmp_path / label}.db"
        with _pasarela(url, gateway, clock) as p:
            deliveries = _scenario(p, gateway)
            if label == "single":
                replies: list[Any] = [p.handle_webhook(*d) for d in deliveries]
            else:
                with capture_events() as logs:
                    replies = p.handle_webhooks(deliveries)
                assert not [e for e in logs if e["event"] == "webhook_batch_fallback"]
        runs.append(([(r.status_code, r.body) for r in replies], _snapshot(url)))
    (single_replies, single), (batch_replies, batch) = runs
    assert batch_replies == single_replies
    assert [code for code, _ in batch_replies].count(400) == 1  # the forged one
    assert batch == single
    final = {ref: status for ref, status, *_ in batch["payments"]}
    assert final == {"pedido-0": "succeeded", "pedido-1": "succeeded",
                     "pedido-2": "succeeded", "pedido-3": "failed", "pedido-4": "pending",
                     "pedido-5": "expired", "pedido-6": "pending", "pedido-7": "pending"}
    outcomes = sorted(o for _, _, o, _, _ in batch["deliveries"])
    # The stale "processing" is recorded as applied evidence (an ignored transition).
    assert outcomes == ["applied"] * 7 + ["ignored", "mismatch", "rejected", "unknown_payment"]


def test_a_batch_is_one_write_transaction(make_sync, gateway, monkeypatch):
    p = make_sync()
    refs = [p.pay(make_order(f"pedido-{i}"), method="cash",
                  idempotency_key=f"k-{i}").provider_reference for i in range(10)]
    deliveries = [("fake", *gateway.settle(ref)) for ref in refs]
    store = p.service.store
    writes = []
    begin = store._begin

    @contextmanager
    def counting(*, write: bool = False) -> Any:
        writes.append(write)
        with begin(write=write) as conn:
            yield conn

    monkeypatch.setattr(store, "_begin", counting)
    replies = p.handle_webhooks(deliveries)
    assert [r.status_code for r in replies] == [200] * 10
    assert writes == [True]  # one transaction: no reads or writes of its own per delivery
    assert {p.get(pid).status for pid in _ids(store)} == {Status.SUCCEEDED}


def _ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(payments.c.id)).scalars())


def test_a_batch_that_cannot_commit_is_applied_one_by_one(make_sync, gateway, monkeypatch):
    p = make_sync()
    refs = [p.pay(make_order(f"pedido-{i}"), method="cash",
                  idempotency_key=f"k-{i}").provider_reference for i in range(3)]
    deliveries = [("fake", *gateway.settle(ref)) for ref in refs]
    from pasarela.store.batch import WriteBatch

    def conflict(self: WriteBatch) -> None:
        raise ConcurrencyConflictError("another process recorded a delivery first")

    monkeypatch.setattr(WriteBatch, "flush", conflict)
    with capture_events() as logs:
        replies = p.handle_webhooks(deliveries)
    assert [r.status_code for r in replies] == [200] * 3
    assert [e["event"] for e in logs].count("webhook_batch_fallback") == 1
    payment = p.service.store.find_payment(provider="fake", provider_reference=refs[0])
    assert payment is not None
    assert payment.status is Status.SUCCEEDED
    # Each delivery applied exactly once, by the one-by-one path.
    history = [t for t in p.get(payment.id).history if t.cause is Cause.WEBHOOK]
    assert [(t.target, t.applied) for t in history] == [(Status.SUCCEEDED, True)]


def test_an_item_that_raises_answers_alone(make_sync, gateway, monkeypatch):
    p = make_sync()
    refs = [p.pay(make_order(f"pedido-{i}"), method="cash",
                  idempotency_key=f"k-{i}").provider_reference for i in range(3)]
    deliveries = [("fake", *gateway.settle(ref)) for ref in refs]
    from pasarela.engine import webhooks

    real = webhooks._apply_event

    def flaky(service: Any, name: str, event: Any, store: Any) -> Any:
        if event.provider_reference == refs[1]:
            raise RuntimeError("bug in one item")
        return real(service, name, event, store)

    monkeypatch.setattr(webhooks, "_apply_event", flaky)
    replies = p.handle_webhooks(deliveries)
    assert isinstance(replies[1], RuntimeError)
    assert [r.status_code for r in (replies[0], replies[2])] == [200, 200]
    statuses = [p.service.store.find_payment(provider="fake", provider_reference=r).status
                for r in refs]
    assert statuses == [Status.SUCCEEDED, Status.PENDING, Status.SUCCEEDED]


@pytest.mark.postgres
def test_another_process_recording_a_delivery_first_rolls_the_batch_back(
        postgres_schema_url, make_sync, gateway):
    p = make_sync(url=postgres_schema_url)
    refs = [p.pay(make_order(f"pedido-{i}"), method="cash",
                  idempotency_key=f"k-{i}").provider_reference for i in range(2)]
    store = p.service.store
    other = Store(postgres_schema_url)
    try:
        delivery = Delivery(provider="fake", event_id="evt_a",
                            event_type="payment.succeeded", outcome="applied")

        def race() -> None:
            with store.batch() as batch:
                batch.prefetch("fake", references=refs, event_ids=["evt_a", "evt_b"])
                first = batch.find_payment(provider="fake", provider_reference=refs[0])
                assert first is not None
                batch.transition(first.id, expected_version=first.version,
                                 target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                                 event_type="payment.succeeded", event_id="evt_a",
                                 delivery=delivery)
                # Another server records the same delivery while this batch is open.
                assert other.record_delivery(Delivery(
                    provider="fake", event_id="evt_a", event_type="payment.succeeded",
                    outcome="applied", payment_id=first.id))

        with pytest.raises(ConcurrencyConflictError):
            race()
        payment = store.find_payment(provider="fake", provider_reference=refs[0])
        assert payment is not None
        assert payment.status is Status.PENDING  # nothing half done
    finally:
        other.close()


@pytest.mark.anyio
async def test_the_server_batches_concurrent_deliveries(make_async, gateway, monkeypatch):
    p = make_async()
    assert p.store.dialect == "sqlite"
    refs = [(await p.pay(make_order(f"pedido-{i}"), method="cash",
                         idempotency_key=f"k-{i}")).provider_reference for i in range(12)]
    sizes: list[int] = []
    modes: set[bool] = set()
    real = p.handle_webhooks

    async def spy(deliveries: Any, *, inline: bool) -> list[WebhookReply | Exception]:
        sizes.append(len(deliveries))
        modes.add(inline)
        return await real(deliveries, inline=inline)

    monkeypatch.setattr(p, "handle_webhooks", spy)
    signed = [gateway.settle(ref) for ref in refs]
    codes: list[int] = []
    async with client_for(create_app(p)) as client:

        async def post(headers: dict[str, str], body: bytes) -> None:
            codes.append((await client.post("/webhooks/fake", headers=headers,
                                            content=body)).status_code)

        async with anyio.create_task_group() as tg:
            for headers, body in signed:
                tg.start_soon(post, headers, body)
    assert codes == [200] * 12
    assert sum(sizes) == 12
    assert max(sizes) > 1  # deliveries that arrived together shared a transaction
    assert modes == {True}  # SQLite: the store work ran on the event loop
    for ref in refs:
        payment = p.service.store.find_payment(provider="fake", provider_reference=ref)
        assert payment is not None
        assert payment.status is Status.SUCCEEDED


@pytest.mark.anyio
@pytest.mark.postgres
async def test_on_postgresql_batches_run_in_a_worker_thread(
        postgres_schema_url, make_async, gateway):
    import threading

    p = make_async(url=postgres_schema_url)
    payment = await p.pay(make_order("pedido-pg"), method="cash", idempotency_key="k-pg")
    threads: set[str] = set()
    real = p.service.store.batch

    @contextmanager
    def spy() -> Any:
        threads.add(threading.current_thread().name)
        with real() as batch:
            yield batch

    p.service.store.batch = spy  # type: ignore[method-assign]
    headers, body = gateway.settle(payment.provider_reference)
    async with client_for(create_app(p)) as client:
        response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 200
    assert threads
    assert threading.main_thread().name not in threads
    assert (await p.get(payment.id)).status is Status.SUCCEEDED
