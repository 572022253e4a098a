"""Personal data sealed at rest (``[privacy] keys``), opened on every read, sealed
again under a new key, and erased on request; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pasarela.errors import ConfigurationError
from pasarela.lifecycle import Cause, Status
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.store import Store, queries
from pasarela.store import schema as t
from pasarela.store.personal import ERASED
from pasarela.store.sealing import Sealer, new_key

from .conftest import new_exchange, new_payment


KEY_A, KEY_B = new_key(), new_key()
PERSONAL = ("rosa@example.pe", "987654321", "45678912", "Quispe", "Audífonos rosados",
            "cliente-vip")


def _order(ref: str = "pedido-1") -> Order:
    return Order(reference=ref, amount=Money.of("149.90", "PEN"),
                 description="Audífonos rosados", metadata={"segment": "cliente-vip"},
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe", phone="+51 987 654 321",
                                   document=("DNI", "45678912")))


def _raw(store: Store, table: sa.Table = t.payments) -> str:
    """Every row of *table*, as text (what someone reading the database sees)."""
    with store.engine.connect() as conn:
        return json.dumps([list(r) for r in conn.execute(sa.select(table))], default=str,
                          ensure_ascii=False)


@pytest.fixture
def open_store(store_url: str) -> Callable[..., Store]:
    opened: list[Store] = []

    def make(*keys: str) -> Store:
        store = Store(store_url, upgrade=True, sealer=Sealer.from_keys(keys))
        opened.append(store)
        return store

    yield make  # type: ignore[misc]
    for store in opened:
        store.close()


def _create(store: Store, ref: str = "pedido-1") -> Payment:
    payment, inserted = store.create_payment(
        new_payment(order=_order(ref), order_reference=ref), fingerprint="fp")
    assert inserted
    return payment


def test_the_columns_hold_no_personal_data_and_every_read_opens_it(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(KEY_A)
    payment = _create(store)
    raw = _raw(store)
    for value in (*PERSONAL, "Rosa"):
        assert value not in raw
    assert payment.order == _order()
    assert store.get_payment(payment.id).order == _order()
    assert store.find_payment(idempotency_key=payment.idempotency_key).order == _order()
    with store.batch() as batch:
        assert batch.lock_payments([payment.id])[0].order == _order()
    moved = store.transition(payment.id, expected_version=1, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending",
                             changes={"next_check_at": datetime.now(UTC)})
    assert moved.order == _order()
    due = store.due_for_check(now=datetime.now(UTC) + timedelta(seconds=1), limit=10)
    assert [p.order for p in due] == [_order()]
    routed = list(queries.routed_orders(store, datetime.now(UTC) - timedelta(days=1),
                                        datetime.now(UTC) + timedelta(days=1),
                                        statuses=["pending"]))
    assert Order.from_dict(routed[0].order) == _order()


def test_without_a_key_orders_are_kept_as_given(open_store: Callable[..., Store]) -> None:
    store = open_store()
    payment = _create(store)
    assert "rosa@example.pe" in _raw(store)
    assert store.get_payment(payment.id).order == _order()


@pytest.mark.parametrize("keys", [(KEY_B,), ()], ids=["another-key", "no-key"])
def test_a_row_no_configured_key_opens_is_a_configuration_error(
    open_store: Callable[..., Store], keys: tuple[str, ...]
) -> None:
    payment = _create(open_store(KEY_A))
    other = open_store(*keys)
    with pytest.raises(ConfigurationError, match=r"^privacy\.keys: ") as caught:
        other.get_payment(payment.id)
    assert caught.value.path == "privacy.keys"
    assert payment.id in str(caught.value)
    assert KEY_A not in str(caught.value)


def test_a_bad_key_is_refused_naming_its_place() -> None:
    with pytest.raises(ConfigurationError, match=r"privacy\.keys\[1\]: decodes to"):
        Sealer([KEY_A, "c2hvcnQ="])


def test_rotation_seals_every_row_under_the_newest_key_in_resumable_batches(
    open_store: Callable[..., Store],
) -> None:
    old = open_store(KEY_A)
    sealed = [_create(old, f"pedido-{i}") for i in range(3)]
    plain = _create(open_store(), "pedido-plain")
    before = _raw(old)

    both = open_store(KEY_B, KEY_A)
    first = both.reseal_personal(limit=2)
    assert (first.examined, first.sealed + first.rotated) == (2, 2)
    rest = both.reseal_personal(after=first.last_id, limit=2)
    assert rest.examined == 2
    assert first.rotated + rest.rotated == 3
    assert rest.sealed == 1
    again = both.reseal_personal(limit=10)  # run again: nothing left to do
    assert (again.examined, again.sealed, again.rotated) == (4, 0, 0)

    after = _raw(both)
    assert after != before
    assert "rosa@example.pe" not in after  # the row that was in clear is sealed too
    new = open_store(KEY_B)
    for payment in (*sealed, plain):
        assert new.get_payment(payment.id).order == payment.order


def test_rotation_needs_a_key(open_store: Callable[..., Store]) -> None:
    with pytest.raises(ConfigurationError, match=r"privacy\.keys"):
        open_store().reseal_personal()


@pytest.mark.parametrize("keys", [(KEY_A,), ()], ids=["sealed", "in-clear"])
def test_forget_erases_personal_data_keeping_the_books(
    open_store: Callable[..., Store], keys: tuple[str, ...]
) -> None:
    store = open_store(*keys)
    payment = _create(store)
    kept = _create(store, "pedido-2")
    body = json.dumps({"email": "rosa@example.pe", "phone": "987654321",
                       "name": "Rosa Quispe", "doc": "45678912", "amount": "149.90"})
    store.record_exchanges([new_exchange(payment.id, request_body=body,
                                         response_body='{"cip": "123", "mail": "rosa@example.pe"}',
                                         url="https://x.test/v1?email=rosa%40example.pe")])
    moved = store.transition(payment.id, expected_version=1, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending")

    assert store.forget_customer("pedido-1") == [(payment.id, True)]

    after = store.get_payment(payment.id, history=True)
    assert after.order is not None
    assert after.order.customer is None
    assert (after.order.description, dict(after.order.metadata)) == ("", {})
    assert (after.amount, after.status, after.version, after.created_at) == (
        moved.amount, moved.status, moved.version, moved.created_at)
    assert [(h.reason, h.applied, h.source, h.target) for h in after.history][-1] == (
        ERASED, False, Status.PENDING, Status.PENDING)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.payments.c.order, t.payments.c.personal)
                            .where(t.payments.c.id == payment.id)).one()
    assert rows.personal is None
    exchanges = json.dumps(store.exchanges_for(payment.id), default=str, ensure_ascii=False)
    for value in ("rosa@example.pe", "rosa%40example.pe", "987654321", "45678912",
                  "Quispe", "Rosa"):
        assert value not in exchanges
        assert value not in json.dumps(rows.order, ensure_ascii=False)
    recorded = store.exchanges_for(payment.id)[0]
    assert json.loads(recorded["request_body"])["amount"] == "149.90"
    assert json.loads(recorded["response_body"]) == {"cip": "123", "mail": "[erased]"}
    assert store.get_payment(kept.id).order == _order("pedido-2")  # another order: kept

    history = len(after.history)
    assert store.forget_customer("pedido-1") == [(payment.id, False)]  # idempotent
    assert len(store.history(payment.id)) == history
    assert store.forget_customer("pedido-none") == []
