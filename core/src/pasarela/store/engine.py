"""Engine creation for the store: URL normalisation, SQLite pragmas, write transactions.

SQLite is the embedded default; PostgreSQL through psycopg 3 is the production store.

SQLite notes. Every connection gets ``journal_mode=WAL``, ``synchronous=NORMAL``,
``busy_timeout=5000``, ``foreign_keys=ON`` and ``wal_autocheckpoint=0`` (the
store checkpoints in a background thread: :mod:`pasarela.store.checkpoint`). The
sqlite3 driver's own transaction handling is switched off and SQLAlchemy emits
``BEGIN`` itself: ``BEGIN IMMEDIATE``
for connections marked with the :data:`WRITE` execution option (the write lock is
taken up front, so a transaction never has to upgrade a read lock to a write lock,
which is what makes SQLite answer "database is locked" without waiting), and a
deferred ``BEGIN`` for reads (a consistent snapshot in WAL mode). A file database
uses a :class:`~sqlalchemy.pool.QueuePool` shared by threads. ``sqlite://`` (in
memory) uses a :class:`~sqlalchemy.pool.StaticPool`: one connection, so the store
serialises every call on it (see :class:`pasarela.store.Store`).

PostgreSQL notes. The pool keeps 16 connections (and opens up to 16 more), and a
connection is pinged before it is handed out only when it sat idle longer than
:data:`PING_IDLE` (``pool_pre_ping`` cost a round trip on every transaction).
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from pasarela.errors import ConfigurationError
from pasarela.extras import require


__all__ = [
    "SETTING",
    "WRITE",
    "create_engine",
    "display_url",
    "is_memory_sqlite",
    "normalize_url",
]

#: The configuration path named in errors about the store's URL.
SETTING: Final = "store.url"

#: Execution option marking a connection whose transaction writes
#: (``BEGIN IMMEDIATE`` on SQLite).
WRITE: Final = "pasarela_write"

# busy_timeout first: switching to WAL needs a moment of exclusive access.
_SQLITE_PRAGMAS: Final = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # Checkpoints run in the store's background thread (pasarela.store.checkpoint).
    "PRAGMA wal_autocheckpoint=0",
)

#: Where SQLite keeps a transaction's temporary storage, by whether it writes (set
#: before its ``BEGIN``, which fixes it for the transaction). A write transaction's is
#: in memory: a batch's multi-row ``UPDATE`` or ``INSERT`` keeps a statement journal
#: (the pages it changed, to undo the statement alone), and past 64 KiB SQLite spills it
#: to a temporary file, opened, written and deleted once a batch. Its size is bounded by
#: the batch's. A read's stays as the build has it (a file where it spills): a
#: ``GROUP BY`` or sort over every payment (the costs report, reconciliation's walks)
#: keeps its temporary b-tree there, which in memory would grow with the data.
_TEMP_STORE: Final = {True: "PRAGMA temp_store=MEMORY", False: "PRAGMA temp_store=DEFAULT"}
#: Key of the pooled connection's info: whether its temp_store is MEMORY now.
_TEMP_IN_MEMORY: Final = "pasarela_temp_in_memory"


def normalize_url(url: str | URL) -> URL:
    """Parse *url*; ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://``.

    Only SQLite (the standard library driver) and PostgreSQL through psycopg 3 are
    supported; anything else is a ``ConfigurationError`` naming ``store.url``.
    """
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"not a database URL: {exc}", path=SETTING) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise ConfigurationError(
                f"driver {driver!r} is not supported; use postgresql+psycopg:// (psycopg 3)",
                path=SETTING,
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ConfigurationError(
                f"driver {driver!r} is not supported; use sqlite:///path.db", path=SETTING
            )
        return parsed
    raise ConfigurationError(
        f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://...",
        path=SETTING,
    )


def display_url(url: URL) -> str:
    """The URL for messages and logs, password hidden."""
    return url.render_as_string(hide_password=True)


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


#: Engines whose pooled connections a forked child must not share (every engine but
#: an in-memory SQLite one, whose only connection *is* the database).
_FORK_SAFE: weakref.WeakSet[Engine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # SQLAlchemy's rule after a fork: the child gets a fresh pool and leaves the
    # parent's connections alone (close=False: closing them would end the parent's).
    for engine in list(_FORK_SAFE):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def create_engine(url: str | URL) -> Engine:
    """An engine for *url* (see :func:`normalize_url`), configured for the store.

    Connecting does not happen here; the first checkout does. In a process forked
    after this (a pre-forking server), the engine's pool starts empty: the child
    opens connections of its own.
    """
    parsed = normalize_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed)
        else:
            engine = _postgres_engine(parsed)
    except (sa.exc.ArgumentError, ImportError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot use {display_url(parsed)}: {exc}", path=SETTING
        ) from None
    if not is_memory_sqlite(parsed):
        _FORK_SAFE.add(engine)
    return engine


def _sqlite_engine(url: URL) -> Engine:
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if is_memory_sqlite(url):
        kwargs["poolclass"] = StaticPool
    else:
        # Writers are serialised by SQLite anyway; a small pool keeps readers busy.
        # The connection used last goes out first (LIFO): its page cache is current,
        # where one that sat idle while another wrote re-reads the pages it touches
        # (~90 reads of the file a webhook batch of 16, ~15 us a delivery).
        kwargs.update(poolclass=sa.pool.QueuePool, pool_size=8, max_overflow=8, pool_timeout=30,
                      pool_use_lifo=True)
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 driver: we emit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        sql = "BEGIN IMMEDIATE" if write else "BEGIN"
        # Straight to the driver (exec_driver_sql's bookkeeping cost more than the
        # BEGIN), its error raised as SQLAlchemy's (a busy database's OperationalError).
        dbapi = conn.dialect.loaded_dbapi
        pooled = conn.connection
        driver = pooled.driver_connection
        try:
            if pooled.info.get(_TEMP_IN_MEMORY, False) is not write:
                driver.execute(_TEMP_STORE[write])  # type: ignore[union-attr]
                pooled.info[_TEMP_IN_MEMORY] = write
            driver.execute(sql)  # type: ignore[union-attr]
        except dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(sql, (), exc, dbapi.Error,
                                             dialect=conn.dialect) from exc

    return engine


#: A pooled PostgreSQL connection idle this long (seconds) is pinged before it is
#: handed out; one used more recently is not (a ping is a round trip, and a busy
#: server would otherwise pay one on every transaction).
PING_IDLE: Final = 2.0
_LAST_USED: Final = "pasarela_last_used"


def _postgres_engine(url: URL) -> Engine:
    require("postgres", "a PostgreSQL store", "psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    # 16 checkouts at once keep their connections: a smaller pool closed the ones
    # returned past its size and connected again for the next burst.
    engine = sa.create_engine(
        url,
        connect_args=connect_args,
        pool_size=16,
        max_overflow=16,
        pool_timeout=30,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: ConnectionPoolEntry,
                     proxy: Any) -> None:
        # SQLAlchemy's pool_pre_ping, for connections left idle: a dead one is
        # replaced (DisconnectionError: the pool connects again and retries).
        last = record.info.get(_LAST_USED)
        if last is not None and time.monotonic() - last < PING_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc

    return engine
