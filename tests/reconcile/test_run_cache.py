"""A run's SQLite page cache lives on one pooled connection, not on every one it got."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from pasarela.store import Store
from pasarela.store.settlements import SQLITE_CACHE_KIB, SettlementRun


def _cache_size(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)


def test_the_run_enlarges_the_cache_of_one_connection_only(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'cache.db'}", upgrade=True)
    try:
        engine = store.engine
        with engine.connect() as conn:
            default = _cache_size(conn)
        assert default != -SQLITE_CACHE_KIB
        first = SettlementRun(store, "first")
        assert not first.has_lines()  # its connection (the pool's last returned) grows
        with engine.connect() as held:
            assert _cache_size(held) == -SQLITE_CACHE_KIB
            first_own = held.connection.dbapi_connection
            # The pool hands the run another connection while this one is held (as
            # another transaction of the process does): that one keeps its own cache.
            assert not first.has_lines()
            with engine.connect() as other:
                assert other.connection.dbapi_connection is not first_own
                assert _cache_size(other) == default
            # A second run whose first transaction gets the other connection enlarges it,
            # and gives the first run's its own size back when it meets it.
            second = SettlementRun(store, "second")
            assert not second.has_lines()
            with engine.connect() as other:
                assert _cache_size(other) == -SQLITE_CACHE_KIB
                grown = other.connection.dbapi_connection
        assert not second.has_lines()  # on the connection released last: the first run's
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is first_own
            assert _cache_size(conn) == default
            with engine.connect() as other:
                assert other.connection.dbapi_connection is grown
                assert _cache_size(other) == -SQLITE_CACHE_KIB
    finally:
        store.close()
