"""Cost analysis budget: ``pasarela costs`` (the report: tiers, every per-payment fee,
expected against actual, fixed fees, shortfall, transit, refunds) over 1,000,000
payments and their settlement lines on SQLite, under 10 s and 300 MB peak memory.

The data (``reconcile_data.py``'s payments, and a settlement line with a fee for
each, as a reconciliation run leaves them) is made first and not timed; the report
runs in a child process, which reports its wall time and its peak resident memory
(``VmHWM``, the interpreter and its imports included), as ``bench_reconcile.py``.

    .venv/bin/python bench/bench_costs.py [--count N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from harness import report, report_run


TIME_BUDGET_S = 10.0
MEMORY_BUDGET_MB = 300.0
CHUNK = 20_000

_CHILD = r"""
import json, resource, sys, time
from pasarela.reconcile.cost_model import CostSetup, cost_report
from pasarela.store import Store
from datetime import datetime, timedelta, UTC

url, count = sys.argv[1], int(sys.argv[2])
since = datetime(2026, 10, 1, tzinfo=UTC)
until = since + timedelta(seconds=count + 1)
setup = CostSetup.from_tables({"fake": {
    "percent": "3.5", "fixed": "PEN 0.50", "igv": True, "settlement_days": 2,
    "cost_of_capital": "12", "refund_fixed": "PEN 2.00",
    "monthly": {"platform": "PEN 100.00"},
    "commitment": {"volume": "PEN 30000000.00"},
    "tiers": [{"from": "PEN 1000000.00", "percent": "3.4"}],
    "contract": {"start": "2026-01-01", "term_months": 12, "auto_renew": True,
                 "notice_days": 60}}})
store = Store(url)
started = time.perf_counter()
result = cost_report(store, since, until, setup, as_of=until)
elapsed = time.perf_counter() - started
def peak_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
data = result.to_dict()
print(json.dumps({"seconds": elapsed, "peak_mb": peak_mb(),
                  "count": sum(line.succeeded for line in result.lines),
                  "settled": sum(line.with_actual for line in result.lines),
                  "difference": sum(line.fee_difference for line in result.lines),
                  "rows": len(data["rows"])}))
"""


def _settlement_lines(url: str, count: int) -> int:
    """A line with the charged fee for each payment; every 1,000th charged 0.01 more.
    Returns the sum of the differences planted (minor units)."""
    from reconcile_data import BASE, amount, fee

    from pasarela.store import Store
    from pasarela.store.reconcile_schema import settlement_lines

    planted = 0
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            for start in range(0, count, CHUNK):
                rows = []
                for i in range(start, min(count, start + CHUNK)):
                    minor = amount(i)
                    extra = 1 if i % 1000 == 0 else 0
                    planted += extra
                    at = BASE + timedelta(seconds=i)
                    rows.append({
                        "run_key": "bench", "line_key": f"l{i}", "content_hash": "0" * 32,
                        "line_no": i + 2, "provider": "fake", "provider_reference": f"r{i}",
                        "amount_minor": minor, "currency": "PEN",
                        "fee_minor": fee(minor) + extra, "status": "paid", "occurred_at": at,
                        "payment_id": f"P{i:025d}", "matched_by": "reference",
                        "category": "matched", "created_at": at})
                conn.execute(sa.insert(settlement_lines), rows)
    finally:
        store.close()
    return planted


def bench_costs(count: int = 1_000_000) -> bool:
    from reconcile_data import create_payments

    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        made = time.perf_counter()
        create_payments(url, count)
        planted = _settlement_lines(url, count)
        print(f"       planted {planted:,} fee differences of PEN 0.01")
        print(f"       data: {count:,} payments and settlement lines in "
              f"{time.perf_counter() - made:.1f} s")
        child = subprocess.run([sys.executable, "-c", _CHILD, url, str(count)],
                               capture_output=True, text=True, check=False,
                               cwd=str(here))
    if child.returncode != 0:
        print(child.stderr[-3000:])
        report("costs", "failed", "", False)
        return False
    result = json.loads(child.stdout.strip().splitlines()[-1])
    # The 3.4 % tier is in force, so the expected fees are not the 3.5 % ones the
    # lines charge: the report must still count every payment and settled line.
    ok_found = result["count"] == count and result["settled"] == count
    report("costs counts every payment and line", f"{result['count']:,} / "
           f"{result['settled']:,}", f"{count:,} each", ok_found)
    within = report_run("costs", f"{count:,} payments and lines", "payments", count,
                        result["seconds"], result["peak_mb"],
                        seconds_per_million=TIME_BUDGET_S, memory_mb=MEMORY_BUDGET_MB)
    return within and ok_found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    return 0 if bench_costs(args.count) else 1


if __name__ == "__main__":
    raise SystemExit(main())
