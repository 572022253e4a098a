"""The store side of a reconciliation run: what the matching engine
(:mod:`pasarela.reconcile.matching`) reads and writes, through :class:`SettlementRun`.

Tuned for a million lines against a million payments (``bench/bench_reconcile.py``):

- the hot statements (payments by reference, inserting the lines) are plain SQL run
  through the driver with tuples, not SQLAlchemy Core (whose per-row parameter and
  result processing costs more than the database's work); on SQLite a statement
  inserts a few hundred lines, the values they all share bound once;
- payments of a chunk are looked up with one bound array (SQLite ``json_each``
  joined to the payments, PostgreSQL ``= ANY``), not thousands of expanded
  parameters;
- ``settlement_lines`` has no index on the content digest, only ``(run_key,
  line_key)`` (idempotency) and ``(run_key, payment_id)``: the engine finds
  duplicates in memory, from :meth:`SettlementRun.recorded_digests`;
- payments no line matched are found by walking the primary key once
  (:meth:`SettlementRun.paid_unmatched`);
- the rare reads (matching by amount and date, known differences) stay on
  SQLAlchemy Core.

Every call is its own short transaction; on SQLite the run gives one pooled
connection a page cache big enough for the index pages a chunk touches (one: see
:meth:`SettlementRun._size_cache`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

import sqlalchemy as sa

from pasarela.store._rows import Row, from_db
from pasarela.store._writes import dialect_insert
from pasarela.store.driver import run
from pasarela.store.reconcile_schema import reconciliation_results, settlement_lines
from pasarela.store.schema import payments


if TYPE_CHECKING:
    from pasarela.store.repository import Store


__all__ = [
    "LINE_COLUMNS",
    "LINE_STATUS_WIDTH",
    "SQLITE_CACHE_KIB",
    "PaymentFacts",
    "Result",
    "SettlementRun",
    "UnmatchedPayment",
    "sqlite_stamp",
]

#: SQLite page cache for reconciliation connections, in KiB.
SQLITE_CACHE_KIB: Final = 32768
#: The pool's ``info`` key of a connection a run gave its page cache: ``(driver
#: connection, the cache_size it had before)``.
_CACHE_MARK: Final = "pasarela.settlement_cache"
#: The order of the values of a line tuple given to :meth:`SettlementRun.write`.
LINE_COLUMNS: Final = (
    "run_key", "line_key", "content_hash", "line_no", "provider", "provider_reference",
    "order_reference", "amount_minor", "currency", "fee_minor", "status", "occurred_at",
    "payment_id", "matched_by", "category", "created_at",
)
#: How many characters of a line's status are kept.
LINE_STATUS_WIDTH: Final = 32
#: How many characters of a difference's expected and actual values are kept.
_RESULT_VALUE_WIDTH: Final = 128


class PaymentFacts(NamedTuple):
    """What matching needs of a payment."""

    id: str
    provider: str
    method: str
    provider_reference: str | None
    order_reference: str
    amount_minor: int
    currency: str
    status: str
    #: ``routing.expected_fee`` when it is in the payment's currency, else None.
    expected_fee: int | None


class UnmatchedPayment(NamedTuple):
    """A paid payment no line of the run matched."""

    facts: PaymentFacts
    created_at: datetime


class Result(NamedTuple):
    """A difference to record (``item_key`` is unique per run)."""

    item_key: str
    provider: str
    category: str
    line_no: int | None
    payment_id: str | None
    provider_reference: str | None
    order_reference: str | None
    expected: str
    actual: str
    detail: str
    resolved: bool
    healed: bool


_FEE_MINOR: Final = payments.c.routing[("expected_fee", "minor")].as_integer()
_FEE_CURRENCY: Final = payments.c.routing[("expected_fee", "currency")].as_string()
#: The :class:`PaymentFacts` columns, for the rare reads on SQLAlchemy Core (the fee
#: extracted by the database, json_extract / ->: no JSON decoding per row here).
_FACT_COLUMNS: Final = (
    payments.c.id, payments.c.provider, payments.c.method, payments.c.provider_reference,
    payments.c.order_reference, payments.c.amount_minor, payments.c.currency,
    payments.c.status,
    sa.case((payments.c.currency == _FEE_CURRENCY, _FEE_MINOR)).label("expected_fee"),
)
#: The same columns, for the per-chunk lookups run as plain SQL through the driver
#: (``{fee}`` is the dialect's JSON extraction of ``routing.expected_fee.minor`` when
#: its currency is the payment's).
_PAYMENT_SQL: Final = (
    "SELECT p.id, p.provider, p.method, p.provider_reference, p.order_reference, "
    "p.amount_minor, p.currency, p.status, {fee} AS expected_fee "
    "FROM {source} WHERE p.provider = {p} AND p.{column} {in_array} "
    "ORDER BY p.created_at, p.id"
)
#: On SQLite the array's values drive the join (json_each, each value looked up in
#: the payments' index; CROSS JOIN keeps that order), rather than ``IN (SELECT value
#: FROM json_each(?))``, which first copies them into a temporary index.
_SQLITE_SQL: Final = {
    "source": "json_each(?2) AS j CROSS JOIN payments AS p", "p": "?1",
    "in_array": "= j.value",
    "fee": "CASE WHEN json_extract(p.routing, '$.expected_fee.currency') = p.currency "
           "THEN json_extract(p.routing, '$.expected_fee.minor') END",
}
_POSTGRES_SQL: Final = {
    "source": "payments AS p", "p": "%s", "in_array": "= ANY(%s)",
    "fee": "CASE WHEN p.routing -> 'expected_fee' ->> 'currency' = p.currency "
           "THEN CAST(p.routing -> 'expected_fee' ->> 'minor' AS BIGINT) END",
}
#: Inserting a chunk's lines (PostgreSQL: executemany with a tuple per line, in
#: LINE_COLUMNS order); a line recorded already (a concurrent run of the same key) is
#: left alone.
_INSERT_LINES: Final = ("INSERT INTO settlement_lines ({columns}) VALUES ({marks}) "
                        "ON CONFLICT (run_key, line_key) DO NOTHING")
#: SQLite's form: many lines a statement, a value every line of the chunk shares
#: bound once (``?1`` ... ``?k``) and the others in the ``VALUES`` rows. ``WHERE
#: true`` tells SQLite's parser that ``ON CONFLICT`` is the upsert, not a join's.
_INSERT_MANY_LINES: Final = ("INSERT INTO settlement_lines ({columns}) SELECT {values} "
                             "FROM (VALUES {rows}) WHERE true "
                             "ON CONFLICT (run_key, line_key) DO NOTHING")
#: How many lines a SQLite statement inserts at most (16 parameters a line at most,
#: well within the 32,766 SQLite binds from 3.32 on).
_LINES_PER_STATEMENT: Final = 250


def sqlite_stamp(utc: datetime, iso: str) -> Any:
    """*utc* as SQLAlchemy stores a DateTime in SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``),
    cut from *iso*, its ``isoformat()`` (``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``)."""
    if utc.microsecond:
        return f"{iso[:10]} {iso[11:26]}"
    return f"{iso[:10]} {iso[11:19]}.000000"


def _as_is(utc: datetime, iso: str) -> Any:
    return utc


class SettlementRun:
    """The settlement lines and differences of run *key* in *store*, and the
    payments the run matches them with (see the module docs)."""

    def __init__(self, store: Store, key: str) -> None:
        self.store = store
        self.key = key
        self._sqlite = store.dialect == "sqlite"
        words = _SQLITE_SQL if self._sqlite else _POSTGRES_SQL
        self._payment_sql = {
            column: _PAYMENT_SQL.format(column=column, **words)
            for column in ("provider_reference", "order_reference")}
        mark = "?" if self._sqlite else "%s"
        self._insert_lines_sql = _INSERT_LINES.format(
            columns=", ".join(LINE_COLUMNS), marks=", ".join([mark] * len(LINE_COLUMNS)))
        self._insert_results = dialect_insert(store.dialect, reconciliation_results
                                              ).on_conflict_do_nothing(
            index_elements=[reconciliation_results.c.run_key,
                            reconciliation_results.c.item_key])
        #: An aware UTC datetime, given with its ``isoformat()`` (which a line has
        #: already: its content digest is made of it), as a line tuple holds it
        #: (``occurred_at``, ``created_at``).
        self.stamp: Callable[[datetime, str], Any] = (
            sqlite_stamp if self._sqlite else _as_is)
        #: The driver connection holding the run's page cache (see _size_cache).
        self._cache_on: object | None = None

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """A store transaction; on SQLite on a connection with a page cache big enough
        for the index pages a chunk touches (see :meth:`_size_cache`)."""
        with self.store.transaction() if write else self.store.read_transaction() as conn:
            if self._sqlite:
                self._size_cache(conn)
            yield conn

    def _size_cache(self, conn: sa.Connection) -> None:
        """Give the run's page cache (:data:`SQLITE_CACHE_KIB`; the default 2 MB is
        too small for the index pages a chunk touches, a bigger one only adds to the
        run's memory, since every index the run writes grows at its end) to one
        pooled connection only: the one its first transaction got.

        The pool may hand a run another connection (another transaction of the
        process holding the run's; the WAL checkpointer did, before it had a
        connection of its own): enlarging that one too made a second cache of the
        same size, which filled as well (about 30 MB more at peak over a million
        lines). Such a transaction runs with the cache the connection has; one a run
        enlarged before gets its own size back. The pool
        keeps the mark in the connection's ``info`` (with the driver connection, in
        case the pool reconnected under it)."""
        proxied = conn.connection
        info, driver = proxied.info, proxied.dbapi_connection
        mark = info.get(_CACHE_MARK)
        enlarged = mark is not None and mark[0] is driver
        if self._cache_on is None:
            self._cache_on = driver
        if driver is self._cache_on:
            if not enlarged:
                before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
                info[_CACHE_MARK] = (driver, before)
        elif mark is not None:
            del info[_CACHE_MARK]
            if enlarged:
                conn.exec_driver_sql(f"PRAGMA cache_size={int(mark[1])}")

    # --- the run's own lines ---------------------------------------------------------

    def has_lines(self) -> bool:
        """Whether any line of the run was recorded."""
        with self._begin() as conn:
            return conn.scalar(sa.select(settlement_lines.c.id).where(
                settlement_lines.c.run_key == self.key).limit(1)) is not None

    def recorded_digests(self, *, page: int = 10000) -> Iterator[bytes]:
        """The content digest of every line recorded for the run, read in keyset
        pages of *page* (each its own transaction)."""
        t = settlement_lines
        last = 0
        while True:
            with self._begin() as conn:
                rows = conn.execute(sa.select(t.c.id, t.c.content_hash).where(
                    t.c.run_key == self.key, t.c.id > last).order_by(t.c.id)
                    .limit(page)).all()
            if not rows:
                return
            last = rows[-1][0]
            for _, digest in rows:
                yield bytes.fromhex(digest)

    def recorded_line_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of *keys* recorded for the run already."""
        with self._begin() as conn:
            return set(conn.scalars(sa.select(settlement_lines.c.line_key).where(
                settlement_lines.c.run_key == self.key,
                settlement_lines.c.line_key.in_(list(keys)))))

    def known_results(self, item_keys: Sequence[str]) -> set[str]:
        """Those of *item_keys* recorded as differences of the run already."""
        t = reconciliation_results
        with self._begin() as conn:
            return set(conn.scalars(sa.select(t.c.item_key).where(
                t.c.run_key == self.key, t.c.item_key.in_(list(item_keys)))))

    def write(self, lines: Sequence[tuple[Any, ...]], results: Sequence[Result], *,
              now: datetime) -> None:
        """Record *lines* (tuples in :data:`LINE_COLUMNS` order, datetimes through
        :attr:`stamp`) and *results* (created at *now*) in one transaction; those
        recorded already (a concurrent run of the same key) are left alone."""
        if not lines and not results:
            return
        created = now.astimezone(UTC)
        width = _RESULT_VALUE_WIDTH
        with self._begin(write=True) as conn:
            if lines and self._sqlite:
                for sql, params in _sqlite_line_inserts(lines):
                    run(conn, sql, params)
            elif lines:
                conn.exec_driver_sql(self._insert_lines_sql, list(lines))
            if results:
                conn.execute(self._insert_results, [
                    {**r._asdict(), "run_key": self.key, "expected": r.expected[:width],
                     "actual": r.actual[:width], "created_at": created} for r in results])

    # --- payments --------------------------------------------------------------------

    def payments_by(self, column: Literal["provider_reference", "order_reference"],
                    provider: str, values: Sequence[str]) -> list[PaymentFacts]:
        """*provider*'s payments whose *column* is among *values*, oldest first: one
        statement with the values as one array parameter, run on the driver's cursor
        (plain tuples, no per-row work but the tuple)."""
        if not values:
            return []
        array: Any = json.dumps(values) if self._sqlite else list(values)
        with self._begin() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(self._payment_sql[column], (provider, array))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        return list(map(_make_facts, rows))

    def by_amount_and_date(self, provider: str, *, amount_minor: int, currency: str,
                           at: datetime, window: timedelta, limit: int
                           ) -> list[PaymentFacts]:
        """*provider*'s payments of that amount created in ``[at - window, at]`` that
        no line of the run matched, newest first, at most *limit*."""
        at = at.astimezone(UTC)
        already = sa.select(settlement_lines.c.id).where(
            settlement_lines.c.run_key == self.key,
            settlement_lines.c.payment_id == payments.c.id,
        )
        query = (sa.select(*_FACT_COLUMNS)
                 .where(payments.c.provider == provider,
                        payments.c.amount_minor == amount_minor,
                        payments.c.currency == currency,
                        payments.c.created_at <= at,
                        payments.c.created_at >= at - window,
                        ~already.exists())
                 .order_by(payments.c.created_at.desc(), payments.c.id.desc())
                 .limit(limit))
        with self._begin() as conn:
            return [_facts(row) for row in conn.execute(query)]

    def paid_unmatched(self, provider: str, *, statuses: Collection[str], since: datetime,
                       until: datetime, after: str, limit: int) -> list[UnmatchedPayment]:
        """*provider*'s payments in *statuses* created in ``[since, until)`` that no
        line of the run matched, with an id above *after*, by id: a keyset page.

        Provider and status are compared as ``+column`` on SQLite (``column || ''``
        on PostgreSQL, which has no unary plus for text) so that no index on them is
        used: SQLite would otherwise pick ``(provider, ...)`` and, for every page,
        read all the provider's payments and sort them by id. Walking the primary key
        from *after* reads each payment once over all pages. (SQLite's rowid would
        read a little less, but pages by rowid would record these differences in the
        order the payments were inserted, not by id as before.)"""
        matched = sa.select(settlement_lines.c.id).where(
            settlement_lines.c.run_key == self.key,
            settlement_lines.c.payment_id == payments.c.id,
        )
        query = (sa.select(*_FACT_COLUMNS, payments.c.created_at)
                 .where(self._no_index(payments.c.provider) == provider,
                        self._no_index(payments.c.status).in_(sorted(statuses)),
                        payments.c.created_at >= since.astimezone(UTC),
                        payments.c.created_at < until.astimezone(UTC),
                        payments.c.id > after, ~matched.exists())
                 .order_by(payments.c.id).limit(limit))
        with self._begin() as conn:
            return [UnmatchedPayment(_facts(row), from_db(row.created_at))
                    for row in conn.execute(query)]


    def _no_index(self, column: sa.Column[str]) -> sa.ColumnElement[str]:
        """*column* of ``payments`` as an expression no index serves: ``+column`` on
        SQLite (its value as is), ``column || ''`` elsewhere."""
        if self._sqlite:
            return sa.literal_column(f"+{column.table.name}.{column.name}", column.type)
        return column + ""


