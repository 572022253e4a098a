"""A webhook receiver for tests: an endpoint that records what a sandbox sends.

Serve :attr:`WebhookReceiver.app` (``serve_app``, or the ``pasarela_receiver``
fixture) and point a sandbox's ``webhook_url`` at :attr:`~WebhookReceiver.url`; it
takes a POST on any path, records the headers and raw bytes, and answers
:attr:`~WebhookReceiver.status`, the next of :attr:`~WebhookReceiver.statuses`, or
what :attr:`~WebhookReceiver.handler` returns (a host's endpoint, for one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


__all__ = ["Received", "WebhookReceiver"]


class Received(NamedTuple):
    """One delivery as it arrived: headers (lower-case names) and the raw body."""

    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """Records deliveries; thread-safe (the server runs in another thread)."""

    def __init__(self) -> None:
        self.url = ""
        self.deliveries: list[Received] = []
        #: The answer when no handler is set and :attr:`statuses` is empty.
        self.status = 200
        #: Answers for the next deliveries, used up first to last.
        self.statuses: list[int] = []
        #: ``handler(headers, body) -> status``: decides the answer when set.
        self.handler: Callable[[dict[str, str], bytes], int] | None = None
        self._cond = threading.Condition()
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST"])])

    async def _endpoint(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        with self._cond:
            self.deliveries.append(Received(headers, body))
            status = self.statuses.pop(0) if self.statuses else self.status
            handler = self.handler
            self._cond.notify_all()
        if handler is not None:
            status = handler(headers, body)
        return Response(b'{"received": true}', status, media_type="application/json")

    @property
    def bodies(self) -> list[bytes]:
        """The raw bodies received, in order."""
        with self._cond:
            return [d.body for d in self.deliveries]

    def wait(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until *count* deliveries arrived; return all so far (TimeoutError after
        *timeout* seconds)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"received {len(self.deliveries)} of {count} webhooks")
                self._cond.wait(left)
            return list(self.deliveries)

    def clear(self) -> None:
        """Forget the deliveries and go back to answering 200."""
        with self._cond:
            self.deliveries.clear()
            self.statuses.clear()
            self.status = 200
            self.handler = None
