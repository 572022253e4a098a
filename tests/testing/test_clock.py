"""The sandbox clock: one return type (aware UTC datetimes), advanced and set by control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pasarela.testing.helpers import ManualClock
from pasarela.testing.sandbox import Clock


def test_follows_its_base_plus_an_offset() -> None:
    base = ManualClock(datetime(2030, 1, 15, 15, 0, tzinfo=UTC))
    clock = Clock(base)
    assert clock.now() == clock() == base.now
    assert clock.advance(90) == base.now + timedelta(seconds=90)
    assert clock.advance(timedelta(hours=-1)) == base.now - timedelta(minutes=58, seconds=30)
    base.now += timedelta(days=1)  # the base goes on; the offset stays
    assert clock.now() == base.now - timedelta(minutes=58, seconds=30)
    clock.reset()
    assert clock.now() == base.now


def test_readings_are_aware_utc_and_timestamps_agree() -> None:
    lima = timezone(timedelta(hours=-5))
    clock = Clock(lambda: datetime(2030, 1, 15, 10, 0, tzinfo=lima))
    now = clock.now()
    assert now.tzinfo is UTC
    assert now == datetime(2030, 1, 15, 15, 0, tzinfo=UTC)
    assert clock.timestamp() == now.timestamp()
    assert Clock().now().tzinfo is UTC  # the wall clock by default


def test_set_moves_to_a_moment_and_time_goes_on() -> None:
    base = ManualClock(datetime(2030, 1, 15, 15, 0, tzinfo=UTC))
    clock = Clock(base)
    target = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
    assert clock.set(target) == target
    base.now += timedelta(seconds=5)
    assert clock.now() == target + timedelta(seconds=5)
    with pytest.raises(ValueError, match="UTC offset"):
        clock.set(datetime(2031, 6, 1, 12, 0))  # noqa: DTZ001 - refused on purpose


def test_a_naive_base_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Clock(lambda: datetime(2030, 1, 1)).now()  # noqa: DTZ001 - refused on purpose
