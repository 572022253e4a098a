"""pasarela-relay-rabbitmq: the outbox's lifecycle events published to RabbitMQ.

Each event is a persistent message on a durable topic exchange (``exchange``, default
``pasarela``) with the routing key ``<event type>`` (``payment.succeeded``),
``message_id`` = the event id, ``type`` = the event type and the header
``payment_id``. The channel uses publisher confirms: an event is delivered once the
broker confirmed it. Messages are published ``mandatory``: one that no queue would
receive is returned and stays in the outbox (bind your queues first;
``options.mandatory = false`` to let RabbitMQ drop unroutable messages). The
connection is aio-pika's robust one: it reconnects by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pasarela.events import LifecycleEvent
from pasarela.relays import Ack, Relay, RelayRegistry, encode_event, hookimpl


__all__ = ["RabbitMQRelay", "pasarela_register_relays"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read when asked: importlib.metadata is not discovery's
        from importlib import metadata  # noqa: PLC0415

        return metadata.version("pasarela-relay-rabbitmq")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")



class RabbitMQRelay(Relay):
    """Publishes to a topic exchange with publisher confirms."""

    type = "rabbitmq"

    _connection: Any = None
    _exchange: Any = None

    @property
    def mandatory(self) -> bool:
        return bool(self.settings.options.get("mandatory", True))

    async def open(self) -> None:
        import aio_pika  # noqa: PLC0415 (imported on use, not when plugins are discovered)

        self._connection = await aio_pika.connect_robust(str(self.settings.url), timeout=5)
        # on_return_raises: a returned (unroutable) mandatory message fails its publish
        # instead of being confirmed like a routed one.
        channel = await self._connection.channel(publisher_confirms=True,
                                                 on_return_raises=self.mandatory)
        self._exchange = await channel.declare_exchange(
            self.settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True)

    async def publish(self, events: Sequence[LifecycleEvent]) -> Sequence[Ack]:
        import aio_pika  # noqa: PLC0415 (already loaded by open())

        mandatory = self.mandatory
        import asyncio  # noqa: PLC0415 (with the relay at work, not at plugin discovery)

        results = await asyncio.gather(*(
            self._exchange.publish(
                aio_pika.Message(encode_event(event), message_id=event.id, type=event.type,
                                 content_type="application/json",
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 headers={"payment_id": event.payment_id}),
                routing_key=event.type, mandatory=mandatory)
            for event in events), return_exceptions=True)
        return [Ack(event_id=event.id, ok=not isinstance(result, BaseException),
                    error=type(result).__name__ if isinstance(result, BaseException) else "")
                for event, result in zip(events, results, strict=True)]

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


@hookimpl
def pasarela_register_relays(register: RelayRegistry) -> None:
    """Announce the RabbitMQ relay to pasarela."""
    register.add(RabbitMQRelay)
