"""The write batch (group commit) on both stores: it answers as the store would,
sees its own queued writes, and writes nothing until it ends."""

from __future__ import annotations

import itertools

import attrs
import pytest

from pasarela.errors import ConcurrencyConflictError
from pasarela.lifecycle import Cause, Status
from pasarela.store import Delivery, Store

from .conftest import new_payment


def test_the_batch_sees_its_own_writes(store):
    payment, _ = store.create_payment(new_payment(), fingerprint="f")
    with store.batch() as batch:
        current = batch.get_payment(payment.id)
        moved = batch.transition(payment.id, expected_version=current.version,
                                 target=Status.PENDING, cause=Cause.API,
                                 event_type="payment.pending",
                                 changes={"provider_reference": "ref-1"})
        assert batch.find_payment(provider=payment.provider,
                                  provider_reference="ref-1") == moved
        with pytest.raises(ConcurrencyConflictError):
            batch.transition(payment.id, expected_version=current.version,
                             target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                             event_type="payment.succeeded")
        done = batch.transition(payment.id, expected_version=moved.version,
                                target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                                event_type="payment.succeeded")
        assert batch.record_delivery(Delivery(provider="x", event_id="e1", event_type="t",
                                              outcome="ignored"))
        assert not batch.record_delivery(Delivery(provider="x", event_id="e1",
                                                  event_type="t", outcome="ignored"))
        # Nothing is written before the batch ends.
        assert store.get_payment(payment.id).version == payment.version
    stored = store.get_payment(payment.id, history=True)
    assert stored == attrs.evolve(done, history=stored.history)
    assert [(t.seq, t.target) for t in stored.history][-2:] == [
        (len(stored.history) - 1, Status.PENDING), (len(stored.history), Status.SUCCEEDED)]
    assert stored.provider_reference == "ref-1"
    assert store.seen_delivery("x", "e1")


