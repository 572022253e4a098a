"""Running the ``[[relays]]``: the outbox published to message brokers.

:func:`start_relays` builds, from the configuration and the installed relay plugins
(``pasarela_register_relays``), one :class:`~pasarela.relays.Relay` per entry;
``pasarela worker`` then calls :meth:`RelayDispatcher.run` on every pass. For each
relay, until nothing is due:

1. claim a batch (:meth:`pasarela.store.Store.claim_relay`: per-relay queue, a lease,
   claims serialised per relay, at most one event per payment and only once the
   payment's earlier events were acknowledged);
2. :meth:`Relay.publish` it, within half the lease counted from when the claim
   returned (a batch still unanswered then has failed, so its lease never runs out
   while this worker still publishes it: no other worker publishes the same events
   in the same round);
3. mark delivered exactly the events the broker acknowledged; every other event is
   retried after :data:`RELAY_RETRY` (by that relay's attempts for it).

The relays run on an event loop of the dispatcher's own, in a thread of its own, so
that the next batch is claimed and published while the broker acknowledges the one
before (:data:`IN_FLIGHT` batches at most; the store is used from the calling thread
only). That keeps per-payment order: a claim hands out a payment's event only once
the payment's earlier events were acknowledged, so two batches in flight never hold
two events of one payment. Each batch's publish has half the lease from its own
claim, as above, however long the batch before it takes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from pasarela.engine.outbox import to_lifecycle_event
from pasarela.errors import ConfigurationError
from pasarela.logs import get_logger
from pasarela.relays import Ack, Relay, RelayRegistry, collect_relays
from pasarela.retry import Backoff


if TYPE_CHECKING:
    from concurrent.futures import Future

    from pasarela.config import Config
    from pasarela.plugins import PasarelaPlugins
    from pasarela.store import Store


__all__ = ["RELAY_RETRY", "RelayDispatcher", "build_relays", "start_relays"]

log = get_logger("pasarela")

_T = TypeVar("_T")

#: Batches of one relay published at once (each claimed before it is published, and
#: at most one event per payment across them: a claim holds back a payment's event
#: until the one before it was acknowledged).
IN_FLIGHT: Final = 2

#: How long an event the broker did not acknowledge waits, by attempt; also how long a
#: relay whose broker is unreachable pauses, by consecutive failure.
RELAY_RETRY: Final = Backoff(base=1.0, factor=2.0, cap=300.0, jitter=0.2)


@attrs.define
class _Running:
    relay: Relay
    opened: bool = False
    opening: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    failures: int = 0
    resume_at: float = 0.0


def build_relays(config: Config, registry: RelayRegistry) -> list[Relay]:
    """One relay per ``[[relays]]`` entry; a duplicate name or an unknown type is a
    :class:`~pasarela.errors.ConfigurationError` naming the entry."""
    relays: list[Relay] = []
    seen: set[str] = set()
    for i, entry in enumerate(config.relays):
        if entry.relay_name in seen:
            raise ConfigurationError(f"two relays are named {entry.relay_name!r} (set name)",
                                     path=f"relays[{i}].name")
        seen.add(entry.relay_name)
        try:
            relay_class = registry.get(entry.type)
        except ConfigurationError as exc:
            raise ConfigurationError(str(exc.args[0] if exc.args else exc),
                                     path=f"relays[{i}].type") from None
        relays.append(relay_class(entry.settings()))
    return relays


class RelayDispatcher:
    """The relays of one worker, on one event loop of their own."""

    def __init__(self, store: Store, relays: Sequence[Relay]) -> None:
        self.store = store
        self._relays = [_Running(relay) for relay in relays]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="pasarela-relays")
        self._thread.start()

    @property
    def relays(self) -> list[Relay]:
        return [running.relay for running in self._relays]

    def run(self) -> int:
        """One pass: each relay that is not paused, until nothing is due; returns how
        many events the brokers acknowledged."""
        done = 0
        for running in self._relays:
            if running.resume_at > time.monotonic():
                continue
            done += self._drain(running)
        return done

    def close(self) -> None:
        for running in self._relays:
            if running.opened:
                try:
                    self._call(running.relay.close()).result()
                except Exception as exc:  # closing must not hide the worker's own result
                    log.warning("relay_close_failed", relay=running.relay.settings.name,
                                error=type(exc).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    # --- internals ------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> Future[_T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _claim(self, running: _Running) -> tuple[list[Any], float]:
        settings = running.relay.settings
        rows = self.store.claim_relay(settings.name, now=datetime.now(UTC),
                                      limit=settings.batch_size, lease=settings.lease)
        # Half the lease once the claim returned: the batch is answered or abandoned
        # long before another worker may take it.
        return rows, time.monotonic() + settings.lease.total_seconds() / 2

    def _drain(self, running: _Running) -> int:
        """Claim and publish until nothing is due, with up to :data:`IN_FLIGHT`
        batches published at once: the next one is claimed (and its publishing
        started) while the broker acknowledges the one before."""
        done = 0
        in_flight: deque[tuple[list[Any], Future[Sequence[Ack]]]] = deque()
        drained = broken = False
        try:
            while True:
                if not (drained or broken) and len(in_flight) < IN_FLIGHT:
                    rows, deadline = self._claim(running)
                    if rows:
                        events = [to_lifecycle_event(row) for row in rows]
                        in_flight.append(
                            (rows, self._call(self._publish(running, events, deadline))))
                        continue
                    drained = True
                if not in_flight:
                    return done
                rows, publishing = in_flight.popleft()
                try:
                    acks = publishing.result()
                except Exception as exc:
                    if not broken:
                        self._failed_batch(running, rows, exc)
                        broken = True
                    else:  # the same outage: the relay is paused already
                        self._retry_later(running, rows, exc)
                    continue
                if not broken:
                    running.failures = 0
                done += self._mark(running, rows, acks)
                # What a claim held back behind this batch's payments is due now.
                drained = False
        finally:
            for _, publishing in in_flight:  # only when the store raised
                publishing.cancel()

    def _mark(self, running: _Running, rows: Sequence[Any], acks: Sequence[Ack]) -> int:
        settings = running.relay.settings
        by_id = {ack.event_id: ack for ack in acks}
        delivered = [row.id for row in rows if (a := by_id.get(row.id)) and a.ok]
        self.store.mark_relayed(settings.name, delivered, now=datetime.now(UTC))
        now = datetime.now(UTC)
        acknowledged = set(delivered)
        failed = [(row.id, self._scrub(running, by_id[row.id].error if row.id in by_id
                                       else "no acknowledgement"),
                   now + RELAY_RETRY.delay(row.attempts + 1))
                  for row in rows if row.id not in acknowledged]
        if failed:
            self.store.mark_relay_failed(settings.name, failed)
            log.warning("relay_events_refused", relay=settings.name, count=len(failed))
        return len(delivered)

    async def _publish(self, running: _Running, events: Sequence[Any],
                       deadline: float) -> Sequence[Ack]:
        async with running.opening:
            if not running.opened:
                await asyncio.wait_for(running.relay.open(),
                                       max(deadline - time.monotonic(), 0))
                running.opened = True
        return await asyncio.wait_for(running.relay.publish(events),
                                      max(deadline - time.monotonic(), 0))

    def _retry_later(self, running: _Running, rows: Sequence[Any], exc: Exception) -> None:
        now = datetime.now(UTC)
        error = self._scrub(running, f"{type(exc).__name__}: {exc}")
        self.store.mark_relay_failed(
            running.relay.settings.name,
            [(row.id, error, now + RELAY_RETRY.delay(row.attempts + 1)) for row in rows])

    def _failed_batch(self, running: _Running, rows: Sequence[Any], exc: Exception) -> None:
        settings = running.relay.settings
        running.failures += 1
        pause = RELAY_RETRY.seconds(running.failures)
        running.resume_at = time.monotonic() + pause
        now = datetime.now(UTC)
        error = self._scrub(running, f"{type(exc).__name__}: {exc}")
        self.store.mark_relay_failed(
            settings.name,
            [(row.id, error, now + RELAY_RETRY.delay(row.attempts + 1)) for row in rows])
        log.warning("relay_unavailable", relay=settings.name, failures=running.failures,
                    retry_in=round(pause, 2), error=type(exc).__name__,
                    detail=error[:300], waiting=len(rows))

    @staticmethod
    def _scrub(running: _Running, text: str) -> str:
        url = str(running.relay.settings.url)
        return text.replace(url, "***") if url else text


def start_relays(config: Config, store: Store, plugins: PasarelaPlugins | None
                 ) -> RelayDispatcher | None:
    """The dispatcher of the configured relays, or None when there are none."""
    if not config.relays:
        return None
    if plugins is None:
        from pasarela.plugins import get_plugin_manager  # noqa: PLC0415

        plugins = get_plugin_manager()
    registry = collect_relays(plugins.pm)
    return RelayDispatcher(store, build_relays(config, registry))
