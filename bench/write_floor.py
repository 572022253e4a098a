"""What the database allows for a create's writes: the statements one create ran,
replayed on the driver alone.

:func:`captured` records, through sqlite3's trace callback on every connection the
store opens, the SQL that SQLite ran for one ``pay()`` (its values written inline, as
the callback gives them); :func:`parameterised` turns each literal back into a
parameter; :func:`replay` runs the same statements on one ``sqlite3`` connection with
the store's pragmas, once per create, with the payment's id, its idempotency key and
its outbox event's id made new each time (the unique keys), and returns the seconds a
create. That is the floor under pasarela's create on this machine: the same rows, the
same indexes and the same two commits, with no Python above the driver but the loop.

On PostgreSQL, :func:`captured_postgres` records each statement with its parameters as
psycopg is given them (a cursor class of its own on every connection the pools open)
and each commit, and :func:`replay_postgres` runs them again on one psycopg
connection: the same round trips and the same durable commits.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa


#: A string literal ('' inside is a quote), a number, or X'..' (none are expected).
_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


@contextmanager
def captured() -> Iterator[list[str]]:
    """The SQL SQLite runs, in order, on every pooled connection opened meanwhile (open
    the Pasarela inside the block); the tracing ends with the block."""
    statements: list[str] = []
    traced: list[sqlite3.Connection] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(statements.append)
            traced.append(dbapi_connection)

    sa.event.listen(sa.pool.Pool, "connect", trace)
    try:
        yield statements
    finally:
        sa.event.remove(sa.pool.Pool, "connect", trace)
        for conn in traced:
            with suppress(sqlite3.ProgrammingError):  # closed already
                conn.set_trace_callback(None)


def parameterised(sql: str) -> tuple[str, list[Any]]:
    """*sql* with each literal a ``?`` and the literals' values."""
    values: list[Any] = []

    def take(match: re.Match[str]) -> str:
        text = match.group()
        if text.startswith("'"):
            values.append(text[1:-1].replace("''", "'"))
        elif any(c in text for c in ".eE"):
            values.append(float(text))
        else:
            values.append(int(text))
        return "?"

    return _LITERAL.sub(take, sql), values


def replay(path: str, statements: list[str], unique: list[str], n: int,
           fresh: Callable[[int], list[str]]) -> float:
    """Run *statements* *n* times on the SQLite file *path*, each time with every
    parameter equal to one of *unique* replaced by ``fresh(i)``'s value at the same
    position; the mean seconds a run of them. The WAL is checkpointed after the runs,
    untimed (the store checkpoints from a thread of its own)."""
    plans = [parameterised(sql) for sql in statements]
    positions = [[(j, unique.index(v)) for j, v in enumerate(values) if v in unique]
                 for _, values in plans]
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL",
                   "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                   "PRAGMA wal_autocheckpoint=0", "PRAGMA temp_store=MEMORY"):
        conn.execute(pragma)
    try:
        began = time.perf_counter()
        for i in range(n):
            new = fresh(i)
            for (sql, values), where in zip(plans, positions, strict=True):
                params = values
                if where:
                    params = list(values)
                    for j, k in where:
                        params[j] = new[k]
                conn.execute(sql, params).fetchall()
        elapsed = time.perf_counter() - began
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return elapsed / n


@contextmanager
def captured_postgres() -> Iterator[list[tuple[str, Any]]]:
    """``(SQL, parameters)`` of every statement psycopg runs on the pools' connections
    opened meanwhile, and ``("COMMIT", None)`` for each commit, in order."""
    import psycopg  # only with PostgreSQL

    statements: list[tuple[str, Any]] = []

    class Recording(psycopg.Cursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            statements.append((str(query), params))
            return super().execute(query, params, **kwargs)

    def trace(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, psycopg.Connection):
            dbapi_connection.cursor_factory = Recording

    def commit(_conn: Any) -> None:
        statements.append(("COMMIT", None))

    sa.event.listen(sa.pool.Pool, "connect", trace)
    sa.event.listen(sa.engine.Engine, "commit", commit)
    try:
        yield statements
    finally:
        sa.event.remove(sa.pool.Pool, "connect", trace)
        sa.event.remove(sa.engine.Engine, "commit", commit)


def replay_postgres(url: str, statements: list[tuple[str, Any]], unique: list[str], n: int,
                    fresh: Callable[[int], list[str]]) -> float:
    """As :func:`replay`, on PostgreSQL at *url* (a libpq URL) with psycopg: the mean
    seconds a run of *statements*, each ``COMMIT`` a commit of the connection."""
    import psycopg  # only with PostgreSQL

    def where(params: Any) -> list[tuple[Any, int]]:
        items = params.items() if isinstance(params, dict) else enumerate(params or ())
        return [(key, unique.index(value)) for key, value in items
                if isinstance(value, str) and value in unique]

    plans = [(sql, params, where(params)) for sql, params in statements]
    with psycopg.connect(url) as conn:
        began = time.perf_counter()
        for i in range(n):
            new = fresh(i)
            for sql, params, at in plans:
                if sql == "COMMIT":
                    conn.commit()
                    continue
                bound = params
                if at:
                    bound = dict(params) if isinstance(params, dict) else list(params)
                    for key, k in at:
                        bound[key] = new[k]
                cursor = conn.execute(sql, bound)
                if cursor.description is not None:
                    cursor.fetchall()
        elapsed = time.perf_counter() - began
    return elapsed / n
