"""Chain heads (sealed, signed, exported, checked), retention that keeps the chain
verifying, the migration's chaining of older rows, and concurrent writers to one
payment on PostgreSQL keeping one chain."""

from __future__ import annotations

import importlib.util
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pasarela.config.sections import AuditConfig
from pasarela.engine.audit import (
    AuditJob,
    check_document,
    head_document,
    matches_store,
    new_signing_key,
    signer,
)
from pasarela.lifecycle import Cause, Status
from pasarela.store import Delivery, Store
from pasarela.store import schema as t
from pasarela.store.chain import (
    content_of,
    delivery_content,
    exchange_content,
    record_hash,
    transition_content,
)

from .conftest import edit, flow, new_exchange, new_payment


def _rechain(store: Store, payment_id: str) -> None:
    """What a careful forger would do: recompute every hash of the payment's chain
    (and its tip) after an edit, so that the chain alone verifies."""
    with store.engine.begin() as conn:
        rows = []
        for kind, table in (("exchange", t.exchanges), ("transition", t.transitions),
                            ("delivery", t.webhook_deliveries)):
            rows += [(kind, table, dict(r)) for r in conn.execute(
                sa.select(table).where(table.c.payment_id == payment_id)).mappings()]
        rows.sort(key=lambda r: r[2]["chain_seq"])
        prev = ""
        for kind, table, row in rows:
            value = record_hash(prev, kind, content_of(kind, row))
            conn.execute(sa.update(table).where(table.c.id == row["id"])
                         .values(chain_prev=prev, chain_hash=value))
            prev = value
        conn.execute(sa.update(t.payments).where(t.payments.c.id == payment_id)
                     .values(chain_hash=prev))


def test_heads_fold_every_record_and_catch_a_rewritten_chain(store: Store) -> None:
    first = flow(store)
    head1 = store.seal_chain()
    assert head1 is not None
    assert head1.seq == 1
    assert head1.count == 9
    assert store.seal_chain() == head1  # nothing new: the same head
    flow(store)
    head2 = store.seal_chain()
    assert head2 is not None
    assert head2.seq == 2
    assert head2.prev_hash == head1.hash
    assert head2.count == 9
    assert store.verify_heads().ok
    assert store.verify_heads().checked == 2
    # Rewrite a transition and re-hash its whole chain: the chain verifies alone ...
    target = int(store.chain_records(first.id)[1].record_id)
    edit(store, t.transitions, target, reason="rewritten")
    _rechain(store, first.id)
    assert store.verify_chain().ok
    # ... but the head that folded the old hashes does not.
    check = store.verify_heads()
    assert not check.ok
    assert check.first_bad == 1
    assert "rewritten" in check.reason


def test_a_signed_head_verifies_with_its_public_key_and_fails_altered(store: Store) -> None:
    private, public = new_signing_key()
    flow(store)
    head = store.seal_chain(sign=signer(private))
    assert head is not None
    assert head.signature
    assert head.public_key == public
    document = head_document(head)
    assert check_document(document, public) == ""
    assert matches_store(store, document) == ""
    assert check_document({**document, "count": head.count + 1}, public) != ""
    forged = {**document, "hash": "0" * 64}
    assert check_document(forged, public) != ""
    _, other = new_signing_key()
    assert "signature" in check_document(document, other)
    assert check_document({**document, "signature": document["signature"][::-1]},
                          public) != ""
    # The store's head rewritten (a re-sealed history) no longer matches the export.
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.audit_heads).values(hash="f" * 64))
    assert matches_store(store, document) != ""


def test_seal_with_a_bad_key_names_the_setting() -> None:
    from pasarela.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        signer("not-a-key")
    assert caught.value.path == "audit.signing_key"


