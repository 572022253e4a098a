"""The sandbox's clock: a base clock plus an offset that the control routes move."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


__all__ = ["Clock"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """Time as the sandbox sees it: ``base()`` (the wall clock unless given) plus
    :attr:`offset`.

    Every sandbox reads its time here, and every reading is an aware ``datetime`` in
    UTC (:meth:`timestamp` gives the same instant in Unix seconds, for APIs that speak
    them). ``POST /_control/clock`` moves it with :meth:`advance` or :meth:`set`; a
    test may also assign :attr:`offset`. A frozen base (such as
    :class:`pasarela.testing.helpers.ManualClock`) makes the sandbox's time stand still
    until moved.
    """

    def __init__(self, base: Callable[[], datetime] | None = None) -> None:
        self.base = base or _utc_now
        self.offset = timedelta()

    def now(self) -> datetime:
        moment = self.base() + self.offset
        if moment.tzinfo is None:
            raise ValueError("the sandbox clock's base must return aware datetimes")
        return moment.astimezone(UTC)

    __call__ = now

    def timestamp(self) -> float:
        """:meth:`now` in Unix seconds."""
        return self.now().timestamp()

    def advance(self, by: timedelta | float) -> datetime:
        """Move the time forward by *by* (seconds, or a timedelta; negative goes back)."""
        self.offset += by if isinstance(by, timedelta) else timedelta(seconds=by)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Make it *moment* (an aware datetime) now; the time goes on from there."""
        if moment.tzinfo is None:
            raise ValueError("the time to set needs a UTC offset")
        self.offset += moment - self.now()
        return self.now()

    def reset(self) -> None:
        """Back to the base clock's time."""
        self.offset = timedelta()
