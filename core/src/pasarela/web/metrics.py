"""Prometheus series computed from the store at scrape time (``GET /metrics`` of
:func:`pasarela.web.app.create_app`).

Every series except ``pasarela_webhook_requests_total`` (the app's own counter) is
read from the store (:mod:`pasarela.store.queries`), so each replica of the server
shows the same figures: payments by provider, method and status; success rate per
provider; unknown payments; webhook verification failures (rejected deliveries);
outbox lag; and the provider call latency histogram, built from the recorded
exchanges (each scrape reads only the exchanges recorded since the previous one).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pasarela.errors import ConfigurationError
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.store import DATABASE_ERRORS, Store, queries


__all__ = ["LATENCY_BUCKETS", "StoreCollector"]

log = get_logger("pasarela")

#: Upper bounds (seconds) of the provider call latency histogram.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_SUCCEEDED: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})
_FINISHED: Final = _SUCCEEDED | {Status.FAILED, Status.CANCELED, Status.EXPIRED}
#: What a scrape that cannot read the store meets (``pasarela_store_up`` 0).
_UNREADABLE: Final[tuple[type[Exception], ...]] = (*DATABASE_ERRORS, ConfigurationError)


class StoreCollector(Collector):
    """Prometheus series computed from the store at scrape time.

    ``pasarela_store_up`` is 0 (and the other series absent) when the store cannot
    be read. The latency histogram keeps running totals: each scrape adds the
    exchanges whose id is above the last one seen (the first scrape reads them all).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last_exchange = 0
        # (provider, operation) -> [count per bucket..., count, sum of seconds]
        self._latency: dict[tuple[str, str], list[float]] = {}

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pasarela_store_up", "1 when the store answered this scrape.")
        try:
            lag = self.store.outbox_lag(now=datetime.now(UTC))
            with self._lock:
                read = queries.metrics(self.store, exchanges_after=self._last_exchange,
                                       bounds=LATENCY_BUCKETS)
                latency = self._latency_family(read.latency)
        except _UNREADABLE as exc:
            log.warning("metrics_store_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _payment_families(read.payments)
        failures = CounterMetricFamily(
            "pasarela_webhook_verification_failures",
            "Webhook deliveries rejected as forged, stale or malformed.", labels=["provider"])
        for provider, count in read.rejected.items():
            failures.add_metric([provider], count)
        yield failures
        yield GaugeMetricFamily("pasarela_outbox_lag_events",
                                "Lifecycle events not yet dispatched.", value=lag[0])
        yield GaugeMetricFamily("pasarela_outbox_oldest_age_seconds",
                                "Age of the oldest undispatched event.", value=lag[1])
        yield latency

    def _latency_family(self, rows: list[queries.LatencyTotals]) -> Metric:
        for row in rows:
            entry = self._latency.setdefault((row.provider, row.operation),
                                             [0.0] * (len(LATENCY_BUCKETS) + 2))
            for i, value in enumerate(row.buckets):
                entry[i] += float(value)
            entry[-2] += float(row.calls)
            entry[-1] += row.seconds
            self._last_exchange = max(self._last_exchange, row.last_id)
        family = HistogramMetricFamily(
            "pasarela_provider_call_seconds",
            "Provider HTTP call latency, from the recorded exchanges.",
            labels=["provider", "operation"])
        for (provider, operation), entry in sorted(self._latency.items()):
            pairs = [(_bound(b), entry[i]) for i, b in enumerate(LATENCY_BUCKETS)]
            pairs.append(("+Inf", entry[-2]))
            family.add_metric([provider, operation], pairs, sum_value=entry[-1])
        return family


def _payment_families(counts: list[queries.PaymentCount]) -> Iterator[Metric]:
    by_status = GaugeMetricFamily("pasarela_payments", "Payments by provider, method and "
                                  "status.", labels=["provider", "method", "status"])
    unknown = GaugeMetricFamily("pasarela_unknown_payments", "Payments whose outcome is "
                                "unknown (waiting for the resolver).", labels=["provider"])
    rate = GaugeMetricFamily(
        "pasarela_payment_success_rate",
        "Share of finished payments that succeeded (succeeded, partially refunded or "
        "refunded over those plus failed, canceled and expired), per provider.",
        labels=["provider"])
    finished: dict[str, int] = {}
    succeeded: dict[str, int] = {}
    unknowns: dict[str, int] = {}
    for provider, method, status, count in counts:
        by_status.add_metric([provider, method, status], count)
        state = Status(status)
        unknowns.setdefault(provider, 0)
        if state is Status.UNKNOWN:
            unknowns[provider] += count
        if state in _FINISHED:
            finished[provider] = finished.get(provider, 0) + count
        if state in _SUCCEEDED:
            succeeded[provider] = succeeded.get(provider, 0) + count
    for provider, total in sorted(finished.items()):
        rate.add_metric([provider], succeeded.get(provider, 0) / total)
    for provider, count in sorted(unknowns.items()):
        unknown.add_metric([provider], count)
    yield by_status
    yield rate
    yield unknown


def _bound(value: float) -> str:
    return repr(float(value))
