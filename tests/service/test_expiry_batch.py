"""The batched expiry sweep: one GET_MANY per chunk, one write batch per chunk, and
the one-by-one path when the batch cannot commit or the provider cannot answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError
from pasarela.lifecycle import Status
from pasarela.store.batch import WriteBatch
from pasarela.store.schema import exchanges as exchanges_t
from pasarela.testing.fake import FakeProvider

from .conftest import make_order


SEARCH = ("POST", "/v1/payments/search")


def pay_cash(p: Any, n: int, **order: Any) -> list[Any]:
    return [p.pay(make_order(f"pedido-{n}-{i}", **order), method="cash",
                  idempotency_key=f"k-{n}-{i}") for i in range(n)]


def gets(gateway: Any) -> list[tuple[str, str]]:
    return [c for c in gateway.calls if c[0] == "GET"]


def expired_steps(p: Any, payment_id: str) -> list[Any]:
    return [t for t in p.get(payment_id).history if t.target is Status.EXPIRED and t.applied]


def get_many_exchanges(p: Any) -> list[Any]:
    with p.store.engine.connect() as conn:
        return list(conn.execute(sa.select(exchanges_t).where(
            exchanges_t.c.operation == "get_many")).mappings())


def test_expires_exactly_the_due_pending_ones_with_one_question(
        make_sync, store_url, gateway, clock, observer):
    p = make_sync(url=store_url)
    due = pay_cash(p, 4)
    later = p.pay(make_order("pedido-later", expires_at=clock.now + timedelta(days=3)),
                  method="cash", idempotency_key="later")
    card = p.pay(make_order("pedido-card"), method="card", idempotency_key="card")
    assert card.status is Status.SUCCEEDED
    clock.now += timedelta(hours=25)
    gateway.calls.clear()

    assert p.expire_due() == 4

    assert gateway.calls == [SEARCH]  # one question for all, none one by one
    assert {p.get(x.id).status for x in due} == {Status.EXPIRED}
    assert p.get(later.id).status is Status.PENDING
    assert p.get(card.id).status is Status.SUCCEEDED
    for payment in due:
        step = p.get(payment.id).history[-1]
        assert (step.source, step.target, step.cause.value) == (
            Status.PENDING, Status.EXPIRED, "job")
        assert p.get(payment.id).next_check_at is None
    recorded = get_many_exchanges(p)
    assert len(recorded) == 1
    assert recorded[0]["payment_id"] is None
    p.dispatch_outbox()
    assert observer.types().count("payment.expired") == 4
    assert {e.payload["payment_id"] for e in observer.events
            if e.type == "payment.expired"} == {x.id for x in due}
    assert p.expire_due() == 0  # nothing twice


def test_what_the_provider_reports_wins_over_expiry(make_sync, store_url, gateway, clock,
                                                    observer):
    p = make_sync(url=store_url)
    paid, gone, canceled, unpaid = pay_cash(p, 4)
    gateway.payments[paid.provider_reference].status = "succeeded"  # webhook lost
    gateway.payments[gone.provider_reference].status = "expired"
    gateway.payments[canceled.provider_reference].status = "canceled"
    clock.now += timedelta(hours=25)

    assert p.expire_due() == 2  # the one the provider expired, and the unpaid one

    assert p.get(paid.id).status is Status.SUCCEEDED
    assert p.get(gone.id).status is Status.EXPIRED
    assert p.get(canceled.id).status is Status.CANCELED
    assert p.get(unpaid.id).status is Status.EXPIRED
    assert expired_steps(p, paid.id) == []
    assert p.get(paid.id).history[-1].cause.value == "job"
    p.dispatch_outbox()
    by_payment = {e.payload["payment_id"]: e.type for e in observer.events
                  if e.type != "payment.pending"}
    assert by_payment == {paid.id: "payment.succeeded", gone.id: "payment.expired",
                          canceled.id: "payment.canceled", unpaid.id: "payment.expired"}


def test_chunks_by_the_providers_get_many_limit(make_sync, store_url, gateway, clock,
                                                monkeypatch):
    monkeypatch.setattr(FakeProvider, "get_many_limit", 2)
    p = make_sync(url=store_url)
    payments = pay_cash(p, 5)
    clock.now += timedelta(hours=25)
    gateway.calls.clear()
    assert p.expire_due() == 5
    assert gateway.calls == [SEARCH] * 3
    assert {p.get(x.id).status for x in payments} == {Status.EXPIRED}
    assert len(get_many_exchanges(p)) == 3


def test_a_payment_the_provider_does_not_mention_is_expired(make_sync, store_url, gateway,
                                                            clock):
    p = make_sync(url=store_url)
    known, forgotten = pay_cash(p, 2)
    del gateway.payments[forgotten.provider_reference]
    clock.now += timedelta(hours=25)
    assert p.expire_due() == 2
    assert p.get(known.id).status is Status.EXPIRED
    assert p.get(forgotten.id).status is Status.EXPIRED  # as when a get finds nothing
    assert gets(gateway) == []


def test_a_conflict_at_the_flush_falls_back_to_one_by_one(
        make_sync, store_url, gateway, clock, observer, monkeypatch):
    p = make_sync(url=store_url)
    paid, *unpaid = pay_cash(p, 3)
    gateway.payments[paid.provider_reference].status = "succeeded"
    clock.now += timedelta(hours=25)
    flush = WriteBatch.flush
    conflicts: list[int] = []

    def conflicting_flush(batch: WriteBatch) -> None:
        if not conflicts:
            conflicts.append(1)
            raise ConcurrencyConflictError("a payment in the batch changed under it")
        flush(batch)

    monkeypatch.setattr(WriteBatch, "flush", conflicting_flush)
    gateway.calls.clear()

    assert p.expire_due() == 2

    assert conflicts == [1]
    # The batch wrote nothing; the fallback asked about each payment and applied it once.
    assert sorted(gets(gateway)) == sorted(
        ("GET", f"/v1/payments/{x.provider_reference}") for x in (paid, *unpaid))
    assert p.get(paid.id).status is Status.SUCCEEDED
    for payment in unpaid:
        assert p.get(payment.id).status is Status.EXPIRED
        assert len(expired_steps(p, payment.id)) == 1
    assert len(get_many_exchanges(p)) == 1  # kept, though its batch rolled back
    p.dispatch_outbox()
    types = [e.type for e in observer.events if e.type != "payment.pending"]
    assert sorted(types) == ["payment.expired", "payment.expired", "payment.succeeded"]


def test_a_failing_get_many_falls_back_to_one_by_one(make_sync, store_url, gateway, clock,
                                                     monkeypatch):
    p = make_sync(url=store_url)
    paid, unpaid = pay_cash(p, 2)
    gateway.payments[paid.provider_reference].status = "succeeded"
    clock.now += timedelta(hours=25)
    monkeypatch.setattr(gateway, "_search", lambda data: gateway._error(
        503, "server_error", "search is down"))
    gateway.calls.clear()

    assert p.expire_due() == 1

    assert gateway.calls[0] == SEARCH
    assert len(gets(gateway)) == 2
    assert p.get(paid.id).status is Status.SUCCEEDED
    assert p.get(unpaid.id).status is Status.EXPIRED
    assert len(get_many_exchanges(p)) == 1  # the failed question is kept as evidence


def test_a_payment_settled_while_the_provider_was_asked_is_not_expired(
        make_sync, store_url, gateway, clock, observer):
    """The sweep claims, asks (the answer is a moment old), then applies: a webhook
    that lands in between wins; the stale "pending" does not expire the payment."""
    p: Any = None
    handle = gateway.transport().handle_request

    def transport(request: httpx.Request) -> httpx.Response:
        response = handle(request)
        if (request.method, request.url.path) == SEARCH:
            headers, body = gateway.settle(settled.provider_reference)
            assert p.handle_webhook("fake", headers, body).status_code == 200
        return response

    p = make_sync(url=store_url, transport=httpx.MockTransport(transport))
    settled, unpaid = pay_cash(p, 2)
    clock.now += timedelta(hours=25)

    assert p.expire_due() == 1

    assert p.get(settled.id).status is Status.SUCCEEDED
    assert expired_steps(p, settled.id) == []
    assert p.get(unpaid.id).status is Status.EXPIRED
    p.dispatch_outbox()
    assert "payment.late_succeeded" not in observer.types()


def test_providers_without_get_many_are_asked_one_by_one(make_sync, store_url, gateway,
                                                         clock, monkeypatch):
    from pasarela.provider import Operation

    monkeypatch.setattr(FakeProvider, "operations",
                        frozenset(Operation) - {Operation.GET_MANY})
    p = make_sync(url=store_url)
    paid, unpaid = pay_cash(p, 2)
    gateway.payments[paid.provider_reference].status = "succeeded"
    clock.now += timedelta(hours=25)
    gateway.calls.clear()
    assert p.expire_due() == 1
    assert SEARCH not in gateway.calls
    assert len(gets(gateway)) == 2
    assert p.get(paid.id).status is Status.SUCCEEDED
    assert p.get(unpaid.id).status is Status.EXPIRED


@pytest.mark.parametrize("limit", [1, 3])
def test_claim_limit_is_respected(make_sync, store_url, clock, limit):
    from pasarela.engine.jobs import expire_due
    from pasarela.engine.steps import drive

    p = make_sync(url=store_url)
    payments = pay_cash(p, 4)
    clock.now += timedelta(hours=25)
    assert drive(expire_due(p.service, limit=limit), p._client) == limit
    assert sum(p.get(x.id).status is Status.EXPIRED for x in payments) == limit
