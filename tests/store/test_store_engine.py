"""Opening the store: URLs, pragmas, migrations on construction, errors."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError, ConfigurationError
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment
from pasarela.store import Store
from pasarela.store import schema as t
from pasarela.store.engine import normalize_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db:5432/pay", "postgresql+psycopg://u:p@db:5432/pay"),
        ("postgres://u@db/pay", "postgresql+psycopg://u@db/pay"),
        ("postgresql+psycopg://u@db/pay", "postgresql+psycopg://u@db/pay"),
        ("sqlite:///pasarela.db", "sqlite:///pasarela.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_url_normalisation(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://u@db/pay",
        "postgresql+psycopg2://u@db/pay",
        "sqlite+aiosqlite:///x.db",
    ],
)
def test_bad_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^store\.url: ") as caught:
        Store(url)
    assert caught.value.path == "store.url"


def test_unreachable_postgres_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"store\.url: cannot connect") as caught:
        Store("postgresql://postgres:hunter2@127.0.0.1:1/none?connect_timeout=2")
    assert "hunter2" not in str(caught.value)


def test_unopenable_sqlite_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"store\.url: cannot connect"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")


def test_sqlite_upgrades_itself_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "embedded.db"
    with Store(f"sqlite:///{path}") as store:
        assert store.dialect == "sqlite"
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys",
                             "wal_autocheckpoint")
            }
            tables = set(sa.inspect(conn).get_table_names())
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000,
                      "foreign_keys": 1, "wal_autocheckpoint": 0}
    assert tables >= set(t.metadata.tables)
    # Opening it again finds it at head.
    with Store(f"sqlite:///{path}") as again:
        assert again.ping()


def test_sqlite_keeps_a_write_transactions_temporary_storage_in_memory(
        tmp_path: Path) -> None:
    """A write's statement journal stays in memory (MEMORY); a read goes back to the
    build's default, where a sort over every payment may spill to a file rather than
    grow in memory; also on a connection that switches from writes to reads."""
    with Store(f"sqlite:///{tmp_path / 'temp.db'}") as store:
        seen: list[tuple[object, int]] = []
        for write in (True, False, True, False):
            begin = store.transaction if write else store.read_transaction
            with begin() as conn:
                seen.append((conn.connection.driver_connection,
                             conn.exec_driver_sql("PRAGMA temp_store").scalar_one()))
        assert [mode for _, mode in seen] == [2, 0, 2, 0]
        writer = seen[0][0]
        # A failed write gives the kept write connection back to the pool, which hands
        # out the one returned last: the read after it undoes the write's setting.
        with store.transaction() as conn:
            assert conn.connection.driver_connection is writer
        with pytest.raises(sa.exc.OperationalError), store.transaction() as conn:
            conn.exec_driver_sql("SELECT nothing FROM payments")
        with store.read_transaction() as conn:
            assert conn.connection.driver_connection is writer
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar_one() == 0


def test_sqlite_writes_keep_one_connection_and_reads_use_others(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    """A SQLite file store's writes run on one kept connection, from any thread; a
    read never takes it; our own error inside a write keeps it (rolled back), a
    database's error gives it back and the next write takes a fresh one."""
    with Store(f"sqlite:///{tmp_path / 'writer.db'}") as store:
        def driver_of(begin: Callable[[], Any]) -> object:
            with begin() as conn:
                return conn.connection.driver_connection

        first = driver_of(store.transaction)
        assert store.engine.pool.checkedout() == 1  # kept between writes
        assert driver_of(store.read_transaction) is not first
        with ThreadPoolExecutor(2) as pool:
            assert set(pool.map(lambda _: driver_of(store.transaction), range(8))) == {first}
        payment = make_payment()
        store.create_payment(payment, fingerprint="fp")
        with pytest.raises(ConcurrencyConflictError):  # a stale version: our own error
            store.transition(payment.id, expected_version=7, target=Status.PENDING,
                             cause=Cause.API, event_type="payment.pending")
        assert driver_of(store.transaction) is first
        def delete_then_fail() -> None:
            with store.transaction() as conn:
                conn.exec_driver_sql("DELETE FROM payments")
                raise ValueError("ours")

        with pytest.raises(ValueError, match="ours"):
            delete_then_fail()
        assert store.get_payment(payment.id).id == payment.id  # rolled back
        with pytest.raises(sa.exc.IntegrityError), store.transaction() as conn:
            conn.exec_driver_sql("INSERT INTO payments (id) VALUES (NULL)")
        with store.transaction() as conn:
            assert conn.in_transaction()
            assert store.engine.pool.checkedout() == 1  # the failed one went back
        last = driver_of(store.transaction)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        last.execute("SELECT 1")  # type: ignore[attr-defined]  # closing the store closed it


