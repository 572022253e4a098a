"""On SQLite a run inserts a chunk's lines a few hundred a statement, the values every
line shares bound once: the rows stored are those of one INSERT a line."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pasarela.store import Store, settlements
from pasarela.store.reconcile_schema import settlement_lines
from pasarela.store.settlements import LINE_COLUMNS, SettlementRun


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
#: One INSERT a line, as the lines were written before (and still are on PostgreSQL).
ONE_A_LINE = (f"INSERT INTO settlement_lines ({', '.join(LINE_COLUMNS)}) "  # noqa: S608
              f"VALUES ({', '.join('?' * len(LINE_COLUMNS))}) "
              "ON CONFLICT (run_key, line_key) DO NOTHING")
_runs = itertools.count()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    folder = tmp_path_factory.mktemp("line-inserts")
    many = Store(f"sqlite:///{folder / 'many.db'}", upgrade=True)
    one = Store(f"sqlite:///{folder / 'one.db'}", upgrade=True)
    yield many, one
    many.close()
    one.close()


def _stored(store: Store, key: str) -> list[tuple[Any, ...]]:
    t = settlement_lines
    with store.read_transaction() as conn:
        ids = conn.scalars(sa.select(sa.func.min(t.c.id)).where(t.c.run_key == key)).one()
        rows = conn.execute(sa.select(t).where(t.c.run_key == key).order_by(t.c.id)).all()
    # ids relative to the run's first, so that the two files' earlier runs do not count
    return [(row.id - ids, *row[1:]) for row in rows]


def _text(pool: list[str | None]) -> st.SearchStrategy[str | None]:
    return st.sampled_from(pool)


def _lines(key: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Lines in LINE_COLUMNS order, each column drawn from a small pool so that a
    chunk's lines often share a value (None among them), and sometimes do not."""
    line = st.tuples(
        st.just(key),
        st.sampled_from(["L2", "L3", "L4", "L5", "L6", "L7", "L8", "H0a#0"]),  # repeats
        st.sampled_from(["00" * 16, "ab" * 16]),
        st.integers(min_value=1, max_value=9),
        _text(["fake"]),
        _text([None, "ref-1", "ref-2"]),
        _text([None, "ord-1"]),
        st.sampled_from([100, 2**40, -5]),
        _text(["PEN", "USD"]),
        st.sampled_from([None, 0, 35]),
        _text(["paid", "refunded", "PAGADO ñ"]),
        _text(["2026-11-30 10:00:00.000000", "2026-11-30 10:00:00.123456"]),
        _text([None, "01JPAYMENT0000000000000001"]),
        _text([None, "provider_reference", "amount_date"]),
        _text(["matched", "duplicate"]),
        st.just("2026-12-01 12:00:00.000000"),
    )
    return st.lists(line, min_size=1, max_size=12)


def _write_both(many: Store, one: Store, key: str, lines: list[tuple[Any, ...]]) -> None:
    SettlementRun(many, key).write(lines, [], now=NOW)
    with one.transaction() as conn:
        for values in lines:
            conn.exec_driver_sql(ONE_A_LINE, values)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_lines_stored_are_those_of_one_insert_a_line(
        stores: tuple[Store, Store], data: st.DataObject) -> None:
    many, one = stores
    key = f"run-{next(_runs)}"
    lines = data.draw(_lines(key))
    _write_both(many, one, key, lines)
    assert _stored(many, key) == _stored(one, key)
    # a second write of the same run: lines recorded already are left alone
    again = data.draw(_lines(key))
    _write_both(many, one, key, again)
    assert _stored(many, key) == _stored(one, key)


def test_a_chunk_longer_than_a_statement_keeps_its_order(
        stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    many, one = stores
    monkeypatch.setattr(settlements, "_LINES_PER_STATEMENT", 7)
    key = f"run-{next(_runs)}"
    lines = [(key, f"L{n}", "cd" * 16, n, "fake", f"ref-{n}", None, 1000 + n, "PEN",
              None if n % 3 else 35, "paid", "2026-11-30 10:00:00.000000",
              f"01JPAYMENT{n:016d}", "provider_reference", "matched",
              "2026-12-01 12:00:00.000000") for n in range(2, 60)]
    lines.insert(30, lines[5])  # the same line key again: left alone, as one a line
    statements = list(settlements._sqlite_line_inserts(lines))
    assert len(statements) == 9
    # the values every line shares (run key, digest, provider, order reference, currency,
    # status, the times, how and category) are bound once a statement
    assert all(len(params) == 10 + 7 * 6 for _, params in statements[:-1])
    _write_both(many, one, key, lines)
    assert _stored(many, key) == _stored(one, key)
    assert len(_stored(many, key)) == 58


def test_a_value_a_line_refuses_writes_none_of_the_chunk(stores: tuple[Store, Store]) -> None:
    many, _ = stores
    key = f"run-{next(_runs)}"
    good = (key, "L2", "ee" * 16, 2, "fake", "ref", None, 1, "PEN", None, "paid",
            "2026-11-30 10:00:00.000000", None, None, "missing_in_books",
            "2026-12-01 12:00:00.000000")
    bad = (*good[:1], "L3", *good[2:14], None, good[15])  # no category: NOT NULL
    with pytest.raises(sa.exc.IntegrityError):
        SettlementRun(many, key).write([good, bad], [], now=NOW)
    assert _stored(many, key) == []
