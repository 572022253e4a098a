"""In-process meters: what this process did, told to whoever counts it, as it happens.

The engine calls :func:`transitioned` when a payment's transition is committed
through the one transition path (:mod:`pasarela.engine.transitions`) and
:func:`called` when an HTTP exchange with a provider ends
(:mod:`pasarela.engine.calls`). Each attached :class:`Meter` (the metrics of a web
app, :class:`pasarela.web.metrics.ProcessMetrics`) hears them; with none attached
each call is one truth test. A meter is held weakly (an app that goes away stops
hearing) and may filter by store (:meth:`Meter.transitioned` gets the writer the
transition went through). A meter's exception is logged and never reaches the
payment.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Protocol


if TYPE_CHECKING:
    from pasarela.lifecycle import Status
    from pasarela.model import Payment

from pasarela.logs import get_logger


__all__ = ["Meter", "attach", "called", "detach", "transitioned"]

log = get_logger("pasarela")


class Meter(Protocol):
    """What hears this process's events."""

    def transitioned(self, writer: object, payment: Payment, source: Status) -> None:
        """*payment* (as it now is) moved from *source*, written through *writer* (a
        :class:`~pasarela.store.Store` or a write batch of one)."""

    def called(self, account: str, operation: str, seconds: float, outcome: str) -> None:
        """A call to *account* for *operation* took *seconds*; *outcome* is the HTTP
        status class (``2xx``, ``4xx``, ``5xx``) or ``error`` (no answer)."""


_meters: weakref.WeakSet[Meter] = weakref.WeakSet()


def attach(meter: Meter) -> None:
    """Let *meter* hear this process's events (until :func:`detach` or it is gone)."""
    _meters.add(meter)


def detach(meter: Meter) -> None:
    _meters.discard(meter)


def transitioned(writer: object, payment: Payment, source: Status) -> None:
    if not _meters:
        return
    for meter in tuple(_meters):
        try:
            meter.transitioned(writer, payment, source)
        except Exception:  # a meter never fails a payment
            log.exception("meter_failed", hook="transitioned")


def called(account: str, operation: str, seconds: float, status_code: int | None) -> None:
    if not _meters:
        return
    outcome = "error" if status_code is None else f"{status_code // 100}xx"
    for meter in tuple(_meters):
        try:
            meter.called(account, operation, seconds, outcome)
        except Exception:  # a meter never fails a payment
            log.exception("meter_failed", hook="called")
