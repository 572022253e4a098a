"""When to try again: the one backoff policy and the one ``Retry-After`` parser.

Every wait in pasarela comes from here: the retries of a provider call
(:data:`CALL_RETRY`, full-jitter exponential), the resolver that asks a provider
again about an unknown or stale payment (:data:`RESOLVER`, a fixed schedule, Kill
Bill's Janitor being the model), the worker's pause after a failed pass, and the
adapters' reading of a provider's ``Retry-After`` header (:func:`parse_retry_after`).

No I/O. The current time is read only when no *now* is passed, and the jitter is
drawn from :mod:`random` only when no *draw* is passed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs


__all__ = ["CALL_RETRY", "RESOLVER", "Backoff", "parse_retry_after"]


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative")


@attrs.frozen(kw_only=True)
class Backoff:
    """How long to wait before retry *attempt* (1-based).

    Either exponential (``base * factor ** (attempt - 1)``, capped at *cap*) or a
    fixed *schedule* of waits whose last value repeats. *jitter* is the fraction of
    that ceiling drawn at random: ``1.0`` is "full jitter" (a uniform draw between
    zero and the ceiling), ``0.5`` "equal jitter" (between half and all of it),
    ``0.0`` none.
    """

    base: float = attrs.field(default=0.2, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_positive)
    cap: float = attrs.field(default=5.0, validator=_positive)
    jitter: float = attrs.field(default=1.0, validator=[_positive, attrs.validators.le(1.0)])
    schedule: tuple[float, ...] = ()

    @classmethod
    def fixed(cls, *waits: timedelta) -> Backoff:
        """A schedule of waits, the last repeating."""
        if not waits:
            raise ValueError("a schedule needs at least one wait")
        return cls(jitter=0.0, schedule=tuple(w.total_seconds() for w in waits))

    def ceiling(self, attempt: int) -> float:
        """The wait before *attempt* without jitter (the most it can be), in seconds."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        if self.schedule:
            return self.schedule[min(attempt, len(self.schedule)) - 1]
        try:
            grown = self.base * self.factor ** (attempt - 1)
        except OverflowError:  # a long run of failures: the cap has long been reached
            return float(self.cap)
        return float(min(self.cap, grown))

    def seconds(self, attempt: int, *, draw: Callable[[float, float], float] | None = None
                ) -> float:
        """The wait before *attempt*, in seconds: the ceiling, or a jittered draw below it.

        *draw(low, high)* picks the jittered value (:func:`random.uniform` by default),
        between ``ceiling * (1 - jitter)`` and the ceiling.
        """
        top = self.ceiling(attempt)
        if not self.jitter:
            return top
        if draw is None:
            import random  # noqa: PLC0415 - with the first retry, not with discovery

            draw = random.uniform
        return draw(top * (1.0 - self.jitter), top)

    def delay(self, attempt: int) -> timedelta:
        """:meth:`seconds` as a :class:`~datetime.timedelta`."""
        return timedelta(seconds=self.seconds(attempt))


#: Retries of a provider call the adapter declares safe to repeat.
CALL_RETRY: Final = Backoff(base=0.2, factor=2.0, cap=5.0)

#: How long the resolver waits before asking again about an unknown or stale
#: payment, by attempt (the last value repeats).
RESOLVER: Final = Backoff.fixed(
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)


#: Delay-seconds: digits (a decimal fraction is tolerated), nothing else.
_DELAY_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3).

    Delay-seconds (``"120"``) or an HTTP date (``"Wed, 21 Oct 2026 07:28:00 GMT"``,
    measured from *now*, the current time by default; a date without a zone is
    taken as UTC). ``None`` for a missing or unreadable value (a negative number,
    ``"nan"``, ``"inf"``, words); never negative (a date in the past means "now").
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    from email.utils import parsedate_to_datetime  # noqa: PLC0415 - dates are rare here

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
