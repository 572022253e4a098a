"""Factories for the store tests (the ``store`` fixture lives in tests/conftest.py),
and ``write``: the writer under test, a :class:`Store` or a write batch over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from ulid import ULID

from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.model import Payment
from pasarela.money import Money
from pasarela.store import PaymentWriter, Store


def new_payment(**overrides: Any) -> Payment:
    now = datetime.now(UTC)
    pid = str(ULID())
    values: dict[str, Any] = {
        "id": pid,
        "order_reference": f"pedido-{pid[-6:]}",
        "idempotency_key": f"key-{pid}",
        "provider": "fake",
        "method": "cash",
        "amount": Money.of("149.90", "PEN"),
        "status": Status.CREATED,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return Payment(**values)


def new_exchange(payment_id: str | None, **overrides: Any) -> Exchange:
    values: dict[str, Any] = {
        "provider": "fake",
        "operation": "create",
        "payment_id": payment_id,
        "attempt": 1,
        "method": "POST",
        "url": "http://127.0.0.1:8801/v1/payments",
        "request_headers": {"content-type": "application/json", "authorization": "[redacted]"},
        "request_body": '{"amount": "149.90"}',
        "status_code": 201,
        "response_headers": {"content-type": "application/json"},
        "response_body": '{"id": "cip-1"}',
        "error": None,
        "started_at": datetime.now(UTC),
        "duration_ms": 12.5,
    }
    values.update(overrides)
    return Exchange(**values)


@pytest.fixture
def make_payment() -> Callable[..., Payment]:
    return new_payment


@pytest.fixture
def make_exchange() -> Callable[..., Exchange]:
    return new_exchange


@pytest.fixture
def created(store: Store) -> Payment:
    """One payment, inserted, status created, version 1."""
    payment, inserted = store.create_payment(new_payment(), fingerprint="fp-1")
    assert inserted
    return payment


def count_rows(store: Store, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def rows() -> Callable[..., int]:
    """``rows(store, table, *where)``: how many rows match."""
    return count_rows


class Writes:
    """How a test writes: ``with write() as writer:`` gives the store itself (every
    call its own transaction) or a write batch over it (one transaction, written and
    committed when the block ends). Reads after the block go through the store, so
    every rule is checked on what was committed, whichever writer wrote it.

    Inside the block, a batch's writes are not visible to the store's reads (they
    are written at the end): tests read back after the block.
    """

    def __init__(self, store: Store, kind: str) -> None:
        self.store = store
        self.kind = kind

    @property
    def batched(self) -> bool:
        return self.kind == "batch"

    @contextmanager
    def __call__(self) -> Iterator[PaymentWriter]:
        if self.kind == "store":
            yield self.store
            return
        with self.store.batch() as batch:
            yield batch

    def __repr__(self) -> str:
        return f"Writes({self.kind})"


@pytest.fixture(params=["store", "batch"])
def write(request: pytest.FixtureRequest, store: Store) -> Writes:
    """The writer under test, on each backend: the store, and a write batch."""
    return Writes(store, request.param)
