"""A tiny benchmark harness: measure a subject and its baseline in the same run,
interleaved, and report the ratio of their medians.

Two kinds of lines:

- :func:`goal`: a figure measured in several rounds, printed with its median and its
  spread (lowest to highest round) and judged against its goal by the median;
- :func:`report`: a line with its value as text and a verdict (``budget="reported"``
  for a line that is only informative).

Both are recorded for the pass running (``quiet`` or ``busy``, set by ``bench/run.py``
through :func:`set_pass`), so that ``make bench`` can print every line of both passes
side by side with one verdict: met only when the line holds in both.

``PASARELA_BENCH_SCALE`` (default 1) scales the counts of the benchmarks that read it
through :func:`scaled` (0.1 for a quick look while developing); ``PASARELA_BENCH_ROUNDS``
overrides the rounds of those that read :func:`rounds`. A figure measured at another
scale than 1 is marked so in its line.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx


ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("PASARELA_BENCH_SCALE", "1") or "1")


def scaled(count: int, minimum: int = 1) -> int:
    """*count* times ``PASARELA_BENCH_SCALE``, at least *minimum*."""
    return max(minimum, round(count * SCALE))


def rounds(default: int) -> int:
    """How many rounds a benchmark runs: ``PASARELA_BENCH_ROUNDS`` or *default*."""
    return max(1, int(os.environ.get("PASARELA_BENCH_ROUNDS", "0") or 0) or default)


# --- the lines of a run, per pass --------------------------------------------------------


@dataclass
class Line:
    """One printed line of one pass."""

    name: str
    value: str
    goal: str
    ok: bool
    judged: bool  # False for a line that is only reported


@dataclass
class Passes:
    """Every line of every pass of this process, in the order first printed."""

    current: str = "quiet"
    lines: dict[str, dict[str, Line]] = field(default_factory=dict)

    def add(self, line: Line) -> None:
        self.lines.setdefault(line.name, {})[self.current] = line


PASSES = Passes()


def set_pass(name: str) -> None:
    """Record the lines printed from now on as pass *name* (``quiet`` or ``busy``)."""
    PASSES.current = name


def goal(name: str, values: Sequence[float], *, unit: str = "", at_most: float | None = None,
         at_least: float | None = None, digits: int = 2, detail: str = "") -> bool:
    """Print and record a figure measured in rounds (*values*, one per round): its
    median, its spread, and whether the median meets the goal (``<= at_most`` or
    ``>= at_least``). Returns that verdict."""
    assert (at_most is None) != (at_least is None), "one goal: at_most or at_least"
    median = statistics.median(values)
    ok = median <= at_most if at_most is not None else median >= at_least  # type: ignore[operator]
    bound = at_most if at_most is not None else at_least
    target = f"{'<=' if at_most is not None else '>='} {bound:,.{digits}f}{unit}"

    def fmt(v: float) -> str:
        return f"{v:,.{digits}f}"

    spread = (f" ({fmt(min(values))}-{fmt(max(values))} over {len(values)} rounds)"
              if len(values) > 1 else " (1 round)")
    scale = f" [scale {SCALE:g}]" if SCALE != 1 else ""
    value = f"{fmt(median)}{unit}{spread}{scale}" + (f"; {detail}" if detail else "")
    _print(name, value, target, ok)
    PASSES.add(Line(name, f"{fmt(median)}{unit}{spread}", target, ok, True))
    return ok


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(script: str, *args: str, module: str | None = None) -> Iterator[str]:
    """Run a server in its own process; yield its base URL.

    *script* is a file in bench/ taking the port as first argument, or, with
    *module*, a ``python -m module --port N`` server.
    """
    port = free_port()
    command = ([sys.executable, "-m", module, "--port", str(port), *args] if module
               else [sys.executable, str(ROOT / "bench" / script), str(port), *args])
    proc = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(url + "/", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{script} did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def per_op(fn: Callable[[int], None], n: int) -> float:
    """Seconds per operation for *n* calls of fn(i)."""
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n


def compare_rounds(subject: Callable[[int], None], baseline: Callable[[int], None], *,
                   n: int, rounds: int = 5) -> tuple[list[float], list[float]]:
    """Interleave rounds of subject and baseline; (subject s/op, baseline s/op) per round."""
    subject_times, baseline_times = [], []
    offset = 0
    for _ in range(rounds):
        baseline_times.append(per_op(lambda i, o=offset: baseline(o + i), n))
        subject_times.append(per_op(lambda i, o=offset: subject(o + i), n))
        offset += n
    return subject_times, baseline_times


def compare(subject: Callable[[int], None], baseline: Callable[[int], None], *, n: int,
            rounds: int = 5) -> tuple[float, float, float]:
    """Interleave rounds of subject and baseline; return (subject s/op, baseline s/op, ratio)."""
    subject_times, baseline_times = compare_rounds(subject, baseline, n=n, rounds=rounds)
    s, b = statistics.median(subject_times), statistics.median(baseline_times)
    return s, b, s / b


def _print(name: str, value: str, budget: str, ok: bool) -> None:
    mark = "ok  " if ok else "OVER"
    print(f"[{mark}] {name:<48} {value:<40} goal: {budget}", flush=True)


def report(name: str, value: str, budget: str, ok: bool) -> None:
    """Print and record a line: *value* as text, judged *ok* against *budget*
    (``"reported"``: not judged)."""
    _print(name, value, budget, ok)
    PASSES.add(Line(name.strip(), value, budget, ok, budget != "reported"))


# --- the machine: what the absolute lines depend on ---------------------------------------

#: The name of the line :func:`machine` prints (``bench/run.py`` shows it in its summary).
MACHINE = "machine: pure Python / SQLite commit"


def _python_unit() -> None:
    """A fixed piece of plain Python (dicts, strings, calls), a create's kind of work."""
    rows = [{"id": f"p-{i}", "amount": i * 7, "status": "pending"} for i in range(200)]
    for row in rows:
        row["label"] = f"{row['id']}:{row['amount']}".upper()
    sorted(rows, key=lambda r: (r["status"], -r["amount"]))


