"""pasarela-relay-redis: the outbox's lifecycle events appended to a Redis stream.

Each event is one ``XADD <stream> MAXLEN ~ <max_len> * id <event id> type <type>
payment_id <payment id> body <JSON>`` (stream default ``pasarela:events``), sent in
one pipeline per batch; an event is delivered once Redis answered its entry id. The
stream is one ordered log: readers use consumer groups (``XREADGROUP``, ``XACK``) and
deduplicate on the ``id`` field. ``MAXLEN ~`` keeps the stream bounded: size it so
that readers never fall further behind than that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pasarela.events import LifecycleEvent
from pasarela.relays import Ack, Relay, RelayRegistry, encode_event, hookimpl


__all__ = ["DEFAULT_STREAM", "RedisRelay", "pasarela_register_relays"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read when asked: importlib.metadata is not discovery's
        from importlib import metadata  # noqa: PLC0415

        return metadata.version("pasarela-relay-redis")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_STREAM = "pasarela:events"


class RedisRelay(Relay):
    """Appends to a Redis stream with ``XADD ... MAXLEN ~``."""

    type = "redis"

    _client: Any = None

    @property
    def stream(self) -> str:
        return self.settings.stream or DEFAULT_STREAM

    async def open(self) -> None:
        import redis.asyncio as aioredis  # noqa: PLC0415 (imported on use, not at discovery)

        self._client = aioredis.from_url(str(self.settings.url), socket_timeout=10,
                                         socket_connect_timeout=5)
        await self._client.ping()

    async def publish(self, events: Sequence[LifecycleEvent]) -> Sequence[Ack]:
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.stream, {"id": event.id, "type": event.type,
                                    "payment_id": event.payment_id,
                                    "body": encode_event(event)},
                      maxlen=self.settings.max_len, approximate=True)
        results = await pipe.execute(raise_on_error=False)
        return [Ack(event_id=event.id, ok=not isinstance(result, BaseException),
                    error=type(result).__name__ if isinstance(result, BaseException) else "")
                for event, result in zip(events, results, strict=True)]

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@hookimpl
def pasarela_register_relays(register: RelayRegistry) -> None:
    """Announce the Redis Streams relay to pasarela."""
    register.add(RedisRelay)
