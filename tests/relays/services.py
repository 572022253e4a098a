"""The brokers the relay tests use, on loopback: a test of a broker that does not
answer skips, and fails with CI=true (.ci/run starts them)."""

from __future__ import annotations

import os
import socket

import pytest


NATS_URL = os.environ.get("PASARELA_TEST_NATS_URL", "nats://127.0.0.1:4222")
AMQP_URL = os.environ.get("PASARELA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("PASARELA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require(name: str, port: int, host: str = "127.0.0.1") -> None:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} does not answer on {host}:{port} ({exc}); .ci/run starts it"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