def test_sqlite_driver_writes_store_what_sqlalchemy_stores(tmp_path):
    """The batch writes SQLite rows through the driver's executemany: the stored
    bytes must be the ones SQLAlchemy's own execute would store."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from pasarela.store._rows import (
        INSERT_DELIVERY,
        INSERT_OUTBOX,
        INSERT_TRANSITION,
        payments_update,
    )
    from pasarela.store.driver import executemany

    payment = new_payment(status=Status.PENDING, version=2)
    now = datetime.now(UTC)
    writes = [
        (INSERT_DELIVERY, {"provider": "fake", "event_id": "e1", "event_type": "t",
                            "payment_id": payment.id, "outcome": "applied", "detail": "",
                            "received_at": now}),
        (INSERT_OUTBOX, {"id": "o1", "payment_id": payment.id, "type": "payment.succeeded",
                          "payload": {"amount": {"minor": 14990}, "note": None},
                          "created_at": now, "next_attempt_at": now, "attempts": 0}),
        (INSERT_TRANSITION, {"payment_id": payment.id, "seq": 1, "source": "pending",
                              "target": "succeeded", "cause": "webhook", "applied": True,
                              "reason": "", "event_id": "e1", "version": 3, "at": now}),
        (payments_update(("next_action", "next_check_at", "status")),
         {"_id": payment.id, "_base": 2, "_version": 3, "_now": now, "status": "succeeded",
          "next_check_at": None, "next_action": None}),
    ]
    stored = []
    for label in ("driver", "sqlalchemy"):
        with Store(f"sqlite:///{tmp_path / label}.db") as store:
            store.create_payment(payment, fingerprint="f")
            with store.engine.begin() as conn:
                for statement, row in writes:
                    if label == "driver":
                        assert executemany(conn, statement, [row]) == 1
                    else:
                        conn.execute(statement, [row])
            with store.engine.connect() as conn:
                stored.append([conn.exec_driver_sql(f"SELECT * FROM {table}").all()  # noqa: S608
                               for table in ("payments", "webhook_deliveries", "outbox",
                                             "transitions")])
                assert conn.execute(sa.text("SELECT next_action IS NULL FROM payments")
                                    ).scalar() == 1
    assert stored[0] == stored[1]


def test_what_the_batch_returns_is_what_a_read_returns(store):
    """Payments the batch hands back after its changes (derived, not re-read) equal
    what the store reads once the batch is written, for every kind of change."""
    from datetime import datetime, timedelta, timezone

    from pasarela.money import Money
    from pasarela.next_action import ShowCashCode

    first, _ = store.create_payment(new_payment(), fingerprint="f")
    second, _ = store.create_payment(new_payment(), fingerprint="f")
    lima = timezone(timedelta(hours=-5))
    deadline = datetime(2026, 12, 1, 18, 30, tzinfo=lima)
    action = ShowCashCode(code="1234567", amount=Money.of("149.90", "PEN"),
                          expires_at=deadline, url="https://pay.example.pe/1234567")
    with store.batch() as batch:
        held = batch.adopt([second, first])
        assert [p.id for p in held] == [second.id, first.id]  # in the order given
        a = batch.transition(first.id, expected_version=first.version, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending",
                             changes={"provider_reference": "cip-1", "next_action": action,
                                      "expires_at": deadline,
                                      "next_check_at": deadline + timedelta(hours=1),
                                      "routing": {"provider": "fake"}})
        a = batch.transition(first.id, expected_version=a.version, target=Status.SUCCEEDED,
                             cause=Cause.WEBHOOK, event_type="payment.succeeded",
                             changes={"next_check_at": None})
        a = batch.transition(first.id, expected_version=a.version,
                             target=Status.PARTIALLY_REFUNDED, cause=Cause.API,
                             event_type="payment.partially_refunded",
                             changes={"refunded": Money.of("50.00", "PEN")})
        b = batch.transition(second.id, expected_version=second.version,
                             target=Status.FAILED, cause=Cause.API, event_type="payment.failed",
                             changes={"error_code": "card_declined",
                                      "error_message": "Declined", "check_attempts": 2})
        b = batch.update_payment(second.id, expected_version=b.version,
                                 next_action={"type": "open_url",
                                              "url": "https://pay.example.pe/x"})
    for derived in (a, b):
        stored = store.get_payment(derived.id)
        assert derived == stored
        assert derived.updated_at == stored.updated_at
    assert a.expires_at is not None
    assert a.expires_at.utcoffset() == timedelta(0)  # stored in UTC, returned in UTC
    assert a.refunded == Money.of("50.00", "PEN")
    assert b.error_code == "card_declined"


def test_adopting_a_payment_that_moved_reads_it_again(store):
    payment, _ = store.create_payment(new_payment(), fingerprint="f")
    stale = payment
    store.transition(payment.id, expected_version=payment.version, target=Status.PENDING,
                     cause=Cause.API, event_type="payment.pending")
    with store.batch() as batch:
        (current,) = batch.adopt([stale])
        assert current.version == stale.version + 1
        assert current.status is Status.PENDING
        with pytest.raises(ConcurrencyConflictError):
            batch.transition(payment.id, expected_version=stale.version,
                             target=Status.EXPIRED, cause=Cause.JOB, event_type="payment.expired")


def test_sqlite_driver_reads_return_what_sqlalchemy_returns(tmp_path):
    from datetime import UTC, datetime, timedelta

    from pasarela.money import Money
    from pasarela.next_action import ShowCashCode
    from pasarela.store._rows import PAYMENTS_BY_ID
    from pasarela.store.driver import read_payments

    with Store(f"sqlite:///{tmp_path / 'read.db'}") as store:
        deadline = datetime.now(UTC) + timedelta(days=1)
        payment, _ = store.create_payment(new_payment(
            status=Status.PENDING, expires_at=deadline, provider_reference="cip-9",
            next_action=ShowCashCode(code="9", amount=Money.of("149.90", "PEN"),
                                     expires_at=deadline, url="https://x.pe/9"),
            routing={"provider": "fake", "reason": "rule 1"}), fingerprint="f")
        store.transition(payment.id, expected_version=payment.version,
                         target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                         event_type="payment.succeeded", changes={"next_check_at": deadline})
        with store.engine.connect() as conn:
            (driver,) = read_payments(conn, "WHERE payments.id = ?", [payment.id])
            (alchemy,) = conn.execute(PAYMENTS_BY_ID, {"_ids": [payment.id]}).mappings().all()
    assert driver == dict(alchemy)
    assert driver["_seq"] == 1
    assert isinstance(driver["next_action"], dict)
    assert isinstance(driver["expires_at"], datetime)


def test_an_adopted_payment_goes_on_from_its_last_transition_and_chain_tip(store):
    """Adopting reads the version, the last transition's number and the chain's tip
    (on SQLite through the driver): the batch's transition follows them."""
    payment, _ = store.create_payment(new_payment(), fingerprint="f")
    moved = store.transition(payment.id, expected_version=payment.version,
                             target=Status.PENDING, cause=Cause.API,
                             event_type="payment.pending")
    store.record_ignored(payment.id, source=Status.PENDING, target=Status.CREATED,
                         cause=Cause.WEBHOOK, reason="stale")
    before = [t.seq for t in store.get_payment(payment.id, history=True).history]
    with store.batch() as batch:
        (held,) = batch.adopt([moved])
        assert held is moved  # unchanged since: taken as is
        batch.transition(payment.id, expected_version=moved.version, target=Status.EXPIRED,
                         cause=Cause.JOB, event_type="payment.expired")
    history = store.get_payment(payment.id, history=True).history
    assert [t.seq for t in history] == [*before, before[-1] + 1]
    assert history[-1].target is Status.EXPIRED
    assert store.verify_chain().ok


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_urls(request, tmp_path):
    """Make URLs of empty databases, on each backend."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_schema_urls")
    names = itertools.count()
    return lambda: f"sqlite:///{tmp_path / f'db{next(names)}'}.db"


@pytest.mark.parametrize("one_statement", [True, False])
def test_flush_in_one_statement_stores_what_one_per_row_stores(
        fresh_urls, monkeypatch, one_statement):
    """The batch writes each table's rows in one statement (SQLite 3.33 on: ``UPDATE
    ... FROM (VALUES ...)`` and many-row INSERTs; PostgreSQL: each column's values as
    one array, ``FROM unnest(...)``): the rows stored are the ones the per-row
    statements store, and a payment changed under the batch, or a delivery recorded
    by another writer first, still fails it."""
    from datetime import UTC, datetime, timedelta

    from pasarela.money import Money
    from pasarela.next_action import ShowCashCode
    from pasarela.store import batch as batch_module

    urls = [fresh_urls(), fresh_urls()]
    flag = "UPDATE_FROM" if urls[0].startswith("sqlite") else "POSTGRES_MANY_ROWS"
    if one_statement and not getattr(batch_module, flag):
        pytest.skip("this SQLite has no UPDATE ... FROM")
    now = datetime(2026, 12, 2, 7, 0, 1, 5, tzinfo=UTC)
    monkeypatch.setattr(batch_module, "utc_now", lambda: now)
    monkeypatch.setattr(batch_module, "outbox_ids",
                        lambda _: (f"01JF{n:022d}" for n in itertools.count()))
    created = [new_payment(status=Status.PENDING, version=2) for _ in range(4)]
    deadline = now + timedelta(days=1)
    action = ShowCashCode(code="7", amount=Money.of("149.90", "PEN"), expires_at=deadline,
                          url="https://x.pe/7")
    stored = []
    stored_paths = ("per_row", "one")
    real_executemany = batch_module.executemany
    through_executemany = []  # (path, statement): what the one-statement forms spare

    def executemany(conn, statement, rows):
        through_executemany.append((path, statement))
        return real_executemany(conn, statement, rows)

    monkeypatch.setattr(batch_module, "executemany", executemany)
    for path, url in zip(("per_row", "one"), urls, strict=True):
        monkeypatch.setattr(batch_module, flag, path == "one" and one_statement)
        with Store(url, upgrade=True) as store:
            for payment in created:
                store.create_payment(payment, fingerprint="f")
            with store.batch() as batch:
                for payment in created[:3]:
                    batch.transition(payment.id, expected_version=2, target=Status.EXPIRED,
                                     cause=Cause.JOB, event_type="payment.expired",
                                     changes={"next_check_at": None})
                batch.update_payment(created[3].id, expected_version=2, next_action=action,
                                     next_check_at=deadline, routing={"a": "ñ"})
                for n in range(3):
                    assert batch.record_delivery(Delivery(
                        provider="fake", event_id=f"e{n}", event_type="t", outcome="applied",
                        payment_id=created[n].id, detail="ñ"))
            with store.engine.connect() as conn:
                stored.append([conn.exec_driver_sql(
                    f"SELECT * FROM {table} ORDER BY 1, 2").all()  # noqa: S608
                    for table in ("payments", "transitions", "outbox", "webhook_deliveries")])
            with pytest.raises(ConcurrencyConflictError):
                _changed_under_the_batch(store, created[3].id)
            assert store.get_payment(created[3].id).check_attempts == 0
            with pytest.raises(ConcurrencyConflictError):
                _delivered_under_the_batch(store)
            assert not store.seen_delivery("fake", "late")
            assert store.verify_chain().ok
    assert stored[0] == stored[1]
    by_path = {p: {id(st) for q, st in through_executemany if q == p} for p in stored_paths}
    assert len(by_path["per_row"]) >= 4  # the update and the three INSERTs, row by row
    assert by_path["one"] == (by_path["per_row"] if not one_statement else set())
    assert {row.status for row in stored[0][0]} == {"expired", "pending"}
    assert [len(rows) for rows in stored[0][1:]] == [3, 3, 3]


def _changed_under_the_batch(store, payment_id):
    import sqlalchemy as sa

    with store.batch() as batch:
        (held,) = batch.adopt([store.get_payment(payment_id)])
        batch.update_payment(held.id, expected_version=held.version, check_attempts=1)
        batch._conn.execute(sa.text(  # another writer, as the batch's flush finds it
            "UPDATE payments SET version = version + 1 WHERE id = :id"), {"id": held.id})


def _delivered_under_the_batch(store):
    import sqlalchemy as sa

    with store.batch() as batch:
        assert batch.record_delivery(Delivery(provider="fake", event_id="late",
                                              event_type="t", outcome="ignored"))
        batch._conn.execute(sa.text(  # another writer recorded it first
            "INSERT INTO webhook_deliveries (provider, event_id, event_type, payment_key, "
            "outcome, detail, received_at) VALUES ('fake', 'late', 't', '', 'ignored', '', "
            "'2026-12-02 07:00:00.000000')"))


JSON_VALUES = [
    {}, {"a": 1}, {"payment_id": "01J", "amount": {"minor": 2500, "currency": "PEN"},
                   "provider_reference": None, "version": 3},
    {"ñ": "ü\u2028\x00\"\\/", "emoji": "\U0001f600", "n": [1, 2.5, -0.0, 1e300, None, True]},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")},
    {7: "int key", 2.5: "float key", True: "bool key", None: "none key"},
    {"deep": {"er": {"est": [{"x": []}, {}]}}}, {"big": 2**80, "neg": -(2**70)},
    [1, 2], "text", 5, None,
]


@pytest.mark.parametrize("value", JSON_VALUES, ids=range(len(JSON_VALUES)))
def test_json_texts_writes_what_the_json_bind_processor_writes(value):
    """The batch's one encoder per statement writes a JSON column's dicts byte for byte
    as SQLAlchemy's bind processor (``json.dumps``) does, one after another."""
    import sqlalchemy as sa

    from pasarela.store.batch import json_texts

    dialect = sa.create_engine("sqlite://").dialect
    process = sa.JSON().dialect_impl(dialect).bind_processor(dialect)
    text = json_texts(process)
    for _ in range(3):  # the same encoder, row after row
        assert text(value) == process(value)


