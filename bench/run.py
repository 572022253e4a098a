"""``make bench``: every benchmark, each printing ratios measured in the same run."""

from __future__ import annotations

import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_core
import bench_costs
import bench_expiry
import bench_merchants
import bench_reconcile
import bench_relays
import bench_routing
import bench_webhooks


def main() -> int:
    print("pasarela benchmarks (ratios against baselines measured in this run)\n")
    failures = 0
    for module in (bench_core, bench_expiry, bench_routing, bench_webhooks, bench_reconcile,
                   bench_relays, bench_costs, bench_merchants):
        failures += module.main() != 0
    print("\nall budgets met" if not failures else f"\n{failures} benchmark group(s) over budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
