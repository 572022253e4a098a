"""``make bench``: every benchmark, each printing ratios measured in the same run.

Each benchmark module runs in two passes: ``quiet`` (nothing else started) and ``busy``
(a bounded CPU load on the other core, :func:`harness.busy_load`); every line of both
is printed at the end side by side, with one verdict per line: met only when it holds
in both passes.

    python bench/run.py [--busy-only | --quiet-only] [--only NAME[,NAME...]]

``make bench`` runs both passes, ``make bench BUSY=1`` the busy pass only.
``PASARELA_BENCH_SCALE`` scales the counts (see bench/harness.py).

To add a benchmark: a module ``bench/bench_NAME.py`` with ``main() -> int`` (0 when
its goals are met) printing its lines through ``harness.goal`` / ``harness.report``,
and one line in :data:`BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from contextlib import nullcontext
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness


#: The benchmark modules of bench/, in the order they run (one line each).
BENCHMARKS = [
    "bench_core",
    "bench_expiry",
    "bench_routing",
    "bench_webhooks",
    "bench_reconcile",
    "bench_relays",
    "bench_costs",
    "bench_merchants",
    "bench_metrics",
    "bench_console",
    "bench_chain",
]


def run_pass(name: str, modules: list[str]) -> int:
    """Run every module in pass *name*; how many benchmark groups missed a goal."""
    harness.set_pass(name)
    print(f"\n=== {name} pass" + (" (one core kept busy beside the benchmark)"
                                  if name == "busy" else "") + " ===\n", flush=True)
    failures = 0
    with harness.busy_load() if name == "busy" else nullcontext():
        harness.machine()
        for module_name in modules:
            module = importlib.import_module(module_name)
            argv, sys.argv = sys.argv, [module_name]  # modules parse their own options
            started = time.perf_counter()
            try:
                failures += module.main() != 0
            finally:
                sys.argv = argv
            print(f"       ({module_name}: {time.perf_counter() - started:.0f} s)\n",
                  flush=True)
    return failures


def summary(passes: list[str]) -> int:
    """Every judged line with its value in each pass and its verdict; how many missed."""
    print("\n=== summary: every goal, quiet and busy ===\n")
    speed = harness.PASSES.lines.get(harness.MACHINE, {})
    print(f"{harness.MACHINE} (what the absolute lines depend on)\n        "
          + "  |  ".join(f"{p}: {speed[p].value if p in speed else 'not run'}"
                         for p in passes) + "\n")
    missed = 0
    for name, by_pass in harness.PASSES.lines.items():
        first = next(iter(by_pass.values()))
        if not first.judged:
            continue
        values = "  |  ".join(f"{p}: {by_pass[p].value if p in by_pass else 'not run'}"
                              for p in passes)
        holds = all(p in by_pass and by_pass[p].ok for p in passes)
        if not holds:
            missed += 1
        verdict = ("met" if holds and len(passes) == 2 else
                   f"met ({passes[0]} pass only)" if holds else "MISSED")
        print(f"[{verdict}] {name}\n        goal {first.goal}  |  {values}")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--busy-only", action="store_true")
    which.add_argument("--quiet-only", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated module names")
    args = parser.parse_args(argv)
    modules = [m.strip() if m.strip().startswith("bench_") else f"bench_{m.strip()}"
               for m in args.only.split(",") if m.strip()] or BENCHMARKS
    passes = ["busy"] if args.busy_only else ["quiet"] if args.quiet_only else ["quiet", "busy"]
    print("pasarela benchmarks (ratios against baselines measured in this run"
          + (f"; scale {harness.SCALE:g}" if harness.SCALE != 1 else "") + ")")
    started = time.perf_counter()
    for name in passes:
        run_pass(name, modules)
    missed = summary(passes)
    print(f"\n{'every goal met' if not missed else f'{missed} goal(s) missed'} "
          f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
