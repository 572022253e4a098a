"""The one backoff policy and the one ``Retry-After`` parser (``pasarela.retry``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasarela.retry import CALL_RETRY, RESOLVER, Backoff, parse_retry_after


NOW = datetime(2026, 10, 21, 7, 27, tzinfo=UTC)


# --- parse_retry_after: delay-seconds --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("1.5", 1.5), ("007", 7.0)],
)
def test_delay_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(
    "value",
    ["soon", "120s", "-5", "+5", "1e3", "1_000", "0x10", "1,5", "12 0", "Wed, 32 Oct 2026"],
)
def test_garbage_is_none(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "9" * 400])
def test_not_a_finite_number_is_none(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


# --- parse_retry_after: HTTP dates ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2026 07:28:00 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-26 07:28:00 GMT",  # obsolete RFC 850
        "Wed Oct 21 07:28:00 2026",  # obsolete asctime (no zone: UTC)
        "Wed, 21 Oct 2026 08:28:00 +0100",
    ],
)
def test_http_dates_are_measured_from_now(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 60.0


def test_an_http_date_follows_the_given_clock() -> None:
    value = "Wed, 21 Oct 2026 07:28:00 GMT"
    assert parse_retry_after(value, now=NOW - timedelta(minutes=2)) == 180.0
    lima = timezone(timedelta(hours=-5))
    assert parse_retry_after(value, now=datetime(2026, 10, 21, 2, 27, 30, tzinfo=lima)) == 30.0


def test_without_now_an_http_date_is_measured_from_the_current_time() -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    seconds = parse_retry_after(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None
    assert 3500 < seconds <= 3600


@pytest.mark.parametrize(
    "value", ["Wed, 21 Oct 2026 07:26:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"]
)
def test_a_past_date_means_now(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 0.0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_gives_none_or_a_finite_wait(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


# --- Backoff: exponential with jitter ----------------------------------------------------


def test_exponential_ceiling_grows_then_caps() -> None:
    backoff = Backoff(base=0.5, factor=2.0, cap=3.0, jitter=0.0)
    assert [backoff.seconds(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.delay(2) == timedelta(seconds=1)


def test_a_long_run_of_attempts_stays_at_the_cap() -> None:
    # 2.0 ** 5000 overflows a float: the wait is the cap, not an OverflowError.
    assert Backoff(base=1.0, factor=2.0, cap=30.0).ceiling(5000) == 30.0
    assert Backoff(base=1, factor=2, cap=30, jitter=0.0).seconds(5000) == 30.0


@pytest.mark.parametrize(("jitter", "low"), [(1.0, 0.0), (0.5, 2.0), (0.25, 3.0)])
def test_jitter_draws_between_its_bounds(jitter: float, low: float) -> None:
    backoff = Backoff(base=4.0, factor=2.0, cap=100.0, jitter=jitter)
    asked: list[tuple[float, float]] = []

    def draw(lo: float, hi: float) -> float:
        asked.append((lo, hi))
        return hi

    assert backoff.seconds(1, draw=draw) == 4.0
    assert asked == [(low, 4.0)]
    waits = [backoff.seconds(1) for _ in range(500)]
    assert all(low <= wait <= 4.0 for wait in waits)
    assert max(waits) - min(waits) > 0  # it is drawn, not fixed


def test_call_retry_is_full_jitter_under_its_cap() -> None:
    assert CALL_RETRY.jitter == 1.0
    for attempt in range(1, 12):
        ceiling = CALL_RETRY.ceiling(attempt)
        assert ceiling <= CALL_RETRY.cap
        assert all(0.0 <= CALL_RETRY.seconds(attempt) <= ceiling for _ in range(50))


@pytest.mark.parametrize(
    ("name", "value"),
    [("base", -1.0), ("factor", -2.0), ("cap", -1.0), ("jitter", -0.1), ("jitter", 1.5)],
)
def test_negative_or_out_of_range_settings_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        Backoff(**{name: value})


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        CALL_RETRY.ceiling(0)
    with pytest.raises(ValueError, match="from 1"):
        RESOLVER.seconds(0)


# --- Backoff: fixed schedules ------------------------------------------------------------


def test_fixed_schedule_repeats_its_last_wait() -> None:
    backoff = Backoff.fixed(timedelta(seconds=1), timedelta(seconds=5), timedelta(minutes=1))
    assert [backoff.seconds(n) for n in range(1, 7)] == [1.0, 5.0, 60.0, 60.0, 60.0, 60.0]
    assert backoff.delay(100) == timedelta(minutes=1)
    # A fixed schedule has no jitter: the draw is never asked.
    assert backoff.seconds(2, draw=lambda lo, hi: pytest.fail("drew")) == 5.0


def test_resolver_schedule() -> None:
    assert [RESOLVER.delay(n) for n in range(1, 8)] == [
        timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
        timedelta(hours=1), timedelta(hours=6), timedelta(hours=6), timedelta(hours=6),
    ]


def test_a_fixed_schedule_needs_a_wait() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Backoff.fixed()
