"""Single statements through the driver (``store.driver.execute``: sqlite3, or psycopg
on PostgreSQL): the rows stored and the rows returned are the ones SQLAlchemy's own
``conn.execute`` stores and returns, and errors are raised as it raises them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.store import Store, driver
from pasarela.store._rows import (
    INSERT_DECISION,
    INSERT_OUTBOX,
    INSERT_TRANSITION,
    LOCK_PAYMENT,
    NEXT_SEQ,
    exchange_values,
)
from pasarela.store._writes import INSERT_EXCHANGES, LOCK_NEXT
from pasarela.store.driver import execute, executemany
from pasarela.store.payments import bump_version
from pasarela.store.schema import payments

from .conftest import new_payment


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Two empty databases of one backend: one written through the driver, one by
    SQLAlchemy."""
    if request.param == "sqlite":
        return {label: f"sqlite:///{tmp_path / label}.db" for label in ("driver", "sqlalchemy")}
    make: Callable[[], str] = request.getfixturevalue("postgres_schema_urls")
    return {label: make() for label in ("driver", "sqlalchemy")}


def test_driver_execute_stores_and_returns_what_sqlalchemy_does(
        two_urls: dict[str, str]) -> None:
    payment = new_payment(status=Status.PENDING, version=2)
    now = datetime.now(UTC)
    writes: list[tuple[Any, dict[str, Any]]] = [
        (INSERT_OUTBOX, {"id": "o1", "payment_id": payment.id, "type": "payment.succeeded",
                         "payload": {"amount": {"minor": 14990}, "note": None, "á": "ñ"},
                         "created_at": now, "next_attempt_at": now, "attempts": 0}),
        (INSERT_TRANSITION, {"payment_id": payment.id, "seq": 1, "source": "pending",
                             "target": "succeeded", "cause": "webhook", "applied": True,
                             "reason": "", "event_id": None, "version": 3, "at": now}),
        (INSERT_DECISION, {"order_reference": "o-1", "payment_id": payment.id,
                           "decision": {"provider": "fake", "attempt": 1},
                           "created_at": now}),
    ]
    exchange = exchange_values(Exchange(
        provider="fake", operation="create", payment_id=payment.id, attempt=1, method="POST",
        url="https://gateway.example/v1/payments", request_headers={"x-trace": "1"},
        request_body='{"amount": 14990}', status_code=201, response_headers={},
        response_body='{"id": "ch_1", "note": "ñ"}', error=None, started_at=now,
        duration_ms=12.5), payment.id)
    reads: list[tuple[Any, dict[str, Any]]] = [
        (LOCK_PAYMENT, {"_id": payment.id}),
        (NEXT_SEQ, {"_id": payment.id}),
        (LOCK_NEXT, {"_id": payment.id}),
        (sa.select(payments).where(payments.c.id == sa.bindparam("_id")), {"_id": payment.id}),
    ]
    stored, returned, matched = [], [], []
    for label in ("driver", "sqlalchemy"):
        with Store(two_urls[label], upgrade=True) as store:
            store.create_payment(payment, fingerprint="f")
            with store.engine.begin() as conn:
                got: list[Any] = []
                for statement, row in writes:
                    if label == "driver":
                        assert execute(conn, statement, row) == []
                    else:
                        conn.execute(statement, row)
                for statement, row in reads:
                    if label == "driver":
                        got.append(execute(conn, statement, row))
                    else:
                        got.append([dict(r._mapping) for r in conn.execute(statement, row)])
                # One row through executemany (a create's exchange), stored as
                # SQLAlchemy stores it; the rows matched are counted (SQLAlchemy's
                # rowcount of an INSERT with RETURNING on psycopg is -1: unknown).
                if label == "driver":
                    matched.append(executemany(conn, INSERT_EXCHANGES, [exchange]))
                else:
                    conn.execute(INSERT_EXCHANGES, exchange)
                if label == "driver":  # UPDATE ... RETURNING: bump_version goes through the driver
                    got.append(bump_version(conn, payment.id, 2, {"status": "succeeded",
                                                           "next_action": sa.null(),
                                                           "next_check_at": None}, now))
                else:
                    got.append(dict(conn.execute(
                        sa.update(payments).where(payments.c.id == payment.id,
                                                  payments.c.version == 2)
                        .values(version=payments.c.version + 1, updated_at=now,
                                status="succeeded", next_action=sa.null(),
                                next_check_at=None)
                        .returning(*payments.c)).one()._mapping))
                returned.append(got)
            with store.engine.connect() as conn:
                stored.append([
                    conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1").all()  # noqa: S608
                    for table in ("payments", "outbox", "transitions", "routing_decisions",
                                  "exchanges")])
            if label == "driver":  # every statement above took the driver's own path
                fast = driver._DRIVER_ONE if store.dialect == "sqlite" else driver._DRIVER_NAMED
                many = [] if store.dialect == "sqlite" else [(INSERT_EXCHANGES, exchange)]
                for statement, row in [*writes, *reads, *many]:
                    assert fast[(id(statement), tuple(row))] is not None
    assert stored[0] == stored[1]
    assert returned[0] == returned[1]
    assert matched == [1]
    lock, seq, lock_next, _, bumped = returned[0]
    assert lock_next == [{**lock[0], "next_seq": seq[0]["anon_1"]}]
    assert seq[0]["anon_1"] == 2
    assert isinstance(bumped["updated_at"], datetime)
    assert bumped["version"] == 3


