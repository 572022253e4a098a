"""What every part of :class:`~pasarela.store.Store` stands on: the engine, the
process's write lock, the transactions and their error mapping, migrations.

Every transaction of the store is opened here (:meth:`StoreBase.transaction`,
:meth:`StoreBase.read_transaction`): a write queues on the process's write lock
(SQLite has one writer at a time) and begins ``BEGIN IMMEDIATE`` on SQLite; a
"database is locked" becomes :class:`~pasarela.errors.ConcurrencyConflictError`, a
database without the tables a :class:`~pasarela.errors.ConfigurationError` naming
``pasarela db upgrade``, and a write that commits wakes the WAL checkpointer.

A SQLite file store keeps one connection for its writes (``_writer``), checked out
of the pool on the first write and used only under the write lock: a write
transaction then costs its ``BEGIN IMMEDIATE`` and ``COMMIT`` rather than a pool
checkout, a new ``Connection`` and a checkin besides (~18 of ~30 us, twice a create),
and its page cache stays current for the next write. Reads never take it. A write
that fails with a database's error gives it back to the pool (the next write takes a
fresh one); one that our own code ended (a stale version, say) keeps it, rolled back.
A forked child leaves the parent's alone (never used nor closed) and keeps its own.
Private to the store; public names.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Final, Self

import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError, ConfigurationError
from pasarela.store.checkpoint import Checkpointer
from pasarela.store.engine import (
    SETTING,
    WRITE,
    create_engine,
    display_url,
    is_memory_sqlite,
    normalize_url,
)
from pasarela.store.sealing import Sealer


__all__ = ["DATABASE_ERRORS", "UNAVAILABLE", "StoreBase"]

#: What a store call raises when the database went away under it (a dropped
#: connection, a failover, a server restarting): the work may be tried again later.
UNAVAILABLE: Final[tuple[type[Exception], ...]] = (
    sa.exc.OperationalError, sa.exc.InterfaceError)
#: Any failure of the database layer, for callers that report one rather than raise it.
DATABASE_ERRORS: Final[tuple[type[Exception], ...]] = (sa.exc.SQLAlchemyError,)
#: Advisory lock key serialising concurrent ``upgrade()`` calls on PostgreSQL.
_MIGRATION_LOCK: Final = 0x70617361  # "pasa"


#: Every open store, so that a forked child can give each a write lock of its own.
_STORES: weakref.WeakSet[StoreBase] = weakref.WeakSet()
#: Write connections a forked child inherited: kept, never used nor closed (closing
#: one in the child could release the locks of its own connections to the file, and
#: collecting one would hand the parent's connection to the child's pool).
_INHERITED: list[sa.Connection] = []


def _after_fork_in_child() -> None:
    # A lock another thread of the parent held at the fork would stay held forever in
    # the child, where that thread does not exist. (SQLite's own rule still applies:
    # fork while no transaction is open, as a pre-forking server's idle master does.)
    for store in list(_STORES):
        store._new_locks()


os.register_at_fork(after_in_child=_after_fork_in_child)


class StoreBase:
    """The engine and the transactions of a store (see the module docs)."""

    def __init__(self, url: str, *, upgrade: bool | None = None,
                 sealer: Sealer | None = None) -> None:
        """Connect to *url* (``sqlite:///pasarela.db`` or ``postgresql+psycopg://...``).

        *sealer* seals the personal part of every order written and opens it on
        every read (:mod:`pasarela.store.sealing`); without one orders are kept as
        given, and a sealed one cannot be read.

        ``postgresql://`` URLs are rewritten to use psycopg 3. SQLite gets WAL mode,
        a busy timeout and foreign keys on every connection. *upgrade* runs the
        Alembic migrations to head; its default is True for SQLite (the embedded
        store upgrades itself) and False for PostgreSQL (``pasarela db upgrade``).
        """
        self.sealer = sealer
        #: Whether writes chain their evidence rows (``[audit] chain``; pasarela.store.chain).
        self.chained = True
        self._url = normalize_url(url)
        self._engine = create_engine(self._url)
        self._sqlite = self._engine.dialect.name == "sqlite"
        # One writer at a time on a SQLite file: it keeps its connection (module docs).
        # In memory every call shares one connection already; PostgreSQL writes at once.
        self._keeps_writer = self._sqlite and not is_memory_sqlite(self._url)
        self._writer: sa.Connection | None = None
        self._new_locks()
        _STORES.add(self)
        self._checkpointer = (Checkpointer(self._engine)
                              if self._sqlite and not is_memory_sqlite(self._url) else None)
        try:
            with self._begin() as conn:
                conn.execute(sa.select(1))
            if upgrade if upgrade is not None else self._sqlite:
                self.upgrade()
        except BaseException:
            self._engine.dispose()
            raise

    def _new_locks(self) -> None:
        # SQLite has one writer at a time: queue this process's writers on a lock
        # instead of letting them spin on the busy timeout. In memory, one
        # connection is shared, so every call is serialised. (After a fork, in the
        # child: the parent's write connection is not the child's to use.)
        if self._writer is not None:
            _INHERITED.append(self._writer)
            self._writer = None
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite else nullcontext()
        )
        self._read_lock: AbstractContextManager[Any] = (
            self._write_lock if is_memory_sqlite(self._url) else nullcontext()
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_url(self._url)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for maintenance and tests; the store's own methods,
        :mod:`pasarela.store.queries` and :meth:`transaction` keep its rules)."""
        return self._engine

    @property
    def checkpointer(self) -> Checkpointer | None:
        """The WAL checkpointer of a SQLite file store (None elsewhere)."""
        return self._checkpointer

    def upgrade(self) -> None:
        """Run Alembic migrations to head."""
        # Imported here: Alembic is only needed to migrate, not to `import pasarela`.
        from alembic import command  # noqa: PLC0415
        from alembic.config import Config  # noqa: PLC0415

        config = Config()
        location = str(Path(__file__).with_name("migrations"))
        config.set_main_option("script_location", location.replace("%", "%%"))
        with self._begin(write=True, keep=False) as conn:  # Alembic's: a connection of its own
            if not self._sqlite:
                # Two `pasarela db upgrade` at once: the second waits, then finds head.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def migrations(self) -> tuple[str | None, str]:
        """``(the database's revision, the newest revision)``: equal when migrated."""
        from alembic.migration import MigrationContext  # noqa: PLC0415
        from alembic.script import ScriptDirectory  # noqa: PLC0415

        script = ScriptDirectory(str(Path(__file__).with_name("migrations")))
        with self._begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, str(script.get_current_head())

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self._begin() as conn:
                conn.execute(sa.select(1))
        except (sa.exc.SQLAlchemyError, ConfigurationError):
            return False
        return True

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self._engine.dispose()

    # --- transactions --------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[sa.Connection]:
        """A write transaction: under this process's write lock, ``BEGIN IMMEDIATE``
        on SQLite, committed when the block ends and rolled back when it raises,
        with the store's error mapping (a busy database is a
        ``ConcurrencyConflictError``, a missing table a ``ConfigurationError``). For
        the store's own modules; hold it for no network I/O."""
        return self._begin(write=True)

    def read_transaction(self) -> AbstractContextManager[sa.Connection]:
        """A read transaction (on SQLite a consistent snapshot), with the store's
        error mapping; see :meth:`transaction`."""
        return self._begin()

    @contextmanager
    def _begin(self, *, write: bool = False, keep: bool = True) -> Iterator[sa.Connection]:
        """One transaction; ``BEGIN IMMEDIATE`` on SQLite when *write*, on the kept
        write connection of a SQLite file (unless not *keep*: a connection of its own)."""
        with self._write_lock if write else self._read_lock:
            kept = write and keep and self._keeps_writer
            conn = None
            if kept:  # taken (under the write lock); given back unless the write failed
                conn, self._writer = self._writer, None
            if conn is None:
                conn = self._connect()
                if write:
                    conn.execution_options(**{WRITE: True})
            try:
                try:
                    with conn.begin():
                        yield conn
                    if write and self._checkpointer is not None:
                        self._checkpointer.notify()
                except sa.exc.OperationalError as exc:
                    text = str(exc.orig).lower()
                    if "database is locked" in text or "database is busy" in text:
                        raise ConcurrencyConflictError(
                            "the database is busy (another process holds the write lock); "
                            "retry"
                        ) from exc
                    if "no such table" in text:
                        raise self._not_migrated() from exc
                    raise
                except sa.exc.ProgrammingError as exc:
                    if getattr(exc.orig, "sqlstate", None) == "42P01":  # undefined_table
                        raise self._not_migrated() from exc
                    raise
            except BaseException as exc:
                # Rolled back. A kept connection stays only when our own code raised
                # (a version conflict, say) and the database's state is known to be clean.
                if not (kept and _clean(conn, exc)):
                    conn.close()
                    raise
                self._writer = conn
                raise
            if kept:
                self._writer = conn
            else:
                conn.close()

    def _connect(self) -> sa.Connection:
        try:
            return self._engine.connect()
        except sa.exc.DBAPIError as exc:
            raise ConfigurationError(
                f"cannot connect to {display_url(self._url)}: "
                + " ".join(str(exc.orig).split()),
                path=SETTING,
            ) from exc

    def _not_migrated(self) -> ConfigurationError:
        return ConfigurationError(
            f"{display_url(self._url)} has no pasarela tables; run `pasarela db upgrade`",
            path=SETTING,
        )


def _clean(conn: sa.Connection, exc: BaseException) -> bool:
    """Whether *conn*, whose transaction ended by *exc*, can serve the next one: an
    exception of our own code (no database error behind it), the connection valid
    and no transaction left open."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, as far as a database error would be
        if seen is None:
            break
        if isinstance(seen, sa.exc.SQLAlchemyError):
            return False
        seen = seen.__cause__ or seen.__context__
    return (isinstance(exc, Exception) and not conn.invalidated and not conn.closed
            and not conn.in_transaction())
