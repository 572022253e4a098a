"""pasarela-relay-nats: the outbox's lifecycle events published to NATS JetStream.

Each event goes to ``<subject>.<event type>`` (``pasarela.payment.succeeded``) with the
header ``Nats-Msg-Id`` set to the event id, so that the stream drops a repeat within
its duplicate window; the relay counts an event delivered once JetStream's PubAck
came back (the stream stored it). The stream (``stream``, default ``PASARELA``) is
created with subjects ``<subject>.>`` when it does not exist (``options.create_stream
= false`` to leave that to you). ``nats-py`` is imported when the relay opens, not
when plugins are discovered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pasarela.events import LifecycleEvent
from pasarela.relays import Ack, Relay, RelayRegistry, RelaySettings, encode_event, hookimpl


__all__ = ["DUPLICATE_WINDOW", "NatsRelay", "pasarela_register_relays"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read when asked: importlib.metadata is not discovery's
        from importlib import metadata  # noqa: PLC0415

        return metadata.version("pasarela-relay-nats")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The duplicate window of a stream this relay creates: a repeat published within it
#: (same ``Nats-Msg-Id``) is dropped by the server.
DUPLICATE_WINDOW = timedelta(minutes=10)


class NatsRelay(Relay):
    """Publishes to JetStream; one PubAck per event."""

    type = "nats"

    def __init__(self, settings: RelaySettings) -> None:
        super().__init__(settings)
        self.stream = settings.stream or "PASARELA"
        self._nc: Any = None
        self._js: Any = None

    async def open(self) -> None:
        import nats  # noqa: PLC0415 (imported on use: see the module's docs)
        from nats.js.errors import NotFoundError  # noqa: PLC0415

        self._nc = await nats.connect(
            str(self.settings.url), connect_timeout=5, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=1)
        self._js = self._nc.jetstream(timeout=10)
        if self.settings.options.get("create_stream", True):
            try:
                await self._js.stream_info(self.stream)
            except NotFoundError:
                await self._js.add_stream(
                    name=self.stream, subjects=[f"{self.settings.subject}.>"],
                    duplicate_window=DUPLICATE_WINDOW.total_seconds())

    async def publish(self, events: Sequence[LifecycleEvent]) -> Sequence[Ack]:
        import asyncio  # noqa: PLC0415 (with the relay at work, not at plugin discovery)

        results = await asyncio.gather(*(
            self._js.publish(f"{self.settings.subject}.{event.type}", encode_event(event),
                             stream=self.stream,
                             headers={"Nats-Msg-Id": event.id,
                                      "Pasarela-Payment-Id": event.payment_id})
            for event in events), return_exceptions=True)
        return [Ack(event_id=event.id, ok=not isinstance(result, BaseException),
                    error=type(result).__name__ if isinstance(result, BaseException) else "")
                for event, result in zip(events, results, strict=True)]

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
            self._nc = None


@hookimpl
def pasarela_register_relays(register: RelayRegistry) -> None:
    """Announce the NATS relay to pasarela."""
    register.add(NatsRelay)
