"""The circuit breaker: skip a provider and method that keeps failing, for a while."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from pasarela.model import Method


class CircuitBreaker:
    """Skip a provider and method after *threshold* consecutive failures, for *cool_off*.

    After the cool-off the provider is tried again: a success closes the circuit, a
    failure opens it again at once. State is in memory, per process, fed by
    :meth:`Router.record_outcome`.
    """

    def __init__(self, *, threshold: int = 5, cool_off: timedelta = timedelta(seconds=60)) -> None:
        if threshold < 1:
            raise ValueError("threshold must be 1 or more")
        self.threshold = threshold
        self.cool_off = cool_off
        self._failures: dict[tuple[str, str], int] = {}
        self._open_until: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def record(self, provider: str, method: Method | str, ok: bool, *, now: datetime) -> None:
        key = (provider, str(method))
        with self._lock:
            if ok:
                self._failures.pop(key, None)
                self._open_until.pop(key, None)
                return
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            if failures >= self.threshold:
                self._open_until[key] = now + self.cool_off

    def blocked(self, provider: str, method: Method | str, now: datetime) -> str | None:
        """Why *provider* is skipped for *method* at *now*, or None if it is not."""
        if not self._open_until:
            return None
        until = self._open_until.get((provider, str(method)))
        if until is None or now >= until:
            return None
        failures = self._failures.get((provider, str(method)), 0)
        return (f"circuit open after {failures} consecutive {method} failures, "
                f"until {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
