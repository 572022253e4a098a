"""What SQLite allows for a create's writes: the statements one create ran, replayed
on the driver alone.

:func:`captured` records, through sqlite3's trace callback on every connection the
store opens, the SQL that SQLite ran for one ``pay()`` (its values written inline, as
the callback gives them); :func:`parameterised` turns each literal back into a
parameter; :func:`replay` runs the same statements on one ``sqlite3`` connection with
the store's pragmas, once per create, with the payment's id, its idempotency key and
its outbox event's id made new each time (the unique keys), and returns the seconds a
create. That is the floor under pasarela's create on this machine: the same rows, the
same indexes and the same two commits, with no Python above the driver but the loop.
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
