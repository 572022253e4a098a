"""Core budgets: create overhead against bare httpx, and import time with discovery."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from harness import compare, report, serve


def bench_create(n: int = 200) -> bool:
    """pay() through pasarela (SQLite store, exchange recording, outbox) against the
    same POST sent with bare httpx, both to one fake gateway process on loopback."""
    import logging

    from pasarela.api import Pasarela
    from pasarela.logs import configure
    from pasarela.model import Order
    from pasarela.money import Money
    from pasarela.testing.fake import FakePlugin

    configure(level=logging.WARNING)
    with serve("fake_server.py") as url, tempfile.TemporaryDirectory() as tmp:
        config = {"store": {"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
                  "providers": {"fake": {"base_url": url}},
                  "outbox": {"dispatch": "worker"}}
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
    report("create via pasarela / bare httpx (SQLite)",
           f"{ratio:.2f}x ({s * 1e3:.2f} ms vs {b * 1e3:.2f} ms)", "<= 1.25x", ratio <= 1.25)
    return ratio <= 1.25


def _time_command(code: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_import() -> bool:
    discover = ("import pasarela; from pasarela.plugins import get_plugin_manager; "
                "get_plugin_manager().providers()")
    base = _time_command("pass")
    full = _time_command(discover)
    extra = full - base
    report("import pasarela + plugin discovery",
           f"{extra * 1e3:.0f} ms over `python -c pass` ({base * 1e3:.0f} ms); "
           f"{full / base:.1f}x", "< 200 ms", extra < 0.2)
    return extra < 0.2


def main() -> int:
    results = [bench_create(), bench_import()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
