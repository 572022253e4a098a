"""A pre-forking server forks after the store is open: the child must work, and must
never inherit a lock held by a thread that does not exist in it (the WAL
checkpointer's, inside SQLite or the connection pool)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pasarela.model import Payment
from pasarela.store import Store


pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

#: How long a child may take before it counts as hung (it needs well under a second).
CHILD_DEADLINE = 20.0
#: The driver connection the parent writes on, as the child inherits it.
parents_writer: object = None


def _wait(pid: int) -> int:
    """The child's exit code; kills it and fails the test when it hangs."""
    deadline = time.monotonic() + CHILD_DEADLINE
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child {pid} hung for {CHILD_DEADLINE} s")


def _child(store: Store, make_payment: Callable[..., Payment]) -> None:
    """In the child: write, see a checkpoint of its own, exit 0; anything else is 1."""
    code = 1
    try:
        checkpointer = store.checkpointer
        assert checkpointer is not None
        inherited = checkpointer._conn  # the handlers closed it before the fork
        before = checkpointer.runs
        writer = store._writer  # the parent's kept write connection: left alone here
        store.create_payment(make_payment(), fingerprint="fp")
        assert writer is None
        assert store._writer is not None
        assert store._writer.connection.driver_connection is not parents_writer
        deadline = time.monotonic() + 10
        while checkpointer.runs == before and time.monotonic() < deadline:
            time.sleep(0.002)
        code = 0 if (checkpointer.runs > before and checkpointer.running
                     and inherited is None and checkpointer._conn is not None) else 1
    finally:
        os._exit(code)


def test_a_forked_child_checkpoints_its_own_writes(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    """No call after the fork is needed: the store gives the child its own pool and
    its own checkpoint thread."""
    store = Store(f"sqlite:///{tmp_path / 'forked.db'}")
    try:
        first = make_payment()
        store.create_payment(first, fingerprint="fp")  # starts the parent's thread
        assert store._writer is not None
        global parents_writer  # noqa: PLW0603 - read by the child
        parents_writer = store._writer.connection.driver_connection
        pid = os.fork()
        if pid == 0:
            _child(store, make_payment)
        assert _wait(pid) == 0
        # The parent's pool and thread are untouched by the child's.
        last = make_payment()
        store.create_payment(last, fingerprint="fp")
        assert store.get_payment(first.id).id == first.id
        assert store.get_payment(last.id).id == last.id
        assert store.checkpointer is not None
        assert store.checkpointer.running
    finally:
        store.close()


def test_forks_while_the_checkpointer_is_busy_never_hang(
        tmp_path: Path, make_payment: Callable[..., Payment]) -> None:
    """Each fork follows a write at once, so the checkpoint thread is usually inside
    a checkpoint (in SQLite, holding a pooled connection) when the process forks:
    every child still writes and checkpoints within the deadline."""
    store = Store(f"sqlite:///{tmp_path / 'busy.db'}")
    try:
        checkpointer = store.checkpointer
        assert checkpointer is not None
        for _ in range(25):
            store.create_payment(make_payment(), fingerprint="fp")  # wakes the thread
            pid = os.fork()
            if pid == 0:
                _child(store, make_payment)
            assert _wait(pid) == 0
        assert checkpointer.runs >= 1
    finally:
        store.close()

