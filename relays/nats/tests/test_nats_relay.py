"""The NATS JetStream relay against the real server: 10,000 events, two workers
killed and restarted; the consumer is the one docs/relays.md shows."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError

from tests.relays.consumers import consumer
from tests.relays.fault import read_until, run_fault_test
from tests.relays.services import NATS_URL, require


pytestmark = pytest.mark.postgres


async def _drop_stream(stream: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(stream)
    except NotFoundError:  # the relay never got to create it
        pass
    finally:
        await nc.close()


def test_every_event_arrives_through_kills(tmp_path: Path, postgres_schema_url: str) -> None:
    require("NATS", 4222)
    token = secrets.token_hex(4)
    stream, subject = f"PTEST{token}", f"ptest{token}"
    docs = consumer("nats")
    try:
        def read_all(expected: set[str]) -> list[dict[str, object]]:
            return list(docs.consume(NATS_URL, stream, subject, "reader",
                                     read_until(expected)))

        stats = run_fault_test(tmp_path, postgres_schema_url,
                               {"type": "nats", "url": NATS_URL, "subject": subject,
                                "stream": stream}, read_all)
    finally:
        asyncio.run(_drop_stream(stream))
    # JetStream drops a repeat (same Nats-Msg-Id) within its duplicate window.
    assert stats["repeats"] == 0
