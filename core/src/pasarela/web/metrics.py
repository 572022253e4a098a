"""Prometheus series of ``GET /metrics`` (:func:`pasarela.web.app.create_app`).

Two kinds, each in the app's own registry (never the global one):

**This process's counters and histograms**, updated when things happen
(:class:`ProcessMetrics`, told by :mod:`pasarela.engine.meters` and by the app's
webhook route), so a scrape reads no table for them. They count from the app's
start, per process, as Prometheus expects (``rate()`` and ``sum by`` over the
replicas do the rest):

- ``pasarela_webhook_requests_total{merchant, provider, code}``: webhook requests
  answered (``code="400"``: a forged, stale or malformed delivery);
- ``pasarela_webhook_request_duration_seconds{merchant, provider}``: from the
  request to the reply, commit included;
- ``pasarela_payment_transitions_total{merchant, provider, method, network, status}``:
  transitions committed by this process, by the status moved to;
- ``pasarela_payment_time_to_success_seconds{merchant, provider, method}``: creation
  to success of the payments this process saw succeed (a CIP: until it was paid);
- ``pasarela_provider_request_duration_seconds{merchant, provider, operation,
  outcome}``: each HTTP exchange with a provider (``outcome``: ``2xx``, ``4xx``,
  ``5xx`` or ``error``).

**Gauges read from the store** at scrape time (:class:`StoreCollector`), each by an
index and bounded by something other than the number of payments
(:mod:`pasarela.store.monitoring`):

- ``pasarela_payments_open{merchant, provider, method, status}``: payments still
  pending, processing or unknown (led by ``status`` on ``ix_payments_status_*``: the
  cost follows the open payments, which the expiry sweep bounds, not the table);
- ``pasarela_outbox_lag_events{merchant=""}`` and
  ``pasarela_outbox_oldest_age_seconds{merchant=""}``: undispatched lifecycle events
  (``ix_outbox_pending``: the cost follows the backlog). The outbox is the
  deployment's one queue, so its series is the deployment's (``merchant=""``);
- ``pasarela_alerts_firing{merchant, kind, subject}``: 1 per alert firing
  (``ix_alerts_open``);
- ``pasarela_store_up{merchant=""}``: 1 when the store answered this scrape (the other
  gauges are absent when it did not).

Every series has a ``merchant`` label: the merchant's name, ``""`` for the implicit
merchant (and for what belongs to the whole deployment). ``provider`` is the
account's own name (``pe_usd``, not ``bodega.pe_usd``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pasarela.engine import meters
from pasarela.errors import ConfigurationError
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.registry import MERCHANT_SEPARATOR, merchant_of
from pasarela.store import DATABASE_ERRORS, Store
from pasarela.store.monitoring import scrape


if TYPE_CHECKING:
    from pasarela.model import Payment


__all__ = ["LATENCY_BUCKETS", "PAY_BUCKETS", "ProcessMetrics", "StoreCollector", "labels_of"]

log = get_logger("pasarela")

#: Upper bounds (seconds) of the provider call and webhook latency histograms.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Upper bounds (seconds) of the time to success: a card in seconds, a CIP in hours
#: or days.
PAY_BUCKETS: Final = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 3 * 3600.0,
                      6 * 3600.0, 12 * 3600.0, 86400.0, 2 * 86400.0, 3 * 86400.0,
                      7 * 86400.0)
#: What a scrape that cannot read the store meets (``pasarela_store_up`` 0).
_UNREADABLE: Final[tuple[type[Exception], ...]] = (*DATABASE_ERRORS, ConfigurationError)


def labels_of(account: str) -> tuple[str, str]:
    """``(merchant, provider)`` labels of an account's full name."""
    merchant = merchant_of(account)
    return (merchant, account.partition(MERCHANT_SEPARATOR)[2] if merchant else account)