def test_sqlite_kept_write_connection_under_threads_with_failures(tmp_path: Path) -> None:
    """Eight threads writing at once, every fifth write failing with a database error
    and every seventh with our own, reads in between: every write that committed is
    there, none that failed is, and the store ends with at most one connection kept."""
    with Store(f"sqlite:///{tmp_path / 'threads.db'}") as store:
        with store.transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE marks (n INTEGER PRIMARY KEY)")

        def work(n: int) -> str:
            try:
                with store.transaction() as conn:
                    conn.exec_driver_sql("INSERT INTO marks (n) VALUES (?)", (n,))
                    if n % 5 == 0:
                        conn.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")
                    if n % 7 == 0:
                        raise ValueError("ours")
            except ValueError:
                return "ours"
            except (sa.exc.OperationalError, ConfigurationError):
                return "database"
            with store.read_transaction() as conn:
                conn.exec_driver_sql("SELECT count(*) FROM marks").scalar_one()
            return "committed"

        with ThreadPoolExecutor(8) as pool:
            outcomes = dict(zip(range(1, 201), pool.map(work, range(1, 201)), strict=True))
        with store.read_transaction() as conn:
            stored = {row[0] for row in conn.exec_driver_sql("SELECT n FROM marks")}
        assert stored == {n for n, how in outcomes.items() if how == "committed"}
        assert {n for n, how in outcomes.items() if how == "database"} == {
            n for n in range(1, 201) if n % 5 == 0}
        assert store.engine.pool.checkedout() <= 1


