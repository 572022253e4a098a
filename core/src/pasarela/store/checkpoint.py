"""SQLite WAL checkpoints in a background thread, off the writers' path.

In WAL mode every commit appends its pages to the write-ahead log; a checkpoint
copies them back into the database file and syncs it. SQLite's default runs the
checkpoint inside whichever commit takes the log past 1,000 pages, so every few
dozen commits one writer (a webhook batch the provider is waiting on) also waits
for the copy and its fsyncs. The store turns that off on its connections
(``wal_autocheckpoint=0``, :mod:`pasarela.store.engine`) and runs checkpoints here:
after writes, at most once per ``interval``, ``PRAGMA wal_checkpoint(PASSIVE)``,
which never blocks readers or writers. An idle store does nothing, and SQLite
checkpoints on its own when the last connection to the file closes.

The checkpointer has a driver connection of its own, outside the store's pool: a
checkpoint run on a pooled connection took, now and then, the one a writer had just
returned (the pool hands out the connection used last, its page cache current), and
that writer's next transaction got a cold one (a reconciliation run enlarged its
page cache on both).

Safe across ``fork()`` (a pre-forking server forks after the store is open): an
``os.register_at_fork`` handler waits, before the fork, until no checkpointer is
inside a checkpoint (so the child never inherits a lock held inside SQLite by a
thread that does not exist there) and closes the checkpointers' connections (the
child must not use, nor close, a connection opened before the fork; the parent opens
its own again at its next checkpoint), and the child starts a checkpoint thread of
its own on its first write.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import sqlalchemy as sa

from pasarela.logs import get_logger


__all__ = ["Checkpointer"]

log = get_logger("pasarela")

#: Every checkpointer not yet collected, for the fork handlers.
_LIVE: weakref.WeakSet[Checkpointer] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()
#: Connections a child inherited from a fork the handlers did not see (``os.fork``
#: patched): kept, never used nor closed (closing one in the child could release the
#: locks of the child's own connections to the file).
_INHERITED: list[Any] = []


class Checkpointer:
    """Checkpoints the WAL of *engine*'s database after writes (see the module docs)."""

    def __init__(self, engine: sa.Engine, *, interval: float = 0.25) -> None:
        self._engine = engine
        self._interval = interval
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        #: Held while a checkpoint runs; the fork handler takes it so no fork
        #: happens mid-checkpoint.
        self._busy = threading.Lock()
        self._pid = os.getpid()
        #: The driver connection checkpoints run on (opened on the first; see
        #: :meth:`_connection`), guarded by ``_busy``.
        self._conn: Any = None
        #: Checkpoints run so far (for tests and the curious).
        self.runs = 0
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def running(self) -> bool:
        """Whether this process has a checkpoint thread alive."""
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

    def notify(self) -> None:
        """A write committed: checkpoint soon (starts the thread on first use, and
        again in a forked child, which inherits the object but not the thread)."""
        if self._pid != os.getpid():  # forked without the handlers (os.fork is patched)
            self._forked()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._closed.is_set():
                    self._thread = threading.Thread(target=self._loop, daemon=True,
                                                    name="pasarela-wal-checkpoint")
                    self._thread.start()
        self._dirty.set()

    def run_once(self) -> tuple[int, int, int]:
        """One passive checkpoint now: ``(busy, log frames, checkpointed frames)``."""
        with self._busy:
            try:  # opening the connection too: its errors are the loop's to log
                conn = self._connection()
                busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except self._engine.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy's
                self._close_connection()  # a new one next time
                raise sa.exc.DBAPIError.instance(
                    "PRAGMA wal_checkpoint(PASSIVE)", (), exc,
                    self._engine.dialect.loaded_dbapi.Error, dialect=self._engine.dialect,
                ) from exc
            finally:
                if self._closed.is_set():
                    self._close_connection()
        self.runs += 1
        return int(busy), int(frames), int(done)

    def close(self) -> None:
        """Stop the thread after a last checkpoint (waits for it) and close the
        checkpointer's connection."""
        self._closed.set()
        self._dirty.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        with self._busy:
            self._close_connection()

    def _connection(self) -> Any:
        """The checkpointer's own driver connection to the store's file, opened as the
        engine's dialect opens one but outside its pool, in autocommit (a checkpoint
        runs outside any transaction); callers hold ``_busy``."""
        if self._conn is None:
            dialect = self._engine.dialect
            cargs, cparams = dialect.create_connect_args(self._engine.url)
            self._conn = dialect.loaded_dbapi.connect(
                *cargs, **{**cparams, "check_same_thread": False, "isolation_level": None})
        return self._conn

    def _close_connection(self) -> None:
        """Close the checkpointer's connection, if open (callers hold ``_busy``)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _loop(self) -> None:
        while True:
            self._dirty.wait()
            self._dirty.clear()
            try:
                self.run_once()
            except sa.exc.SQLAlchemyError as exc:  # the next write tries again
                log.warning("wal_checkpoint_failed", error=" ".join(str(exc).split())[:300])
            if self._closed.is_set() or self._closed.wait(self._interval):
                return

    def _forked(self) -> None:
        """In the child: the parent's thread is gone; start afresh on the next write
        (on a connection of the child's own: one inherited is left alone)."""
        if self._conn is not None:
            _INHERITED.append(self._conn)
            self._conn = None
        self._pid, self._thread = os.getpid(), None
        self._dirty, self._start_lock = threading.Event(), threading.Lock()
        self._busy = threading.Lock()


def _before_fork() -> None:
    # Held across the fork, released by the handlers below (in the child, replaced).
    _LIVE_LOCK.acquire()
    for checkpointer in list(_LIVE):
        checkpointer._busy.acquire()
        checkpointer._close_connection()


def _after_fork_in_parent() -> None:
    for checkpointer in list(_LIVE):
        checkpointer._busy.release()
    _LIVE_LOCK.release()


def _after_fork_in_child() -> None:
    global _LIVE_LOCK  # noqa: PLW0603 - the parent's lock is not the child's to release
    for checkpointer in list(_LIVE):
        checkpointer._forked()
    _LIVE_LOCK = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
