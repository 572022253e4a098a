"""The RabbitMQ relay against the real broker: the message it publishes, an unroutable
event kept in the outbox, and 10,000 events with two workers killed and restarted;
the consumer is the one docs/relays.md shows."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from pasarela_relay_rabbitmq import RabbitMQRelay

from pasarela.events import LifecycleEvent
from pasarela.money import Money
from pasarela.relays import RelaySettings, decode_event
from pasarela.secret import Secret
from tests.relays.consumers import consumer
from tests.relays.fault import read_until, run_fault_test
from tests.relays.services import AMQP_URL, require


def _event(n: int) -> LifecycleEvent:
    return LifecycleEvent(id=f"01EVENT{n:019d}", type="payment.succeeded",
                          payment_id=f"pay{n:023d}", order_reference=f"ord-{n}",
                          provider="fake", status="succeeded", amount=Money(1050, "PEN"),
                          occurred_at=datetime.now(UTC), payload={"step": n})


def _relay(exchange: str, **options: object) -> RabbitMQRelay:
    return RabbitMQRelay(RelaySettings(name="rabbitmq", type="rabbitmq",
                                       url=Secret(AMQP_URL), exchange=exchange,
                                       options=options))


async def _publish_and_read(exchange: str, queue: str | None) -> tuple[list[bool], list[Any]]:
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC,
                                            durable=True)
        q = None
        if queue is not None:
            q = await channel.declare_queue(queue, durable=True)
            await q.bind(ex, routing_key="payment.#")
        relay = _relay(exchange)
        await relay.open()
        try:
            acks = await relay.publish([_event(1), _event(2)])
        finally:
            await relay.close()
        got = []
        while q is not None and (msg := await q.get(no_ack=True, fail=False)) is not None:
            got.append(msg)
        return [a.ok for a in acks], got


def test_each_event_is_a_persistent_message_with_its_id() -> None:
    require("RabbitMQ", 5672)
    token = secrets.token_hex(4)
    exchange = queue = f"pasarela-test-{token}"
    try:
        oks, messages = asyncio.run(_publish_and_read(exchange, queue))
    finally:
        asyncio.run(_clean(exchange, queue))
    assert oks == [True, True]
    assert [m.message_id for m in messages] == [_event(1).id, _event(2).id]
    first = messages[0]
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.routing_key == "payment.succeeded"
    assert first.type == "payment.succeeded"
    assert first.headers["payment_id"] == _event(1).payment_id
    assert decode_event(first.body)["id"] == _event(1).id


def test_an_event_no_queue_would_receive_is_not_acknowledged() -> None:
    require("RabbitMQ", 5672)
    exchange = f"pasarela-test-{secrets.token_hex(4)}"
    try:
        # No queue is bound: RabbitMQ returns a mandatory message instead of dropping it.
        oks, _ = asyncio.run(_publish_and_read(exchange, None))
    finally:
        asyncio.run(_clean(exchange, None))
    assert oks == [False, False]


@pytest.mark.postgres
async def _clean(exchange: str, queue: str | None) -> None:
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        if queue is not None:
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)


def test_every_event_arrives_through_kills(tmp_path: Path, postgres_schema_url: str) -> None:
    require("RabbitMQ", 5672)
    token = secrets.token_hex(4)
    exchange, queue = f"pasarela-test-{token}", f"pasarela-test-{token}"
    docs = consumer("rabbitmq")
    asyncio.run(docs.bind(AMQP_URL, exchange, queue))
    try:
        def read_all(expected: set[str]) -> list[dict[str, object]]:
            return list(docs.consume(AMQP_URL, queue,
                                     read_until(expected)))

        stats = run_fault_test(tmp_path, postgres_schema_url,
                               {"type": "rabbitmq", "url": AMQP_URL, "exchange": exchange},
                               read_all)
    finally:
        asyncio.run(_clean(exchange, queue))
    assert stats["events"] == 10_000