def test_retention_prunes_and_the_chain_still_verifies(store: Store) -> None:
    old = datetime.now(UTC) - timedelta(days=500)
    payment, _ = store.create_payment(new_payment(), fingerprint="fp")
    store.record_exchanges([new_exchange(payment.id, started_at=old),
                            new_exchange(payment.id, started_at=old, operation="get")])
    moved = store.transition(payment.id, expected_version=1, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending")
    store.record_exchanges([new_exchange(payment.id, started_at=old, operation="get")])
    store.record_exchanges([new_exchange(payment.id, operation="get")])  # recent
    store.transition(payment.id, expected_version=moved.version, target=Status.SUCCEEDED,
                     cause=Cause.WEBHOOK, event_type="payment.succeeded",
                     delivery=Delivery(provider="fake", event_id="e1", event_type="paid",
                                       outcome="applied"))
    other = flow(store)
    assert store.seal_chain() is not None
    done = store.prune_evidence(datetime.now(UTC) - timedelta(days=400))
    assert (done.payments, done.exchanges, done.deliveries) == (1, 3, 0)
    records = store.chain_records(payment.id)
    assert [(r.kind, r.pruned, r.count) for r in records] == [
        ("exchange", True, 2), ("transition", False, 1), ("exchange", True, 1),
        ("exchange", False, 1), ("delivery", False, 1), ("transition", False, 1)]
    assert all(r.ok for r in records)
    assert store.verify_chain().ok
    heads = store.verify_heads()
    assert heads.ok
    assert heads.pruned == 1
    # Everything pruned (a keep in the future): ranges merge with the earlier ones.
    store.prune_evidence(datetime.now(UTC) + timedelta(days=1))
    records = store.chain_records(payment.id)
    assert [(r.kind, r.pruned, r.count) for r in records] == [
        ("exchange", True, 2), ("transition", False, 1), ("exchange", True, 3),
        ("transition", False, 1)]
    assert store.verify_chain().ok
    assert store.verify_chain(other.id).ok
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.exchanges)).scalar() == 0
    # A pruned range edited behind the store's back is caught by the next link.
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.audit_pruned).where(t.audit_pruned.c.payment_id == payment.id,
                                                     t.audit_pruned.c.first_seq == 1)
                     .values(last_hash="0" * 64))
    report = store.verify_chain(payment.id)
    assert not report.ok
    assert report.reason.startswith("link:")


def test_the_worker_job_seals_and_prunes(store: Store) -> None:
    flow(store)
    tick = [0.0]
    job = AuditJob(store, AuditConfig(keep=timedelta(seconds=1)),
                   clock=lambda: datetime.now(UTC) + timedelta(days=1),
                   monotonic=lambda: tick[0])
    assert job() == 1 + 6  # one head, 3 exchanges and 3 deliveries pruned
    tick[0] = 60.0
    flow(store)
    assert job() == 0  # not due yet ([audit] every: an hour)
    tick[0] = 3601.0
    assert job() == 1 + 6
    assert store.verify_chain().ok
    assert store.verify_heads().ok
    assert AuditJob(store, AuditConfig(chain=False), clock=lambda: datetime.now(UTC))() == 0