def _sqlite_line_inserts(lines: Sequence[tuple[Any, ...]]
                         ) -> Iterator[tuple[str, list[Any]]]:
    """SQLite statements (SQL and parameters) inserting *lines* (tuples in
    :data:`LINE_COLUMNS` order), in order, :data:`_LINES_PER_STATEMENT` at most each
    (a chunk of 10,000 lines: 116,400 instructions a line for the run with 250, 117,200
    with 1,000, 120,900 with 3,750, as many as 30,000 parameters take; 130,700 one a
    line).

    A text or NULL column whose value every line shares (the run key, the provider,
    the currency, the time recorded; often the status, how lines matched and their
    category) is bound once for the chunk, the others once a line, so the database
    stores what one ``INSERT`` a line stores. ``sqlite3`` spends more binding a value
    (a lock, a copy, a lookup of its adapter for None) than SQLite inserting it, and
    ``executemany`` releases and takes the GIL for every line."""
    columns = list(zip(*lines, strict=True))
    count = len(lines)
    shared = [i for i, column in enumerate(columns) if i != _LINE_KEY
              and type(column[0]) in _SHARED_TYPES and column.count(column[0]) == count]
    varying = [i for i in range(len(columns)) if i not in shared]
    names = {i: f"?{n}" for n, i in enumerate(shared, 1)}
    names.update((i, f"column{n}") for n, i in enumerate(varying, 1))
    head = {"columns": ", ".join(LINE_COLUMNS),
            "values": ", ".join(names[i] for i in range(len(columns)))}
    constants = [columns[i][0] for i in shared]
    row = "(" + ", ".join("?" * len(varying)) + ")"
    rows = list(zip(*(columns[i] for i in varying), strict=True))
    size = _LINES_PER_STATEMENT
    for start in range(0, count, size):
        part = rows[start:start + size]
        params = constants.copy()
        for values in part:
            params += values
        yield _INSERT_MANY_LINES.format(rows=", ".join([row] * len(part)), **head), params


#: The types of a value :func:`_sqlite_line_inserts` binds once when every line has
#: it (equal values of these types are the same value to SQLite).
_SHARED_TYPES: Final = (str, type(None))
#: The position of ``line_key`` in a line tuple: unique within a run, never shared.
_LINE_KEY: Final = LINE_COLUMNS.index("line_key")


#: A driver row's :class:`PaymentFacts` (what ``PaymentFacts._make`` makes, without
#: its Python call a row; the statement gives every field, in order).
_make_facts: Final[Callable[[Sequence[Any]], PaymentFacts]] = partial(
    tuple.__new__, PaymentFacts)


def _facts(row: Row) -> PaymentFacts:
    fee = row.expected_fee
    return PaymentFacts(row.id, row.provider, row.method, row.provider_reference,
                        row.order_reference, row.amount_minor, row.currency, row.status,
                        None if fee is None else int(fee))
