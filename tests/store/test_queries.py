"""The reads the rest of pasarela makes (``pasarela.store.queries``), the jobs' lease,
and the store's public transactions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from ulid import ULID

from pasarela.errors import ConfigurationError
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.store import Delivery, Store, queries
from pasarela.store import schema as t


PaymentFactory = Callable[..., Payment]


def _moved(store: Store, payment: Payment, *targets: Status, **changes: object) -> Payment:
    for target in targets:
        payment = store.transition(payment.id, expected_version=payment.version,
                                   target=target, cause=Cause.API,
                                   event_type=f"payment.{target}", changes=changes)
        changes = {}
    return payment


def test_payment_counts_by_provider_method_and_status(
    store: Store, make_payment: PaymentFactory
) -> None:
    old = datetime.now(UTC) - timedelta(hours=3)
    for provider, method in (("fake", "cash"), ("fake", "cash"), ("fake", "card"),
                             ("yape", "wallet")):
        store.create_payment(make_payment(provider=provider, method=method), fingerprint="f")
    stale = make_payment(id=str(ULID.from_datetime(old)), created_at=old, updated_at=old)
    store.create_payment(stale, fingerprint="f")
    paid, _ = store.create_payment(make_payment(method="card"), fingerprint="f")
    _moved(store, paid, Status.PENDING, Status.SUCCEEDED)

    counts = sorted(queries.payment_counts(store))
    recent = sorted(queries.payment_counts(store, created_since=old + timedelta(hours=1)))

    assert counts == [("fake", "card", "created", 1), ("fake", "card", "succeeded", 1),
                      ("fake", "cash", "created", 3), ("yape", "wallet", "created", 1)]
    assert recent == [("fake", "card", "created", 1), ("fake", "card", "succeeded", 1),
                      ("fake", "cash", "created", 2), ("yape", "wallet", "created", 1)]
    assert recent[0].payments == 1


def test_metrics_in_one_read(store: Store, make_payment: PaymentFactory,
                             make_exchange: Callable[..., Exchange]) -> None:
    payment, _ = store.create_payment(make_payment(), fingerprint="f")
    for detail in ("bad signature", "stale"):
        store.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                       outcome="rejected", detail=detail))
    store.record_delivery(Delivery(provider="fake", event_id="e1", event_type="t",
                                   outcome="applied"))
    store.record_exchanges([make_exchange(payment.id, duration_ms=d) for d in (4.0, 40.0, 400.0)])

    first = queries.metrics(store, exchanges_after=0, bounds=(0.005, 0.05))

    assert first.payments == [("fake", "cash", "created", 1)]
    assert first.rejected == {"fake": 2}
    [latency] = first.latency
    assert (latency.provider, latency.operation, latency.calls) == ("fake", "create", 3)
    assert latency.buckets == (1, 2)
    assert latency.seconds == pytest.approx(0.444)
    assert queries.metrics(store, exchanges_after=latency.last_id, bounds=(1.0,)).latency == []
    assert queries.rejected_counts(store) == {"fake": 2}
    assert queries.provider_latency(store, after_id=0, bounds=(0.005,))[0].buckets == (1,)


def test_dashboard(store: Store, make_payment: PaymentFactory) -> None:
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=3)
    unknown = _moved(store, store.create_payment(make_payment(), fingerprint="f")[0],
                     Status.UNKNOWN)
    old = make_payment(id=str(ULID.from_datetime(long_ago)), created_at=long_ago,
                       updated_at=long_ago)
    stale = _moved(store, store.create_payment(old, fingerprint="f")[0], Status.PENDING)
    fresh = _moved(store, store.create_payment(make_payment(), fingerprint="f")[0],
                   Status.PENDING, routing={"expected_fee": {"minor": 350, "currency": "PEN"}})
    for at in (1, 2):
        store.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                       outcome="rejected", detail=f"bad {at}"))

    board = queries.dashboard(store, since=now - timedelta(days=1),
                              stale_before=now - timedelta(hours=1))

    assert sorted(p.status for p in board.recent) == ["pending", "unknown"]
    [routed] = [p for p in board.recent if p.status == "pending"]
    assert routed.routing == {"expected_fee": {"minor": 350, "currency": "PEN"}}
    assert routed.updated_at.tzinfo is UTC
    assert routed.updated_at == fresh.updated_at
    assert [p.id for p in board.attention] == [stale.id, unknown.id]  # oldest first
    assert board.attention[0].created_at == long_ago
    assert board.attention[0].created_at.tzinfo is UTC
    assert [r.detail for r in board.rejections] == ["bad 2", "bad 1"]  # newest first
    assert board.rejections[0].received_at.tzinfo is UTC


def test_worker_counts_agree_with_the_claims(store: Store, make_payment: PaymentFactory) -> None:
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    for expires in (now - timedelta(hours=1), now - timedelta(minutes=1), now + timedelta(hours=1)):
        _moved(store, store.create_payment(make_payment(), fingerprint="f")[0], Status.PENDING,
               expires_at=expires, next_check_at=now - timedelta(seconds=1))

    assert queries.due_for_expiry_count(store, now=now) == 2
    assert queries.due_for_check_count(store, now=now) == 3
    assert len(store.due_for_expiry(now=now)) == 2
    assert queries.due_for_expiry_count(store, now=now) == 0  # leased to this worker
    assert len(store.due_for_check(now=now)) == 3
    assert queries.due_for_check_count(store, now=now) == 0


def test_refund_candidates_and_the_lease(store: Store, make_payment: PaymentFactory) -> None:
    def late(provider: str = "fake") -> Payment:
        p, _ = store.create_payment(make_payment(provider=provider), fingerprint="f")
        p = _moved(store, p, Status.PENDING, Status.EXPIRED)
        return store.transition(p.id, expected_version=p.version, target=Status.SUCCEEDED,
                                cause=Cause.WEBHOOK, event_type="payment.late_succeeded")

    first, second, other = late(), late(), late("yape")
    _moved(store, store.create_payment(make_payment(), fingerprint="f")[0], Status.PENDING,
           Status.SUCCEEDED)  # paid on time: not announced
    failed = Refund(id=str(ULID()), payment_id=second.id, amount=second.amount,
                    status=RefundStatus.FAILED, created_at=datetime.now(UTC))
    store.save_refund(failed)

    def candidates(max_failed: int = 5) -> list[tuple[str, int]]:
        return queries.refund_candidates(store, providers=["fake"],
                                         announced_by="payment.late_succeeded",
                                         max_failed=max_failed, limit=10)

    assert candidates() == [(first.id, 0), (second.id, 1)]
    assert candidates(max_failed=1) == [(first.id, 0)]
    store.save_refund(Refund(id=str(ULID()), payment_id=first.id, amount=Money(100, "PEN"),
                             status=RefundStatus.PENDING, created_at=datetime.now(UTC)))
    assert candidates() == [(second.id, 1)]  # a refund in flight
    assert other.provider == "yape"

    now = datetime.now(UTC)
    until = now + timedelta(minutes=2)
    assert store.lease_payment(second.id, status=Status.SUCCEEDED, now=now, until=until)
    assert not store.lease_payment(second.id, status=Status.SUCCEEDED, now=now, until=until)
    later = until + timedelta(minutes=2)
    assert store.lease_payment(second.id, status=Status.SUCCEEDED, now=until, until=later)
    assert not store.lease_payment(other.id, status=Status.PENDING, now=now, until=until)
    assert not store.lease_payment(str(ULID()), status=Status.SUCCEEDED, now=now, until=until)
    assert store.get_payment(second.id).version == second.version  # a lease bumps nothing


def test_provider_references_in_keyset_pages(store: Store, make_payment: PaymentFactory
                                             ) -> None:
    now = datetime.now(UTC)
    for ref in ("c", "a", "b", "a"):
        store.create_payment(make_payment(provider_reference=ref), fingerprint="f")
    store.create_payment(make_payment(provider="yape", provider_reference="z"), fingerprint="f")
    store.create_payment(make_payment(), fingerprint="f")  # no reference yet

    def page(after: str) -> list[str]:
        return queries.provider_references(store, "fake", created_from=now - timedelta(hours=1),
                                           created_before=now + timedelta(hours=1),
                                           after=after, limit=2)

    assert page("") == ["a", "b"]
    assert page("b") == ["c"]
    assert page("c") == []
    assert queries.provider_references(store, "fake", created_from=now + timedelta(hours=1),
                                       created_before=now + timedelta(hours=2)) == []


def test_transaction_commits_or_rolls_back(store: Store, created: Payment) -> None:
    def reference() -> str | None:
        with store.read_transaction() as conn:
            return conn.execute(sa.select(t.payments.c.provider_reference)).scalar_one()

    with store.transaction() as conn:
        conn.execute(sa.update(t.payments).values(provider_reference="kept"))
    assert reference() == "kept"

    def fail() -> None:
        with store.transaction() as conn:
            conn.execute(sa.update(t.payments).values(provider_reference="lost"))
            raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        fail()
    assert reference() == "kept"


def test_a_transaction_holds_the_write_lock(store: Store, created: Payment) -> None:
    """A store write waits while a transaction is open (on SQLite, the process's
    writers queue on one lock; on PostgreSQL, the row lock makes it wait)."""
    done = threading.Event()

    def write() -> None:
        store.update_payment(created.id, expected_version=2, provider_reference="second")
        done.set()

    with store.transaction() as conn:
        conn.execute(sa.select(t.payments.c.id).where(t.payments.c.id == created.id)
                     .with_for_update())
        conn.execute(sa.update(t.payments).values(version=2, provider_reference="first"))
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.2)
        assert not done.is_set()
    writer.join(timeout=10)
    assert done.is_set()
    assert store.get_payment(created.id).provider_reference == "second"


def test_the_store_maps_a_missing_table(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text("DROP TABLE routing_decisions"))
    with pytest.raises(ConfigurationError, match="pasarela db upgrade"):
        store.record_decision(order_reference="o", payment_id=None, decision={})
