"""The Redis relay's own pipeline held to redis-py's: the bytes it packs are those of
redis-py's ``xadd`` for the same events, and against the real server it stores the
same entries, answers an error reply per event and survives a dropped connection."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from pasarela_relay_redis import RedisRelay, pack_xadds
from redis.asyncio.connection import Connection

from pasarela.events import LifecycleEvent
from pasarela.money import Money
from pasarela.relays import RelaySettings, encode_event
from pasarela.secret import Secret
from tests.relays.services import REDIS_URL, require


def _events(count: int, *, note: str = "") -> list[LifecycleEvent]:
    at = datetime(2026, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5)))
    return [LifecycleEvent(
        id=f"01J{n:023d}", type=("payment.succeeded", "payment.refunded")[n % 2],
        payment_id=f"pay-{n}-ñandú" if n % 3 == 0 else f"pay{n:023d}",
        order_reference=f"pedido-{n}-{note}", provider="fake", status="succeeded",
        amount=Money(1000 + n, "PEN"), occurred_at=at + timedelta(microseconds=n),
        payload={"order_reference": f"pedido-{n}", "note": note, "n": n})
        for n in range(count)]


def _redis_py_bytes(stream: str, max_len: int, events: Sequence[LifecycleEvent]) -> bytes:
    """What redis-py's own pipeline sends for the relay's XADDs."""
    pipe = aioredis.Redis().pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream, {"id": event.id, "type": event.type,
                           "payment_id": event.payment_id, "body": encode_event(event)},
                  maxlen=max_len, approximate=True)
    return b"".join(Connection().pack_commands([args for args, _ in pipe.command_stack]))


@pytest.mark.parametrize(("stream", "max_len", "events"), [
    ("pasarela:events", 1_000_000, _events(1)),
    ("pasarela:events", 100_000, _events(7)),
    ("flujo:señal", 0, _events(3, note="señal ✓")),
    ("s", 5, _events(2, note="x" * 20_000)),  # past redis-py's 6,000-byte chunks
])
def test_the_packed_batch_is_what_redis_py_sends(
        stream: str, max_len: int, events: list[LifecycleEvent]) -> None:
    assert pack_xadds(stream, max_len, events) == _redis_py_bytes(stream, max_len, events)


def _relay(stream: str) -> RedisRelay:
    return RedisRelay(RelaySettings(name="redis", type="redis", url=Secret(REDIS_URL),
                                    stream=stream, max_len=100_000))


def _entries(stream: str) -> list[dict[bytes, bytes]]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [fields for _, fields in client.xrange(stream)]
    finally:
        client.close()


def _publish(relay: RedisRelay, *batches: Sequence[LifecycleEvent],
             between: Any = None) -> list[list[tuple[str, bool, str]]]:
    async def run() -> list[list[tuple[str, bool, str]]]:
        await relay.open()
        try:
            answers = []
            for n, batch in enumerate(batches):
                if n and between is not None:
                    await between()
                acks = await relay.publish(batch)
                answers.append([(a.event_id, a.ok, a.error) for a in acks])
            return answers
        finally:
            await relay.close()
    return asyncio.run(run())


def test_the_stream_holds_what_redis_py_would_have_written() -> None:
    require("Redis", 6379)
    ours, theirs = (f"pasarela:test:{secrets.token_hex(4)}" for _ in range(2))
    events = _events(25, note="señal")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        answers = _publish(_relay(ours), events[:10], events[10:])
        assert answers == [[(e.id, True, "") for e in events[:10]],
                           [(e.id, True, "") for e in events[10:]]]
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(theirs, {"id": event.id, "type": event.type,
                               "payment_id": event.payment_id, "body": encode_event(event)},
                      maxlen=100_000, approximate=True)
        pipe.execute()
        assert _entries(ours) == _entries(theirs)
        assert len(_entries(ours)) == 25
    finally:
        client.delete(ours, theirs)
        client.close()


def test_an_error_reply_fails_its_events_and_the_connection_goes_on() -> None:
    require("Redis", 6379)
    stream = f"pasarela:test:{secrets.token_hex(4)}"
    client = redis.Redis.from_url(REDIS_URL)
    client.set(stream, "not a stream")  # every XADD to it: WRONGTYPE
    events = _events(4)
    try:
        async def fix() -> None:
            client.delete(stream)

        answers = _publish(_relay(stream), events[:2], events[2:], between=fix)
        assert answers[0] == [(e.id, False, "ResponseError") for e in events[:2]]
        assert answers[1] == [(e.id, True, "") for e in events[2:]]
        assert [f[b"id"].decode() for f in _entries(stream)] == [e.id for e in events[2:]]
    finally:
        client.delete(stream)
        client.close()


def test_a_connection_redis_dropped_is_replaced() -> None:
    require("Redis", 6379)
    stream = f"pasarela:test:{secrets.token_hex(4)}"
    client = redis.Redis.from_url(REDIS_URL)
    relay = _relay(stream)
    events = _events(6)

    async def drop() -> None:  # Redis closes the relay's connections (a restart)
        for info in client.client_list():
            if info.get("cmd") in {"xadd", "ping"} and int(info["id"]) != client.client_id():
                client.client_kill_filter(_id=info["id"])

    try:
        answers = _publish(relay, events[:3], events[3:], between=drop)
        assert answers == [[(e.id, True, "") for e in events[:3]],
                           [(e.id, True, "") for e in events[3:]]]
        assert [f[b"id"].decode() for f in _entries(stream)] == [e.id for e in events]
    finally:
        client.delete(stream)
        client.close()


def test_the_entries_decode_to_the_event() -> None:
    require("Redis", 6379)
    stream = f"pasarela:test:{secrets.token_hex(4)}"
    event = _events(1, note="ñ")[0]
    try:
        _publish(_relay(stream), [event])
        (fields,) = _entries(stream)
        assert fields == {b"id": event.id.encode(), b"type": event.type.encode(),
                          b"payment_id": event.payment_id.encode(),
                          b"body": encode_event(event)}
    finally:
        redis.Redis.from_url(REDIS_URL).delete(stream)
