"""``[[relays]]``: the brokers ``pasarela worker`` publishes lifecycle events to.

::

    [[relays]]
    type = "nats"                 # an installed relay (pasarela-relay-nats)
    name = "nats"                 # default: the type; delivery marks are kept by name
    url = "env:PASARELA_NATS_URL" # may carry a password: write it as env:NAME
    subject = "pasarela"          # NATS: subject prefix, <subject>.<event type>
    stream = "PASARELA"           # JetStream stream / Redis stream key
    exchange = "pasarela"         # RabbitMQ topic exchange
    topic = "pasarela.events"     # Kafka topic
    batch_size = 500              # events claimed and published together
    lease = "30s"                 # how long a claimed batch is held by one worker
    max_len = 1000000             # Redis: XADD MAXLEN ~ bound

See ``docs/relays.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from pasarela.relays import RelaySettings
from pasarela.secret import Secret


__all__ = ["RelayConfig"]


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer")


def _lease(instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError("lease must be positive")


@attrs.frozen(kw_only=True)
class RelayConfig:
    """One ``[[relays]]`` entry (the URL is never shown in a ``repr``)."""

    type: str
    url: str = attrs.field(repr=False)
    name: str = ""
    subject: str = "pasarela"
    stream: str = ""
    exchange: str = "pasarela"
    topic: str = "pasarela.events"
    batch_size: int = attrs.field(default=500, validator=_positive)
    lease: timedelta = attrs.field(default=timedelta(seconds=30), validator=_lease)
    max_len: int = attrs.field(default=1_000_000, validator=_positive)
    options: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def relay_name(self) -> str:
        return self.name or self.type

    def settings(self) -> RelaySettings:
        """What the relay class is built with."""
        return RelaySettings(
            name=self.relay_name, type=self.type, url=Secret(self.url), subject=self.subject,
            stream=self.stream, exchange=self.exchange, topic=self.topic,
            batch_size=self.batch_size, lease=self.lease, max_len=self.max_len,
            options=dict(self.options))
