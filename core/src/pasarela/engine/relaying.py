"""Running the ``[[relays]]``: the outbox published to message brokers.

:func:`start_relays` builds, from the configuration and the installed relay plugins
(``pasarela_register_relays``), one :class:`~pasarela.relays.Relay` per entry;
``pasarela worker`` then calls :meth:`RelayDispatcher.run` on every pass. For each
relay, until nothing is due:

1. claim a batch (:meth:`pasarela.store.Store.claim_relay`: per-relay queue, a lease,
   claims serialised per relay, at most one event per payment and only once the
   payment's earlier events were acknowledged);
2. :meth:`Relay.publish` it, within half the lease (a batch still unanswered then has
   failed, so its lease never runs out while this worker still publishes it: no
   other worker publishes the same events in the same round);
3. mark delivered exactly the events the broker acknowledged; every other event is
   retried after :data:`RELAY_RETRY` (by that relay's attempts for it).

A relay whose broker cannot be reached (its publish raised) pauses on the same
backoff while the others go on; its events wait in the outbox (``relay_lag``) and
none is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.engine.outbox import to_lifecycle_event
from pasarela.errors import ConfigurationError
from pasarela.logs import get_logger
from pasarela.relays import Ack, Relay, RelayRegistry, collect_relays
from pasarela.retry import Backoff


if TYPE_CHECKING:
    from pasarela.config import Config
    from pasarela.plugins import PasarelaPlugins
    from pasarela.store import Store


__all__ = ["RELAY_RETRY", "RelayDispatcher", "build_relays", "start_relays"]

log = get_logger("pasarela")

#: How long an event the broker did not acknowledge waits, by attempt; also how long a
#: relay whose broker is unreachable pauses, by consecutive failure.
RELAY_RETRY: Final = Backoff(base=1.0, factor=2.0, cap=300.0, jitter=0.2)


@attrs.define
class _Running:
    relay: Relay
    opened: bool = False
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

    @property
    def relays(self) -> list[Relay]:
        return [running.relay for running in self._relays]

    def run(self) -> int:
        """One pass: each relay that is not paused, until nothing is due; returns how
        many events the brokers acknowledged."""
        done = 0
        for running in self._relays:
            if running.resume_at > self._loop.time():
                continue
            done += self._drain(running)
        return done

    def close(self) -> None:
        for running in self._relays:
            if running.opened:
                try:
                    self._loop.run_until_complete(running.relay.close())
                except Exception as exc:  # closing must not hide the worker's own result
                    log.warning("relay_close_failed", relay=running.relay.settings.name,
                                error=type(exc).__name__)
        self._loop.close()

    # --- internals ------------------------------------------------------------------

    def _drain(self, running: _Running) -> int:
        settings = running.relay.settings
        done = 0
        while True:
            rows = self.store.claim_relay(settings.name, now=datetime.now(UTC),
                                          limit=settings.batch_size, lease=settings.lease)
            if not rows:
                return done
            events = [to_lifecycle_event(row) for row in rows]
            try:
                acks = self._loop.run_until_complete(self._publish(running, events))
            except Exception as exc:
                self._failed_batch(running, rows, exc)
                return done
            running.failures = 0
            by_id = {ack.event_id: ack for ack in acks}
            delivered = [row.id for row in rows if (a := by_id.get(row.id)) and a.ok]
            self.store.mark_relayed(settings.name, delivered, now=datetime.now(UTC))
            done += len(delivered)
            if len(delivered) == len(rows):
                continue
            now = datetime.now(UTC)
            marked = set(delivered)
            failed = [(row.id, self._scrub(running, by_id[row.id].error if row.id in by_id
                                           else "no acknowledgement"),
                       now + RELAY_RETRY.delay(row.attempts + 1))
                      for row in rows if row.id not in marked]
            if failed:
                self.store.mark_relay_failed(settings.name, failed)
                log.warning("relay_events_refused", relay=settings.name, count=len(failed))

    async def _publish(self, running: _Running, events: Sequence[Any]) -> Sequence[Ack]:
        timeout = running.relay.settings.lease.total_seconds() / 2
        if not running.opened:
            await asyncio.wait_for(running.relay.open(), timeout)
            running.opened = True
        return await asyncio.wait_for(running.relay.publish(events), timeout)

    def _failed_batch(self, running: _Running, rows: Sequence[Any], exc: Exception) -> None:
        settings = running.relay.settings
        running.failures += 1
        pause = RELAY_RETRY.seconds(running.failures)
        running.resume_at = self._loop.time() + pause
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
