"""Webhook ingest under load: `pasarela serve` against a minimal receiver.

``COUNT`` deliveries (default 10,000), 30% of them duplicates, shuffled, are sent
from a second process over loopback, to:

- a minimal receiver: Starlette under the same uvicorn setup, that only verifies
  the signature and inserts the delivery id into SQLite (WAL, ``synchronous=NORMAL``,
  one commit per request), nothing else;
- ``pasarela serve`` on SQLite (verify, dedupe, transition, outbox, commit);
- when the test PostgreSQL is reachable, the same side by side on it: the minimal
  receiver inserting into PostgreSQL (psycopg, autocommit: one commit per request)
  and ``pasarela serve`` on PostgreSQL.

The deliveries are the fake provider's signed events for payments inserted up front:
most payments get one event (succeeded or failed), some get two (processing and
succeeded) that arrive in either order. After each pasarela run the final states
must equal the ground truth, and no payment may take a step twice. The goal is
pasarela's throughput at least the minimal receiver's on the same database (1.0x):
the runs alternate (minimal, pasarela, minimal, ...), each pasarela run is compared
with the minimal runs either side of it, and the median of those ratios is the figure
(a busy machine moves both sides). The core alone, in process, one by one and in
batches, is printed as the ceiling the server is working towards; so is the HTTP stack
alone (the same Starlette route answering 200 without verifying or writing), and the
rate of the two in series, the most the server can reach with both as they are.

``python bench/bench_webhooks.py [--count N] [--rounds R]``; bench/run.py calls
:func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import free_port, goal, report, rounds, scaled


SECRET = b"whsec_fake_123"  # FakeSettings' default webhook secret
CONCURRENCY = 16
GOAL = 1.0
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# --- the deliveries and their ground truth --------------------------------------------


def build_deliveries(count: int, seed: int = 20261125) -> tuple[list[str], dict[str, str]]:
    """(shuffled delivery bodies, {provider reference: final status})."""
    rng = random.Random(seed)
    unique = round(count * 0.7)
    doubles = unique // 7
    singles = unique - 2 * doubles
    events: list[dict[str, Any]] = []
    truth: dict[str, str] = {}
    number = 0

    def event(ref: str, status: str) -> None:
        events.append({"id": f"evt_{len(events) + 1:07d}", "type": f"payment.{status}",
                       "data": {"id": ref, "status": status, "amount": 2500,
                                "currency": "PEN", "method": "cash"}})

    for i in range(singles):
        number += 1
        ref = f"fp_{number:07d}"
        status = "failed" if i % 5 == 0 else "succeeded"
        event(ref, status)
        truth[ref] = status
    for _ in range(doubles):
        number += 1
        ref = f"fp_{number:07d}"
        event(ref, "processing")
        event(ref, "succeeded")
        truth[ref] = "succeeded"
    bodies = [json.dumps(e, separators=(",", ":")) for e in events]
    bodies += rng.choices(bodies, k=count - len(bodies))
    rng.shuffle(bodies)
    return bodies, truth


def seed_payments(url: str, truth: dict[str, str]) -> None:
    """Insert one pending payment per provider reference (SQLAlchemy Core, one batch)."""
    import sqlalchemy as sa
    from ulid import ULID

    from pasarela.store import Store
    from pasarela.store.schema import payments

    Store(url, upgrade=True).close()
    now = datetime.now(UTC)
    rows = []
    for ref in truth:
        pid = str(ULID())
        rows.append({
            "id": pid, "idempotency_key": f"k-{pid}", "fingerprint": "x",
            "order_reference": f"o-{ref}", "provider": "fake", "method": "cash",
            "provider_reference": ref, "amount_minor": 2500, "currency": "PEN",
            "refunded_minor": 0, "status": "pending", "version": 2, "created_at": now,
            "updated_at": now, "expires_at": now + timedelta(days=2), "check_attempts": 0,
        })
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(payments), rows)
        if engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load (this machine's server runs with it
            # off, so without this the planner knows nothing of the seeded rows).
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def check_against_truth(url: str, truth: dict[str, str]) -> tuple[bool, str]:
    """Final states equal the truth and no payment took one step twice."""
    import sqlalchemy as sa

    from pasarela.store.schema import payments, transitions

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            final = dict(conn.execute(sa.select(payments.c.provider_reference,
                                                payments.c.status)).all())
            steps = conn.execute(
                sa.select(transitions.c.payment_id, transitions.c.target, transitions.c.event_id)
                .where(transitions.c.applied)).all()
    finally:
        engine.dispose()
    wrong = sum(final.get(ref) != status for ref, status in truth.items())
    doubled = sum(n - 1 for n in Counter((s.payment_id, s.target) for s in steps).values())
    events = Counter(s.event_id for s in steps if s.event_id)
    reapplied = sum(n - 1 for n in events.values())
    ok = wrong == 0 and doubled == 0 and reapplied == 0
    return ok, (f"{len(truth) - wrong}/{len(truth)} final states right, {doubled} double "
                f"transitions, {reapplied} events applied twice")


# --- the minimal receiver -------------------------------------------------------------


def minimal_app(db: str) -> Any:
    """Verify the signature and insert the delivery id: nothing else."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS deliveries "
                 "(provider TEXT, event_id TEXT, PRIMARY KEY (provider, event_id))")

    async def webhook(request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("fake-signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError):
            return JSONResponse({"received": False}, 400)
        expected = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")) or \
                abs(time.time() - timestamp) > 300:
            return JSONResponse({"received": False}, 400)
        event = json.loads(body)
        conn.execute("INSERT OR IGNORE INTO deliveries VALUES (?, ?)",
                     (request.path_params["provider"], event["id"]))
        return JSONResponse({"received": True})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/webhooks/{provider}", webhook, methods=["POST"]),
                             Route("/healthz", healthz)])


