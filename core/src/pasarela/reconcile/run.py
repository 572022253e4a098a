"""Reconciliation: does what a provider says it collected match our books?

:func:`reconcile` streams settlement lines (:class:`~pasarela.provider.SettlementLine`,
from a provider's API or :mod:`pasarela.reconcile.csv_import`) against the payments table,
in chunks: neither the lines nor the payments are ever all in memory. Each chunk's
lines are matched to payments by provider reference, then by order reference, then
by amount and date (the payment of that provider and amount created closest before
the line, within :data:`AMOUNT_DATE_WINDOW`, not matched already in this run), and
classified:

``matched``
    the line and the payment agree.
``missing_in_books``
    the provider says paid and our payment does not: healed through the lifecycle
    (cause ``reconcile``, :meth:`Service._apply_report`) and flagged, or, with no
    payment to heal, left unresolved.
``missing_at_provider``
    a payment we hold as paid, created in the window, that no line matched.
``status_mismatch``
    the line and the payment disagree in a way healing cannot fix (a refund we do
    not know of, a line for a failed payment).
``amount_mismatch``
    amount or currency differ (never healed).
``fee_mismatch``
    the fee charged differs from the expected one (the payment's
    ``routing.expected_fee``, else the fee schedule) by more than the tolerance.
``duplicate``
    a line identical to an earlier one of the same run.

A run is keyed by its ``run_key`` (see :func:`run_key`), each line by its
``line_key``: lines already recorded for the run are skipped, so running the same
reconciliation again changes nothing. Each chunk is written in one transaction
(its lines and its differences), so nothing is half written.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from pasarela.fees import FeeSchedule
from pasarela.provider import SettlementLine
from pasarela.reconcile.matching import (
    AMOUNT_DATE_WINDOW,
    CHUNK_SIZE,
    Run,
    SettlementRows,
    chunks,
    rows_of,
)
from pasarela.reconcile.vocabulary import Category, Difference, Summary, line_status
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.engine.context import Service
    from pasarela.store import Store


__all__ = [
    "AMOUNT_DATE_WINDOW",
    "BATCH_GC_THRESHOLD",
    "CHUNK_SIZE",
    "Category",
    "Difference",
    "Summary",
    "batch_gc",
    "differences",
    "line_status",
    "reconcile",
    "run_key",
    "run_totals",
]


#: The collector's first threshold under :func:`batch_gc` (Python's default is 700).
BATCH_GC_THRESHOLD: Final = 50_000


@contextmanager
def batch_gc() -> Iterator[None]:
    """Collect reference cycles less often for the duration: for a process whose job
    is one large reconciliation (``pasarela reconcile``, the benchmark).

    Each chunk's lines live until the chunk is written, so with the default
    thresholds the cyclic collector promotes them and walks every live object again
    and again: about a sixth of a million-line run's CPU time. Reconciliation makes
    no cycles of its own; memory is freed by reference counting as usual. The
    thresholds are process-wide, so a server reconciling in the background should
    not use this; they are restored on exit.
    """
    old = gc.get_threshold()
    gc.set_threshold(BATCH_GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def run_key(provider: str, since: datetime, until: datetime, source: str = "api") -> str:
    """The key of a reconciliation: provider, window and source (``api`` or a file's
    SHA-256). The same inputs give the same key, so a re-run is recognised."""
    text = f"{provider}|{since.astimezone(UTC).isoformat()}|{until.astimezone(UTC).isoformat()}"
    return hashlib.sha256(f"{text}|{source}".encode()).hexdigest()[:40]


def reconcile(
    store: Store,
    lines: Iterable[SettlementLine],
    *,
    provider: str,
    since: datetime,
    until: datetime,
    key: str | None = None,
    service: Service | None = None,
    fee_schedules: Mapping[tuple[str, str], FeeSchedule] | None = None,
    fee_tolerance: int = 1,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int], object] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Summary:
    """Match *lines* (of *provider*) against the payments in *store*; record and
    return what was found.

    :param key: the run key (default :func:`run_key` of provider and window).
    :param service: heals payments the provider says are paid (cause ``reconcile``);
        without one those are flagged and left unresolved.
    :param fee_schedules: ``(provider, method)`` to schedule, for payments with no
        ``routing.expected_fee``.
    :param fee_tolerance: how many minor units a fee may differ from the expected.
    :param progress: called with the number of lines of each chunk done.
    """
    now = (clock or (lambda: datetime.now(UTC)))()
    run = Run(store, provider=provider, key=key or run_key(provider, since, until),
               service=service, fee_schedules=fee_schedules or {},
               fee_tolerance=fee_tolerance, now=now)
    # A CSV file gives its lines as rows; any other source's are turned into rows.
    rows = lines.settlement_rows() if isinstance(lines, SettlementRows) else rows_of(lines)
    for chunk in chunks(rows, chunk_size):
        run.chunk(chunk)
        if progress is not None:
            progress(len(chunk))
    run.missing_at_provider(since, until, chunk_size)
    return run.summary


def differences(store: Store, key: str, *, page: int = 1000) -> Iterator[Difference]:
    """The differences recorded for run *key*, in order, read in pages."""
    last = 0
    while True:
        rows = queries.result_rows(store, key, after_id=last, limit=page)
        if not rows:
            return
        last = rows[-1].id
        for row in rows:
            yield Difference(
                category=Category(row.category), provider=row.provider,
                item_key=row.item_key, line_no=row.line_no, payment_id=row.payment_id,
                provider_reference=row.provider_reference,
                order_reference=row.order_reference, expected=row.expected,
                actual=row.actual, detail=row.detail, resolved=row.resolved,
                healed=row.healed)


def run_totals(store: Store, key: str) -> Summary:
    """The summary of everything recorded for run *key* (all its runs together)."""
    summary = Summary(run_key=key, provider="")
    counts = queries.run_counts(store, key)
    for category, provider, count in counts.lines:
        summary.counts[category] += count
        summary.lines += count
        summary.provider = provider
    missing = Category.MISSING_AT_PROVIDER.value
    summary.counts[missing] = counts.results.get(missing, 0)
    summary.unresolved = counts.unresolved
    summary.healed = counts.healed
    return summary
