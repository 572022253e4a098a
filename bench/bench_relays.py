"""Relays: events per second through each installed relay against a bare client of the
same broker publishing the same messages with the same acknowledgement settings, both
measured in this run (interleaved rounds, medians).

The relay's figure is the whole path of ``pasarela worker``: claim a batch of the
outbox (SQLite in a temporary file), publish it through the relay, wait for the
broker's acknowledgements, mark it delivered. The bare client publishes the very
same bodies (``encode_event``), already in memory, in batches of the same size, and
waits for the same acknowledgements:

- NATS: JetStream ``publish`` with ``Nats-Msg-Id`` (each PubAck awaited);
- RabbitMQ: persistent, ``mandatory`` messages on a channel with publisher confirms
  (each confirm awaited), to a topic exchange with a bound durable queue;
- Redis: one pipeline of ``XADD ... MAXLEN ~`` per batch.

Each round publishes to a destination of its own (a new stream, exchange and queue,
or stream key), deleted afterwards. Goal (issue #22): the relay at least 0.5x the bare
client. A broker that does not answer on loopback is reported and skipped.

``python bench/bench_relays.py [--count N] [--rounds R] [--only nats,rabbitmq,redis]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from harness import report
from ulid import ULID


GOAL = 0.5
BATCH = 500
COUNT = 10_000
ROUNDS = 3
NATS_URL = "nats://127.0.0.1:4222"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"
PORTS = {"nats": 4222, "rabbitmq": 5672, "redis": 6379}
MODULES = {"nats": "pasarela_relay_nats", "rabbitmq": "pasarela_relay_rabbitmq",
           "redis": "pasarela_relay_redis"}


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def outbox_rows(count: int) -> list[dict[str, Any]]:
    """*count* events, one payment each (the relay's batches are then full)."""
    base = datetime.now(UTC)
    rows = []
    for n in range(count):
        created = base + timedelta(microseconds=n)
        rows.append({
            "id": str(ULID.from_datetime(created)), "payment_id": f"pay{n:023d}",
            "type": "payment.succeeded",
            "payload": {"order_reference": f"ord-{n}", "provider": "fake",
                        "status": "succeeded", "amount": {"minor": 1000 + n,
                                                          "currency": "PEN"}},
            "created_at": created, "next_attempt_at": created, "attempts": 0,
        })
    return rows


def seeded_store(folder: Path, rows: list[dict[str, Any]]) -> tuple[Any, str]:
    from pasarela.store import Store
    from pasarela.store.schema import outbox

    url = f"sqlite:///{folder / f'relay-{secrets.token_hex(4)}.db'}"
    store = Store(url, upgrade=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(outbox), rows)
    engine.dispose()
    return store, url


def lifecycle_events(rows: list[dict[str, Any]]) -> list[Any]:
    from pasarela.engine.outbox import to_lifecycle_event
    from pasarela.store.values import OutboxEvent

    return [to_lifecycle_event(OutboxEvent(
        id=r["id"], payment_id=r["payment_id"], type=r["type"], payload=r["payload"],
        created_at=r["created_at"], attempts=0)) for r in rows]


# --- the destinations: created before a round, deleted after ---------------------------

class Destination:
    """Where one round publishes: the relay's settings and the bare client's target."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        token = secrets.token_hex(4)
        self.name = {"nats": f"PBENCH{token}", "rabbitmq": f"pasarela-bench-{token}",
                     "redis": f"pasarela:bench:{token}"}[kind]
        self.subject = f"pbench{token}"

    def relay_entry(self) -> dict[str, Any]:
        url = {"nats": NATS_URL, "rabbitmq": AMQP_URL, "redis": REDIS_URL}[self.kind]
        entry: dict[str, Any] = {"type": self.kind, "url": url, "batch_size": BATCH}
        if self.kind == "nats":
            entry.update(stream=self.name, subject=self.subject)
        elif self.kind == "rabbitmq":
            entry.update(exchange=self.name)
        else:
            entry.update(stream=self.name, max_len=1_000_000)
        return entry

    async def create(self) -> None:
        if self.kind == "nats":
            import nats
            from pasarela_relay_nats import DUPLICATE_WINDOW

            nc = await nats.connect(NATS_URL)
            await nc.jetstream().add_stream(
                name=self.name, subjects=[f"{self.subject}.>"],
                duplicate_window=DUPLICATE_WINDOW.total_seconds())
            await nc.close()
        elif self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect_robust(AMQP_URL)
            async with connection:
                channel = await connection.channel()
                exchange = await channel.declare_exchange(
                    self.name, aio_pika.ExchangeType.TOPIC, durable=True)
                queue = await channel.declare_queue(self.name, durable=True)
                await queue.bind(exchange, routing_key="payment.#")

    async def delete(self) -> None:
        if self.kind == "nats":
            import nats

            nc = await nats.connect(NATS_URL)
            await nc.jetstream().delete_stream(self.name)
            await nc.close()
        elif self.kind == "rabbitmq":
            import aio_pika

            connection = await aio_pika.connect_robust(AMQP_URL)
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(self.name)
                await channel.exchange_delete(self.name)
        else:
            import redis.asyncio as aioredis

            client = aioredis.from_url(REDIS_URL)
            await client.delete(self.name)
            await client.aclose()


# --- the bare clients ------------------------------------------------------------------

async def bare_nats(dest: Destination, events: Sequence[Any]) -> int:
    import nats

    from pasarela.relays import encode_event

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream(timeout=10)
    try:
        for i in range(0, len(events), BATCH):
            await asyncio.gather(*(
                js.publish(f"{dest.subject}.{e.type}", encode_event(e), stream=dest.name,
                           headers={"Nats-Msg-Id": e.id, "Pasarela-Payment-Id": e.payment_id})
                for e in events[i:i + BATCH]))
    finally:
        await nc.close()
    return len(events)


async def bare_rabbitmq(dest: Destination, events: Sequence[Any]) -> int:
    import aio_pika

    from pasarela.relays import encode_event

    connection = await aio_pika.connect_robust(AMQP_URL, timeout=5)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(dest.name, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        for i in range(0, len(events), BATCH):
            await asyncio.gather(*(
                exchange.publish(
                    aio_pika.Message(encode_event(e), message_id=e.id, type=e.type,
                                     content_type="application/json",
                                     delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     headers={"payment_id": e.payment_id}),
                    routing_key=e.type, mandatory=True)
                for e in events[i:i + BATCH]))
    finally:
        await connection.close()
    return len(events)


async def bare_redis(dest: Destination, events: Sequence[Any]) -> int:
    import redis.asyncio as aioredis

    from pasarela.relays import encode_event

    client = aioredis.from_url(REDIS_URL)
    try:
        for i in range(0, len(events), BATCH):
            pipe = client.pipeline(transaction=False)
            for e in events[i:i + BATCH]:
                pipe.xadd(dest.name, {"id": e.id, "type": e.type, "payment_id": e.payment_id,
                                      "body": encode_event(e)},
                          maxlen=1_000_000, approximate=True)
            await pipe.execute()
    finally:
        await client.aclose()
    return len(events)


BARE: dict[str, Callable[[Destination, Sequence[Any]], Awaitable[int]]] = {
    "nats": bare_nats, "rabbitmq": bare_rabbitmq, "redis": bare_redis}


# --- one round of each -----------------------------------------------------------------

def time_bare(kind: str, rows: list[dict[str, Any]]) -> float:
    dest = Destination(kind)
    events = lifecycle_events(rows)
    asyncio.run(dest.create())
    try:
        start = time.perf_counter()
        sent = asyncio.run(BARE[kind](dest, events))
        elapsed = time.perf_counter() - start
    finally:
        asyncio.run(dest.delete())
    assert sent == len(rows)
    return elapsed


def time_relay(kind: str, rows: list[dict[str, Any]], folder: Path) -> float:
    from pasarela.config import load_config
    from pasarela.engine.relaying import start_relays

    dest = Destination(kind)
    store, url = seeded_store(folder, rows)
    config = load_config({"store": {"url": url}, "relays": [dest.relay_entry()]})
    asyncio.run(dest.create())
    dispatcher = start_relays(config, store, None)
    assert dispatcher is not None
    try:
        start = time.perf_counter()
        done = 0
        while done < len(rows):
            ran = dispatcher.run()
            if not ran:
                raise RuntimeError(f"the {kind} relay stopped at {done} of {len(rows)}")
            done += ran
        elapsed = time.perf_counter() - start
    finally:
        dispatcher.close()
        store.close()
        asyncio.run(dest.delete())
    return elapsed


def bench(kind: str, count: int, rounds: int) -> bool:
    if find_spec(MODULES[kind]) is None:
        print(f"[skip] relay {kind}: pasarela-relay-{kind} is not installed")
        return True
    if not answers(PORTS[kind]):
        print(f"[skip] relay {kind}: no broker on 127.0.0.1:{PORTS[kind]}")
        return True
    relay_times, bare_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # A small warm-up of each (imports, first connections), not counted.
        time_bare(kind, outbox_rows(BATCH))
        time_relay(kind, outbox_rows(BATCH), Path(tmp))
        for _ in range(rounds):
            bare_times.append(time_bare(kind, outbox_rows(count)))
            relay_times.append(time_relay(kind, outbox_rows(count), Path(tmp)))
    relay_rate = count / statistics.median(relay_times)
    bare_rate = count / statistics.median(bare_times)
    ratio = relay_rate / bare_rate
    report(f"relay {kind} ({count:,} events, batches of {BATCH})",
           f"{relay_rate:,.0f}/s vs bare {bare_rate:,.0f}/s = {ratio:.2f}x",
           f">= {GOAL}x bare client", ratio >= GOAL)
    return ratio >= GOAL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", default="nats,rabbitmq,redis")
    args = parser.parse_args(argv if argv is not None else [])
    from pasarela.cli.output import configure_logging as configure

    configure(level=logging.WARNING)
    ok = True
    for kind in [k.strip() for k in args.only.split(",") if k.strip()]:
        ok = bench(kind, args.count, args.rounds) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
