"""pasarela-relay-redis: the outbox's lifecycle events appended to a Redis stream.

Each event is one ``XADD <stream> MAXLEN ~ <max_len> * id <event id> type <type>
payment_id <payment id> body <JSON>`` (stream default ``pasarela:events``), sent in
one pipeline per batch; an event is delivered once Redis answered its entry id. The
stream is one ordered log: readers use consumer groups (``XREADGROUP``, ``XACK``) and
deduplicate on the ``id`` field. ``MAXLEN ~`` keeps the stream bounded: size it so
that readers never fall further behind than that.

The pipeline is written on one of redis-py's pooled connections: the relay packs its
``XADD`` commands itself (the bytes redis-py's ``xadd`` would send, string arguments
in UTF-8; a test holds the two to the same bytes) and reads one reply per command. A
batch that is not answered within :data:`TIMEOUT` fails, and its connection is
dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from pasarela.events import LifecycleEvent
from pasarela.relays import Ack, Relay, RelayRegistry, encode_event, hookimpl


__all__ = ["DEFAULT_STREAM", "TIMEOUT", "RedisRelay", "pack_xadds", "pasarela_register_relays"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read when asked: importlib.metadata is not discovery's
        from importlib import metadata  # noqa: PLC0415

        return metadata.version("pasarela-relay-redis")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_STREAM = "pasarela:events"
#: Seconds a batch (or the first ``PING``) may wait for Redis's answers.
TIMEOUT: Final = 10.0


def _bulk(value: bytes) -> bytes:
    """*value* as one RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def pack_xadds(stream: str, max_len: int, events: Sequence[LifecycleEvent]) -> bytes:
    """The RESP bytes of one ``XADD <stream> MAXLEN ~ <max_len> * id .. type ..
    payment_id .. body ..`` per event, in order: what redis-py sends for
    ``xadd(stream, {"id": .., "type": .., "payment_id": .., "body": ..},
    maxlen=max_len, approximate=True)`` (its default encoder: UTF-8, strict)."""
    head = (b"*14\r\n$4\r\nXADD\r\n" + _bulk(stream.encode())
            + b"$6\r\nMAXLEN\r\n$1\r\n~\r\n" + _bulk(str(max_len).encode()) + b"$1\r\n*\r\n")
    parts = []
    for event in events:
        event_id, kind = event.id.encode(), event.type.encode()
        payment_id, body = event.payment_id.encode(), encode_event(event)
        parts.append(
            b"%s$2\r\nid\r\n$%d\r\n%s\r\n$4\r\ntype\r\n$%d\r\n%s\r\n"
            b"$10\r\npayment_id\r\n$%d\r\n%s\r\n$4\r\nbody\r\n$%d\r\n%s\r\n"
            % (head, len(event_id), event_id, len(kind), kind,
               len(payment_id), payment_id, len(body), body))
    return b"".join(parts)


class RedisRelay(Relay):
    """Appends to a Redis stream with ``XADD ... MAXLEN ~``."""

    type = "redis"

    _client: Any = None
    _exceptions: Any = None  # redis.exceptions, once open
    _command_named = False

    @property
    def stream(self) -> str:
        return self.settings.stream or DEFAULT_STREAM

    async def open(self) -> None:
        import asyncio  # noqa: PLC0415 (imported on use, not at discovery)
        import inspect  # noqa: PLC0415

        import redis.asyncio as aioredis  # noqa: PLC0415
        from redis import exceptions  # noqa: PLC0415

        # No socket_timeout: a read of each reply would arm a timer of its own; the
        # batch has one (TIMEOUT), and connecting its own.
        client = aioredis.from_url(str(self.settings.url), socket_connect_timeout=5)
        async with asyncio.timeout(TIMEOUT):
            await client.ping()
        self._client = client
        self._exceptions = exceptions
        # redis-py before 5.3 names the command a connection is taken for.
        parameter = inspect.signature(client.connection_pool.get_connection).parameters.get(
            "command_name")
        self._command_named = parameter is not None and parameter.default is parameter.empty

    async def publish(self, events: Sequence[LifecycleEvent]) -> Sequence[Ack]:
        import asyncio  # noqa: PLC0415 (with the relay at work, not at plugin discovery)

        packed = pack_xadds(self.stream, self.settings.max_len, events)
        unreachable = (self._exceptions.ConnectionError, self._exceptions.TimeoutError, OSError)
        async with asyncio.timeout(TIMEOUT):
            try:
                replies = await self._pipeline(packed, len(events))
            except unreachable:
                # A pooled connection Redis had closed (a restart, an idle timeout):
                # once more on a new one, as redis-py's pipeline retries. A repeat of
                # what reached Redis is allowed (at least once; readers dedupe on id).
                replies = await self._pipeline(packed, len(events))
        return [Ack(event_id=event.id, ok=not isinstance(reply, BaseException),
                    error=type(reply).__name__ if isinstance(reply, BaseException) else "")
                for event, reply in zip(events, replies, strict=True)]

    async def _pipeline(self, packed: bytes, count: int) -> list[Any]:
        """Send *packed* (*count* commands) on a pooled connection and read a reply
        per command, an error reply as its exception. A connection left with
        unread replies (an error, a cancellation) is disconnected, never reused."""
        pool = self._client.connection_pool
        conn = await (pool.get_connection("XADD") if self._command_named
                      else pool.get_connection())
        try:
            replies: list[Any] = []
            done = False
            try:
                await conn.send_packed_command(packed)
                reply_error = self._exceptions.ResponseError
                for _ in range(count):
                    try:
                        replies.append(await conn.read_response())
                    except reply_error as exc:
                        replies.append(exc)
                done = True
            finally:
                if not done:
                    await conn.disconnect(nowait=True)
            return replies
        finally:
            await pool.release(conn)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@hookimpl
def pasarela_register_relays(register: RelayRegistry) -> None:
    """Announce the Redis Streams relay to pasarela."""
    register.add(RedisRelay)
