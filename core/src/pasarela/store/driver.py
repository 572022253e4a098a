"""Driver fast paths: the store's hot reads and many-row writes straight through
the sqlite3 driver (and its single statements through psycopg on PostgreSQL), with
SQLAlchemy's own SQL text and its own bind and result processors, so the bytes
stored and the values read are the ones ``conn.execute(...)`` would store and return
(tests compare both ways). Write batches and job claims handle hundreds of rows per
transaction; SQLAlchemy's per-execution bookkeeping was a large share of their cost.
Everything else goes through ``conn.execute``. For the store's own modules (its names
are public so that no private name crosses a module).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import sqlalchemy as sa

from pasarela.store.schema import payments


__all__ = ["bound", "bound_rows", "execute", "executemany", "marks", "read_payments", "run"]


#: SQLite's many-row writes, compiled once: (SQL text, parameter names in order,
#: [(position, bind processor)] for the parameters that have one).
_DRIVER_SQL: dict[tuple[int, tuple[str, ...]],
                  tuple[str, list[str], list[tuple[int, Any]]]] = {}


def bound_rows(rows: Iterable[Mapping[str, Any]], names: Sequence[str],
               processors: Sequence[tuple[int, Any]]) -> Iterator[list[Any]]:
    """Each of *rows*' values in the order of *names*, each converted by its bind
    processor (*processors*: ``[(position, processor)]``). A batch stamps all its rows
    with one datetime object: each such value is converted once (by identity: only the
    very same object reuses a result)."""
    last: dict[int, tuple[Any, Any]] = {}
    for row in rows:
        values = [row[name] for name in names]
        for i, process in processors:
            value = values[i]
            seen = last.get(i)
            if seen is not None and seen[0] is value:
                values[i] = seen[1]
            else:
                converted = values[i] = process(value)
                last[i] = (value, converted)
        yield values


def _processed(fetched: Iterable[Sequence[Any]], names: Sequence[str],
               processors: Sequence[tuple[int, Any]]) -> list[dict[str, Any]]:
    """The driver's *fetched* rows as mappings of *names*, each value converted by its
    result processor (*processors*: ``[(position, processor)]``)."""
    rows = []
    for found in fetched:
        values = list(found)
        for i, process in processors:
            values[i] = process(values[i])
        rows.append(dict(zip(names, values, strict=True)))
    return rows


def executemany(conn: sa.Connection, statement: Any, rows: list[dict[str, Any]]) -> int:
    """``conn.execute(statement, rows)``, with the same SQL and the same bind
    processors, but on SQLite straight through the driver's ``executemany``: the
    batch writes a few hundred rows per commit, and SQLAlchemy's per-execution
    bookkeeping was a tenth of the webhook path. Returns the rows matched."""
    if conn.dialect.name != "sqlite":
        # One row (a create's exchange, a transition's): PostgreSQL's one statement.
        named = (_named(conn, statement, tuple(rows[0]))
                 if len(rows) == 1 and conn.dialect.name == "postgresql" else None)
        if named is not None:
            return _execute_named(conn, named, rows[0])[1]
        return int(conn.execute(statement, rows).rowcount)
    keys = tuple(rows[0])
    cached = _DRIVER_SQL.get((id(statement), keys))
    if cached is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))
        names = list(compiled.positiontup or ())
        processors = [(i, compiled.binds[name].type.dialect_impl(conn.dialect)
                       .bind_processor(conn.dialect)) for i, name in enumerate(names)]
        cached = _DRIVER_SQL[(id(statement), keys)] = (
            compiled.string, names, [(i, p) for i, p in processors if p is not None])
    sql, names, processors = cached
    return run(conn, sql, list(bound_rows(rows, names, processors)), many=True)


def _raised(conn: sa.Connection, sql: str, params: Any, exc: Any,
            cursor: Any) -> sa.exc.StatementError:
    """*exc*, a driver's error, as SQLAlchemy's ``conn.execute`` raises it; a lost
    connection is invalidated as it does (the pool replaces it rather than hand it out
    again)."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
    if lost and not conn.invalidated:
        conn.invalidate(exc)
    error: sa.exc.StatementError = sa.exc.DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost,
        dialect=dialect)
    return error


