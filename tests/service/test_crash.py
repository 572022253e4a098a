"""Crash safety: `pasarela serve` killed with SIGKILL in the middle of a webhook load.

Every delivery that got a 2xx before the kill must already be applied (checked
before the restart); the deliveries that did not get one are sent again to the
restarted server; in the end every payment moved exactly once and every outbox
event gets dispatched.
"""

from __future__ import annotations

import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.store import Store
from pasarela.store.schema import outbox, transitions, webhook_deliveries
from pasarela.testing.fake import FakeGateway, FakePlugin

from .conftest import Observer, make_order


pytestmark = pytest.mark.slow

PAYMENTS = 240
DUPLICATES = 0.3
SENDERS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`pasarela serve` in a subprocess on a loopback port."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PASARELA_LOAD_PLUGINS": ""}
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pasarela.cli.serve", "serve", "--config", str(config),
             "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        with httpx.Client() as client:
            while True:
                try:
                    if client.get(self.url + "/healthz", timeout=1).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"server did not start:\n{log.read_text()}")
                time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no shutdown, no flush, nothing
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self._log.close()


def send_all(url: str, deliveries: list[tuple[int, dict[str, str], bytes]],
             results: dict[int, Any], progress: threading.Event | None = None,
             notify_after: int = 0) -> None:
    """POST every delivery from SENDERS threads; results[i] = status code or error."""
    work: queue.Queue[tuple[int, dict[str, str], bytes]] = queue.Queue()
    for item in deliveries:
        work.put(item)
    lock = threading.Lock()

    def sender() -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    index, headers, body = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome: Any = client.post(f"{url}/webhooks/fake", headers=headers,
                                               content=body).status_code
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                with lock:
                    results[index] = outcome
                    if progress is not None and len(results) >= notify_after:
                        progress.set()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_sigkill_mid_load_loses_no_acknowledged_delivery(tmp_path: Path) -> None:
    db = tmp_path / "pasarela.db"
    url = f"sqlite:///{db}"
    config = tmp_path / "pasarela.toml"
    config.write_text(
        f'[store]\nurl = "{url}"\n\n[plugins]\nmodules = ["pasarela.testing.fake"]\n\n'
        '[events]\ndispatch = "worker"\n\n[providers.fake]\nmax_retries = 0\n')
    gateway = FakeGateway()
    observer = Observer()
    settings = {"store": {"url": url}, "providers": {"fake": {"max_retries": 0}},
                "events": {"dispatch": "worker"}}
    with Pasarela(settings, plugins=[FakePlugin(), observer], load_entrypoints=False,
                  transport=gateway.transport(), store=Store(url)) as p:
        created = [p.pay(make_order(f"pedido-{i}"), method="cash", idempotency_key=f"k{i}")
                   for i in range(PAYMENTS)]
    events = [gateway.settle(payment.provider_reference) for payment in created]
    rng = random.Random(7)
    order = list(range(PAYMENTS)) + rng.sample(range(PAYMENTS), int(PAYMENTS * DUPLICATES))
    rng.shuffle(order)
    deliveries = [(n, events[i][0], events[i][1]) for n, i in enumerate(order)]
    event_of = {n: f"evt_{i + 1}" for n, i in enumerate(order)}
    log = tmp_path / "server.log"

    # Phase 1: load, and SIGKILL the server once a third of the answers are in.
    first: dict[int, Any] = {}
    server = Server(config, log)
    progress = threading.Event()
    load = threading.Thread(target=send_all, args=(server.url, deliveries, first, progress,
                                                   len(deliveries) // 3))
    load.start()
    try:
        assert progress.wait(timeout=60), "the load never got going"
    finally:
        server.kill()
        load.join(timeout=60)
    acknowledged = {n for n, outcome in first.items()
                    if isinstance(outcome, int) and 200 <= outcome < 300}
    assert acknowledged, "no delivery was acknowledged before the kill"
    assert len(acknowledged) < len(deliveries), "the kill came after the load had finished"
    assert not [o for o in first.values() if isinstance(o, int) and not 200 <= o < 300]

    # Before any restart: what was acknowledged is in the database.
    with Store(url) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            recorded = set(conn.execute(sa.select(webhook_deliveries.c.event_id)).scalars())
        assert {event_of[n] for n in acknowledged} <= recorded
        for n in acknowledged:
            payment = created[order[n]]
            assert store.get_payment(payment.id).status is Status.SUCCEEDED

    # Phase 2: restart and send again whatever was not acknowledged.
    again: dict[int, Any] = {}
    server = Server(config, log)
    try:
        send_all(server.url, [d for d in deliveries if d[0] not in acknowledged], again)
    finally:
        server.stop()
    assert set(again.values()) == {200}

    # Every payment moved exactly once; every event is dispatched.
    with Pasarela(settings, plugins=[FakePlugin(), observer], load_entrypoints=False,
                  transport=gateway.transport(), store=Store(url)) as p:
        assert {p.get(x.id).status for x in created} == {Status.SUCCEEDED}
        with p.store.engine.connect() as conn:
            moves = conn.execute(sa.select(transitions.c.payment_id, transitions.c.target)
                                 .where(transitions.c.applied)).all()
            rows = conn.execute(sa.select(outbox.c.id)).scalars().all()
        assert Counter(m.target for m in moves) == {"pending": PAYMENTS, "succeeded": PAYMENTS}
        assert len(set(moves)) == len(moves)  # no payment took the same step twice
        assert len(rows) == len(moves)  # one event per transition, written with it
        dispatched = p.dispatch_outbox()
        assert dispatched == len(rows)
        assert p.store.outbox_lag(now=p.service.clock())[0] == 0
    assert sorted(e.id for e in observer.events) == sorted(rows)