def test_json_texts_refuses_what_json_dumps_refuses_and_goes_on():
    import sqlalchemy as sa

    from pasarela.store.batch import json_texts

    dialect = sa.create_engine("sqlite://").dialect
    process = sa.JSON().dialect_impl(dialect).bind_processor(dialect)
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    for bad, error in (({"x": object()}, TypeError), (cycle, ValueError),
                       ({("t",): 1}, TypeError)):
        with pytest.raises(error):
            process(bad)
        text = json_texts(process)
        with pytest.raises(error):
            text(bad)


def test_a_batchs_outbox_payloads_are_stored_as_one_row_at_a_time_stores_them(
        tmp_path, monkeypatch):
    """Outbox payloads (given and default) that the batch writes in one many-row
    INSERT, through one JSON encoder, are the bytes SQLAlchemy's executemany stores."""
    from datetime import UTC, datetime

    from pasarela.store import batch as batch_module

    if not batch_module.UPDATE_FROM:
        pytest.skip("this SQLite has no UPDATE ... FROM")
    now = datetime(2026, 12, 2, 7, 0, 1, 5, tzinfo=UTC)
    monkeypatch.setattr(batch_module, "utc_now", lambda: now)
    monkeypatch.setattr(batch_module, "outbox_ids",
                        lambda _: (f"01JF{n:022d}" for n in itertools.count()))
    created = [new_payment(status=Status.PENDING, version=2) for _ in range(len(JSON_VALUES))]
    stored = []
    for path in ("per_row", "one"):
        monkeypatch.setattr(batch_module, "UPDATE_FROM", path == "one")
        with Store(f"sqlite:///{tmp_path / path}.db") as store:
            for payment in created:
                store.create_payment(payment, fingerprint="f")
            with store.batch() as batch:
                for n, (payment, value) in enumerate(zip(created, JSON_VALUES, strict=True)):
                    payload = value if isinstance(value, dict) and n % 3 else None
                    batch.transition(payment.id, expected_version=2, target=Status.EXPIRED,
                                     cause=Cause.JOB, event_type="payment.expired",
                                     payload=payload)
            with store.engine.connect() as conn:
                stored.append(conn.exec_driver_sql(
                    "SELECT id, payload FROM outbox ORDER BY id").all())
    assert stored[0] == stored[1]
    assert len(stored[0]) == len(JSON_VALUES)