def run(conn: sa.Connection, sql: str, params: Sequence[Any], *, many: bool = False) -> int:
    """Run *sql* through the driver (``executemany`` of *params* if *many*), errors
    raised as SQLAlchemy raises them; returns the rows matched."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _raised(conn, sql, params, exc, cursor) from exc
    finally:
        cursor.close()


#: SQLite's single statements, compiled once, by (id of the statement, parameter
#: names given): (the statement, kept so that its id stays its own; SQL text; per
#: positional parameter, its name in the parameters or None and the literal's value;
#: [(position, bind processor)]; the result's keys; [(position, result processor)]).
_One: TypeAlias = tuple[Any, str, list[tuple[str | None, Any]], list[tuple[int, Any]],
                       list[str], list[tuple[int, Any]]]
_DRIVER_ONE: dict[tuple[int, tuple[str, ...]], _One | None] = {}


def _compile_one(conn: sa.Connection, statement: Any, keys: tuple[str, ...]) -> _One | None:
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if (getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None)
            or any(b.expanding or b.callable for b in compiled.binds.values())):
        return None  # defaults computed per execution, expanding IN: conn.execute's
    names = list(compiled.positiontup or ())
    given = set(keys)
    sources: list[tuple[str | None, Any]] = [
        (name, None) if name in given else (None, compiled.binds[name].value)
        for name in names]
    binds = [(i, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
             for i, name in enumerate(names)]
    columns = compiled._result_columns  # the result's keys and types
    results = [(i, column.type.dialect_impl(dialect).result_processor(dialect, None))
               for i, column in enumerate(columns)]
    return (statement, compiled.string, sources, [(i, p) for i, p in binds if p is not None],
            [column.keyname for column in columns],
            [(i, p) for i, p in results if p is not None])


#: PostgreSQL's single statements, compiled once, by (id of the statement, parameter
#: names given): (the statement; SQL text; per named parameter, its name in the SQL,
#: its name in the parameters or None and the literal's value, and its bind processor;
#: the result's keys; [(position, result processor)]).
_Named: TypeAlias = tuple[Any, str, list[tuple[str, str | None, Any, Any]], list[str],
                         list[tuple[int, Any]]]
_DRIVER_NAMED: dict[tuple[int, tuple[str, ...]], _Named | None] = {}


def _compile_named(conn: sa.Connection, statement: Any, keys: tuple[str, ...]
                   ) -> _Named | None:
    dialect = conn.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    given = set(keys)
    if (compiled.positional or compiled.escaped_bind_names
            or getattr(compiled, "insert_prefetch", None)
            or getattr(compiled, "update_prefetch", None)
            or compiled.literal_execute_params or compiled.post_compile_params
            or any(b.expanding or b.callable or (b.required and b.key not in given)
                   for b in compiled.binds.values())):
        return None  # conn.execute's: computed per execution, or its error to raise
    binds = [(name, bind.key if bind.key in given else None, bind.value,
              bind.type.dialect_impl(dialect).bind_processor(dialect))
             for name, bind in compiled.binds.items()]
    # An INSERT's implicit RETURNING of its new key is SQLAlchemy's, not a result.
    dml = compiled.isinsert or compiled.isupdate or compiled.isdelete
    returning = bool(getattr(statement, "_returning", None))
    columns = compiled._result_columns if returning or not dml else []  # keys and types
    results = [(i, column.type.dialect_impl(dialect).result_processor(dialect, None))
               for i, column in enumerate(columns)]
    return (statement, compiled.string, binds, [column.keyname for column in columns],
            [(i, p) for i, p in results if p is not None])


def _named(conn: sa.Connection, statement: Any, keys: tuple[str, ...]) -> _Named | None:
    """*statement* compiled for :func:`_execute_named` (once), or None: through
    ``conn.execute``."""
    key = (id(statement), keys)
    if key in _DRIVER_NAMED:
        named = _DRIVER_NAMED[key]
    else:
        named = _DRIVER_NAMED[key] = _compile_named(conn, statement, keys)
    return named if named is not None and named[0] is statement else None


def _execute_named(conn: sa.Connection, cached: _Named, params: Mapping[str, Any]
                   ) -> tuple[list[dict[str, Any]], int]:
    """Run *cached* with *params* on the psycopg connection: its rows, and the rows
    matched."""
    _, sql, binds, names, converters = cached
    values: dict[str, Any] = {}
    for name, key, literal, process in binds:
        value = params[key] if key is not None else literal
        values[name] = value if process is None else process(value)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values)
        fetched = cursor.fetchall() if names else []
        matched = int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _raised(conn, sql, values, exc, cursor) from exc
    finally:
        cursor.close()
    return _processed(fetched, names, converters), matched


def execute(conn: sa.Connection, statement: Any, params: Mapping[str, Any]
            ) -> list[dict[str, Any]]:
    """``conn.execute(statement, params)`` and its rows (a SELECT's, or an INSERT's or
    UPDATE's RETURNING) as mappings of their keys; straight through the driver, with
    the SQL SQLAlchemy compiles and its own bind and result processors (the values
    stored and read are the same), compiled once per statement and set of parameter
    names: a create runs about ten statements, and SQLAlchemy's per-execution
    bookkeeping cost more than SQLite running them (on PostgreSQL, ~40 of the ~140 us
    of a read by key). For statements built once (a module's constants); one with
    defaults computed per execution or an expanding ``IN`` goes through
    ``conn.execute``, as does every other dialect. A driver's error is raised as
    SQLAlchemy's, a lost connection invalidated as ``conn.execute`` does."""
    keys = tuple(params)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        named = _named(conn, statement, keys)
        if named is not None:
            return _execute_named(conn, named, params)[0]
    cached: _One | None = None
    if dialect == "sqlite":
        key = (id(statement), keys)
        if key in _DRIVER_ONE:
            cached = _DRIVER_ONE[key]
        else:
            cached = _DRIVER_ONE[key] = _compile_one(conn, statement, keys)
    if cached is None or cached[0] is not statement:
        result = conn.execute(statement, dict(params))
        return [dict(row._mapping) for row in result] if result.returns_rows else []
    _, sql, sources, processors, names, converters = cached
    values = [params[name] if name is not None else literal for name, literal in sources]
    for i, process in processors:
        values[i] = process(values[i])
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values)
        fetched = cursor.fetchall() if names else []
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _raised(conn, sql, values, exc, cursor) from exc
    finally:
        cursor.close()
    return _processed(fetched, names, converters)


#: SQLite's read of whole payment rows, per dialect name: (columns, SELECT ... FROM
#: payments, [(position, result processor)]); the WHERE is added per query.
_DRIVER_READ: dict[str, tuple[list[str], str, list[tuple[int, Any]]]] = {}


_LAST_SEQ_SQL = ("(SELECT coalesce(max(transitions.seq), 0) FROM transitions "
                 "WHERE transitions.payment_id = payments.id)")


def read_payments(conn: sa.Connection, where: str, params: Sequence[Any], *,
                     seq: bool = True) -> list[dict[str, Any]]:
    """Payment rows (with ``_seq``, the last transition's number, unless not *seq*:
    then 0), on SQLite straight
    through the driver, converted by SQLAlchemy's own result processors: the same
    values ``conn.execute(select(payments))`` returns, at a third of the cost."""
    dialect = conn.dialect
    reader: tuple[list[str], str, list[tuple[int, Any]]] | None = _DRIVER_READ.get(
        dialect.name)
    if reader is None:
        quote = dialect.identifier_preparer.quote
        names = [column.name for column in payments.c]
        converters = [(i, payments.c[name].type.dialect_impl(dialect)
                       .result_processor(dialect, None)) for i, name in enumerate(names)]
        select = (f"SELECT {', '.join('payments.' + quote(n) for n in names)}, "  # noqa: S608
                  f"{_LAST_SEQ_SQL} FROM payments ")
        reader = _DRIVER_READ[dialect.name] = (
            [*names, "_seq"], select, [(i, p) for i, p in converters if p is not None])
    names, select, processors = reader
    if not seq:  # the same columns, 0 for the last transition's number
        select = select.replace(_LAST_SEQ_SQL, "0")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(select + where, tuple(params))
        fetched = cursor.fetchall()
    finally:
        cursor.close()
    return _processed(fetched, names, processors)


def marks(values: Sequence[Any]) -> str:
    """``?, ?, ...``: one placeholder per value (SQLite's parameter style)."""
    return ", ".join("?" * len(values))


def bound(conn: sa.Connection, column: sa.Column[Any], value: Any) -> Any:
    """*value* as SQLAlchemy would bind it for *column* (a datetime as SQLite's text)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)
