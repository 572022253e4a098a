"""The background worker: expiry sweep, resolver, outbox dispatcher, late refunds.

:func:`run_worker` runs, on every tick, each job until nothing is due:

- the expiry sweep (:func:`pasarela.engine.jobs.expire_due`): pending payments past
  ``expires_at`` are checked with the provider where it supports status, then
  expired (``payment.expired`` releases the stock);
- the resolver (:func:`pasarela.engine.jobs.resolve_due`): unknown and stale pending
  payments, and pending refunds, are asked about again on their backoff schedule;
- the outbox dispatcher (:func:`pasarela.engine.outbox.dispatch_outbox`): committed
  lifecycle events reach the observer hooks, with retries and backoff per event;
- the relays (:mod:`pasarela.engine.relaying`), when ``[[relays]]`` are configured:
  the outbox published to message brokers, marked per relay once acknowledged;
- the alerts (:mod:`pasarela.engine.alerts`), every ``[alerts] every``;
- the evidence chain's seal and retention (:mod:`pasarela.engine.audit`), every
  ``[audit] every``;
- the late-payment policy. ``flag`` (the default) does nothing more: the
  ``payment.late_succeeded`` event tells the host, which decides. ``refund``
  refunds, where the provider can, every payment that a ``payment.late_succeeded``
  event announced and that is still ``succeeded`` with no refund in flight.

A job that raises is logged and sleeps on an exponential backoff (with jitter) of
its own while the others carry on. Several workers may run at once against one
PostgreSQL: the store claims rows with ``FOR UPDATE SKIP LOCKED`` and a lease, so
each due payment is handed to one worker. SIGTERM and SIGINT stop the loop after
the batch in hand (a second SIGINT interrupts at once).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import attrs

from pasarela.engine.alerts import AlertJob
from pasarela.engine.audit import AuditJob
from pasarela.engine.relaying import start_relays
from pasarela.errors import ConfigurationError, PasarelaError
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.model import Refund, RefundStatus
from pasarela.provider import Operation, Provider
from pasarela.retry import Backoff
from pasarela.store import Store, queries


if TYPE_CHECKING:
    from pasarela.config import Config
    from pasarela.engine.context import Service


__all__ = [
    "LATE_PAYMENT_POLICIES",
    "Jobs",
    "LatePaymentPolicy",
    "WorkerStats",
    "late_payment_policy",
    "refund_late_payments",
    "run_worker",
]

log = get_logger("pasarela")

LatePaymentPolicy = Literal["flag", "refund"]
LATE_PAYMENT_POLICIES: Final = ("flag", "refund")
#: Automatic refunds of one late payment are tried this many times, then left to people.
MAX_REFUND_ATTEMPTS: Final = 5
#: How long a worker holds a late payment it is refunding (others skip it meanwhile).
REFUND_LEASE: Final = timedelta(minutes=2)
_LATE_REASON: Final = "late payment refunded automatically (worker.late_payment = refund)"


class Jobs(Protocol):
    """What the worker runs its jobs on: the facade, :class:`pasarela.Pasarela`, is
    one (a protocol, so that the engine does not import the facade above it)."""

    @property
    def config(self) -> Config: ...

    @property
    def service(self) -> Service: ...

    @property
    def store(self) -> Store: ...

    @property
    def providers(self) -> Mapping[str, Provider]: ...

    def expire_due(self) -> int: ...

    def resolve_due(self) -> int: ...

    def dispatch_outbox(self) -> int: ...

    def refund(self, payment_id: str, *, reason: str = "") -> Refund: ...


@attrs.define
class WorkerStats:
    """What a worker did: totals over its life."""

    ticks: int = 0
    expired: int = 0
    resolved: int = 0
    dispatched: int = 0
    relayed: int = 0
    refunded: int = 0
    #: Alerts opened or resolved.
    alerted: int = 0
    #: Chain heads sealed plus evidence records removed by retention.
    audited: int = 0
    errors: int = 0


@attrs.define
class _Job:
    name: str
    run: Callable[[], int]
    failures: int = 0
    resume_at: float = 0.0


def run_worker(
    pasarela: Jobs,
    *,
    once: bool = False,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    late_payment: LatePaymentPolicy | None = None,
    min_backoff: float = 1.0,
    max_backoff: float = 60.0,
    handle_signals: bool = True,
) -> WorkerStats:
    """Run the jobs every *interval* seconds until *stop* is set or a signal arrives.

    :param once: one tick (each job until nothing is due), then return; for cron
        and tests.
    :param stop: set it (from another thread) to end the loop after the batch in
        hand.
    :param late_payment: ``flag`` or ``refund``; default from the configuration
        (``[worker] late_payment``), else ``flag``.
    :param min_backoff, max_backoff: a failing job pauses *min_backoff* seconds,
        doubling with each further failure up to *max_backoff* (with jitter).
    :param handle_signals: on the main thread, SIGTERM and SIGINT set *stop*.
    :returns: the totals.
    """
    if interval < 0:
        raise ValueError("interval must not be negative")
    stop = stop if stop is not None else threading.Event()
    policy = late_payment or late_payment_policy(pasarela)
    if policy not in LATE_PAYMENT_POLICIES:
        raise ConfigurationError(f"must be one of {', '.join(LATE_PAYMENT_POLICIES)}",
                                 path="worker.late_payment")
    stats = WorkerStats()
    jobs = [
        _Job("expiry", lambda: _drain(pasarela, _due_for_expiry, pasarela.expire_due)),
        _Job("resolver", lambda: _drain(pasarela, _due_for_check, pasarela.resolve_due)),
        _Job("outbox", pasarela.dispatch_outbox),
    ]
    relaying = start_relays(pasarela.config, pasarela.store, getattr(pasarela, "plugins", None))
    if relaying is not None:
        jobs.append(_Job("relays", relaying.run))
    if policy == "refund":
        jobs.append(_Job("late_refunds", lambda: refund_late_payments(pasarela)))
    plugins = getattr(pasarela, "plugins", None)
    jobs.append(_Job("alerts", AlertJob(  # [alerts]: evaluated every [alerts] every
        pasarela.store, pasarela.config.alerts, clock=pasarela.service.clock,
        hook=None if plugins is None else plugins.alert)))
    jobs.append(_Job("audit", AuditJob(  # [audit]: seal a chain head, prune, every [audit] every
        pasarela.store, pasarela.config.audit, clock=pasarela.service.clock)))
    totals = {"expiry": "expired", "resolver": "resolved", "outbox": "dispatched",
              "relays": "relayed", "late_refunds": "refunded", "alerts": "alerted",
              "audit": "audited"}
    log.info("worker_started", once=once, interval=interval, late_payment=policy)
    with _signals_set(stop, enabled=handle_signals):
        while not stop.is_set():
            stats.ticks += 1
            for job in jobs:
                if stop.is_set():
                    break
                if job.resume_at > time.monotonic():
                    continue
                try:
                    done = job.run()
                except Exception as exc:
                    job.failures += 1
                    stats.errors += 1
                    pause = Backoff(base=min_backoff, cap=max_backoff,
                                    jitter=0.5).seconds(job.failures)
                    job.resume_at = time.monotonic() + pause
                    log.warning("worker_job_failed", job=job.name, failures=job.failures,
                                retry_in=round(pause, 2), error=type(exc).__name__,
                                detail=str(exc)[:300])
                    continue
                job.failures = 0
                field = totals[job.name]
                setattr(stats, field, getattr(stats, field) + done)
            if once:
                break
            stop.wait(interval)
    if relaying is not None:
        relaying.close()
    log.info("worker_stopped", **attrs.asdict(stats))
    return stats


def late_payment_policy(pasarela: Jobs) -> LatePaymentPolicy:
    """``[worker] late_payment`` from the configuration: ``flag`` unless set."""
    value: Any = pasarela.config.worker.late_payment
    if value not in LATE_PAYMENT_POLICIES:
        raise ConfigurationError(f"must be one of {', '.join(LATE_PAYMENT_POLICIES)}, "
                                 f"not {value!r}", path="worker.late_payment")
    return "refund" if value == "refund" else "flag"


def refund_late_payments(pasarela: Jobs, *, limit: int = 100) -> int:
    """Refund late payments (announced by ``payment.late_succeeded``); returns how many.

    A payment qualifies while it is ``succeeded``, its provider supports refunds, no
    refund of it is pending or done, and fewer than :data:`MAX_REFUND_ATTEMPTS`
    failed; failed attempts are retried on a backoff. A lease on the payment keeps
    two workers from refunding it at once.
    """
    refundable = sorted(name for name, adapter in pasarela.providers.items()
                        if adapter.supports(Operation.REFUND))
    if not refundable:
        return 0
    now = pasarela.service.clock()  # the jobs' time: leases and refund dates use it
    store = pasarela.store
    candidates = queries.refund_candidates(
        store, providers=refundable, announced_by="payment.late_succeeded",
        max_failed=MAX_REFUND_ATTEMPTS, limit=limit)
    refunded = 0
    for payment_id, failures in candidates:
        if failures:
            last = max(r.created_at for r in store.refunds_for(payment_id)
                       if r.status is RefundStatus.FAILED)
            if now < last + timedelta(minutes=5) * 2 ** (failures - 1):
                continue
        if not store.lease_payment(payment_id, status=Status.SUCCEEDED, now=now,
                                   until=now + REFUND_LEASE):
            # Another worker holds it. (``claimed_until`` is the jobs' lease column; the
            # expiry sweep reads it only for pending payments, and a late payment is
            # succeeded. A payment the sweep just expired is refunded once the sweep's
            # lease has run out.)
            continue
        try:
            refund = pasarela.refund(payment_id, reason=_LATE_REASON)
        except PasarelaError as exc:
            log.warning("late_refund_failed", payment_id=payment_id, code=str(exc.code),
                        attempt=failures + 1)
            continue
        log.info("late_payment_refunded", payment_id=payment_id, refund_id=refund.id,
                 status=refund.status.value)
        refunded += 1
    return refunded


# --- internals ------------------------------------------------------------------------


def _due_for_expiry(pasarela: Jobs) -> int:
    return queries.due_for_expiry_count(pasarela.store, now=pasarela.service.clock())


def _due_for_check(pasarela: Jobs) -> int:
    now = pasarela.service.clock()
    return (queries.due_for_check_count(pasarela.store, now=now)
            + queries.due_refund_check_count(pasarela.store, now=now))


def _drain(pasarela: Jobs, due: Callable[[Jobs], int],
           batch: Callable[[], int]) -> int:
    """Run *batch* while rows are due and each batch leaves fewer; the sum of results.

    The count excludes rows other workers hold, so the loop ends when the rest is
    theirs; rows that a batch could not finish (the provider did not answer) are
    rescheduled or leased, so they do not keep the loop going.
    """
    total = 0
    remaining = due(pasarela)
    while remaining:
        total += batch()
        left = due(pasarela)
        if left >= remaining:
            break
        remaining = left
    return total


@contextmanager
def _signals_set(stop: threading.Event, *, enabled: bool) -> Iterator[None]:
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
