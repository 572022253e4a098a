"""A tiny benchmark harness: measure a subject and its baseline in the same run,
interleaved, and report the ratio of their medians."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


ROOT = Path(__file__).resolve().parents[1]


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


def compare(subject: Callable[[int], None], baseline: Callable[[int], None], *, n: int,
            rounds: int = 5) -> tuple[float, float, float]:
    """Interleave rounds of subject and baseline; return (subject s/op, baseline s/op, ratio)."""
    subject_times, baseline_times = [], []
    offset = 0
    for _ in range(rounds):
        baseline_times.append(per_op(lambda i, o=offset: baseline(o + i), n))
        subject_times.append(per_op(lambda i, o=offset: subject(o + i), n))
        offset += n
    s, b = statistics.median(subject_times), statistics.median(baseline_times)
    return s, b, s / b


def report(name: str, value: str, budget: str, ok: bool) -> None:
    mark = "ok  " if ok else "OVER"
    print(f"[{mark}] {name:<48} {value:<40} budget: {budget}")


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
