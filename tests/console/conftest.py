"""Fixtures shared by the console tests (see console_fixtures.py): an async pasarela
over the fake gateway with a [privacy] key, and its app's client."""

from __future__ import annotations

from .console_fixtures import (  # noqa: F401 - fixtures
    anyio_backend,
    client,
    clock,
    gateway,
    pasarela,
    recorder,
)
