"""Reconciliation goal: 1,000,000 settlement lines (a CSV file) against 1,000,000
payments on SQLite, under 12 s and 250 MB peak memory, streaming.

The data (``reconcile_data.py``) is made first and not timed; the reconciliation
(CSV parsing, matching, writing lines and differences, the missing-at-provider
pass) runs in a child process, once per round on a fresh copy of the database,
which reports its wall time and its peak resident memory (``VmHWM`` from
``/proc/self/status``, the interpreter and its imports included; ``ru_maxrss``
elsewhere, which on Linux starts from the parent's RSS).

    .venv/bin/python bench/bench_reconcile.py [--count N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import goal, report, rounds, scaled


TIME_BUDGET_S = 12.0
MEMORY_BUDGET_MB = 250.0

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
from reconcile_data import window
from pasarela.reconcile import batch_gc, reconcile
from pasarela.reconcile.csv_import import ColumnMap, CsvReport, read_csv
from pasarela.store import Store

url, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
since, until = window(count)
store = Store(url)
mapping = ColumnMap.load(None, ["provider_reference=reference", "amount=amount", "fee=fee",
                                "status=status", "occurred_at=paid_at"], ["currency=PEN"])
bad = CsvReport()
started = time.perf_counter()
with batch_gc():  # as `pasarela reconcile` runs it
    summary = reconcile(store, read_csv(path, mapping, provider="fake", report=bad),
                        provider="fake", since=since, until=until, key="bench")
elapsed = time.perf_counter() - started
def peak_mb():
    # This process's own high-water mark. ru_maxrss is not it on Linux: a child
    # starts from its parent's RSS at fork (make bench's parent has run the other
    # benchmarks by then), and execve keeps it.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
peak = peak_mb()
print(json.dumps({"seconds": elapsed, "peak_mb": peak, "summary": summary.to_dict(),
                  "bad": bad.bad}))
"""


def bench_reconcile(count: int = 1_000_000) -> bool:
    from reconcile_data import create_payments, write_settlements

    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"  # seeded once, copied per round
        made = time.perf_counter()
        create_payments(url, count)
        planted = write_settlements(Path(tmp) / "settlements.csv", count)
        print(f"       data: {count:,} payments and lines in {time.perf_counter() - made:.1f} s; "
              f"planted {planted}")
        results = []
        for r in range(rounds(2)):
            db = Path(tmp) / f"round-{r}.db"
            shutil.copyfile(Path(tmp) / "bench.db", db)
            child = subprocess.run(
                [sys.executable, "-c", _CHILD, f"sqlite:///{db}",
                 str(Path(tmp) / "settlements.csv"), str(count), str(here)],
                capture_output=True, text=True, check=False)
            db.unlink()
            if child.returncode != 0:
                print(child.stderr[-3000:])
                report("reconcile", "failed", "", False)
                return False
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    result = results[-1]
    counts = result["summary"]["counts"]
    print(f"       counts: {counts}")
    # Every planted difference found: a line whose reference nobody has is matched by
    # amount and date to the payment it settles, and the payment a duplicate displaced
    # is missing at the provider.
    expected = {"amount_mismatch": planted["amount_mismatch"],
                "fee_mismatch": planted["fee_mismatch"], "duplicate": planted["duplicate"],
                "missing_at_provider": planted["duplicate"], "missing_in_books": 0,
                "status_mismatch": 0}
    ok_found = all({name: res["summary"]["counts"][name] for name in expected} == expected
                   and res["bad"] == 0 for res in results)
    found = {name: counts[name] for name in expected}
    report("reconcile finds every planted difference", f"{sum(found.values())} found",
           f"{sum(expected.values())} planted, by category", ok_found)
    if not ok_found:
        print(f"       found {found}, planted {expected}, bad lines {result['bad']}")
    label = f"{count:,} lines vs {count:,} payments"
    per_million = [res["seconds"] / count * 1_000_000 for res in results]
    ok_time = goal(f"reconcile time per 1,000,000 lines ({label})", per_million, unit=" s",
                   at_most=TIME_BUDGET_S, digits=1,
                   detail=f"{count / statistics.median(r['seconds'] for r in results):,.0f} "
                          "lines/s" + ("" if count == 1_000_000 else ", scaled linearly"))
    ok_mem = goal(f"reconcile peak memory ({label})", [res["peak_mb"] for res in results],
                  unit=" MB", at_most=MEMORY_BUDGET_MB, digits=0)
    return ok_time and ok_mem and ok_found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=scaled(1_000_000, 1000))
    args = parser.parse_args(argv)
    return 0 if bench_reconcile(args.count) else 1


if __name__ == "__main__":
    raise SystemExit(main())
