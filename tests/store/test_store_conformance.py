"""The store's contract, on SQLite and on PostgreSQL (the ``store`` fixture).

The writer's rules (:class:`pasarela.store.PaymentWriter`: version check and bump,
transition and outbox together, duplicate deliveries refused, evidence recorded,
refunds, bad input refused) run on both writers (the ``write`` fixture: the store
itself, and a write batch over it, read back through the store once written).
Where a batch legitimately differs, the test says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from ulid import ULID

from pasarela.errors import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    NotFoundError,
    ValidationError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Customer, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.next_action import ScanQr, ShowCashCode
from pasarela.store import Delivery, PaymentWriter, Store, WriteBatch
from pasarela.store import schema as t

from .conftest import Writes


LIMA = timezone(timedelta(hours=-5))

RowCounter = Callable[..., int]
PaymentFactory = Callable[..., Payment]
ExchangeFactory = Callable[..., Exchange]


def to_pending(writer: PaymentWriter, payment: Payment, **changes: object) -> Payment:
    return writer.transition(
        payment.id,
        expected_version=payment.version,
        target=Status.PENDING,
        cause=Cause.API,
        event_type="payment.pending",
        changes=changes,
    )


# --- payments ---------------------------------------------------------------------


def test_create_get_and_find(store: Store, make_payment: PaymentFactory) -> None:
    payment = make_payment(provider="pagoefectivo")

    stored, inserted = store.create_payment(payment, fingerprint="fp")

    assert inserted
    assert stored == payment
    assert store.get_payment(payment.id) == payment
    assert store.find_payment(idempotency_key=payment.idempotency_key) == payment
    assert store.find_payment(idempotency_key="nope") is None
    with pytest.raises(NotFoundError):
        store.get_payment(str(ULID()))


def test_find_by_reference_sees_the_writers_change(
    write: Writes, store: Store, make_payment: PaymentFactory
) -> None:
    payment, _ = store.create_payment(make_payment(provider="pagoefectivo"), fingerprint="fp")

    with write() as writer:
        assert writer.find_payment(provider="pagoefectivo", provider_reference="CIP-9") is None
        updated = writer.update_payment(payment.id, expected_version=1,
                                        provider_reference="CIP-9")
        found = writer.find_payment(provider="pagoefectivo", provider_reference="CIP-9")
        assert found == updated
        assert writer.find_payment(provider="yape", provider_reference="CIP-9") is None
        with pytest.raises(NotFoundError):
            writer.get_payment(str(ULID()))

    found = store.find_payment(provider="pagoefectivo", provider_reference="CIP-9")
    assert found is not None
    assert found.id == payment.id
    assert found.version == updated.version == 2
    assert found == updated


def test_find_needs_a_criterion(write: Writes) -> None:
    with write() as writer, pytest.raises(ValidationError):
        writer.find_payment(provider="fake")


def test_same_key_same_fingerprint_returns_the_existing_payment(
    store: Store, make_payment: PaymentFactory, rows: RowCounter
) -> None:
    first, _ = store.create_payment(make_payment(idempotency_key="pedido-1042"), fingerprint="fp")
    retry = make_payment(idempotency_key="pedido-1042")  # a new id, the same key

    again, inserted = store.create_payment(retry, fingerprint="fp")

    assert not inserted
    assert again == first
    assert again.id != retry.id
    assert rows(store, t.payments) == 1


def test_same_key_other_fingerprint_is_a_conflict(
    store: Store, make_payment: PaymentFactory, rows: RowCounter
) -> None:
    first, _ = store.create_payment(make_payment(idempotency_key="pedido-7"), fingerprint="fp-a")

    with pytest.raises(IdempotencyConflictError, match="idempotency_key") as caught:
        store.create_payment(
            make_payment(idempotency_key="pedido-7", amount=Money.of("1.00", "PEN")),
            fingerprint="fp-b",
        )

    assert caught.value.code == "idempotency_conflict"
    assert rows(store, t.payments) == 1
    assert store.get_payment(first.id) == first


def test_update_payment_checks_and_bumps_the_version(
    write: Writes, store: Store, created: Payment
) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=LIMA)
    with write() as writer:
        updated = writer.update_payment(
            created.id,
            expected_version=1,
            provider_reference="ref-1",
            expires_at=expires,
            routing={"route": "cash", "candidates": ["fake"]},
            next_check_at=None,
            check_attempts=2,
            error_code="declined",
            error_message="no",
        )
        with pytest.raises(ConcurrencyConflictError):
            writer.update_payment(created.id, expected_version=1, provider_reference="ref-2")
        with pytest.raises(ValidationError, match="status"):
            writer.update_payment(created.id, expected_version=2, status="succeeded")
        with pytest.raises(NotFoundError):
            writer.update_payment(str(ULID()), expected_version=1, provider_reference="x")

    assert updated.version == 2
    assert updated.status is Status.CREATED
    assert updated.provider_reference == "ref-1"
    assert updated.expires_at == expires
    assert updated.routing == {"route": "cash", "candidates": ["fake"]}
    assert (updated.next_check_at, updated.check_attempts) == (None, 2)
    assert (updated.error_code, updated.error_message) == ("declined", "no")
    assert store.get_payment(created.id) == updated
    assert store.history(created.id) == []
    assert store.get_payment(created.id).provider_reference == "ref-1"


# --- transitions ------------------------------------------------------------------


def test_transition_writes_payment_transition_outbox_and_evidence(
    write: Writes, store: Store, created: Payment, make_exchange: ExchangeFactory,
    rows: RowCounter,
) -> None:
    action = ShowCashCode(
        code="12345678", amount=created.amount, expires_at=datetime(2030, 1, 1, tzinfo=UTC)
    )
    exchange = make_exchange(None)  # payment_id filled in by the transition
    delivery = Delivery(provider="fake", event_id="evt-1", event_type="cip.created",
                        outcome="applied")

    with write() as writer:
        moved = writer.transition(
            created.id,
            expected_version=1,
            target=Status.PENDING,
            cause=Cause.WEBHOOK,
            event_type="payment.pending",
            reason="cip issued",
            event_id="evt-1",
            changes={"provider_reference": "CIP-1", "next_action": action},
            exchanges=[exchange],
            delivery=delivery,
        )
        assert writer.get_payment(created.id) == moved  # the writer sees its own write
        assert writer.seen_delivery("fake", "evt-1")

    assert moved.status is Status.PENDING
    assert moved.version == 2
    assert moved.provider_reference == "CIP-1"
    assert moved.next_action == action
    assert store.get_payment(created.id) == moved
    [step] = store.history(created.id)
    assert (step.seq, step.source, step.target, step.cause) == (
        1, Status.CREATED, Status.PENDING, Cause.WEBHOOK,
    )
    assert (step.applied, step.reason, step.event_id, step.version) == (True, "cip issued",
                                                                        "evt-1", 2)
    assert step.at.tzinfo is UTC
    [event] = store.claim_outbox(now=datetime.now(UTC) + timedelta(seconds=1))
    assert event.type == "payment.pending"
    assert event.payment_id == created.id
    assert len(event.id) == 26
    assert ULID.from_str(event.id)
    assert event.payload == {
        "payment_id": created.id,
        "order_reference": created.order_reference,
        "provider": "fake",
        "method": "cash",
        "status": "pending",
        "amount": {"minor": 14990, "currency": "PEN"},
        "provider_reference": "CIP-1",
        "version": 2,
    }
    [recorded] = store.exchanges_for(created.id)
    assert recorded["payment_id"] == created.id
    assert recorded["operation"] == "create"
    assert store.seen_delivery("fake", "evt-1")
    assert rows(store, t.webhook_deliveries, t.webhook_deliveries.c.payment_id == created.id) == 1


def test_transition_with_custom_payload(write: Writes, store: Store, created: Payment) -> None:
    with write() as writer:
        pending = to_pending(writer, created)
        writer.transition(
            created.id, expected_version=pending.version, target=Status.SUCCEEDED,
            cause=Cause.JOB, event_type="payment.succeeded", payload={"custom": [1, 2]},
        )
    events = store.claim_outbox(now=datetime.now(UTC) + timedelta(seconds=1))
    assert [e.type for e in events] == ["payment.pending", "payment.succeeded"]
    assert [e.payload for e in events][-1] == {"custom": [1, 2]}


def test_duplicate_delivery_rolls_the_whole_transition_back(
    write: Writes, store: Store, created: Payment, make_exchange: ExchangeFactory,
    rows: RowCounter,
) -> None:
    pending = to_pending(store, created)
    assert store.record_delivery(
        Delivery(provider="fake", event_id="evt-9", event_type="paid", outcome="applied",
                 payment_id=created.id)
    )
    before = (
        rows(store, t.transitions), rows(store, t.outbox), rows(store, t.exchanges),
        rows(store, t.refunds), rows(store, t.webhook_deliveries),
    )

    with write() as writer:
        with pytest.raises(ConcurrencyConflictError, match="duplicate delivery"):
            writer.transition(
                created.id,
                expected_version=pending.version,
                target=Status.SUCCEEDED,
                cause=Cause.WEBHOOK,
                event_type="payment.succeeded",
                changes={"provider_reference": "changed", "refunded_minor": 100},
                exchanges=[make_exchange(created.id)],
                delivery=Delivery(provider="fake", event_id="evt-9", event_type="paid",
                                  outcome="applied"),
                refund=Refund(id=str(ULID()), payment_id=created.id, amount=Money(100, "PEN"),
                              status=RefundStatus.PENDING, created_at=datetime.now(UTC)),
            )
        assert writer.get_payment(created.id) == pending  # nothing of it is seen either

    assert store.get_payment(created.id) == pending
    assert len(store.history(created.id)) == 1
    after = (
        rows(store, t.transitions), rows(store, t.outbox), rows(store, t.exchanges),
        rows(store, t.refunds), rows(store, t.webhook_deliveries),
    )
    assert after == before
    # The same transition without the duplicate goes through.
    with write() as writer:
        done = writer.transition(
            created.id, expected_version=pending.version, target=Status.SUCCEEDED,
            cause=Cause.WEBHOOK, event_type="payment.succeeded",
        )
    assert done.version == pending.version + 1
    assert store.get_payment(created.id) == done


def test_a_delivery_is_refused_twice_by_one_writer(
    write: Writes, store: Store, created: Payment, rows: RowCounter
) -> None:
    delivery = Delivery(provider="fake", event_id="evt-2", event_type="paid", outcome="applied")
    with write() as writer:
        pending = to_pending(writer, created)
        moved = writer.transition(created.id, expected_version=pending.version,
                                  target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                                  event_type="payment.succeeded", delivery=delivery)
        with pytest.raises(ConcurrencyConflictError, match="duplicate delivery"):
            writer.record_ignored(created.id, source=Status.SUCCEEDED,
                                  target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                                  reason="duplicate", delivery=delivery)
    assert store.get_payment(created.id) == moved
    assert [s.applied for s in store.history(created.id)] == [True, True]
    assert rows(store, t.webhook_deliveries) == 1


def test_stale_version_is_a_conflict_and_writes_nothing(
    write: Writes, store: Store, created: Payment, rows: RowCounter
) -> None:
    pending = to_pending(store, created)

    with write() as writer, pytest.raises(ConcurrencyConflictError) as caught:
        writer.transition(
            created.id, expected_version=1, target=Status.CANCELED, cause=Cause.API,
            event_type="payment.canceled",
        )

    assert caught.value.retryable
    assert store.get_payment(created.id) == pending
    assert rows(store, t.transitions) == 1
    assert rows(store, t.outbox) == 1


def test_transition_of_a_missing_payment(write: Writes) -> None:
    with write() as writer, pytest.raises(NotFoundError):
        writer.transition(
            str(ULID()), expected_version=1, target=Status.PENDING, cause=Cause.API,
            event_type="payment.pending",
        )


def test_transition_refuses_unknown_changes(
    write: Writes, store: Store, created: Payment, rows: RowCounter
) -> None:
    with write() as writer, pytest.raises(ValidationError, match="amount_minor"):
        writer.transition(
            created.id, expected_version=1, target=Status.PENDING, cause=Cause.API,
            event_type="payment.pending", changes={"amount_minor": 1},
        )
    assert store.get_payment(created.id).version == 1
    assert (rows(store, t.transitions), rows(store, t.outbox)) == (0, 0)


def test_record_ignored_keeps_the_version(
    write: Writes, store: Store, created: Payment, make_exchange: ExchangeFactory,
    rows: RowCounter,
) -> None:
    pending = to_pending(store, created)

    with write() as writer:
        writer.record_ignored(
            created.id,
            source=Status.PENDING,
            target=Status.CREATED,
            cause=Cause.WEBHOOK,
            reason="stale",
            event_id="evt-old",
            exchanges=[make_exchange(None)],
            delivery=Delivery(provider="fake", event_id="evt-old", event_type="x",
                              outcome="ignored"),
        )
        assert writer.get_payment(created.id) == pending
        assert writer.seen_delivery("fake", "evt-old")

    assert store.get_payment(created.id) == pending
    applied, ignored = store.history(created.id)
    assert applied.applied
    assert (ignored.seq, ignored.applied, ignored.reason, ignored.version) == (2, False, "stale", 2)
    assert (ignored.source, ignored.target, ignored.event_id) == (
        Status.PENDING, Status.CREATED, "evt-old",
    )
    assert rows(store, t.outbox) == 1  # no event for an ignored report
    assert len(store.exchanges_for(created.id)) == 1
    assert store.seen_delivery("fake", "evt-old")
    with write() as writer:
        with pytest.raises(ConcurrencyConflictError, match="duplicate delivery"):
            writer.record_ignored(
                created.id, source=Status.PENDING, target=Status.CREATED, cause=Cause.WEBHOOK,
                reason="stale", exchanges=[make_exchange(None)],
                delivery=Delivery(provider="fake", event_id="evt-old", event_type="x",
                                  outcome="ignored"),
            )
        with pytest.raises(NotFoundError):
            writer.record_ignored(str(ULID()), source=Status.PENDING, target=Status.PENDING,
                                  cause=Cause.JOB, reason="duplicate")
    assert len(store.history(created.id)) == 2
    assert len(store.exchanges_for(created.id)) == 1


def test_history_is_in_order(write: Writes, store: Store, created: Payment) -> None:
    with write() as writer:
        p = to_pending(writer, created)
        writer.record_ignored(p.id, source=Status.PENDING, target=Status.PENDING,
                              cause=Cause.WEBHOOK, reason="duplicate")
        p = writer.transition(p.id, expected_version=p.version, target=Status.SUCCEEDED,
                              cause=Cause.WEBHOOK, event_type="payment.succeeded")
        p = writer.transition(p.id, expected_version=p.version,
                              target=Status.PARTIALLY_REFUNDED, cause=Cause.API,
                              event_type="payment.partially_refunded",
                              changes={"refunded_minor": 1000})

    steps = store.history(p.id)
    with_history = store.get_payment(p.id, history=True)

    assert [s.seq for s in steps] == [1, 2, 3, 4]
    assert [s.target for s in steps] == [Status.PENDING, Status.PENDING, Status.SUCCEEDED,
                                         Status.PARTIALLY_REFUNDED]
    assert [s.version for s in steps] == [2, 2, 3, 4]
    assert [s.applied for s in steps] == [True, False, True, True]
    assert list(with_history.history) == steps
    assert with_history.refunded == Money(1000, "PEN")
    assert with_history.refundable == Money(13990, "PEN")
    assert store.get_payment(p.id).history == ()
    assert p == store.get_payment(p.id)


# --- refunds ----------------------------------------------------------------------


def test_refunds_insert_update_and_upsert_in_a_transition(
    write: Writes, store: Store, created: Payment
) -> None:
    p = to_pending(store, created)
    p = store.transition(p.id, expected_version=p.version, target=Status.SUCCEEDED,
                         cause=Cause.WEBHOOK, event_type="payment.succeeded")
    first = Refund(id=str(ULID()), payment_id=p.id, amount=Money(500, "PEN"),
                   status=RefundStatus.PENDING, created_at=datetime(2030, 1, 1, tzinfo=LIMA),
                   reason="talla equivocada")
    store.save_refund(first)
    assert store.refunds_for(p.id) == [first]

    done = Refund(id=first.id, payment_id=p.id, amount=Money(500, "PEN"),
                  status=RefundStatus.SUCCEEDED, created_at=first.created_at,
                  reason="talla equivocada", provider_reference="re_1")
    second = Refund(id=str(ULID()), payment_id=p.id, amount=Money(14490, "PEN"),
                    status=RefundStatus.PENDING, created_at=datetime(2030, 1, 2, tzinfo=UTC))
    second_done = Refund(id=second.id, payment_id=p.id, amount=second.amount,
                         status=RefundStatus.SUCCEEDED, created_at=second.created_at)
    with write() as writer:
        # A refund reserved with a non-status change, then done with the transition.
        p = writer.update_payment(p.id, expected_version=p.version, refund=done,
                                  error_code=None)
        p = writer.update_payment(p.id, expected_version=p.version, refund=second)
        p = writer.transition(p.id, expected_version=p.version, target=Status.REFUNDED,
                              cause=Cause.API, event_type="payment.refunded",
                              changes={"refunded_minor": 14990}, refund=second_done)

    [r1, r2] = store.refunds_for(p.id)
    assert r1 == done
    assert r1.created_at.tzinfo is UTC
    assert r2 == second_done
    assert p.refunded == p.amount
    assert store.get_payment(p.id) == p
    assert store.refunds_for(str(ULID())) == []
    with pytest.raises(NotFoundError):
        store.save_refund(Refund(id=str(ULID()), payment_id=str(ULID()), amount=Money(1, "PEN"),
                                 status=RefundStatus.PENDING, created_at=datetime.now(UTC)))


# --- webhooks ---------------------------------------------------------------------


def test_record_delivery_dedupes_per_provider_and_event(
    write: Writes, store: Store, rows: RowCounter
) -> None:
    delivery = Delivery(provider="fake", event_id="evt-1", event_type="paid", outcome="applied")

    with write() as writer:
        assert not writer.seen_delivery("fake", "evt-1")
        assert writer.record_delivery(delivery)
        assert not writer.record_delivery(delivery)
        assert writer.seen_delivery("fake", "evt-1")
        assert not writer.seen_delivery("other", "evt-1")
        assert writer.record_delivery(
            Delivery(provider="other", event_id="evt-1", event_type="paid", outcome="applied")
        )
        rejected = Delivery(provider="fake", event_id=None, event_type=None, outcome="rejected",
                            detail="bad signature")
        assert writer.record_delivery(rejected)
        assert writer.record_delivery(rejected)  # rejected ones are logged, never deduplicated
    assert rows(store, t.webhook_deliveries) == 4
    assert store.seen_delivery("fake", "evt-1")
    assert store.seen_delivery("other", "evt-1")
    with write() as writer:
        assert not writer.record_delivery(delivery)  # recorded before this writer began
    assert rows(store, t.webhook_deliveries) == 4


# --- the ways a write batch differs -------------------------------------------------


def test_a_batch_writes_nothing_until_it_ends(
    store: Store, created: Payment, make_exchange: ExchangeFactory, rows: RowCounter
) -> None:
    """The one difference every caller sees: other connections (the store's own
    reads included) see nothing of a batch until it ends, then all of it."""
    with store.batch() as batch:
        moved = to_pending(batch, created)
        batch.record_delivery(Delivery(provider="fake", event_id="e", event_type="t",
                                       outcome="ignored"))
        batch.record_exchanges([make_exchange(created.id)])
        assert store.get_payment(created.id) == created
        assert not store.seen_delivery("fake", "e")
        assert store.exchanges_for(created.id) == []
        assert (rows(store, t.transitions), rows(store, t.outbox)) == (0, 0)
    assert store.get_payment(created.id) == moved
    assert store.seen_delivery("fake", "e")
    assert len(store.exchanges_for(created.id)) == 1
    assert (rows(store, t.transitions), rows(store, t.outbox)) == (1, 1)


def test_a_batch_that_raises_writes_nothing(store: Store, created: Payment,
                                            rows: RowCounter) -> None:
    def fail_midway() -> None:
        with store.batch() as batch:
            to_pending(batch, created)
            raise RuntimeError("the caller failed")

    with pytest.raises(RuntimeError):
        fail_midway()
    assert store.get_payment(created.id) == created
    assert (rows(store, t.transitions), rows(store, t.outbox)) == (0, 0)


def test_a_batch_reads_no_histories_and_finds_by_reference_only(
    store: Store, created: Payment
) -> None:
    """What a batch does not answer (the engine never asks it): a history, and a
    payment by idempotency key."""
    with store.batch() as batch:
        with pytest.raises(ValidationError, match="histories"):
            batch.get_payment(created.id, history=True)
        with pytest.raises(ValidationError, match="provider and reference"):
            batch.find_payment(idempotency_key=created.idempotency_key)
    assert store.get_payment(created.id, history=True).history == ()


@pytest.mark.postgres
def test_a_delivery_recorded_meanwhile_fails_the_batch_when_written(
    postgres_schema_url: str, make_payment: PaymentFactory
) -> None:
    """On PostgreSQL another process may record a delivery after a batch looked for
    it (on SQLite the batch holds the write lock, so none can): the batch is caught
    when it is written, and all of it rolls back."""
    with Store(postgres_schema_url, upgrade=True) as store:
        payment, _ = store.create_payment(make_payment(), fingerprint="fp")
        delivery = Delivery(provider="fake", event_id="evt-late", event_type="paid",
                            outcome="applied", payment_id=payment.id)

        def batch_meeting_it() -> None:
            with store.batch() as batch:
                assert not batch.seen_delivery("fake", "evt-late")
                assert store.record_delivery(delivery)  # another connection, committed
                to_pending(batch, payment)
                batch.record_delivery(Delivery(provider="fake", event_id="evt-other",
                                               event_type="paid", outcome="ignored"))
                batch.transition(payment.id, expected_version=2, target=Status.SUCCEEDED,
                                 cause=Cause.WEBHOOK, event_type="payment.succeeded",
                                 delivery=delivery)

        with pytest.raises(ConcurrencyConflictError, match="deliveries first"):
            batch_meeting_it()
        assert store.get_payment(payment.id) == payment
        assert store.history(payment.id) == []
        assert not store.seen_delivery("fake", "evt-other")


def test_both_writers_are_payment_writers() -> None:
    """The protocol is what the engine calls; mypy checks the signatures (see
    store/repository.py and store/batch.py), this that no method is missing."""
    names = {n for n in vars(PaymentWriter) if not n.startswith("_")}
    assert names == {"find_payment", "get_payment", "seen_delivery", "delivered_for",
                     "transition",
                     "record_ignored", "update_payment", "record_delivery",
                     "record_exchanges"}
    for writer in (Store, WriteBatch):
        assert names <= set(dir(writer)), writer


# --- outbox -----------------------------------------------------------------------


def test_outbox_claim_mark_and_lag(
    store: Store, make_payment: PaymentFactory
) -> None:
    for _ in range(3):
        payment, _ = store.create_payment(make_payment(), fingerprint="fp")
        to_pending(store, payment)
    now = datetime.now(UTC) + timedelta(seconds=1)
    count, age = store.outbox_lag(now=now)
    assert count == 3
    assert age >= 1.0

    first = store.claim_outbox(now=now, limit=2)
    rest = store.claim_outbox(now=now, limit=10)
    assert len(first) == 2
    assert len(rest) == 1  # the two claimed ones are leased
    assert [e.created_at for e in first + rest] == sorted(e.created_at for e in first + rest)
    assert store.claim_outbox(now=now) == []

    store.mark_dispatched([first[0].id], now=now)
    store.mark_failed(first[1].id, error="observer down", retry_at=now + timedelta(minutes=5))
    assert store.outbox_lag(now=now)[0] == 2

    after_lease = now + Store.outbox_lease + timedelta(seconds=1)
    again = store.claim_outbox(now=after_lease)
    assert [e.id for e in again] == [rest[0].id]  # the failed one waits for retry_at
    store.mark_dispatched([rest[0].id], now=now)
    later = store.claim_outbox(now=now + timedelta(minutes=6))
    assert {e.id: e.attempts for e in later} == {first[1].id: 1}

    store.mark_dispatched([e.id for e in later], now=now)
    store.mark_dispatched([], now=now)
    assert store.outbox_lag(now=now) == (0, 0.0)
    assert store.claim_outbox(now=now + timedelta(days=1)) == []


# --- jobs -------------------------------------------------------------------------


def test_due_for_expiry_claims_due_pending_payments(
    store: Store, make_payment: PaymentFactory
) -> None:
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

    def make(status: Status, expires_at: datetime | None) -> Payment:
        p, _ = store.create_payment(make_payment(), fingerprint="fp")
        p = to_pending(store, p, expires_at=expires_at)
        if status is not Status.PENDING:
            p = store.transition(p.id, expected_version=p.version, target=status,
                                 cause=Cause.API, event_type=f"payment.{status}")
        return p

    late = make(Status.PENDING, now - timedelta(hours=2))
    due = make(Status.PENDING, (now - timedelta(seconds=1)).astimezone(LIMA))
    make(Status.PENDING, now + timedelta(hours=1))
    make(Status.PENDING, None)
    make(Status.CANCELED, now - timedelta(hours=1))

    claimed = store.due_for_expiry(now=now)

    assert [p.id for p in claimed] == [late.id, due.id]
    assert [p.version for p in claimed] == [late.version, due.version]
    assert store.due_for_expiry(now=now) == []  # leased
    assert len(store.due_for_expiry(now=now + Store.job_lease)) == 2
    assert [p.id for p in store.due_for_expiry(now=now + 3 * Store.job_lease, limit=1)] == [
        late.id
    ]


def test_due_for_check_claims_unknown_and_pending(
    store: Store, make_payment: PaymentFactory
) -> None:
    now = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)

    def make(status: Status, next_check_at: datetime | None) -> Payment:
        p, _ = store.create_payment(make_payment(), fingerprint="fp")
        return store.transition(p.id, expected_version=1, target=status, cause=Cause.API,
                                event_type=f"payment.{status}",
                                changes={"next_check_at": next_check_at})

    unknown = make(Status.UNKNOWN, now - timedelta(minutes=5))
    pending = make(Status.PENDING, now)
    make(Status.PENDING, None)
    make(Status.UNKNOWN, now + timedelta(minutes=1))
    make(Status.SUCCEEDED, now - timedelta(minutes=5))

    claimed = store.due_for_check(now=now)

    assert [p.id for p in claimed] == [unknown.id, pending.id]
    assert unknown.next_check_at == now - timedelta(minutes=5)
    assert [p.next_check_at for p in claimed] == [now + Store.job_lease] * 2
    assert store.due_for_check(now=now) == []  # next_check_at pushed forward
    assert store.get_payment(unknown.id) == claimed[0]  # the version is not bumped
    assert {p.id for p in store.due_for_check(now=now + Store.job_lease)} == {
        unknown.id, pending.id
    }


# --- exchanges and decisions ------------------------------------------------------


def test_exchanges_are_kept_oldest_first(
    write: Writes, store: Store, created: Payment, make_exchange: ExchangeFactory,
    rows: RowCounter,
) -> None:
    t0 = datetime(2030, 1, 1, 10, 0, tzinfo=LIMA)
    with write() as writer:
        writer.record_exchanges([
            make_exchange(created.id, attempt=2, started_at=t0 + timedelta(seconds=2),
                          status_code=None, error="timeout"),
            make_exchange(created.id, attempt=1, started_at=t0),
            make_exchange(None, operation="list_settlements", started_at=t0),
        ])
        writer.record_exchanges([])

    recorded = store.exchanges_for(created.id)

    assert [x["attempt"] for x in recorded] == [1, 2]
    assert recorded[0]["started_at"] == t0
    assert recorded[0]["started_at"].tzinfo is UTC
    assert recorded[0]["request_headers"] == {"content-type": "application/json",
                                              "authorization": "[redacted]"}
    assert recorded[0]["duration_ms"] == 12.5
    assert (recorded[1]["status_code"], recorded[1]["error"]) == (None, "timeout")
    assert store.exchanges_for(str(ULID())) == []
    assert rows(store, t.exchanges) == 3


def test_record_decision(store: Store, rows: RowCounter) -> None:
    store.record_decision(order_reference="pedido-1", payment_id=None,
                          decision={"route": "cash", "why": ["amount <= 1500"]})
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.routing_decisions)).one()
    assert row.decision == {"route": "cash", "why": ["amount <= 1500"]}
    assert row.order_reference == "pedido-1"


# --- values -----------------------------------------------------------------------


def test_round_trip_of_next_action_order_routing_and_datetimes(
    write: Writes, store: Store, make_payment: PaymentFactory
) -> None:
    lima_time = datetime(2030, 3, 4, 5, 6, 7, 890123, tzinfo=LIMA)
    order = Order(
        reference="pedido-1042",
        amount=Money.of("149.90", "PEN"),
        description="Audífonos inalámbricos",
        customer=Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                          phone="+51 987 654 321", document=("DNI", "45678912")),
        metadata={"canal": "web"},
        expires_at=lima_time,
    )
    action = ShowCashCode(
        code="1234567", amount=order.amount, expires_at=lima_time, url="http://x/cip",
        qr_data="http://x/cip", instructions={"es": ("Paga en agente", "Indica el código"),
                                        "en": ("Pay at an agent",)},
    )
    payment = make_payment(order=order, order_reference=order.reference, next_action=action,
                           routing={"rule": "cash", "candidates": ["fake"], "scores": {"a": 1}},
                           created_at=lima_time, updated_at=lima_time, expires_at=lima_time,
                           next_check_at=lima_time, check_attempts=3)

    stored, _ = store.create_payment(payment, fingerprint="fp")
    loaded = store.get_payment(payment.id)

    assert loaded == payment
    assert stored == loaded
    assert loaded.order == order
    assert loaded.next_action == action
    assert (loaded.next_check_at, loaded.check_attempts) == (lima_time, 3)
    for value in (loaded.created_at, loaded.updated_at, loaded.expires_at, loaded.next_check_at):
        assert value is not None
        assert value.tzinfo is UTC
        assert value == lima_time
    qr = ScanQr(qr_data="0002010102", expires_at=None, wallets=("yape",))
    with write() as writer:
        moved = writer.transition(payment.id, expected_version=1, target=Status.PENDING,
                                  cause=Cause.API, event_type="payment.pending",
                                  changes={"next_action": qr})
    assert store.get_payment(payment.id).next_action == qr == moved.next_action
    assert store.get_payment(payment.id) == moved
    with write() as writer:
        cleared = writer.update_payment(payment.id, expected_version=2, next_action=None)
    assert cleared.next_action is None
    assert store.get_payment(payment.id) == cleared
    with store.engine.connect() as conn:
        raw = conn.execute(
            sa.select(t.payments.c.next_action).where(t.payments.c.next_action.is_(None))
        ).all()
    assert len(raw) == 1  # SQL NULL, not JSON null


def test_naive_datetimes_are_refused(
    store: Store, make_payment: PaymentFactory, rows: RowCounter
) -> None:
    naive = datetime(2030, 1, 1)  # noqa: DTZ001
    with pytest.raises(ValidationError, match="created_at"):
        store.create_payment(make_payment(created_at=naive), fingerprint="fp")
    assert rows(store, t.payments) == 0
    with pytest.raises(ValidationError, match="now"):
        store.claim_outbox(now=naive)


def test_a_writer_refuses_naive_datetimes_and_writes_nothing(
    write: Writes, store: Store, created: Payment, make_exchange: ExchangeFactory,
    rows: RowCounter,
) -> None:
    naive = datetime(2030, 1, 1)  # noqa: DTZ001
    with write() as writer:
        with pytest.raises(ValidationError, match="expires_at"):
            writer.transition(created.id, expected_version=1, target=Status.PENDING,
                              cause=Cause.API, event_type="payment.pending",
                              changes={"expires_at": naive})
        with pytest.raises(ValidationError, match="next_check_at"):
            writer.update_payment(created.id, expected_version=1, next_check_at=naive)
        with pytest.raises(ValidationError, match=r"exchange\.started_at"):
            writer.transition(created.id, expected_version=1, target=Status.PENDING,
                              cause=Cause.API, event_type="payment.pending",
                              exchanges=[make_exchange(created.id, started_at=naive)])
        with pytest.raises(ValidationError, match=r"exchange\.started_at"):
            writer.record_ignored(created.id, source=Status.CREATED, target=Status.CREATED,
                                  cause=Cause.API, reason="x",
                                  exchanges=[make_exchange(created.id, started_at=naive)])
        assert writer.get_payment(created.id) == created
    assert store.get_payment(created.id) == created
    assert (rows(store, t.transitions), rows(store, t.outbox), rows(store, t.exchanges)) == (
        0, 0, 0)


def test_a_bad_refund_in_a_transition_writes_nothing(
    write: Writes, store: Store, created: Payment, rows: RowCounter
) -> None:
    bad = Refund(id=str(ULID()), payment_id=created.id, amount=Money(1, "PEN"),
                 status=RefundStatus.PENDING, created_at=datetime(2030, 1, 1))  # noqa: DTZ001
    with write() as writer:
        with pytest.raises(ValidationError, match=r"refund\.created_at"):
            writer.transition(created.id, expected_version=1, target=Status.PENDING,
                              cause=Cause.API, event_type="payment.pending", refund=bad)
        with pytest.raises(ValidationError, match=r"refund\.created_at"):
            writer.update_payment(created.id, expected_version=1, refund=bad)
        assert writer.get_payment(created.id) == created
    assert store.get_payment(created.id) == created
    assert (rows(store, t.transitions), rows(store, t.outbox), rows(store, t.refunds)) == (0, 0, 0)


# --- migrations and engine --------------------------------------------------------


def test_migrations_create_exactly_the_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert diff == []
    assert tables == set(t.metadata.tables) | {"alembic_version"}


def test_upgrade_is_idempotent(store: Store, created: Payment) -> None:
    store.upgrade()
    store.upgrade()
    assert store.get_payment(created.id) == created
    assert store.ping()


def test_dialect(store: Store, store_url: str) -> None:
    assert store.dialect == ("sqlite" if store_url.startswith("sqlite") else "postgresql")