def test_the_migration_chains_older_rows(store: Store) -> None:
    store.chained = False
    payment = flow(store)
    store.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                   outcome="rejected"))
    assert store.unchained() == 10
    path = (Path(__file__).parents[2] / "core/src/pasarela/store/migrations/versions"
            / "0011_audit_chain.py")
    spec = importlib.util.spec_from_file_location("migration_0011", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with store.engine.begin() as conn:
        module._chain_existing(conn)
    store.chained = True
    assert store.unchained() == 0
    records = store.chain_records(payment.id)
    assert len(records) == 9
    assert all(r.ok for r in records)
    assert store.verify_chain().ok
    store.record_exchanges([new_exchange(payment.id)])  # goes on from the migrated tip
    assert store.verify_chain(payment.id).ok


@pytest.mark.postgres
def test_concurrent_writers_keep_one_chain_on_postgresql(postgres_schema_url: str) -> None:
    store = Store(postgres_schema_url, upgrade=True)
    try:
        payment, _ = store.create_payment(new_payment(), fingerprint="fp")
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def write(n: int) -> None:
            try:
                start.wait()
                for i in range(10):
                    if i % 3 == 0:
                        store.record_exchanges([new_exchange(payment.id, attempt=n)])
                    elif i % 3 == 1:
                        store.record_delivery(Delivery(
                            provider="fake", event_id=f"e-{n}-{i}", event_type="info",
                            outcome="ignored", payment_id=payment.id))
                    else:
                        store.record_ignored(payment.id, source=Status.CREATED,
                                             target=Status.CREATED, cause=Cause.WEBHOOK,
                                             reason=f"r-{n}-{i}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        records = store.chain_records(payment.id)
        assert len(records) == 80
        assert [r.seq for r in records] == list(range(1, 81))
        assert all(r.ok for r in records)
        assert len({r.prev_hash for r in records}) == 80  # no two share a parent: no fork
    finally:
        store.close()


def test_canonical_content_names_no_float_bits() -> None:
    row = {"payment_id": "p", "provider": "fake", "operation": "create", "attempt": 1,
           "method": "POST", "status_code": 201, "error": None,
           "started_at": datetime(2026, 12, 2, 6, 0, tzinfo=UTC), "duration_ms": 0.1}
    content = exchange_content(row, "d" * 64)
    assert content["duration_ms"] == "0.1"
    from pasarela.store.chain import canonical

    assert b'"duration_ms":"0.1"' in canonical(content)
    assert b'"started_at":"2026-12-02T06:00:00.000000Z"' in canonical(content)
    assert delivery_content is not None
    assert transition_content is not None


def test_heads_tell_pruning_from_removal(store: Store) -> None:
    store.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                   outcome="rejected", detail="forged"))
    payment = flow(store)
    assert store.seal_chain() is not None
    # Removed behind the store's back (the last record, its tip put back too): the
    # chain alone could be made to verify, the head cannot.
    with store.engine.begin() as conn:
        last = conn.execute(sa.select(t.exchanges).where(t.exchanges.c.payment_id == payment.id)
                            .order_by(t.exchanges.c.id.desc()).limit(1)).mappings().one()
        conn.execute(sa.delete(t.exchanges).where(t.exchanges.c.id == last["id"]))
        conn.execute(sa.update(t.payments).where(t.payments.c.id == payment.id).values(
            chain_seq=last["chain_seq"] - 1, chain_hash=last["chain_prev"]))
    assert store.verify_chain().ok
    check = store.verify_heads()
    assert not check.ok
    assert check.first_bad == 1


def test_pruning_records_of_no_payment_keeps_the_heads(store: Store) -> None:
    store.record_delivery(Delivery(provider="fake", event_id=None, event_type=None,
                                   outcome="rejected", detail="forged"))
    assert store.seal_chain() is not None
    done = store.prune_evidence(datetime.now(UTC) + timedelta(days=1))
    assert done.deliveries == 1
    check = store.verify_heads()
    assert check.ok
    assert check.pruned == 1
    assert store.verify_chain().ok


@pytest.mark.postgres
def test_seals_beside_concurrent_writers_fold_every_record_once(
        postgres_schema_url: str) -> None:
    store = Store(postgres_schema_url, upgrade=True)
    try:
        payments = [store.create_payment(new_payment(), fingerprint="fp")[0]
                    for _ in range(4)]
        errors: list[BaseException] = []
        done = threading.Event()

        def write(n: int) -> None:
            try:
                payment = payments[n]
                for i in range(15):
                    store.record_ignored(
                        payment.id, source=Status.CREATED, target=Status.CREATED,
                        cause=Cause.WEBHOOK, reason=f"r-{i}",
                        exchanges=[new_exchange(payment.id)],
                        delivery=Delivery(provider="fake", event_id=f"e-{n}-{i}",
                                          event_type="info", outcome="ignored"))
            except BaseException as exc:
                errors.append(exc)

        def seal() -> None:
            try:
                while not done.is_set():
                    store.seal_chain()
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        sealer = threading.Thread(target=seal)
        sealer.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(60)
        done.set()
        sealer.join(60)
        assert errors == []
        store.seal_chain()
        heads = store.chain_heads()
        assert sum(h.count for h in heads) == 4 * 15 * 3
        assert store.verify_heads().ok
        assert store.verify_chain().ok
    finally:
        store.close()
