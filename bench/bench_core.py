"""Core budgets: create overhead against bare httpx (one at a time and 16 checkouts at
once, SQLite and PostgreSQL), and import time with discovery. The SQLite create line
lines are followed by their floor: the same create's statements replayed on the
driver alone (``write_floor``)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from harness import compare, compare_rounds, goal, report, rounds, scaled, serve


def bench_create(n: int = 200) -> bool:
    """pay() through pasarela (SQLite store, exchange recording, outbox) against the
    same POST sent with bare httpx, both to one fake gateway process on loopback."""
    import logging

    from pasarela.api import Pasarela
    from pasarela.cli.output import configure_logging as configure
    from pasarela.model import Order
    from pasarela.money import Money
    from pasarela.testing.fake import FakePlugin

    configure(level=logging.WARNING)
    with serve("fake_server.py") as url, tempfile.TemporaryDirectory() as tmp:
        config = {"store": {"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
                  "providers": {"fake": {"base_url": url}},
                  "events": {"dispatch": "worker"}}
        headers = {"Authorization": "Bearer fake_sk_test_123"}
        with Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False) as pasarela, \
                httpx.Client() as client:
            amount = Money.of("25.00", "PEN")

            def through_pasarela(i: int) -> None:
                order = Order(reference=f"o-{i}", amount=amount)
                pasarela.pay(order, method="card", idempotency_key=f"k-{i}")

            def bare(i: int) -> None:
                body = {"payment_id": f"b-{i}", "reference": f"o-{i}", "amount": 2500,
                        "currency": "PEN", "method": "card", "scenario": "succeed",
                        "expires_at": None}
                response = client.post(f"{url}/v1/payments", json=body,
                                       headers={**headers, "Idempotency-Key": f"b-{i}"})
                response.raise_for_status()
                json.loads(response.content)

            for i in range(20):  # warm both paths
                through_pasarela(10_000_000 + i)
                bare(10_000_000 + i)
            s, b, ratio = compare(through_pasarela, bare, n=n)
    report("create via pasarela / bare httpx, fake gateway",
           f"{ratio:.2f}x ({s * 1e3:.2f} ms vs {b * 1e3:.2f} ms)", "<= 1.25x", ratio <= 1.25)
    return ratio <= 1.25


OVERHEAD_MS = 0.75
CONCURRENT = 16
CONCURRENT_GOAL = 0.8


def bench_create_pagoefectivo(n: int = 150, latency: float = 0.0,
                              store_url: str | None = None, label: str = "SQLite") -> bool:
    """pay() of a CIP through pasarela against the same POST /v1/cips sent with bare
    httpx (token fetched once, same JSON body), to one PagoEfectivo sandbox process.

    With *latency* the sandbox answers that many seconds late, as a real provider
    across the internet does; the budget is judged at zero latency only.
    """
    import logging

    from pasarela_pagoefectivo.sandbox.state import (
        DEFAULT_ACCESS_KEY,
        DEFAULT_SECRET_KEY,
        DEFAULT_SERVICE_ID,
    )

    from pasarela.api import Pasarela
    from pasarela.cli.output import configure_logging as configure
    from pasarela.model import Customer, Order
    from pasarela.money import Money

    configure(level=logging.WARNING)
    settings = {"access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY,
                "service_id": DEFAULT_SERVICE_ID}
    rosa = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                    phone="+51 987 654 321", document=("DNI", "45678912"))
    with serve("pagoefectivo_server.py", str(latency)) as url, \
            tempfile.TemporaryDirectory() as tmp:
        if store_url is not None:
            from pasarela.store import Store

            Store(store_url, upgrade=True).close()
        config = {"store": {"url": store_url or f"sqlite:///{Path(tmp) / 'bench.db'}"},
                  "providers": {"pagoefectivo": {"base_url": url, **settings}},
                  "events": {"dispatch": "worker"}}
        with Pasarela(config) as pasarela, httpx.Client() as client:
            from datetime import UTC, datetime, timedelta

            from pasarela_pagoefectivo.api import auth_hash
            from pasarela_pagoefectivo.fields import lima_timestamp

            stamp = lima_timestamp(datetime.now(UTC))
            token = client.post(f"{url}/v1/authorizations", json={
                "accessKey": DEFAULT_ACCESS_KEY, "idService": DEFAULT_SERVICE_ID,
                "dateRequest": stamp,
                "hashString": auth_hash(DEFAULT_SERVICE_ID, DEFAULT_ACCESS_KEY,
                                        DEFAULT_SECRET_KEY, stamp),
            }).json()["data"]["token"]
            expiry = lima_timestamp(datetime.now(UTC) + timedelta(hours=48))
            headers = {"Authorization": f"Bearer {token}", "Origin": "web",
                       "Accept-Language": "es-PE", "Content-Type": "application/json"}
            amount = Money.of("149.90", "PEN")

            def through_pasarela(i: int) -> None:
                order = Order(reference=f"o-{i}", amount=amount, description="Audífonos",
                              customer=rosa)
                pasarela.pay(order, method="cash", idempotency_key=f"k-{i}")

            def bare(i: int) -> None:
                body = (
                    f'{{"currency":"PEN","amount":149.90,"transactionCode":"b-{i}",'
                    f'"dateExpiry":"{expiry}","paymentConcept":"Audífonos",'
                    f'"additionalData":"o-{i}","userEmail":"rosa@example.pe",'
                    '"userName":"Rosa","userLastName":"Quispe","userCountry":"PERU",'
                    '"userDocumentType":"DNI","userDocumentNumber":"45678912",'
                    '"userCodeCountry":"+51","userPhone":"987654321"}'
                )
                response = client.post(f"{url}/v1/cips", content=body.encode(), headers=headers)
                response.raise_for_status()
                json.loads(response.content)

            for i in range(20):
                through_pasarela(10_000_000 + i)
                bare(10_000_000 + i)
            subject, baseline = compare_rounds(through_pasarela, bare, n=n,
                                               rounds=rounds(5))
        floor = None if latency else _write_floor(config, rosa, amount, n=max(n, 100))
    s, b = statistics.median(subject), statistics.median(baseline)
    if latency:
        report(f"  same, provider answering in {latency * 1e3:.0f} ms",
               f"{s / b:.2f}x ({s * 1e3:.2f} ms vs {b * 1e3:.2f} ms)", "reported", True)
        return True
    overheads = [(x - y) * 1e3 for x, y in zip(subject, baseline, strict=True)]
    met = goal(f"create CIP overhead over bare httpx ({label})", overheads,
               unit=" ms", at_most=OVERHEAD_MS,
               detail=f"{s * 1e3:.2f} ms vs {b * 1e3:.2f} ms, {s / b:.2f}x")
    if floor is not None:
        seconds, statements = floor
        driver = "sqlite3" if store_url is None else "psycopg"
        report(f"  of it, the same statements replayed on {driver} alone (the floor)",
               f"{seconds * 1e3:.2f} ms, {statements} statements; the overhead is "
               f"{statistics.median(overheads) / (seconds * 1e3):.1f}x it", "reported", True)
    return met


def _write_floor(config: dict[str, Any], customer: Any, amount: Any,
                 n: int) -> tuple[float, int]:
    """The seconds a create's own statements take on the driver alone: one create's
    statements captured from a Pasarela on the benchmark's store (the same sandbox),
    then replayed *n* times a round, three rounds, with fresh unique keys (see
    ``write_floor``); the median round. Checks every replayed payment was written.
    Returns (seconds, statements a create, ``BEGIN`` and ``COMMIT`` included)."""
    import sqlalchemy as sa
    from write_floor import captured, captured_postgres, replay, replay_postgres

    from pasarela.api import Pasarela
    from pasarela.model import Order

    url = sa.engine.make_url(config["store"]["url"])
    sqlite = url.get_backend_name() == "sqlite"
    with (captured() if sqlite else captured_postgres()) as statements, \
            Pasarela(config) as pasarela:
        def pay(key: str) -> Any:
            order = Order(reference=f"o-{key}", amount=amount, description="Audífonos",
                          customer=customer)
            return pasarela.pay(order, method="cash", idempotency_key=key)

        for i in range(20):
            pay(f"floor-warm-{i}")
        del statements[:]
        payment = pay("floor")
        create: list[Any] = list(statements)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        event_id = conn.execute(sa.text("SELECT id FROM outbox WHERE payment_id = :p"),
                                {"p": payment.id}).scalar_one()
    unique = [payment.id, "floor", event_id]
    per_round = []
    for r in range(3):
        def fresh(i: int, r: int = r) -> list[str]:
            return [f"F{r}{i:024d}", f"floor-{r}-{i}", f"E{r}{i:024d}"]

        if sqlite:
            assert url.database is not None
            per_round.append(replay(url.database, create, unique, n, fresh))
        else:
            libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
            per_round.append(replay_postgres(libpq, create, unique, n, fresh))
    with engine.connect() as conn:
        written = conn.execute(sa.text("SELECT count(*) FROM payments WHERE id LIKE 'F%' "
                                       "AND status = 'pending'")).scalar_one()
    engine.dispose()
    assert written == 3 * n, f"the replay wrote {written} payments of {3 * n}"
    return statistics.median(per_round), len(create)


def bench_concurrent_checkouts(store_url: str | None = None, label: str = "SQLite",
                               n: int = 40) -> bool:
    """Creates per second with :data:`CONCURRENT` checkouts at once (threads, one
    Pasarela: each pays a CIP), against the same number of threads sending the same
    POST /v1/cips with bare httpx (one client each), to one PagoEfectivo sandbox process;
    *n* creates per thread per round, rounds interleaved."""
    import logging
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime, timedelta

    from pasarela_pagoefectivo.api import auth_hash
    from pasarela_pagoefectivo.fields import lima_timestamp
    from pasarela_pagoefectivo.sandbox.state import (
        DEFAULT_ACCESS_KEY,
        DEFAULT_SECRET_KEY,
        DEFAULT_SERVICE_ID,
    )

    from pasarela.api import Pasarela
    from pasarela.cli.output import configure_logging as configure
    from pasarela.model import Customer, Order
    from pasarela.money import Money

    configure(level=logging.WARNING)
    settings = {"access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY,
                "service_id": DEFAULT_SERVICE_ID}
    rosa = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                    phone="+51 987 654 321", document=("DNI", "45678912"))
    amount = Money.of("149.90", "PEN")
    with serve("pagoefectivo_server.py") as url, tempfile.TemporaryDirectory() as tmp:
        if store_url is not None:
            from pasarela.store import Store

            Store(store_url, upgrade=True).close()
        config = {"store": {"url": store_url or f"sqlite:///{Path(tmp) / 'bench.db'}"},
                  "providers": {"pagoefectivo": {"base_url": url, **settings}},
                  "events": {"dispatch": "worker"}}
        stamp = lima_timestamp(datetime.now(UTC))
        token = httpx.post(f"{url}/v1/authorizations", json={
            "accessKey": DEFAULT_ACCESS_KEY, "idService": DEFAULT_SERVICE_ID,
            "dateRequest": stamp,
            "hashString": auth_hash(DEFAULT_SERVICE_ID, DEFAULT_ACCESS_KEY,
                                    DEFAULT_SECRET_KEY, stamp),
        }).json()["data"]["token"]
        expiry = lima_timestamp(datetime.now(UTC) + timedelta(hours=48))
        headers = {"Authorization": f"Bearer {token}", "Origin": "web",
                   "Accept-Language": "es-PE", "Content-Type": "application/json"}
        clients = [httpx.Client() for _ in range(CONCURRENT)]
        with Pasarela(config) as pasarela, ThreadPoolExecutor(CONCURRENT) as pool:
            def checkouts(worker: int, start: int) -> None:
                for i in range(start, start + n):
                    key = f"{worker}-{i}"
                    order = Order(reference=f"o-{key}", amount=amount,
                                  description="Audífonos", customer=rosa)
                    pasarela.pay(order, method="cash", idempotency_key=f"k-{key}")

            def bare(worker: int, start: int) -> None:
                client = clients[worker]
                for i in range(start, start + n):
                    body = (
                        f'{{"currency":"PEN","amount":149.90,"transactionCode":"b-{worker}-{i}",'
                        f'"dateExpiry":"{expiry}","paymentConcept":"Audífonos",'
                        f'"additionalData":"o-{i}","userEmail":"rosa@example.pe",'
                        '"userName":"Rosa","userLastName":"Quispe","userCountry":"PERU",'
                        '"userDocumentType":"DNI","userDocumentNumber":"45678912",'
                        '"userCodeCountry":"+51","userPhone":"987654321"}'
                    )
                    response = client.post(f"{url}/v1/cips", content=body.encode(),
                                           headers=headers)
                    response.raise_for_status()
                    json.loads(response.content)

            def rate(fn: Any, start: int) -> float:
                began = time.perf_counter()
                list(pool.map(lambda w: fn(w, start), range(CONCURRENT)))
                return CONCURRENT * n / (time.perf_counter() - began)

            rate(checkouts, 10_000_000)  # warm both
            rate(bare, 10_000_000)
            ratios, ours, theirs = [], [], []
            for r in range(rounds(3)):
                theirs.append(rate(bare, r * n))
                ours.append(rate(checkouts, r * n))
                ratios.append(ours[-1] / theirs[-1])
        for client in clients:
            client.close()
    return goal(f"creates/s, {CONCURRENT} checkouts at once / bare httpx ({label})", ratios,
                unit="x", at_least=CONCURRENT_GOAL,
                detail=f"{statistics.median(ours):,.0f} vs {statistics.median(theirs):,.0f} "
                       "creates/s")


IMPORT_GOAL_MS = 80.0


def _run_once(code: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - start


def _time_command(code: str, runs: int = 7, env: dict[str, str] | None = None) -> float:
    return statistics.median(_run_once(code, env) for _ in range(runs))


def bench_import() -> bool:
    """Import and discovery as an installed package runs them: with bytecode caches.
    This checkout is installed in editable mode, and where PYTHONDONTWRITEBYTECODE is
    set (this machine sets it) every import would compile the sources again, which
    no wheel install does; so the measured runs allow caches, kept in a temporary
    folder (PYTHONPYCACHEPREFIX) after one warm-up run. The figure without caches is
    printed too."""
    discover = ("import pasarela; from pasarela.plugins import get_plugin_manager; "
                "get_plugin_manager().providers()")
    cold = _time_command(discover) - _time_command("pass")
    with tempfile.TemporaryDirectory() as caches:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = caches
        _time_command(discover, runs=1, env=env)  # writes the caches
        bases, extras = [], []
        for _ in range(rounds(9)):  # interleaved: each round's own `pass` is its base
            bases.append(_run_once("pass", env))
            extras.append((_run_once(discover, env) - bases[-1]) * 1e3)
    ok = goal("import pasarela + plugin discovery", extras, unit=" ms",
              at_most=IMPORT_GOAL_MS, digits=0,
              detail=f"over `python -c pass` ({statistics.median(bases) * 1e3:.0f} ms)")
    report("  (the same, compiling the sources every time)", f"{cold * 1e3:.0f} ms",
           "reported", True)
    return ok


def main() -> int:
    from bench_webhooks import postgres_schema

    results = [bench_create(), bench_create_pagoefectivo(n=scaled(150, 20)),
               bench_create_pagoefectivo(n=scaled(40, 10), latency=0.05)]
    with postgres_schema() as pg_url:
        if pg_url is not None:
            results.append(bench_create_pagoefectivo(n=scaled(150, 20), store_url=pg_url,
                                                     label="PostgreSQL"))
    results.append(bench_concurrent_checkouts(n=scaled(40, 5)))
    with postgres_schema() as pg_url:
        if pg_url is not None:
            results.append(bench_concurrent_checkouts(store_url=pg_url, label="PostgreSQL",
                                                      n=scaled(40, 5)))
    results.append(bench_import())
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
