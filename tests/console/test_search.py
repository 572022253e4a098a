"""The console's searches (store.search_payments): every filter, keyset pages, the
merchant scope, customers found by keyed hash only; reconciliation differences
resolved once. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from ulid import ULID

from pasarela.errors import ConfigurationError, NotFoundError, ValidationError
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.registry import MERCHANT_SEPARATOR
from pasarela.store import DifferenceQuery, PaymentQuery, Store
from pasarela.store import schema as t
from pasarela.store.reconcile_schema import reconciliation_results
from pasarela.store.sealing import Sealer, new_key


KEY_A, KEY_B = new_key(), new_key()
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def make(*keys: str) -> Store:
        store = Store(store_url, upgrade=True, sealer=Sealer.from_keys(keys))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _payment(i: int, **overrides: Any) -> Payment:
    at = T0 + timedelta(minutes=i)
    pid = str(ULID.from_datetime(at))
    phone = f"+51 98{i:07d}"
    values: dict[str, Any] = {
        "id": pid, "order_reference": f"pedido-{i}", "idempotency_key": f"key-{pid}",
        "provider": "fake", "method": "cash", "amount": Money(1000 + i, "PEN"),
        "status": Status.CREATED, "version": 1, "created_at": at, "updated_at": at,
        "provider_reference": f"cip-{i}",
        "order": Order(reference=f"pedido-{i}", amount=Money(1000 + i, "PEN"),
                       customer=Customer(first_name="Rosa", last_name="Quispe", phone=phone,
                                         document=("DNI", f"{40000000 + i}"))),
    }
    values.update(overrides)
    return Payment(**values)


def _fill(store: Store, n: int = 30) -> list[Payment]:
    out = []
    for i in range(n):
        status = (Status.PENDING, Status.SUCCEEDED, Status.EXPIRED)[i % 3]
        p = _payment(i, status=status, method="card" if i % 2 else "cash",
                     network="visa" if i % 2 else "pagoefectivo")
        out.append(store.create_payment(p, fingerprint="fp")[0])
    return out


def _ids(store: Store, query: PaymentQuery, **kw: Any) -> list[str]:
    return [r.id for r in store.search_payments(query, **kw).rows]


def test_every_filter_finds_exactly_its_payments(open_store: Callable[..., Store]) -> None:
    store = open_store(KEY_A)
    made = _fill(store)
    newest_first = [p.id for p in reversed(made)]

    def expect(query: PaymentQuery, keep: Callable[[int, Payment], bool]) -> None:
        want = [p.id for i, p in reversed(list(enumerate(made))) if keep(i, p)]
        assert _ids(store, query, limit=200) == want, query

    expect(PaymentQuery(), lambda i, p: True)
    expect(PaymentQuery(payment_id=made[4].id), lambda i, p: i == 4)
    expect(PaymentQuery(order_reference="pedido-7"), lambda i, p: i == 7)
    expect(PaymentQuery(provider_reference="cip-9"), lambda i, p: i == 9)
    expect(PaymentQuery(statuses=("succeeded",)), lambda i, p: i % 3 == 1)
    expect(PaymentQuery(statuses=("pending", "expired")), lambda i, p: i % 3 != 1)
    expect(PaymentQuery(method="card"), lambda i, p: i % 2 == 1)
    expect(PaymentQuery(network="pagoefectivo"), lambda i, p: i % 2 == 0)
    expect(PaymentQuery(provider="other"), lambda i, p: False)
    expect(PaymentQuery(currency="PEN", min_minor=1010, max_minor=1012),
           lambda i, p: 10 <= i <= 12)
    expect(PaymentQuery(created_from=T0 + timedelta(minutes=5),
                        created_to=T0 + timedelta(minutes=8)), lambda i, p: 5 <= i < 8)
    expect(PaymentQuery(method="card", statuses=("pending",)),
           lambda i, p: i % 2 == 1 and i % 3 == 0)
    # The one box: an id, an order reference, a provider reference, a phone, a document.
    for text, index in ((made[3].id, 3), ("pedido-11", 11), ("cip-12", 12),
                        ("980000013", 13), ("+51 980 000 014", 14), ("40000015", 15)):
        assert _ids(store, PaymentQuery(text=text)) == [made[index].id], text
    assert _ids(store, PaymentQuery(text="nothing-like-it")) == []
    assert _ids(store, PaymentQuery(phone="980000016")) == [made[16].id]
    assert _ids(store, PaymentQuery(document="40.000.017")) == [made[17].id]
    assert _ids(store, PaymentQuery(phone="980000099")) == []
    assert newest_first[0] == made[-1].id


def test_keyset_pages_cover_everything_once_even_with_equal_times(
    open_store: Callable[..., Store],
) -> None:
    store = open_store()
    made = [store.create_payment(_payment(i // 4, id=str(ULID()), order=None,
                                          idempotency_key=f"k{i}"), fingerprint="fp")[0]
            for i in range(23)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = store.search_payments(PaymentQuery(), after=after, limit=5)
        seen += [r.id for r in page.rows]
        pages += 1
        if page.after is None:
            break
        after = page.after
    assert pages == 5
    assert sorted(seen) == sorted(p.id for p in made)
    assert len(seen) == len(set(seen))
    order = [(p.created_at, p.id) for p in made]
    assert seen == [pid for _, pid in sorted(order, reverse=True)]
    with pytest.raises(ValidationError, match="after"):
        store.search_payments(PaymentQuery(), after="garbage")
    with pytest.raises(ValidationError, match="limit"):
        store.search_payments(PaymentQuery(), limit=0)


def test_a_search_sees_only_its_merchant(open_store: Callable[..., Store]) -> None:
    store = open_store(KEY_A)
    mine = store.create_payment(_payment(1), fingerprint="fp")[0]
    theirs = store.create_payment(_payment(2, provider=f"acme{MERCHANT_SEPARATOR}fake",
                                           order_reference="pedido-1",
                                           provider_reference="cip-1"), fingerprint="fp")[0]
    assert _ids(store, PaymentQuery(order_reference="pedido-1")) == [mine.id]
    assert _ids(store, PaymentQuery(text="cip-1"), merchant="acme") == [theirs.id]
    assert _ids(store, PaymentQuery(text=mine.id), merchant="acme") == []


def test_phones_are_stored_as_keyed_hashes_found_across_a_rotation(
    open_store: Callable[..., Store],
) -> None:
    store = open_store(KEY_A)
    made = store.create_payment(_payment(5), fingerprint="fp")[0]
    with store.engine.connect() as conn:
        c = t.payments.c
        raw = json.dumps([list(r) for r in conn.execute(sa.select(
            c.order, c.personal, c.phone_hash, c.document_hash))], default=str)
        hashed = conn.execute(sa.select(t.payments.c.phone_hash)).scalar_one()
    assert "980000005" not in raw
    assert "40000005" not in raw
    assert hashed == Sealer([KEY_A]).digests("phone", "980000005")[0]
    # A new key first: the old rows are still found, then hashed again on rotation.
    rotated = open_store(KEY_B, KEY_A)
    assert _ids(rotated, PaymentQuery(phone="980000005")) == [made.id]
    rotated.reseal_personal()
    with rotated.engine.connect() as conn:
        now_hashed = conn.execute(sa.select(t.payments.c.phone_hash)).scalar_one()
    assert now_hashed == Sealer([KEY_B]).digests("phone", "980000005")[0] != hashed
    assert _ids(open_store(KEY_B), PaymentQuery(phone="+51980000005")) == [made.id]
    # Erased: no longer found.
    rotated.forget_customer("pedido-5")
    assert _ids(rotated, PaymentQuery(phone="980000005")) == []


def test_rows_written_before_the_hashes_are_backfilled(open_store: Callable[..., Store]) -> None:
    store = open_store(KEY_A)
    made = store.create_payment(_payment(6), fingerprint="fp")[0]
    with store.engine.begin() as conn:  # as migration 0010 leaves an older row
        conn.execute(sa.update(t.payments).values(phone_hash=None, document_hash=None))
    assert _ids(store, PaymentQuery(document="40000006")) == []
    store.reseal_personal()
    assert _ids(store, PaymentQuery(document="40000006")) == [made.id]


def test_bad_criteria_are_refused_naming_the_field(open_store: Callable[..., Store]) -> None:
    with pytest.raises(ValidationError, match="statuses"):
        PaymentQuery(statuses=("paid",))
    with pytest.raises(ValidationError, match="min_minor"):
        PaymentQuery(min_minor=10, max_minor=5)
    with pytest.raises(ValidationError, match="max_minor"):
        PaymentQuery(max_minor=-1)
    with pytest.raises(ValidationError, match="created_from"):
        PaymentQuery(created_from=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ConfigurationError, match="privacy"):
        open_store().search_payments(PaymentQuery(phone="987654321"))


def _difference(store: Store, run: str, n: int, **kw: Any) -> None:
    with store.engine.begin() as conn:
        for i in range(n):
            conn.execute(sa.insert(reconciliation_results).values(
                run_key=run, item_key=f"line-{i}", provider=kw.get("provider", "fake"),
                category=("missing_here", "amount_mismatch")[i % 2], line_no=i + 1,
                payment_id=None, expected="", actual="", detail="", resolved=False,
                healed=False, created_at=T0))


def test_differences_filtered_and_resolved_once(open_store: Callable[..., Store]) -> None:
    store = open_store()
    _difference(store, "run-a", 5)
    _difference(store, "run-b", 2, provider="other")
    runs = {r.run_key: r for r in store.reconciliation_runs()}
    assert (runs["run-a"].differences, runs["run-a"].unresolved) == (5, 5)
    assert [r.run_key for r in store.reconciliation_runs(providers={"other"})] == ["run-b"]
    found = store.differences("run-a", DifferenceQuery(category="amount_mismatch"))
    assert [d.line_no for d in found] == [2, 4]
    assert [d.line_no for d in store.differences("run-a", after_id=found[0].id, limit=2)] \
        == [3, 4]
    with pytest.raises(ValidationError, match="note"):
        store.resolve_difference(found[0].id, action="accepted", operator="ana", note=" ")
    done = store.resolve_difference(found[0].id, action="accepted", operator="ana",
                                    note="fee rounding at the provider")
    assert (done.resolved, done.action, done.operator, done.note) == (
        True, "accepted", "ana", "fee rounding at the provider")
    with pytest.raises(ValidationError, match="already"):
        store.resolve_difference(found[0].id, action="healed", operator="ana")
    with pytest.raises(NotFoundError):
        store.resolve_difference(10**6, action="healed", operator="ana")
    assert [d.id for d in store.differences("run-a", DifferenceQuery(state="resolved"))] \
        == [found[0].id]
    assert len(store.differences("run-a", DifferenceQuery(state="open"))) == 4
    assert store.reconciliation_runs()[0].unresolved in (4, 2)
