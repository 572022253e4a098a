"""The Redis Streams relay against the real server: 10,000 events, two workers
killed and restarted; the consumer is the one docs/relays.md shows."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis

from tests.relays.consumers import consumer
from tests.relays.fault import read_until, run_fault_test
from tests.relays.services import REDIS_URL, require


pytestmark = pytest.mark.postgres


def test_every_event_arrives_through_kills(tmp_path: Path, postgres_schema_url: str) -> None:
    require("Redis", 6379)
    stream = f"pasarela:test:{secrets.token_hex(4)}"
    docs = consumer("redis")
    try:
        def read_all(expected: set[str]) -> list[dict[str, object]]:
            return list(docs.consume(REDIS_URL, stream, "readers", "reader-1",
                                     read_until(expected)))

        stats = run_fault_test(tmp_path, postgres_schema_url,
                               {"type": "redis", "url": REDIS_URL, "stream": stream,
                                "max_len": 100_000}, read_all)
    finally:
        redis.Redis.from_url(REDIS_URL).delete(stream)
    assert stats["events"] == 10_000
