"""The relays' fault test: 10,000 outbox events through a relay to a real broker, with
two workers on PostgreSQL, each killed (SIGKILL) once mid-stream and restarted.

Every event must arrive; a repeat is allowed only for what a killed worker had in
hand (its last batch, acknowledged but not yet marked), each repeat carries its id,
and each payment's events arrive (first arrivals) in the order they were written.
The broker is not restarted here: the brokers are the machine's shared services (and
Redis keeps nothing on disk), so the tests do not stop them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.relays.outbox_rows import write_events


ROOT = Path(__file__).resolve().parents[2]
TOTAL_PAYMENTS = 2500
PER_PAYMENT = 4  # 10,000 events
BATCH = 500
LEASE = "4s"


def write_config(path: Path, store_url: str, relay: Mapping[str, Any]) -> Path:
    lines = ["[store]", f"url = {_toml(store_url)}", "", "[[relays]]"]
    lines += [f"{key} = {_toml(value)}" for key, value in relay.items()]
    lines += [f"batch_size = {BATCH}", f"lease = {_toml(LEASE)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_worker(config: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """A ``pasarela worker`` process; its stderr goes to a file beside *config* (a pipe
    nobody reads could fill up and stall it)."""
    log = config.parent / f"worker-{time.monotonic_ns()}.log"
    with log.open("wb") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", "pasarela", "worker", "--config", str(config),
             "--interval", "0.05", "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=err)
    worker.args = [*worker.args, str(log)]  # type: ignore[list-item]
    return worker


def delivered(engine: sa.Engine, relay: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM relay_deliveries WHERE relay = :r AND delivered_at IS NOT NULL"
        ), {"r": relay}).scalar_one())


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             workers: Sequence[subprocess.Popen[bytes]] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for worker in workers:
            if worker.poll() is not None:
                err = Path(str(worker.args[-1])).read_text(errors="replace")  # type: ignore[index]
                raise AssertionError(f"a worker exited ({worker.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def read_until(expected: set[str], idle: float = 10.0
               ) -> Callable[[list[Mapping[str, Any]]], bool]:
    """A consumer's *stop*: every expected id read, or *idle* seconds without a new
    message (the check then names what is missing instead of waiting for ever). The
    wait is since the last message, not since the start: a slow reader on a busy
    machine is not taken for a lost message."""
    seen: set[str] = set()
    read = 0
    last = time.monotonic()

    def stop(events: list[Mapping[str, Any]]) -> bool:
        nonlocal read, last
        if len(events) > read:
            seen.update(str(e["id"]) for e in events[read:])
            read = len(events)
            last = time.monotonic()
        return seen >= expected or time.monotonic() - last > idle
    return stop


def run_fault_test(tmp_path: Path, store_url: str, relay: Mapping[str, Any],
                   read_all: Callable[[set[str]], list[Mapping[str, Any]]],
                   env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Write, relay with two workers killed and restarted, read back, check.

    *read_all(expected_ids)* returns every message the broker holds for the test (as
    the consumer decoded it, with ``id`` and ``payment_id``), repeats included.
    """
    from pasarela.store import Store

    Store(store_url, upgrade=True).close()  # migrated
    config = write_config(tmp_path / "pasarela.toml", store_url, relay)
    engine = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    name = str(relay.get("name") or relay["type"])
    rows: list[dict[str, Any]] = []
    workers: list[subprocess.Popen[bytes]] = []
    kills = 0
    try:
        third = TOTAL_PAYMENTS // 3
        rows += write_events(store_url, payments=third, per_payment=PER_PAYMENT)
        started = time.monotonic()
        workers = [start_worker(config, env or {}), start_worker(config, env or {})]
        for round_no in range(2):
            goal = len(rows) // 2 if round_no == 0 else len(rows) * 3 // 4
            wait_for(lambda g=goal: delivered(engine, name) >= g, 40, "relayed events",
                     workers)
            victim = workers[round_no]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            kills += 1
            workers[round_no] = start_worker(config, env or {})
            rows += write_events(store_url, payments=third, per_payment=PER_PAYMENT,
                                 start=len(rows) // PER_PAYMENT)
        rest = TOTAL_PAYMENTS - len(rows) // PER_PAYMENT
        rows += write_events(store_url, payments=rest, per_payment=PER_PAYMENT,
                             start=len(rows) // PER_PAYMENT)
        assert len(rows) == TOTAL_PAYMENTS * PER_PAYMENT
        wait_for(lambda: delivered(engine, name) >= len(rows), 45, "every event relayed",
                 workers)
        relayed = time.monotonic()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        engine.dispose()
    expected = {str(row["id"]) for row in rows}
    messages = read_all(expected)
    read = time.monotonic()
    ids = [str(m["id"]) for m in messages]
    assert all(ids), "every message carries its event id"
    assert set(ids) == expected, f"{len(expected - set(ids))} events missing"
    repeats = len(ids) - len(set(ids))
    # A killed worker repeats at most the batch it had in hand.
    assert repeats <= kills * BATCH, repeats
    first_order: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for m in messages:
        if m["id"] not in seen:
            seen.add(str(m["id"]))
            first_order[str(m["payment_id"])].append(str(m["id"]))
    written: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        written[str(row["payment_id"])].append(str(row["id"]))
    assert first_order == written, "each payment's events arrive in the order written"
    return {"events": len(expected), "messages": len(ids), "repeats": repeats,
            "relay_ms": round((relayed - started) * 1000),
            "read_ms": round((read - relayed) * 1000)}
