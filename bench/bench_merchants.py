"""Merchants at scale: 10,000 merchants of three accounts each, kept in the store.

- ``from_config`` of a deployment whose store holds 10,000 merchants (PostgreSQL when
  reachable, and SQLite): merchants are built on first use, so the start reads their
  documents and structures none of them. Budget: under 2 s.
- A merchant's first use (its accounts, fee schedules and routes built): reported.
- A payment's create overhead: ``pay()`` through one merchant of the 10,000 against
  ``pay()`` through the only merchant of a one-merchant deployment (the same kind of
  store, the same fake gateway process on loopback), interleaved in this run.
  Budget: at most 1.15x (unchanged, within the noise of two stores).
- ``from_config`` with 10,000 ``[merchants.NAME]`` tables given as a mapping: under 2 s.

``python bench/bench_merchants.py [--merchants N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench_webhooks import postgres_schema
from harness import compare, report, serve


MERCHANTS = 10_000
BUDGET_S = 2.0
RATIO_BUDGET = 1.15
FEES = {"percent": "3.99", "fixed": "PEN 0.50", "igv": True}


def document(base_url: str) -> dict[str, Any]:
    """One merchant as ``merchants.create`` keeps it: three accounts with fee
    schedules, two routes, secrets as ``env:`` references."""
    def account() -> dict[str, Any]:
        return {"type": "fake", "base_url": base_url, "api_key": "env:BENCH_FAKE_KEY",
                "max_retries": 0, "fees": FEES}

    return {"display_name": "Tienda", "providers": {
        "cash": account(), "wallet": account(), "cards": account()},
        "routes": [{"name": "usd", "when": {"currency": "USD"}, "use": ["cards"]},
                   {"name": "default", "use": ["cards", "wallet", "cash"]}],
        "checkout": {"preference": []}}


def seed(url: str, count: int, base_url: str) -> None:
    """*count* merchants written to the store's ``merchants`` table in one go."""
    from pasarela.store import Store
    from pasarela.store.schema import merchants

    store = Store(url, upgrade=True)
    now = datetime.now(UTC)
    text = json.dumps(document(base_url), sort_keys=True)
    rows = [{"name": f"m{i:05d}", "document": text, "sealed": False, "created_at": now,
             "updated_at": now} for i in range(count)]
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(sa.insert(merchants), rows[start:start + 2000])
    store.close()


def open_deployment(url: str) -> Any:
    from pasarela.api import Pasarela
    from pasarela.testing.fake import FakePlugin

    return Pasarela({"store": {"url": url}, "events": {"dispatch": "worker"}},
                    plugins=[FakePlugin()], load_entrypoints=False)


def time_start(url: str, rounds: int = 3) -> float:
    """The median seconds of ``from_config`` (the store opened, the merchants known)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        app = open_deployment(url)
        times.append(time.perf_counter() - start)
        app.close()
    return statistics.median(times)


def start_figures(kind: str, url: str, count: int, base_url: str) -> bool:
    seed(url, count, base_url)
    seconds = time_start(url)
    app = open_deployment(url)
    try:
        assert len(app.merchants) == count
        name = f"m{count // 2:05d}"
        started = time.perf_counter()
        router = app.merchants.service(name).router
        first_use = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(1000):
            again = app.merchants.service(name).router
        later_use = (time.perf_counter() - started) / 1000
        cached = again is router  # compiled once, then the same router every time
    finally:
        app.close()
    ok = seconds < BUDGET_S and cached
    report(f"from_config, {count:,} merchants x 3 accounts ({kind})", f"{seconds:.2f} s",
           f"< {BUDGET_S:.0f} s", seconds < BUDGET_S)
    report(f"routing of one merchant compiled once, cached ({kind})",
           f"first use {first_use * 1e3:.1f} ms, then {later_use * 1e6:.1f} us "
           f"({first_use / later_use:,.0f}x less)", "the same router", cached)
    return ok


def tables_figure(url: str, count: int, base_url: str) -> bool:
    """``from_config`` with *count* ``[merchants.NAME]`` tables given as a parsed
    mapping (a TOML file of that size costs its parse on top: see docs/merchants.md)."""
    from pasarela.api import Pasarela
    from pasarela.testing.fake import FakePlugin

    tables = {f"t{i:05d}": document(base_url) for i in range(count)}
    start = time.perf_counter()
    with Pasarela({"store": {"url": url}, "merchants": tables}, plugins=[FakePlugin()],
                  load_entrypoints=False) as app:
        seconds = time.perf_counter() - start
        assert len(app.merchants) == count
    ok = seconds < BUDGET_S
    report(f"from_config, {count:,} [merchants] tables (mapping)", f"{seconds:.2f} s",
           f"< {BUDGET_S:.0f} s", ok)
    return ok


def create_overhead(many_url: str, one_url: str, count: int, base_url: str,
                    n: int = 200) -> bool:
    """pay() through one of *count* merchants against the one merchant of another
    deployment."""
    from pasarela.model import Order
    from pasarela.money import Money

    seed(one_url, 1, base_url)
    amount = Money.of("25.00", "PEN")
    with open_deployment(many_url) as many, open_deployment(one_url) as one:
        shop = many.merchants[f"m{count - 1:05d}"]
        alone = one.merchants["m00000"]

        def payer(api: Any, tag: str) -> Callable[[int], None]:
            def pay(i: int) -> None:
                api.pay(Order(reference=f"o-{i}", amount=amount), method="card",
                        idempotency_key=f"{tag}-{i}")
            return pay

        subject, baseline = payer(shop, "many"), payer(alone, "one")
        for i in range(20):  # warm both (and build each merchant)
            subject(10_000_000 + i)
            baseline(10_000_000 + i)
        s, b, ratio = compare(subject, baseline, n=n)
    ok = ratio <= RATIO_BUDGET
    report(f"create, one of {count:,} merchants / the only one",
           f"{ratio:.2f}x ({s * 1e3:.2f} ms vs {b * 1e3:.2f} ms)", f"<= {RATIO_BUDGET}x", ok)
    return ok


def main(count: int = MERCHANTS) -> int:
    from pasarela.cli.output import configure_logging

    configure_logging(level=logging.WARNING)
    os.environ.setdefault("BENCH_FAKE_KEY", "fake_sk_test_123")
    print(f"merchants: {count:,} merchants of 3 accounts each, kept in the store")
    ok = True
    with serve("fake_server.py") as base_url, tempfile.TemporaryDirectory() as tmp:
        with postgres_schema() as pg_many, postgres_schema() as pg_one:
            if pg_many is not None and pg_one is not None:
                ok &= start_figures("PostgreSQL", pg_many, count, base_url)
                ok &= create_overhead(pg_many, pg_one, count, base_url)
        sqlite_many = f"sqlite:///{Path(tmp) / 'many.db'}"
        ok &= start_figures("SQLite", sqlite_many, count, base_url)
        ok &= tables_figure(f"sqlite:///{Path(tmp) / 'tables.db'}", count, base_url)
        if pg_many is None:
            ok &= create_overhead(sqlite_many, f"sqlite:///{Path(tmp) / 'one.db'}", count,
                                  base_url)
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merchants", type=int, default=MERCHANTS)
    raise SystemExit(main(parser.parse_args().merchants))
