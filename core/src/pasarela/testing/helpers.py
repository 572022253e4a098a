"""Small helpers that host apps' and adapters' tests share.

- :class:`ManualClock`: business time that a test moves by hand.
- :class:`EventRecorder`: an observer plugin that records every lifecycle event.
- :func:`serve_app`: run an ASGI app with uvicorn on a free loopback port, in a
  thread, for tests that need real HTTP (a sandbox, the webhook server);
  :class:`Served` is what the ``pasarela_serve`` fixture hands back.

The webhook receiver is :mod:`pasarela.testing.receiver`; sandboxes on loopback
are :mod:`pasarela.testing.sandbox`; the fixtures are
:mod:`pasarela.testing.pytest_plugin`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import attrs

from pasarela.events import LifecycleEvent
from pasarela.hookspecs import hookimpl


__all__ = ["EventRecorder", "ManualClock", "Served", "serve_app"]


class ManualClock:
    """``clock()`` returns :attr:`now`; move it with ``clock.now += timedelta(...)``."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class EventRecorder:
    """Register it (``plugins=[recorder]``) to see what a host would be told."""

    def __init__(self) -> None:
        self.events: list[LifecycleEvent] = []

    @hookimpl
    def pasarela_payment_event(self, event: LifecycleEvent) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


@attrs.frozen
class Served:
    """An app served on loopback: its base :attr:`url` and the :attr:`app`."""

    url: str
    app: Any = attrs.field(repr=False)


@contextmanager
def serve_app(app: Any, *, host: str = "127.0.0.1", port: int = 0,
              timeout: float = 15.0) -> Iterator[str]:
    """Serve *app* with uvicorn in a thread; yield its base URL; stop it afterwards."""
    import uvicorn  # noqa: PLC0415

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)


@contextmanager
def capture_events(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect pasarela's log events while the block runs, as the masked dicts a
    handler sees (``{"event": ..., **fields, "log_level": "warning"}``)."""
    events: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = getattr(record, "pasarela", None) or {"event": record.getMessage()}
            events.append({**fields, "log_level": record.levelname.lower()})

    logger = logging.getLogger("pasarela")
    handler, before = Collect(level), logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