class ProcessMetrics:
    """This process's counters and histograms, in *registry*; a
    :class:`~pasarela.engine.meters.Meter` (attach it with :meth:`start`).
    Transitions written through another :class:`~pasarela.store.Store` than *store*
    are not counted (another pasarela in the same process)."""

    def __init__(self, registry: CollectorRegistry, store: Store) -> None:
        self.store = store
        self.webhook_requests = Counter(
            "pasarela_webhook_requests", "Webhook requests answered by this process.",
            ["merchant", "provider", "code"], registry=registry)
        self.webhook_seconds = Histogram(
            "pasarela_webhook_request_duration_seconds",
            "Webhook requests answered by this process: time to the reply, commit included.",
            ["merchant", "provider"], buckets=LATENCY_BUCKETS, registry=registry)
        self.transitions = Counter(
            "pasarela_payment_transitions",
            "Payment transitions committed by this process, by the status moved to.",
            ["merchant", "provider", "method", "network", "status"], registry=registry)
        self.time_to_success = Histogram(
            "pasarela_payment_time_to_success_seconds",
            "From a payment's creation to its success, for those this process saw succeed.",
            ["merchant", "provider", "method"], buckets=PAY_BUCKETS, registry=registry)
        self.provider_seconds = Histogram(
            "pasarela_provider_request_duration_seconds",
            "HTTP exchanges of this process with the providers.",
            ["merchant", "provider", "operation", "outcome"], buckets=LATENCY_BUCKETS,
            registry=registry)
        # Each label set's child, looked up once: ``labels()`` takes a lock and builds
        # the label tuple on every call, and these are counted on every delivery. A
        # child is created on its first use, as ``labels()`` did (a series appears
        # when first counted), and is the one ``labels()`` returns: none is removed.
        self._requests: dict[tuple[str, int | str], Counter] = {}
        self._request_seconds: dict[str, Histogram] = {}
        self._transitions: dict[tuple[str, str, str, str], Counter] = {}
        self._successes: dict[tuple[str, str], Histogram] = {}

    def start(self) -> ProcessMetrics:
        """Hear this process's events from now on (held weakly)."""
        meters.attach(self)
        return self

    def webhook(self, account: str, code: int | str, seconds: float | None = None) -> None:
        counter = self._requests.get((account, code))
        if counter is None:
            counter = self._requests[account, code] = self.webhook_requests.labels(
                *labels_of(account), str(code))
        counter.inc()
        if seconds is not None:
            histogram = self._request_seconds.get(account)
            if histogram is None:
                histogram = self._request_seconds[account] = self.webhook_seconds.labels(
                    *labels_of(account))
            histogram.observe(seconds)

    def transitioned(self, writer: object, payment: Payment, source: Status) -> None:
        if isinstance(writer, Store) and writer is not self.store:
            return
        method, status = payment.method.value, payment.status
        key = (payment.provider, method, payment.network or "", status.value)
        counter = self._transitions.get(key)
        if counter is None:
            counter = self._transitions[key] = self.transitions.labels(
                *labels_of(payment.provider), *key[1:])
        counter.inc()
        if status is Status.SUCCEEDED:
            waited = (payment.updated_at - payment.created_at).total_seconds()
            histogram = self._successes.get(key[:2])
            if histogram is None:
                histogram = self._successes[key[0], method] = self.time_to_success.labels(
                    *labels_of(payment.provider), method)
            histogram.observe(max(0.0, waited))

    def called(self, account: str, operation: str, seconds: float, outcome: str) -> None:
        merchant, provider = labels_of(account)
        self.provider_seconds.labels(merchant, provider, operation, outcome).observe(seconds)


class StoreCollector(Collector):
    """The gauges read from the store at scrape time, each by an index (see the
    module docs). ``pasarela_store_up`` is 0, and the others absent, when the store
    cannot be read."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pasarela_store_up", "1 when the store answered this scrape.",
                               labels=["merchant"])
        try:
            read = scrape(self.store, now=datetime.now(UTC))
        except _UNREADABLE as exc:
            log.warning("metrics_store_unavailable", error=type(exc).__name__)
            up.add_metric([""], 0)
            yield up
            return
        up.add_metric([""], 1)
        yield up
        family = GaugeMetricFamily(
            "pasarela_payments_open", "Payments still pending, processing or unknown.",
            labels=["merchant", "provider", "method", "status"])
        for row in read.open_payments:
            family.add_metric([row.merchant, labels_of(row.provider)[1], row.method,
                               row.status], row.payments)
        yield family
        # The outbox is the deployment's one queue (its worker dispatches every
        # merchant's events): one series, merchant="".
        events = GaugeMetricFamily("pasarela_outbox_lag_events",
                                   "Lifecycle events not yet dispatched.", labels=["merchant"])
        events.add_metric([""], read.outbox_events)
        yield events
        age = GaugeMetricFamily("pasarela_outbox_oldest_age_seconds",
                                "Age of the oldest undispatched event.", labels=["merchant"])
        age.add_metric([""], read.outbox_age)
        yield age
        alerts = GaugeMetricFamily(
            "pasarela_alerts_firing", "1 for each alert firing (docs/alerts.md).",
            labels=["merchant", "kind", "subject"])
        for alert in read.alerts:
            alerts.add_metric([alert.merchant, alert.kind, alert.subject], 1)
        yield alerts