#: ``_minimal``'s database for the HTTP stack alone: no signature, no database.
HTTP_ALONE = ":http-alone:"


def http_alone_app() -> Any:
    """The same Starlette route under the same uvicorn setup, reading the body and
    answering 200: what the HTTP stack costs a delivery, the receivers' common part."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def webhook(request: Request) -> Response:
        await request.body()
        return JSONResponse({"received": True})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/webhooks/{provider}", webhook, methods=["POST"]),
                             Route("/healthz", healthz)])


def minimal_postgres_app(url: str) -> Any:
    """The minimal receiver on PostgreSQL: one connection, autocommit, one INSERT per
    delivery (the same work as the SQLite one)."""
    import psycopg
    import sqlalchemy as sa
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    dsn = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("CREATE TABLE IF NOT EXISTS minimal_deliveries "
                 "(provider TEXT, event_id TEXT, PRIMARY KEY (provider, event_id))")

    async def webhook(request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("fake-signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError):
            return JSONResponse({"received": False}, 400)
        expected = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")) or \
                abs(time.time() - timestamp) > 300:
            return JSONResponse({"received": False}, 400)
        event = json.loads(body)
        conn.execute("INSERT INTO minimal_deliveries VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (request.path_params["provider"], event["id"]))
        return JSONResponse({"received": True})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/webhooks/{provider}", webhook, methods=["POST"]),
                             Route("/healthz", healthz)])


def serve_minimal(port: int, db: str) -> None:
    import gc

    import uvicorn

    app = (http_alone_app() if db == HTTP_ALONE
           else minimal_postgres_app(db) if db.startswith("postgresql") else minimal_app(db))
    # The same settings as `pasarela serve` (pasarela/cli/serve.py), which also sets
    # what start-up built aside from the cyclic collector before serving.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="off")
    asyncio.run(uvicorn.Server(config).serve())


@contextmanager
def running(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a server process; yield its URL once /healthz answers 200."""
    proc = subprocess.Popen(command, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                raise RuntimeError(f"{command} did not start: {err.decode()[-2000:]}")
            time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


# --- the sender (a second process) ------------------------------------------------------


async def _post_all(port: int, bodies: list[bytes], indexes: list[int],
                    statuses: list[int], concurrency: int) -> None:
    """POST bodies[i] for i in indexes over *concurrency* keep-alive connections."""
    pending = iter(indexes)

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for i in pending:
            body = bodies[i]
            stamp = int(time.time())
            signature = hmac.new(SECRET, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
            head = (f"POST /webhooks/fake HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/json\r\nFake-Signature: t={stamp},v1={signature}"
                    f"\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                writer.write(head + body)
                await writer.drain()
                status_line = await reader.readline()
                statuses[i] = int(status_line.split()[1])
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                await reader.readexactly(length)
                if close:
                    writer.close()
                    writer = None
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                statuses[i] = 0
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


def send(port: int, path: str, concurrency: int) -> dict[str, Any]:
    bodies = [b.encode() for b in json.loads(Path(path).read_text())]
    statuses = [0] * len(bodies)
    start = time.perf_counter()
    asyncio.run(_post_all(port, bodies, list(range(len(bodies))), statuses, concurrency))
    elapsed = time.perf_counter() - start
    first = Counter(statuses)
    retried = 0
    for _ in range(5):  # what a provider does with a 5xx or a broken connection: again
        again = [i for i, s in enumerate(statuses) if not 200 <= s < 300]
        if not again:
            break
        retried += len(again)
        asyncio.run(_post_all(port, bodies, again, statuses, 1))
    return {"elapsed": elapsed, "count": len(bodies),
            "statuses": {str(k): v for k, v in sorted(first.items())}, "retried": retried,
            "failed": sum(not 200 <= s < 300 for s in statuses)}


def run_sender(url: str, deliveries: str) -> dict[str, Any]:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run([sys.executable, __file__, "_send", port, deliveries,
                          str(CONCURRENCY)], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- the runs ---------------------------------------------------------------------------


def _rate(result: dict[str, Any]) -> float:
    return float(result["count"]) / float(result["elapsed"])


def run_minimal(tmp: Path, deliveries: str, tag: str, db: str | None = None) -> float:
    """One run of the minimal receiver, into SQLite (a new file) or into *db* (a
    PostgreSQL URL: a fresh schema)."""
    port = free_port()
    db = db or str(tmp / f"minimal-{tag}.db")
    with running([sys.executable, __file__, "_minimal", str(port), db], port) as url:
        result = run_sender(url, deliveries)
    rate = _rate(result)
    what = "HTTP stack alone" if db == HTTP_ALONE else "minimal receiver"
    print(f"       {what} ({tag}): {rate:,.0f} deliveries/s {result['statuses']}")
    return rate


def run_pasarela(tmp: Path, store_url: str, deliveries: str, truth: dict[str, str],
                 label: str) -> tuple[float, bool, str]:
    seed_payments(store_url, truth)
    config = tmp / f"pasarela-{label}.toml"
    config.write_text(
        f"[store]\nurl = {json.dumps(store_url)}\n\n[plugins]\n"
        'modules = ["pasarela.testing.fake"]\n\n[events]\ndispatch = "worker"\n\n'
        "[providers.fake]\nmax_retries = 0\n")
    port = free_port()
    command = [sys.executable, "-m", "pasarela.cli.serve", "serve", "--config", str(config),
               "--port", str(port), "--log-level", "warning"]
    with running(command, port, env={"PASARELA_LOAD_PLUGINS": ""}) as url:
        result = run_sender(url, deliveries)
    ok, detail = check_against_truth(store_url, truth)
    ok = ok and result["failed"] == 0
    rate = _rate(result)
    print(f"       pasarela serve ({label}): {rate:,.0f} deliveries/s {result['statuses']}, "
          f"{result['retried']} resent; {detail}")
    return rate, ok, detail


def run_core_alone(tmp: Path, bodies: list[str], truth: dict[str, str], *,
                   batch: int) -> float:
    """The same deliveries through the core in this process: no HTTP, no server,
    one thread; one by one (``handle_webhook``) or ``batch`` at a time
    (``handle_webhooks``, as the server groups them). The ceiling for the server."""
    import logging

    from pasarela.api import Pasarela
    from pasarela.cli.output import configure_logging as configure
    from pasarela.testing.fake import FakePlugin

    configure(level=logging.WARNING)
    url = f"sqlite:///{tmp / f'core-alone-{batch}.db'}"
    seed_payments(url, truth)
    config = {"store": {"url": url}, "providers": {"fake": {"max_retries": 0}},
              "events": {"dispatch": "worker"}}
    deliveries = []
    for text in bodies:
        body = text.encode()
        stamp = int(time.time())
        signature = hmac.new(SECRET, f"{stamp}.".encode() + body, hashlib.sha256)
        deliveries.append(("fake", {"Content-Type": "application/json",
                                    "Fake-Signature": f"t={stamp},v1={signature.hexdigest()}"},
                           body))
    with Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False) as pasarela:
        start = time.perf_counter()
        if batch == 1:
            for delivery in deliveries:
                pasarela.handle_webhook(*delivery)
        else:
            for i in range(0, len(deliveries), batch):
                pasarela.handle_webhooks(deliveries[i:i + batch])
        elapsed = time.perf_counter() - start
    _, detail = check_against_truth(url, truth)
    rate = len(bodies) / elapsed
    how = "one by one" if batch == 1 else f"{batch} at a time"
    print(f"       pasarela core alone (SQLite, in-process, no HTTP, {how}): "
          f"{rate:,.0f} deliveries/s; {detail}")
    return rate


@contextmanager
def postgres_schema() -> Iterator[str | None]:
    """A store URL on a fresh schema of the test PostgreSQL, or None if unreachable."""
    import sqlalchemy as sa

    from pasarela.store.engine import normalize_url

    base = normalize_url(os.environ.get("PASARELA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool,
                             connect_args={"connect_timeout": 3})
    schema = f"pasarela_bench_{secrets.token_hex(4)}"
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.SQLAlchemyError as exc:
        print(f"       PostgreSQL unreachable, skipped: {type(exc.orig or exc).__name__}")
        admin.dispose()
        yield None
        return
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def side_by_side(tmp: Path, deliveries: str, truth: dict[str, str], label: str,
                 count: int, store_url: Any, minimal_url: Any = None) -> tuple[bool, float]:
    """Alternate the minimal receiver and ``pasarela serve`` (minimal, pasarela,
    minimal, ...) on one kind of database; each pasarela run against the minimal runs
    either side. *store_url* and *minimal_url* are called with the round number for a
    fresh database each run. Returns (goal met and every run exact, median minimal rate).
    """
    minimal = [run_minimal(tmp, deliveries, f"{label} 0", minimal_url and minimal_url(0))]
    ratios, rates, details, oks = [], [], [], []
    for n in range(1, count + 1):
        rate, ok, detail = run_pasarela(tmp, store_url(n), deliveries, truth,
                                        f"{label}, round {n}")
        minimal.append(run_minimal(tmp, deliveries, f"{label} {n}",
                                   minimal_url and minimal_url(n)))
        ratios.append(rate / ((minimal[-2] + minimal[-1]) / 2))
        rates.append(rate)
        details.append(detail)
        oks.append(ok)
    baseline = statistics.median(minimal)
    met = goal(f"webhook ingest, pasarela serve / minimal receiver ({label})", ratios,
               unit="x", at_least=GOAL,
               detail=f"{statistics.median(rates):,.0f} vs {baseline:,.0f} /s, "
                      f"{CONCURRENCY} connections")
    report(f"webhook ingest correctness ({label})", details[-1][:40], "exact", all(oks))
    return met and all(oks), baseline


def main(count: int | None = None, rounds_: int | None = None) -> int:
    count = count or scaled(10_000, 500)
    runs = rounds_ or rounds(3)
    bodies, truth = build_deliveries(count)
    print(f"webhook ingest: {count:,} deliveries ({count - len(set(bodies)):,} duplicates), "
          f"{len(truth):,} payments, {CONCURRENCY} connections, one uvicorn worker; "
          f"{runs} rounds, minimal receiver before and after each")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        deliveries = str(tmp / "deliveries.json")
        Path(deliveries).write_text(json.dumps(bodies))
        ok, baseline = side_by_side(tmp, deliveries, truth, "SQLite", runs,
                                    lambda n: f"sqlite:///{tmp / f'pasarela-{n}.db'}")
        results = [ok]
        core_one = run_core_alone(tmp, bodies, truth, batch=1)
        core_batched = run_core_alone(tmp, bodies, truth, batch=CONCURRENCY)
        report("  (core alone / minimal receiver, SQLite)",
               f"{core_one / baseline:.2f}x one by one, {core_batched / baseline:.2f}x "
               f"{CONCURRENCY} at a time", "reported", True)
        # The bound the two parts set together: a delivery through the server costs
        # at least the HTTP stack's share and the core's (one process, one core's
        # worth of the interpreter), so the server's rate is at most that of the two
        # in series.
        http = statistics.median(run_minimal(tmp, deliveries, f"run {n}", HTTP_ALONE)
                                 for n in range(2))
        ceiling = 1 / (1 / http + 1 / core_batched)
        report("  (HTTP stack alone / minimal receiver; their series with the core, SQLite)",
               f"{http / baseline:.2f}x; {ceiling / baseline:.2f}x the most pasarela serve "
               f"can reach with both as they are", "reported", True)
        with ExitStack() as schemas:
            probe = schemas.enter_context(postgres_schema())
            if probe is not None:
                def fresh(n: int) -> str:
                    url = schemas.enter_context(postgres_schema())
                    assert url is not None
                    return url

                ok, _ = side_by_side(tmp, deliveries, truth, "PostgreSQL", runs, fresh, fresh)
                results.append(ok)
    return 0 if all(results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_minimal":
        serve_minimal(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_send":
        print(json.dumps(send(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--count", type=int, default=None)
        parser.add_argument("--rounds", type=int, default=None)
        args = parser.parse_args()
        raise SystemExit(main(args.count, args.rounds))