def test_sqlite_wal_is_checkpointed_in_the_background(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    path = tmp_path / "embedded.db"
    store = Store(f"sqlite:///{path}")
    checkpointer = store.checkpointer
    assert checkpointer is not None
    for _ in range(50):
        store.create_payment(make_payment(), fingerprint="fp")
    # Writers never checkpoint (wal_autocheckpoint=0): the thread does, soon after.
    deadline = time.monotonic() + 30
    while checkpointer.runs == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checkpointer.runs >= 1
    store.create_payment(make_payment(), fingerprint="fp")
    busy, frames, done = checkpointer.run_once()
    assert (busy, done) == (0, frames)  # everything copied back
    assert frames > 0
    store.close()
    thread = checkpointer._thread
    assert thread is not None
    assert not thread.is_alive()
    with Store(f"sqlite:///{path}") as again, again.engine.connect() as conn:  # nothing lost
        count = conn.execute(sa.select(sa.func.count()).select_from(t.payments)).scalar()
    assert count == 51


def test_the_checkpointer_runs_on_a_connection_of_its_own(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    """No checkpoint takes a pooled connection (the one a writer returned last, which
    the pool hands to the next transaction); its own is closed with the store."""
    store = Store(f"sqlite:///{tmp_path / 'own.db'}")
    checkpointer = store.checkpointer
    assert checkpointer is not None
    checkouts: list[object] = []
    sa.event.listen(store.engine, "checkout", lambda *args: checkouts.append(args[0]))
    try:
        store.create_payment(make_payment(), fingerprint="fp")
        writers = list(checkouts)
        assert writers  # the write itself went through the pool
        busy, frames, done = checkpointer.run_once()
        assert (busy, done) == (0, frames)
        assert frames > 0
        # Let the background thread run its checkpoints as well.
        deadline = time.monotonic() + 30
        while checkpointer.runs < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.runs >= 2
        assert checkouts == writers
        own = checkpointer._conn
        assert own is not None
        assert all(c is not own for c in checkouts)
    finally:
        store.close()
    assert checkpointer._conn is None
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        own.execute("SELECT 1")


def test_a_checkpoint_that_cannot_open_its_connection_fails_as_sqlalchemy_errors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread logs a failed checkpoint (a SQLAlchemy error) and tries again at the
    next write; a driver error escaping it would end the thread with a traceback."""
    store = Store(f"sqlite:///{tmp_path / 'gone.db'}")
    checkpointer = store.checkpointer
    assert checkpointer is not None
    def refuse(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")
    monkeypatch.setattr(store.engine.dialect.loaded_dbapi, "connect", refuse)
    try:
        with pytest.raises(sa.exc.OperationalError, match="unable to open"):
            checkpointer.run_once()
        assert checkpointer._conn is None
        monkeypatch.undo()
        busy, frames, done = checkpointer.run_once()  # a later one opens it
        assert (busy, done) == (0, frames)
    finally:
        store.close()


def test_sqlite_without_upgrade_says_to_upgrade(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'bare.db'}", upgrade=False) as store:
        with pytest.raises(ConfigurationError, match="pasarela db upgrade"):
            store.get_payment("x")
        store.upgrade()
        with pytest.raises(LookupError):
            store.get_payment("x")


def test_in_memory_sqlite(make_payment: Callable[..., Payment]) -> None:
    with Store("sqlite://") as store:
        payment, inserted = store.create_payment(make_payment(), fingerprint="fp")
        assert inserted
        assert store.get_payment(payment.id) == payment


@pytest.mark.postgres
def test_postgres_upgrades_only_when_asked(postgres_schema_url: str) -> None:
    with Store(postgres_schema_url) as store:
        assert store.dialect == "postgresql"
        with store.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
        with pytest.raises(ConfigurationError, match="pasarela db upgrade"):
            store.get_payment("x")
        store.upgrade()
        with store.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) == set(t.metadata.tables) | {
                "alembic_version"
            }
    with Store(postgres_schema_url.replace("postgresql+psycopg://", "postgresql://")) as plain:
        assert plain.ping()


def test_sqlite_job_claims_read_in_index_order(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    """The expiry and outbox claims never sort their whole backlog: thousands of CIPs
    sharing one deadline (midnight) or a long outbox made every claim a full sort."""
    from datetime import UTC, datetime, timedelta

    from pasarela.lifecycle import Cause, Status

    with Store(f"sqlite:///{tmp_path / 'plans.db'}") as store:
        midnight = datetime(2026, 12, 1, 5, tzinfo=UTC)
        for _ in range(3):
            payment, _ = store.create_payment(
                make_payment(status=Status.CREATED, expires_at=midnight), fingerprint="f")
            store.transition(payment.id, expected_version=payment.version,
                             target=Status.PENDING, cause=Cause.API,
                             event_type="payment.pending")
        statements: list[str] = []
        sa.event.listen(store.engine, "begin", lambda conn: (
            conn.connection.driver_connection.set_trace_callback(statements.append)))
        assert len(store.due_for_expiry(now=midnight + timedelta(hours=1))) == 3
        assert len(store.claim_outbox(now=midnight + timedelta(days=9))) == 3
        claims = [q for q in statements
                  if q.startswith("SELECT") and ("FROM payments" in q or "FROM outbox" in q)]
        assert len(claims) == 2
        with store.engine.connect() as conn:
            plans = [" ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + q))
                     for q in claims]
    assert "ix_payments_status_expires_at" in plans[0]
    assert "TEMP B-TREE" not in plans[0]
    assert "ix_outbox_pending" in plans[1]
    assert "TEMP B-TREE FOR ORDER BY" not in plans[1]  # ties only, not the backlog


def test_a_forked_child_checkpoints_its_own_writes(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    """A process forked after the store was opened (a pre-forking server) inherits the
    checkpointer but not its thread: its writes start a thread of its own."""
    import os

    store = Store(f"sqlite:///{tmp_path / 'forked.db'}")
    try:
        store.create_payment(make_payment(), fingerprint="fp")  # the parent's thread
        checkpointer = store.checkpointer
        assert checkpointer is not None
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                store.engine.dispose(close=False)  # SQLAlchemy's rule after a fork
                before = checkpointer.runs
                store.create_payment(make_payment(), fingerprint="fp")
                deadline = time.monotonic() + 30
                while checkpointer.runs == before and time.monotonic() < deadline:
                    time.sleep(0.01)
                thread = checkpointer._thread
                alive = thread is not None and thread.is_alive()
                code = 0 if checkpointer.runs > before and alive else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_pings_only_connections_left_idle(
        postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection used within ``PING_IDLE`` is handed out without a round trip; one
    idle longer is pinged first, and a dead one is replaced rather than failing the
    call (what ``pool_pre_ping`` did on every checkout)."""
    from pasarela.store import engine as store_engine

    with Store(postgres_schema_url, upgrade=True) as store:
        pings: list[object] = []
        ping = store.engine.dialect.do_ping
        monkeypatch.setattr(store.engine.dialect, "do_ping",
                            lambda conn: pings.append(conn) or ping(conn))
        for _ in range(3):
            assert store.ping()
        assert pings == []
        with store.engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with sa.create_engine(store.engine.url, poolclass=sa.pool.NullPool).begin() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        monkeypatch.setattr(store_engine, "PING_IDLE", 0.0)
        assert store.ping()  # the dead connection replaced, not an error
        assert len(pings) >= 1
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid


def test_sqlite_write_lock_held_elsewhere_is_a_concurrency_conflict(
        tmp_path: Path, make_payment: Callable[..., Payment],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``BEGIN IMMEDIATE`` (sent straight to the driver) that finds another process
    holding the write lock past the busy timeout raises the store's
    ``ConcurrencyConflictError``, as SQLAlchemy's own execute did."""
    import sqlite3

    from pasarela.errors import ConcurrencyConflictError
    from pasarela.store import engine as store_engine

    path = tmp_path / "locked.db"
    Store(f"sqlite:///{path}").close()
    monkeypatch.setattr(store_engine, "_SQLITE_PRAGMAS", tuple(
        "PRAGMA busy_timeout=50" if p.startswith("PRAGMA busy_timeout") else p
        for p in store_engine._SQLITE_PRAGMAS))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        with Store(f"sqlite:///{path}") as store:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(ConcurrencyConflictError, match="busy"):
                store.create_payment(make_payment(), fingerprint="fp")
            other.execute("ROLLBACK")
            assert store.create_payment(make_payment(), fingerprint="fp")[1]
    finally:
        other.close()
