"""Sending signed notifications as PagoEfectivo does: POST, one retry on non-200.

Each delivery runs in its own thread so a control call returns at once. Faults:
a delay before the first attempt, extra copies (duplicates), and lost
notifications (never sent). Every delivery is logged for the tests to inspect.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import httpx

from pasarela_pagoefectivo.notifications import SIGNATURE_HEADER, sign


__all__ = ["Delivery", "Notifier"]


@attrs.define
class Delivery:
    """One notification copy and what happened to it."""

    id: int
    cip: str
    event_type: str
    url: str | None
    body: bytes = attrs.field(repr=False)
    lost: bool = False
    attempts: list[dict[str, Any]] = attrs.Factory(list)
    done: bool = False

    @property
    def delivered(self) -> bool:
        return any(a.get("status") == 200 for a in self.attempts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "cip": self.cip, "event_type": self.event_type, "url": self.url,
            "lost": self.lost, "attempts": list(self.attempts), "done": self.done,
            "delivered": self.delivered, "body": self.body.decode("utf-8"),
        }


class Notifier:
    """Delivers notification bodies signed with the merchant's secret key."""

    def __init__(
        self,
        secret_key: str,
        *,
        timeout: float = 5.0,
        retry_delay: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.secret_key = secret_key
        self.timeout = timeout
        self.retry_delay = retry_delay
        self._transport = transport
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self.deliveries: list[Delivery] = []
        self._closed = threading.Event()

    def send(
        self,
        *,
        url: str | None,
        cip: str,
        event_type: str,
        body: bytes,
        delay: float = 0.0,
        copies: int = 1,
        lost: bool = False,
    ) -> list[Delivery]:
        """Queue *copies* deliveries of *body* to *url*; a lost one is only logged."""
        made: list[Delivery] = []
        for _ in range(max(1, copies)):
            delivery = Delivery(next(self._ids), cip, event_type, url, body,
                                lost=lost or url is None)
            with self._cond:
                self.deliveries.append(delivery)
            made.append(delivery)
            if delivery.lost:
                self._finish(delivery)
                continue
            thread = threading.Thread(target=self._run, args=(delivery, delay),
                                      name=f"pe-notify-{delivery.id}", daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()
        return made

    def _finish(self, delivery: Delivery) -> None:
        with self._cond:
            delivery.done = True
            self._cond.notify_all()

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> bool:
        assert delivery.url is not None
        started = time.monotonic()
        record: dict[str, Any] = {"status": None, "error": None}
        try:
            response = client.post(delivery.url, content=delivery.body, headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(delivery.body, self.secret_key),
            })
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["error"] = type(exc).__name__
        record["ms"] = round((time.monotonic() - started) * 1000, 1)
        with self._lock:
            delivery.attempts.append(record)
        return bool(record["status"] == 200)

    def _run(self, delivery: Delivery, delay: float) -> None:
        try:
            if delay and self._closed.wait(delay):
                return
            with httpx.Client(timeout=self.timeout, transport=self._transport) as client:
                # PagoEfectivo waits for a 200 and tries once more on anything else.
                if not self._attempt(client, delivery) and not self._closed.wait(
                    self.retry_delay
                ):
                    self._attempt(client, delivery)
        except Exception as exc:  # a sandbox thread must never die loudly
            with self._lock:
                delivery.attempts.append({"status": None, "error": repr(exc)})
        finally:
            self._finish(delivery)

    def wait(self, count: int, timeout: float = 10.0,
             where: Callable[[Delivery], bool] | None = None) -> list[Delivery]:
        """Wait until *count* matching deliveries are done; return the matching ones."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = [d for d in self.deliveries if where is None or where(d)]
                if sum(d.done for d in matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{sum(d.done for d in matching)} of {count} notifications done"
                    )
                self._cond.wait(remaining)

    def clear(self) -> None:
        with self._cond:
            self.deliveries.clear()

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        with self._lock:
            threads = list(self._threads)
            self._threads.clear()
        for thread in threads:
            thread.join(timeout)