def machine(rounds: int = 5) -> tuple[float, float]:
    """Print and record how fast this machine is right now: microseconds for a fixed
    piece of plain Python, and for one SQLite commit of a one-row insert (WAL,
    ``synchronous=NORMAL``, as the store runs), each the median of *rounds*. The
    absolute lines (ms, s, /s) move with these; the ratios much less."""
    import sqlite3
    import tempfile

    python = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(50):
            _python_unit()
        python.append((time.perf_counter() - started) / 50 * 1e6)
    commits = []
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "machine.db", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
            body = "x" * 1000
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(200):
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("INSERT INTO t (body) VALUES (?)", (body,))
                    db.execute("COMMIT")
                commits.append((time.perf_counter() - started) / 200 * 1e6)
        finally:
            db.close()
    unit, commit = statistics.median(python), statistics.median(commits)
    report(MACHINE, f"{unit:.0f} us / {commit:.1f} us (medians of {rounds})", "reported", True)
    return unit, commit


# --- the busy pass: a bounded CPU load beside the benchmark ------------------------------

_SPIN = """
import os, sys, time
cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
if len(cpus) > 1:
    os.sched_setaffinity(0, {cpus[-1]})  # the other core: the last one
end = time.monotonic() + float(sys.argv[1])
x = 0
while time.monotonic() < end:
    for _ in range(10000):
        x += 1
"""


@contextmanager
def busy_load(max_seconds: float = 3600.0) -> Iterator[None]:
    """Keep one core busy (one process spinning, pinned to the last CPU where the
    platform allows) while the block runs; it stops at the block's end, or after
    *max_seconds* at the latest, whatever happens to this process."""
    proc = subprocess.Popen([sys.executable, "-c", _SPIN, str(max_seconds)])
    try:
        yield
    finally:
        proc.kill()
        proc.wait(timeout=10)


def report_run(name: str, label: str, unit: str, count: int, seconds: float, peak_mb: float,
               *, seconds_per_million: float, memory_mb: float) -> bool:
    """Report a whole run over *count* items (time scaled from a budget per million, and
    peak memory); True when both hold."""
    time_budget = seconds_per_million * count / 1_000_000
    ok_time, ok_mem = seconds < time_budget, peak_mb < memory_mb
    report(f"{name} time ({label})", f"{seconds:.1f} s ({count / seconds:,.0f} {unit}/s)",
           f"< {time_budget:g} s", ok_time)
    report(f"{name} peak memory ({label})", f"{peak_mb:.0f} MB", f"< {memory_mb:g} MB", ok_mem)
    return ok_time and ok_mem