def test_driver_execute_raises_as_sqlalchemy_does(store: Store) -> None:
    payment, _ = store.create_payment(new_payment(), fingerprint="f")
    step = {"payment_id": payment.id, "seq": 1, "source": "created", "target": "pending",
            "cause": "api", "applied": True, "reason": "", "event_id": None,
            "version": 2, "at": datetime.now(UTC)}
    with store.engine.begin() as conn:
        execute(conn, INSERT_TRANSITION, step)
        with pytest.raises(sa.exc.IntegrityError):
            execute(conn, INSERT_TRANSITION, step)


@pytest.mark.postgres
def test_a_connection_lost_under_the_driver_is_invalidated_as_sqlalchemy_does(
        postgres_schema_url: str) -> None:
    """The server ends the connection (a restart, a failover): the driver's error is
    SQLAlchemy's, marked invalidated, and the pool connects again rather than hand the
    dead connection out; the store goes on."""
    with Store(postgres_schema_url, upgrade=True) as store:
        payment, _ = store.create_payment(new_payment(), fingerprint="f")
        with store.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            conn.rollback()
            with store.engine.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            with pytest.raises(sa.exc.DBAPIError) as raised:
                execute(conn, LOCK_PAYMENT, {"_id": payment.id})
            assert raised.value.connection_invalidated
            assert conn.invalidated
        assert store.get_payment(payment.id) == payment
        with store.engine.connect() as again:
            assert again.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid


def test_a_transitions_outbox_payload_is_the_payments_default_payload(store: Store) -> None:
    """The transition writes its event's payload from the updated row, and builds the
    payment it returns after the commit: the payload is ``default_payload`` of it."""
    from pasarela.lifecycle import Cause
    from pasarela.store._rows import default_payload
    from pasarela.store.schema import outbox

    payment, _ = store.create_payment(new_payment(), fingerprint="f")
    moved = store.transition(payment.id, expected_version=payment.version,
                             target=Status.PENDING, cause=Cause.API,
                             event_type="payment.pending",
                             changes={"provider_reference": "cip-7"})
    with store.engine.connect() as conn:
        (stored,) = conn.execute(sa.select(outbox.c.payload)
                                 .where(outbox.c.payment_id == payment.id)).scalars()
    assert stored == default_payload(moved)
    assert stored["provider_reference"] == "cip-7"
    assert moved == store.get_payment(payment.id)


def test_a_create_with_its_decision_writes_both_or_neither(store: Store) -> None:
    """``create_payment(decision=...)`` (on PostgreSQL one statement): the payment and
    its decision when the key is new; neither when it is taken (the same parameters
    replay the payment, other ones are a conflict)."""
    from pasarela.errors import IdempotencyConflictError
    from pasarela.store.schema import routing_decisions

    payment = new_payment()
    decision = {"provider": "fake", "attempt": 1, "why": ["amount <= 1500"]}
    created, inserted = store.create_payment(payment, fingerprint="f", decision=decision)
    assert inserted
    assert created == store.get_payment(payment.id)
    again, inserted = store.create_payment(new_payment(idempotency_key=payment.idempotency_key),
                                           fingerprint="f", decision=decision)
    assert (again.id, inserted) == (payment.id, False)
    with pytest.raises(IdempotencyConflictError):
        store.create_payment(new_payment(idempotency_key=payment.idempotency_key),
                             fingerprint="other", decision=decision)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(routing_decisions)).all()
    assert [(r.payment_id, r.order_reference, r.decision) for r in rows] == [
        (payment.id, payment.order_reference, decision)]
    assert rows[0].created_at is not None


def test_a_first_transition_takes_the_order_its_create_wrote(store: Store) -> None:
    """The payment a create's first transition returns takes the Order the create was
    given, while the stored order is still the one written; one changed since (erased,
    sealed again) is built from the row."""
    from pasarela.lifecycle import Cause
    from pasarela.model import Customer, Order
    from pasarela.money import Money

    order = Order(reference="pedido-9", amount=Money.of("149.90", "PEN"),
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe", phone="+51 987 654 321",
                                    document=("DNI", "45678912")),
                  metadata={"canal": "web"})
    first, _ = store.create_payment(new_payment(order=order, order_reference="pedido-9"),
                                    fingerprint="f")
    moved = store.transition(first.id, expected_version=1, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending")
    assert moved.order is order
    assert moved == store.get_payment(first.id)

    second, _ = store.create_payment(new_payment(order=order, order_reference="pedido-9"),
                                     fingerprint="f")
    changed = {**order.to_dict(), "description": "changed meanwhile"}
    with store.engine.begin() as conn:
        conn.execute(sa.update(payments).where(payments.c.id == second.id)
                     .values(order=changed))
    moved = store.transition(second.id, expected_version=1, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending")
    assert moved.order is not None
    assert moved.order.description == "changed meanwhile"
    assert moved == store.get_payment(second.id)
