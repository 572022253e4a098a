"""The background worker: expiry sweep, resolver, outbox dispatcher, late refunds.

:func:`run_worker` runs, on every tick, each job until nothing is due:

- the expiry sweep (:func:`pasarela.engine.jobs.expire_due`): pending payments past
  ``expires_at`` are checked with the provider where it supports status, then
  expired (``payment.expired`` releases the stock);
- the resolver (:func:`pasarela.engine.jobs.resolve_due`): unknown and stale pending
  payments are asked about again on their backoff schedule;
- the outbox dispatcher (:func:`pasarela.engine.outbox.dispatch_outbox`): committed
  lifecycle events reach the observer hooks, with retries and backoff per event;
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, Final, Literal

import attrs
import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.errors import ConfigurationError, PasarelaError
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.model import RefundStatus
from pasarela.provider import Operation
from pasarela.retry import Backoff
from pasarela.store.engine import WRITE
from pasarela.store.schema import outbox, payments, refunds


__all__ = [
    "LATE_PAYMENT_POLICIES",
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


@attrs.define
class WorkerStats:
    """What a worker did: totals over its life."""

    ticks: int = 0
    expired: int = 0
    resolved: int = 0
    dispatched: int = 0
    refunded: int = 0
    errors: int = 0


@attrs.define
class _Job:
    name: str
    run: Callable[[], int]
    failures: int = 0
    resume_at: float = 0.0


def run_worker(
    pasarela: Pasarela,
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
    if policy == "refund":
        jobs.append(_Job("late_refunds", lambda: refund_late_payments(pasarela)))
    totals = {"expiry": "expired", "resolver": "resolved", "outbox": "dispatched",
              "late_refunds": "refunded"}
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
    log.info("worker_stopped", **attrs.asdict(stats))
    return stats


def late_payment_policy(pasarela: Pasarela) -> LatePaymentPolicy:
    """``[worker] late_payment`` from the configuration: ``flag`` unless set."""
    value: Any = pasarela.config.worker.late_payment
    if value not in LATE_PAYMENT_POLICIES:
        raise ConfigurationError(f"must be one of {', '.join(LATE_PAYMENT_POLICIES)}, "
                                 f"not {value!r}", path="worker.late_payment")
    return "refund" if value == "refund" else "flag"


def refund_late_payments(pasarela: Pasarela, *, limit: int = 100) -> int:
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
    in_flight = sa.select(refunds.c.id).where(
        refunds.c.payment_id == payments.c.id,
        refunds.c.status.in_([RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value]),
    ).exists()
    failed = sa.select(sa.func.count()).where(
        refunds.c.payment_id == payments.c.id, refunds.c.status == RefundStatus.FAILED.value,
    ).scalar_subquery()
    announced = sa.select(outbox.c.id).where(
        outbox.c.payment_id == payments.c.id, outbox.c.type == "payment.late_succeeded",
    ).exists()
    query = (
        sa.select(payments.c.id, failed)
        .where(payments.c.status == Status.SUCCEEDED.value,
               payments.c.provider.in_(refundable), announced, ~in_flight,
               failed < MAX_REFUND_ATTEMPTS)
        .order_by(payments.c.updated_at, payments.c.id)
        .limit(limit)
    )
    store = pasarela.store
    with store.engine.connect() as conn:
        candidates = [(row[0], int(row[1])) for row in conn.execute(query)]
    refunded = 0
    for payment_id, failures in candidates:
        if failures:
            last = max(r.created_at for r in store.refunds_for(payment_id)
                       if r.status is RefundStatus.FAILED)
            if now < last + timedelta(minutes=5) * 2 ** (failures - 1):
                continue
        if not _lease(pasarela, payment_id, now):
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


def _lease(pasarela: Pasarela, payment_id: str, now: datetime) -> bool:
    """Hold *payment_id* for :data:`REFUND_LEASE`; False when another worker holds it.

    ``claimed_until`` is the job lease column; the expiry sweep reads it only for
    pending payments, and a late payment is succeeded. (A payment the sweep just
    expired is refunded once the sweep's lease has run out.)
    """
    at = now.astimezone(UTC)
    update = (
        sa.update(payments)
        .where(payments.c.id == payment_id, payments.c.status == Status.SUCCEEDED.value,
               sa.or_(payments.c.claimed_until.is_(None), payments.c.claimed_until <= at))
        .values(claimed_until=at + REFUND_LEASE)
    )
    with pasarela.store.engine.connect() as conn:
        conn.execution_options(**{WRITE: True})  # BEGIN IMMEDIATE on SQLite
        with conn.begin():
            return conn.execute(update).rowcount == 1


def _due_for_expiry(pasarela: Pasarela) -> int:
    at = pasarela.service.clock().astimezone(UTC)
    return _count(pasarela, (
        payments.c.status == Status.PENDING.value,
        payments.c.expires_at <= at,
        sa.or_(payments.c.claimed_until.is_(None), payments.c.claimed_until <= at),
    ))


def _due_for_check(pasarela: Pasarela) -> int:
    at = pasarela.service.clock().astimezone(UTC)
    return _count(pasarela, (
        payments.c.status.in_([Status.UNKNOWN.value, Status.PENDING.value]),
        payments.c.next_check_at <= at,
    ))


def _count(pasarela: Pasarela, where: tuple[sa.ColumnElement[bool], ...]) -> int:
    with pasarela.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(*where)
                                .select_from(payments)).scalar_one())


def _drain(pasarela: Pasarela, due: Callable[[Pasarela], int],
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
