"""The webhook courier: how every sandbox sends its webhooks, with faults.

A sandbox hands the courier a :class:`Webhook` (an event and its payload); the
courier makes one :class:`Delivery` per copy, applies the knobs, and a single
background thread (one per courier, started on first use, with one HTTP client)
POSTs the deliveries in the order they fall due. So it works the same whether the
sandbox's app runs in a uvicorn thread inside a test or under ``pasarela sandbox
NAME``: nothing depends on the server's event loop.

Faults, from :class:`~pasarela.testing.sandbox.knobs.Knobs`, decided when the
webhook is sent:

- no ``webhook_url``: the delivery is recorded (``no_url``) and not sent;
- ``lose_next_webhooks`` / ``lose_webhooks``: recorded as ``lost``, never sent;
- ``duplicate_webhooks``: extra copies of the same event, sent after it;
- ``hold_webhooks``: kept (``held``) until :meth:`Courier.flush`;
- ``reorder_webhooks``: each webhook is held until the next one, which goes first;
- ``delay_webhooks``: each delivery falls due that many seconds later.

An attempt the receiver does not accept (by default, anything but a 2xx) is tried
again ``webhook_retries`` times, after waits from :class:`pasarela.retry.Backoff`
(``webhook_retry_delay``, doubling). Every attempt is logged on its delivery.

A sandbox whose provider documents its retry schedule (dLocal: hourly, then every 12
hours) gives it as ``schedule``: while that returns a :class:`~pasarela.retry.Backoff`,
a retry falls due that long later **on the sandbox's clock** (``now``), so it happens
when a test or ``POST /_control/clock`` moves the clock there, not an hour of real
time later. Such a delivery waits like a delayed one: :meth:`Courier.settle` and
:meth:`Courier.drain` do not wait for it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, Final
from urllib.parse import urlencode

import anyio
import attrs
import httpx

from pasarela.retry import Backoff
from pasarela.testing.sandbox.knobs import Knobs


__all__ = ["FINISHED", "Attempt", "Courier", "Delivery", "Webhook"]

#: Statuses after which nothing more happens to a delivery.
FINISHED: Final = frozenset({"delivered", "failed", "lost", "no_url", "canceled"})

Render = Callable[["Webhook"], tuple[bytes, Mapping[str, str]]]
#: How often the worker looks at the sandbox's clock while a retry waits on it (s).
_CLOCK_POLL: Final = 0.05


def _no_schedule() -> Backoff | None:
    return None


@attrs.frozen
class Webhook:
    """One event a sandbox sends: its id, type, what it is about, and the payload
    the sandbox's ``render`` turns into bytes and headers (at every attempt, so a
    signature can carry the time of sending). *query* is added to ``webhook_url``'s
    query string, for a provider that names the object there (Mercado Pago's
    ``?data.id=...&type=payment``)."""

    event_id: str
    type: str
    payload: Any = attrs.field(repr=False)
    object_id: str | None = None
    query: tuple[tuple[str, str], ...] = ()

    def address(self, url: str) -> str:
        """*url* with :attr:`query` added to its query string."""
        if not self.query:
            return url
        return f"{url}{'&' if '?' in url else '?'}{urlencode(self.query, safe='')}"


@attrs.frozen
class Attempt:
    """One POST of a delivery: the status answered (None: no answer) or the error."""

    at: datetime
    status: int | None
    error: str | None
    ms: float

    def describe(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "status": self.status, "error": self.error,
                "ms": self.ms}


@attrs.define(eq=False)
class Delivery:
    """One copy of a webhook and what happened to it.

    ``status``: ``held``, ``scheduled`` (due now, later, or for a retry),
    ``sending``, then one of :data:`FINISHED`. The courier changes it under its lock.
    """

    id: int
    webhook: Webhook
    url: str | None
    status: str
    duplicate: bool = False
    #: Due later than sent (``delay_webhooks``): a control call does not wait for it.
    delayed: bool = False
    #: When its next attempt falls due on the sandbox's clock (a documented schedule).
    due_at: datetime | None = None
    body: bytes = attrs.field(default=b"", repr=False)
    attempts: list[Attempt] = attrs.Factory(list)
    finished: threading.Event = attrs.field(factory=threading.Event, repr=False)

    @property
    def event_id(self) -> str:
        return self.webhook.event_id

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "event_id": self.webhook.event_id, "type": self.webhook.type,
            "object_id": self.webhook.object_id, "url": self.url, "status": self.status,
            "duplicate": self.duplicate, "attempts": [a.describe() for a in self.attempts],
            "due_at": self.due_at.isoformat() if self.due_at is not None else None,
            "body": self.body.decode("utf-8", "replace"),
        }


def _accepts_2xx(status: int) -> bool:
    return 200 <= status < 300


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Courier:
    """Sends a sandbox's webhooks (see the module's docstring for the faults).

    :param render: ``render(webhook) -> (body, headers)``, the provider's wire format
        and signature.
    :param knobs: returns the sandbox's current knobs (read at every decision).
    :param accepts: whether an answer's status ends the delivery (default: a 2xx).
    :param now: the sandbox's clock, for the attempts' times.
    :param schedule: the provider's documented waits between attempts (read at every
        retry; None: ``webhook_retry_delay`` doubling, in real time); see the module.
    """

    def __init__(
        self,
        *,
        render: Render,
        knobs: Callable[[], Knobs],
        accepts: Callable[[int], bool] = _accepts_2xx,
        now: Callable[[], datetime] = _utc_now,
        random: Random | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        name: str = "sandbox",
        schedule: Callable[[], Backoff | None] = _no_schedule,
    ) -> None:
        self.render = render
        self.knobs = knobs
        self.accepts = accepts
        self.now = now
        self.random = random or Random()  # noqa: S311 - fault injection, not security
        self.timeout = timeout
        self.transport = transport
        self.name = name
        self.schedule = schedule
        #: Every delivery made since the last :meth:`clear`, oldest first.
        self.deliveries: list[Delivery] = []
        #: Deliveries kept back (``hold_webhooks``, ``reorder_webhooks``), oldest first.
        self.held: list[Delivery] = []
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Delivery]] = []
        #: Retries due at a time of the sandbox's clock (see ``schedule``).
        self._on_clock: list[tuple[datetime, int, Delivery]] = []
        self._ids = itertools.count(1)
        self._order = itertools.count()
        self._sending: Delivery | None = None
        self._thread: threading.Thread | None = None
        self._closing = False

    # --- sending ----------------------------------------------------------------------

    def send(self, webhook: Webhook) -> list[Delivery]:
        """Send *webhook* under the current knobs; returns the deliveries it made (its
        copies) followed by the held ones it released (``reorder_webhooks``)."""
        knobs = self.knobs()
        with self._cond:
            first = self._new(webhook, knobs.webhook_url)
            if not knobs.webhook_url:
                self._finish(first, "no_url")
                return [first]
            if knobs.lose_next_webhooks > 0:
                knobs.lose_next_webhooks -= 1
                self._finish(first, "lost")
                return [first]
            if knobs.lose_webhooks and self.random.random() < knobs.lose_webhooks:
                self._finish(first, "lost")
                return [first]
            copies = [first] + [self._new(webhook, knobs.webhook_url, duplicate=True)
                                for _ in range(knobs.duplicate_webhooks)]
            if knobs.hold_webhooks or (knobs.reorder_webhooks and not self.held):
                for delivery in copies:
                    delivery.status = "held"
                self.held.extend(copies)
                return copies
            batch = list(copies)
            if knobs.reorder_webhooks:
                batch += reversed(self.held)
                self.held.clear()
            self._schedule(batch, knobs.delay_webhooks)
        return batch

    def send_all(self, webhooks: Iterable[Webhook]) -> list[Delivery]:
        """:meth:`send` each of *webhooks*, in order."""
        return [d for webhook in webhooks for d in self.send(webhook)]

    def flush(self) -> list[Delivery]:
        """Send the held deliveries now (newest first under ``reorder_webhooks``)."""
        with self._cond:
            batch = list(reversed(self.held)) if self.knobs().reorder_webhooks else list(
                self.held)
            self.held.clear()
            self._schedule(batch, 0.0)
        return batch

    def send_now(self, webhook: Webhook, *, duplicate: bool = False) -> list[Delivery]:
        """Send *webhook* now, without faults (retries still apply)."""
        url = self.knobs().webhook_url
        with self._cond:
            delivery = self._new(webhook, url, duplicate=duplicate)
            if not url:
                self._finish(delivery, "no_url")
            else:
                self._schedule([delivery], 0.0)
        return [delivery]

    def replay(self, event_id: str) -> list[Delivery]:
        """Send the logged webhook *event_id* again, now and without faults (an empty
        list when no delivery of it was logged)."""
        with self._cond:
            found = next((d for d in self.deliveries if d.event_id == event_id), None)
        return [] if found is None else self.send_now(found.webhook, duplicate=True)

    def log(self) -> list[dict[str, Any]]:
        """Every delivery since the last :meth:`clear`, described for JSON."""
        with self._cond:
            return [d.describe() for d in self.deliveries]

    def _new(self, webhook: Webhook, url: str | None, *, duplicate: bool = False) -> Delivery:
        delivery = Delivery(next(self._ids), webhook, webhook.address(url) if url else url,
                            "scheduled", duplicate=duplicate)
        try:
            delivery.body = self.render(webhook)[0]
        except Exception as exc:  # the log says what went wrong
            delivery.body = f"render failed: {exc!r}".encode()
        self.deliveries.append(delivery)
        return delivery

    def _finish(self, delivery: Delivery, status: str) -> None:
        delivery.status = status
        delivery.finished.set()
        self._cond.notify_all()

    def _schedule(self, batch: Sequence[Delivery], delay: float) -> None:
        due = time.monotonic() + delay
        for delivery in batch:
            delivery.status = "scheduled"
            delivery.delayed = delay > 0
            heapq.heappush(self._due, (due, next(self._order), delivery))
        if batch:
            self._start()
            self._cond.notify_all()

    # --- the worker -------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(target=self._work, name=f"{self.name}-courier",
                                            daemon=True)
            self._thread.start()

    def _next(self) -> Delivery | None:
        with self._cond:
            while True:
                if self._closing:
                    return None
                if self._on_clock:
                    now = self.now()
                    while self._on_clock and self._on_clock[0][0] <= now:
                        _, order, waiting = heapq.heappop(self._on_clock)
                        if waiting.status == "scheduled":  # not canceled while it waited
                            waiting.due_at = None
                            heapq.heappush(self._due, (time.monotonic(), order, waiting))
                timeout: float | None = None
                if self._due:
                    wait = self._due[0][0] - time.monotonic()
                    if wait <= 0:
                        delivery = heapq.heappop(self._due)[2]
                        if delivery.status != "scheduled":
                            continue  # canceled while it waited
                        delivery.status = "sending"
                        self._sending = delivery
                        return delivery
                    timeout = wait
                if self._on_clock:  # the sandbox's clock may be moved at any moment
                    timeout = _CLOCK_POLL if timeout is None else min(timeout, _CLOCK_POLL)
                self._cond.wait(timeout)

    def _work(self) -> None:
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            while (delivery := self._next()) is not None:
                accepted = self._attempt(client, delivery)
                with self._cond:
                    self._sending = None
                    knobs = self.knobs()
                    tried = len(delivery.attempts)
                    if delivery.status == "canceled":
                        self._finish(delivery, "canceled")
                    elif accepted:
                        self._finish(delivery, "delivered")
                    elif (tried <= knobs.webhook_retries and not self._closing
                          and (schedule := self.schedule()) is not None):
                        delivery.status = "scheduled"
                        # counted from the attempt that failed, as the provider counts
                        delivery.due_at = delivery.attempts[-1].at + timedelta(
                            seconds=schedule.seconds(tried))
                        heapq.heappush(self._on_clock, (delivery.due_at, next(self._order),
                                                        delivery))
                        self._cond.notify_all()
                    elif tried <= knobs.webhook_retries and not self._closing:
                        wait = Backoff(base=knobs.webhook_retry_delay, factor=2.0,
                                       cap=max(60.0, knobs.webhook_retry_delay),
                                       jitter=0.0).seconds(tried)
                        delivery.status = "scheduled"
                        heapq.heappush(self._due, (time.monotonic() + wait, next(self._order),
                                                   delivery))
                        self._cond.notify_all()
                    else:
                        self._finish(delivery, "failed")

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> bool:
        at, started = self.now(), time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            body, headers = self.render(delivery.webhook)
            delivery.body = body
            assert delivery.url is not None
            status = client.post(delivery.url, content=body, headers=dict(headers)).status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        except Exception as exc:  # the courier's thread must never die
            error = repr(exc)
        ms = round((time.monotonic() - started) * 1000, 1)
        with self._cond:
            delivery.attempts.append(Attempt(at, status, error, ms))
        return status is not None and self.accepts(status)

    # --- waiting, clearing ------------------------------------------------------------

    def wait(self, count: int, timeout: float = 10.0,
             where: Callable[[Delivery], bool] | None = None) -> list[Delivery]:
        """Wait until *count* deliveries (matching *where*) are finished; return the
        matching ones. Raises :class:`TimeoutError` after *timeout* seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matching = [d for d in self.deliveries if where is None or where(d)]
                finished = sum(d.done for d in matching)
                if finished >= count:
                    return matching
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{finished} of {count} webhook deliveries finished")
                self._cond.wait(left)

    def settle(self, deliveries: Iterable[Delivery], timeout: float = 30.0) -> None:
        """Wait until each of *deliveries* that is due now (not held, not delayed) is
        finished, retries included, or waits for a retry on the sandbox's clock."""
        deadline = time.monotonic() + timeout
        for delivery in deliveries:
            if delivery.status == "held" or delivery.delayed:
                continue
            with self._cond:
                while not delivery.done and delivery.due_at is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            f"webhook delivery {delivery.id} still {delivery.status}")
                    self._cond.wait(left)

    async def settled(self, deliveries: Iterable[Delivery], timeout: float = 30.0) -> None:
        """:meth:`settle`, awaited from an event loop without blocking it."""
        pending = [d for d in deliveries if not d.done and d.due_at is None]
        if pending:
            await anyio.to_thread.run_sync(self.settle, pending, timeout)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until nothing is due or being sent (held deliveries stay held)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._sending is not None or any(
                    d.status == "scheduled" for _, _, d in self._due):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("webhook deliveries still under way")
                self._cond.wait(left)

    def clear(self, timeout: float = 10.0) -> None:
        """Cancel what is held or due, wait for the one being sent, forget the log."""
        deadline = time.monotonic() + timeout
        with self._cond:
            for _, _, delivery in (*self._due, *self._on_clock):
                if delivery.status == "scheduled":
                    self._finish(delivery, "canceled")
            for delivery in self.held:
                self._finish(delivery, "canceled")
            self._due.clear()
            self._on_clock.clear()
            self.held.clear()
            if self._sending is not None:
                self._sending.status = "canceled"
            while self._sending is not None and deadline > time.monotonic():
                self._cond.wait(deadline - time.monotonic())
            self.deliveries.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker thread (what is still due is canceled); a later send
        starts a new one."""
        with self._cond:
            self._closing = True
            for _, _, delivery in (*self._due, *self._on_clock):
                if delivery.status == "scheduled":
                    self._finish(delivery, "canceled")
            self._due.clear()
            self._on_clock.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
