"""The evidence chain on SQLite and PostgreSQL: every exchange, transition and
delivery of a payment is chained at write time, through the store and through a
write batch; a row edited or removed behind the store's back is named."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from pasarela.lifecycle import Cause, Status
from pasarela.store import Delivery, Store, WriteBatch
from pasarela.store import schema as t
from pasarela.store.chain import record_hash, transition_content

from .conftest import edit, flow, new_exchange, new_payment


def test_a_realistic_flow_verifies(store: Store) -> None:
    payment = flow(store)
    records = store.chain_records(payment.id)
    kinds = [r.kind for r in records]
    # create exchange; pending; delivery + get exchange + paid; delivery + ignored;
    # a delivery of its own; the refund's exchange
    assert kinds == ["exchange", "transition", "delivery", "exchange", "transition",
                     "delivery", "transition", "delivery", "exchange"]
    assert [r.seq for r in records] == list(range(1, 10))
    assert all(r.ok for r in records)
    assert records[0].prev_hash == ""
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    report = store.verify_chain(payment.id)
    assert report.ok
    assert report.checked == 9
    assert report.first_bad is None
    assert store.verify_chain().ok


def test_hash_is_the_documented_sha256(store: Store) -> None:
    payment = flow(store)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.transitions).where(
            t.transitions.c.payment_id == payment.id).order_by(t.transitions.c.seq)
        ).mappings().first()
    assert row is not None
    assert row["chain_hash"] == record_hash(row["chain_prev"], "transition",
                                            transition_content(row))


def _first(store: Store, table: sa.Table, payment_id: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.min(table.c.id))
                                .where(table.c.payment_id == payment_id)).scalar_one())


def test_an_edited_transition_is_named(store: Store) -> None:
    payment = flow(store)
    other = flow(store)
    target = _first(store, t.transitions, payment.id)
    edit(store, t.transitions, target, reason="nothing to see")
    report = store.verify_chain()
    assert not report.ok
    bad = report.first_bad
    assert bad is not None
    assert (bad.kind, bad.record_id, bad.payment_id) == ("transition", target, payment.id)
    assert report.reason.startswith("content:")
    assert store.verify_chain(other.id).ok


def test_an_edited_exchange_body_is_named(store: Store) -> None:
    payment = flow(store)
    target = _first(store, t.exchanges, payment.id)
    edit(store, t.exchanges, target, response_body='{"id": "cip-forged"}')
    report = store.verify_chain(payment.id)
    assert not report.ok
    assert report.first_bad is not None
    assert (report.first_bad.kind, report.first_bad.record_id) == ("exchange", target)
    assert "content" in report.reason


def test_an_edited_delivery_outcome_is_named(store: Store) -> None:
    payment = flow(store)
    target = _first(store, t.webhook_deliveries, payment.id)
    edit(store, t.webhook_deliveries, target, outcome="rejected")
    bad = store.verify_chain(payment.id).first_bad
    assert bad is not None
    assert (bad.kind, bad.record_id) == ("delivery", target)


def test_a_removed_record_breaks_the_link_of_the_next(store: Store) -> None:
    payment = flow(store)
    target = _first(store, t.webhook_deliveries, payment.id)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(t.webhook_deliveries).where(t.webhook_deliveries.c.id == target))
    report = store.verify_chain(payment.id)
    assert not report.ok
    assert report.reason.startswith("link:")
    assert report.first_bad is not None
    assert report.first_bad.kind == "exchange"


def test_a_removed_last_record_is_caught_by_the_tip(store: Store) -> None:
    payment = flow(store)
    with store.engine.begin() as conn:
        last = conn.execute(sa.select(sa.func.max(t.exchanges.c.id))).scalar_one()
        conn.execute(sa.delete(t.exchanges).where(t.exchanges.c.id == last))
    report = store.verify_chain(payment.id)
    assert not report.ok
    assert "missing" in report.reason


def test_a_rewritten_hash_is_caught_by_the_next_link(store: Store) -> None:
    """Recomputing the edited row's own hash does not help: the next record names the
    old one."""
    payment = flow(store)
    target = _first(store, t.transitions, payment.id)
    with store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(t.transitions).where(t.transitions.c.id == target))
                   .mappings().one())
    row["reason"] = "rewritten"
    edit(store, t.transitions, target, reason="rewritten",
         chain_hash=record_hash(row["chain_prev"], "transition", transition_content(row)))
    report = store.verify_chain(payment.id)
    assert not report.ok
    assert report.reason.startswith("link:")
    assert report.first_bad is not None
    assert report.first_bad.seq == 3


@contextmanager
def _batch(store: Store) -> Iterator[WriteBatch]:
    with store.batch() as batch:
        yield batch


def test_batched_writes_chain_as_the_store_does(store: Store) -> None:
    payments = [store.create_payment(new_payment(), fingerprint="fp")[0] for _ in range(3)]
    with _batch(store) as batch:
        for p in payments:
            moved = batch.transition(p.id, expected_version=p.version, target=Status.PENDING,
                                     cause=Cause.API, event_type="payment.pending",
                                     changes={"provider_reference": f"ref-{p.id}"},
                                     exchanges=[new_exchange(p.id)])
            batch.transition(p.id, expected_version=moved.version, target=Status.SUCCEEDED,
                             cause=Cause.WEBHOOK, event_type="payment.succeeded",
                             delivery=Delivery(provider="fake", event_id=f"e-{p.id}",
                                               event_type="paid", outcome="applied"))
            batch.record_ignored(p.id, source=Status.SUCCEEDED, target=Status.SUCCEEDED,
                                 cause=Cause.WEBHOOK, reason="late",
                                 delivery=Delivery(provider="fake", event_id=f"l-{p.id}",
                                                   event_type="paid", outcome="ignored"))
        batch.record_exchanges([new_exchange(payments[0].id, operation="get")])
        batch.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                       outcome="rejected", detail="bad signature"))
    for p in payments:
        records = store.chain_records(p.id)
        assert all(r.ok for r in records), records
        assert [r.kind for r in records][:5] == ["exchange", "transition", "delivery",
                                                 "transition", "delivery"]
    # An ignored report alone moves the chain, not the version or updated_at.
    assert store.get_payment(payments[1].id).version == 3
    report = store.verify_chain()
    assert report.ok
    assert report.payments == 3
    # the rejected delivery (no payment) is hashed on its own and checked too
    assert report.checked == 3 * 6 + 1 + 1


def test_records_of_no_payment_are_checked(store: Store) -> None:
    store.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                   outcome="rejected", detail="forged"))
    store.record_exchanges([new_exchange(None, operation="ping")])
    assert store.verify_chain().ok
    with store.engine.begin() as conn:
        rid = conn.execute(sa.select(t.webhook_deliveries.c.id)).scalar_one()
    edit(store, t.webhook_deliveries, rid, detail="fine")
    report = store.verify_chain()
    assert not report.ok
    assert report.first_bad is not None
    assert (report.first_bad.kind, report.first_bad.record_id) == ("delivery", rid)


def test_a_duplicate_delivery_leaves_the_tip(store: Store) -> None:
    payment = flow(store)
    again = Delivery(provider="fake", event_id="evt-2", event_type="info", outcome="ignored",
                     payment_id=payment.id)
    assert store.record_delivery(again) is False
    assert store.verify_chain(payment.id).ok


def test_chain_off_writes_unchained_rows(store: Store) -> None:
    store.chained = False
    payment = flow(store)
    assert store.chain_records(payment.id) == []
    assert store.unchained() == 9
    store.chained = True
    store.record_exchanges([new_exchange(payment.id, operation="get")])
    records = store.chain_records(payment.id)
    assert [r.seq for r in records] == [1]
    assert records[0].ok


def test_unknown_payment(store: Store) -> None:
    from pasarela.errors import NotFoundError

    with pytest.raises(NotFoundError):
        store.chain_records("01NOPE")
