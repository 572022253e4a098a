"""The relay contract: the outbox's lifecycle events published to a message broker.

A relay is a :class:`Relay` subclass that a plugin announces with the
``pasarela_register_relays`` hook (a distribution's module named by an entry point
in the ``pasarela`` group, like a provider)::

    from pasarela.relays import Relay, RelayRegistry, hookimpl

    class MyRelay(Relay):
        type = "mybroker"
        async def publish(self, events): ...

    @hookimpl
    def pasarela_register_relays(register: RelayRegistry) -> None:
        register.add(MyRelay)

``pasarela worker`` runs every ``[[relays]]`` entry of the configuration
(:mod:`pasarela.engine.relaying`): it claims a batch of the outbox for the relay,
calls :meth:`Relay.publish` and marks delivered, for that relay, exactly the events
whose :class:`Ack` says the broker acknowledged them. Everything else waits in the
outbox and is retried with the core's backoff (:mod:`pasarela.retry`). The
guarantees a relay gives its consumers:

- **at least once**: a worker that dies after the broker acknowledged and before the
  mark publishes those events again; every message carries the event id
  (:attr:`pasarela.events.LifecycleEvent.id`), the consumer's dedupe key;
- **per-payment order**: a payment's event is handed to a relay only once every
  earlier event of that payment was acknowledged by that relay's broker, so a batch
  holds at most one event per payment and a relay may publish a batch all at once.
  An event is never published again once marked, so a repeat (after a crash) comes
  before the payment's next event: a consumer of a broker that keeps order sees
  ``e1 e1 e2``, never ``e1 e2 e1``.

The body of every message is :func:`encode_event` (JSON, one home for the format).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar, Final

import attrs
import pluggy

from pasarela.errors import ConfigurationError, PluginError
from pasarela.events import LifecycleEvent
from pasarela.hookspecs import PROJECT_NAME, hookimpl
from pasarela.secret import Secret


__all__ = [
    "Ack",
    "Relay",
    "RelayRegistry",
    "RelaySettings",
    "decode_event",
    "encode_event",
    "hookimpl",
    "pasarela_register_relays",
]

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def pasarela_register_relays(register: RelayRegistry) -> None:
    """Register relay classes: ``register.add(RelayClass)`` once per class.

    :param register: the :class:`RelayRegistry`; a ``type`` another plugin registered
        already raises :class:`~pasarela.errors.PluginError` naming both.
    """


@attrs.frozen(kw_only=True)
class Ack:
    """The broker's answer for one event: ``ok`` once it acknowledged it (stored,
    confirmed), else ``error`` says why (the event is retried later)."""

    event_id: str
    ok: bool
    error: str = ""


@attrs.frozen(kw_only=True)
class RelaySettings:
    """One ``[[relays]]`` entry as a relay sees it.

    Attributes:
        name: the relay's name (its delivery marks in the store are kept under it).
        type: the relay class's :attr:`Relay.type`.
        url: the broker's URL (a secret: it may carry a password).
        subject: NATS subject prefix (``<subject>.<event type>``).
        stream: the JetStream stream or the Redis stream key.
        exchange: the RabbitMQ exchange.
        topic: the Kafka topic.
        batch_size: events claimed and published together.
        max_len: Redis ``MAXLEN ~`` bound of the stream.
        options: further settings the relay reads itself.
    """

    name: str
    type: str
    url: Secret
    subject: str = "pasarela"
    stream: str = ""
    exchange: str = "pasarela"
    topic: str = "pasarela.events"
    batch_size: int = 500
    lease: timedelta = timedelta(seconds=30)
    max_len: int = 1_000_000
    options: Mapping[str, Any] = attrs.field(factory=dict)


class Relay:
    """Publishes lifecycle events to one broker. Subclass it and set :attr:`type`.

    The worker calls :meth:`open` once, then :meth:`publish` for each batch, and
    :meth:`close` when it stops, all on one asyncio event loop. A relay reconnects by
    itself: a :meth:`publish` that cannot reach the broker raises (or returns failed
    acks) and the events wait for the next attempt.
    """

    #: The ``type`` of a ``[[relays]]`` entry that selects this class.
    type: ClassVar[str] = ""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings

    async def open(self) -> None:
        """Connect (optional: :meth:`publish` may connect on first use)."""

    async def publish(self, events: Sequence[LifecycleEvent]) -> Sequence[Ack]:
        """Publish *events* (at most one per payment: in any order, or all at once);
        one :class:`Ack` per event, ``ok`` only once the broker acknowledged it.
        Raising fails the whole batch."""
        raise NotImplementedError

    async def close(self) -> None:
        """Disconnect."""


def encode_event(event: LifecycleEvent) -> bytes:
    """The message body of *event*: UTF-8 JSON, money as minor units and currency."""
    body = {
        "id": event.id,
        "type": event.type,
        "payment_id": event.payment_id,
        "order_reference": event.order_reference,
        "provider": event.provider,
        "status": event.status,
        "amount": {"minor": event.amount.minor, "currency": event.amount.currency},
        "occurred_at": event.occurred_at.isoformat(),
        "payload": dict(event.payload),
    }
    import json  # noqa: PLC0415 - with the relays at work, not at plugin discovery

    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def decode_event(body: bytes | str) -> dict[str, Any]:
    """A message body back as a dict (what a consumer reads)."""
    import json  # noqa: PLC0415

    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("a relay message body is a JSON object")
    return value


class RelayRegistry:
    """The relay classes that plugins registered, by :attr:`Relay.type`."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Relay]] = {}
        self._owners: dict[str, str] = {}
        self._plugin = "?"

    @contextmanager
    def on_behalf_of(self, plugin: str) -> Iterator[None]:
        previous, self._plugin = self._plugin, plugin
        try:
            yield
        finally:
            self._plugin = previous

    def add(self, relay_class: type[Relay]) -> None:
        if not (isinstance(relay_class, type) and issubclass(relay_class, Relay)):
            raise PluginError(f"plugin {self._plugin!r} registered {relay_class!r}, "
                              "not a pasarela.relays.Relay subclass")
        kind = relay_class.type
        if not kind:
            raise PluginError(f"relay class {relay_class.__qualname__} declares no type")
        if kind in self._classes and self._classes[kind] is not relay_class:
            raise PluginError(f"relay type {kind!r} registered by both "
                              f"{self._owners[kind]!r} and {self._plugin!r}")
        self._classes[kind] = relay_class
        self._owners[kind] = self._plugin

    def get(self, kind: str) -> type[Relay]:
        try:
            return self._classes[kind]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise ConfigurationError(
                f"no relay of type {kind!r} is installed (installed: {known})",
                path="relays.type") from None

    def types(self) -> list[str]:
        return sorted(self._classes)


def collect_relays(pm: pluggy.PluginManager,
                   name_of: Callable[[object], str] | None = None) -> RelayRegistry:
    """A registry filled by every ``pasarela_register_relays`` implementation of *pm*."""
    registry = RelayRegistry()
    caller = getattr(pm.hook, "pasarela_register_relays", None)
    if caller is None:
        return registry
    for impl in caller.get_hookimpls():
        plugin = name_of(impl.plugin) if name_of else (pm.get_name(impl.plugin) or "?")
        with registry.on_behalf_of(plugin):
            impl.function(register=registry)
    return registry
