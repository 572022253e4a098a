"""The chain's canonical text, written without ``json.dumps`` for flat contents, is
byte for byte what ``json.dumps`` writes (so hashes stored before still verify)."""

from __future__ import annotations

import enum
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pasarela.store import chain


def _reference_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _reference_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _reference_time(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)


def _reference(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_reference_default).encode("utf-8")


class _Status(enum.StrEnum):
    PENDING = "pending"


class _Number(enum.IntEnum):
    THREE = 3


_CHARS = ["a", "é", '"', "\\", "\n", "\x00", "\x1f", "\u2028", "😀", "/", " ", "ñ"]


def _text(rnd: random.Random) -> str:
    return "".join(rnd.choice(_CHARS) for _ in range(rnd.randint(0, 8)))


def _time(rnd: random.Random) -> datetime:
    value = datetime(rnd.choice([1, 999, 1000, 2026, 9998]), rnd.randint(1, 12),
                     rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59),
                     rnd.randint(0, 59), rnd.choice([0, 1, 999_999, rnd.randint(0, 999_999)]),
                     tzinfo=UTC)
    zone = rnd.choice([None, UTC, timezone(timedelta(hours=-5)), ZoneInfo("America/Lima"),
                       timezone(timedelta(0))])
    if value.year == 1 and zone is not None:
        zone = UTC  # an offset east of UTC would leave year 1
    return value.replace(tzinfo=zone)


def _value(rnd: random.Random) -> Any:
    return rnd.choice([
        lambda: _text(rnd), lambda: rnd.randint(-10**20, 10**20), lambda: None,
        lambda: True, lambda: False, lambda: _time(rnd),
        lambda: Decimal(rnd.choice(["1.10", "-0", "1E+3"])), lambda: _Status.PENDING,
        lambda: _Number.THREE, lambda: {"b": 1, "a": [1, _text(rnd)]}, lambda: (1, "x"),
    ])()


def test_canonical_is_json_dumps_byte_for_byte() -> None:
    rnd = random.Random(23)
    for _ in range(5_000):
        content = {_text(rnd) or "k": _value(rnd) for _ in range(rnd.randint(0, 10))}
        assert chain.canonical(content) == _reference(content), content


def test_utc_text_is_strftime_of_utc() -> None:
    rnd = random.Random(7)
    for _ in range(5_000):
        value = _time(rnd)
        assert chain.utc_text(value) == _reference_time(value), value
    same = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    assert chain.utc_text(same) == chain.utc_text(same) == "2026-12-02T07:00:00.000000Z"


def test_a_transition_hash_is_unchanged() -> None:
    """The hash the json.dumps-based text gave this transition before."""
    row = {"payment_id": "01JF0000000000000000000000", "seq": 2, "source": "pending",
           "target": "expired", "cause": "expiry", "applied": True,
           "reason": 'late ñ "x"', "event_id": None, "version": 3,
           "at": datetime(2026, 12, 2, 7, 0, 1, 5, tzinfo=UTC)}
    assert chain.record_hash("", "transition", chain.transition_content(row)) == (
        "44712e466e4c6d9704a87cf45fdcc1c9b8f576b57995eaf84d345685a9d79b09")


def test_a_linked_transition_hashes_as_its_content() -> None:
    """A transition row is linked with its text written in one expression: the hash
    is record_hash of its content, whatever its values (a value of another type than
    the store's goes through canonical)."""
    rnd = random.Random(11)
    for _ in range(3_000):
        row = {"payment_id": _text(rnd), "seq": rnd.choice([rnd.randint(0, 10**20), True]),
               "source": rnd.choice([_text(rnd), _Status.PENDING]), "target": _text(rnd),
               "cause": _text(rnd), "applied": rnd.choice([True, False, 0, 1]),
               "reason": _text(rnd), "event_id": rnd.choice([None, _text(rnd)]),
               "version": rnd.choice([rnd.randint(0, 10**6), _Number.THREE]),
               "at": _time(rnd)}
        prev = rnd.choice(["", "4471" * 16])
        expected = chain.record_hash(prev, "transition", chain.transition_content(row))
        linked = dict(row)
        assert chain.link("transition", linked, seq=5, prev=prev) == expected, row
        assert (linked["chain_seq"], linked["chain_prev"], linked["chain_hash"]) == (
            5, prev, expected)
    row = {"payment_id": "01JF0000000000000000000000", "seq": 2, "source": "pending",
           "target": "expired", "cause": "expiry", "applied": True,
           "reason": 'late ñ "x"', "event_id": None, "version": 3,
           "at": datetime(2026, 12, 2, 7, 0, 1, 5, tzinfo=UTC)}
    assert chain.link("transition", row, seq=1, prev="") == (
        "44712e466e4c6d9704a87cf45fdcc1c9b8f576b57995eaf84d345685a9d79b09")


def _delivery(rnd: random.Random) -> dict[str, Any]:
    maybe = lambda: rnd.choice([None, _text(rnd), _Status.PENDING])  # noqa: E731
    return {"provider": rnd.choice([_text(rnd), _Status.PENDING]), "event_id": maybe(),
            "event_type": maybe(), "payment_id": maybe(),
            "payment_key": rnd.choice([_text(rnd), _Status.PENDING]),
            "outcome": rnd.choice([_text(rnd), _Status.PENDING]), "detail": maybe(),
            "received_at": rnd.choice([_time(rnd), _time(rnd), "2026-12-02"])}


def test_a_linked_delivery_hashes_as_its_content() -> None:
    """A delivery row is linked with its text written in one expression, as a
    transition is: the hash is record_hash of its content, whatever its values."""
    rnd = random.Random(13)
    for _ in range(3_000):
        row = _delivery(rnd)
        prev = rnd.choice(["", "4471" * 16])
        expected = chain.record_hash(prev, "delivery", chain.delivery_content(row))
        linked = dict(row)
        assert chain.link("delivery", linked, seq=2, prev=prev) == expected, row
        assert (linked["chain_seq"], linked["chain_prev"], linked["chain_hash"]) == (
            2, prev, expected)
    # the hash the json.dumps-based text gave this delivery before
    row = {"provider": "pagoefectivo", "event_id": 'evt_ñ "1"', "event_type": "cip.paid",
           "payment_id": "01JF0000000000000000000000",
           "payment_key": "01JF0000000000000000000000", "outcome": "applied", "detail": "",
           "received_at": datetime(2026, 12, 2, 7, 0, 1, 5, tzinfo=UTC)}
    assert chain.link("delivery", row, seq=3, prev="4471" * 16) == (
        "11d74a74f2f2fc34a2ceb50a6f4c2942507ccfc3342f06b14e55be8bb9bae262")


def test_a_float_goes_through_json() -> None:
    assert chain.canonical({"x": 1.5, "a": "b"}) == b'{"a":"b","x":1.5}'
    with pytest.raises(TypeError):
        chain.canonical({"x": object()})
