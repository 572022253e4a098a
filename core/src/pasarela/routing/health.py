"""Health: recent success rates per provider and method, for ``healthiest`` rules."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

import attrs

from pasarela.model import Method


if TYPE_CHECKING:
    from pasarela.store import Store


@attrs.frozen
class HealthStat:
    """Recent outcomes of one provider and method."""

    successes: int
    attempts: int

    @property
    def rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0


class HealthSource(Protocol):
    """Recent success numbers per provider and method (for ``healthiest``)."""

    def stats(self, provider: str, method: Method) -> HealthStat | None:
        """The recent outcomes of *provider* for *method*, or None when there are none."""


class MappingHealth:
    """Health numbers given as a mapping ``{(provider, method): HealthStat}``."""

    def __init__(self, data: Mapping[tuple[str, str], HealthStat]) -> None:
        self.data = {(name, str(method)): stat for (name, method), stat in data.items()}

    def stats(self, provider: str, method: Method) -> HealthStat | None:
        return self.data.get((provider, str(method)))


#: Payment statuses that count as a success, and as a failure, for health.
HEALTH_SUCCESS: Final = frozenset({"pending", "processing", "succeeded", "partially_refunded",
                                   "refunded", "expired", "canceled"})
HEALTH_FAILURE: Final = frozenset({"failed", "unknown"})


class StoreHealth:
    """Success rates from the payments of the last *window*, cached for *ttl*.

    One grouped query serves every provider and method. Payments are chosen by
    id, a ULID that starts with its creation time, so the primary key index serves
    the window. A payment counts as a success once the provider accepted it
    (pending and later, an expiry or cancel included), as a failure when it failed
    or its outcome is unknown; payments still ``created`` are in flight and not
    counted.
    """

    def __init__(self, store: Store, *, window: timedelta = timedelta(hours=1),
                 ttl: timedelta = timedelta(seconds=30),
                 clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.window = window
        self.ttl = ttl
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.queries = 0
        self._data: dict[tuple[str, str], HealthStat] = {}
        self._fetched_at: datetime | None = None
        self._lock = threading.Lock()

    def stats(self, provider: str, method: Method) -> HealthStat | None:
        now = self.clock()
        fetched = self._fetched_at
        if fetched is None or now - fetched >= self.ttl or now < fetched:
            with self._lock:
                if self._fetched_at is fetched:
                    self._data = self._query(now)
                    self._fetched_at = now
        return self._data.get((provider, str(method)))

    def _query(self, now: datetime) -> dict[tuple[str, str], HealthStat]:
        # Imported here: routing does not need the store until a health read.
        from pasarela.store import queries  # noqa: PLC0415

        counts: dict[tuple[str, str], list[int]] = {}
        for provider, method, status, count in queries.payment_counts(
                self.store, created_since=now - self.window):
            if status in HEALTH_SUCCESS or status in HEALTH_FAILURE:
                tally = counts.setdefault((provider, method), [0, 0])
                tally[1] += count
                if status in HEALTH_SUCCESS:
                    tally[0] += count
        self.queries += 1
        return {key: HealthStat(ok, total) for key, (ok, total) in counts.items()}
