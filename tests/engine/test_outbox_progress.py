"""A worker killed while delivering events always makes progress: delivered events are
marked in small groups, so a restart redelivers at most MARK_EVERY of them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from pasarela.api import Pasarela
from pasarela.engine.outbox import MARK_EVERY
from pasarela.hookspecs import hookimpl
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


class Killed(BaseException):
    """The worker process killed in the middle of an observer."""


class Host:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.kill_at: int | None = None

    @hookimpl
    def pasarela_payment_event(self, event: Any) -> None:
        if self.kill_at is not None and sum(self.seen.values()) == self.kill_at:
            self.kill_at = None
            raise Killed
        self.seen[event.id] += 1


def test_a_killed_dispatcher_progresses_and_redelivers_a_bounded_few(store_url: str) -> None:
    clock, host = ManualClock(), Host()
    config = {"store": {"url": store_url}, "events": {"dispatch": "worker"},
              "providers": {"fake": {"max_retries": 0}}}
    with Pasarela(config, plugins=[FakePlugin(), host], load_entrypoints=False, clock=clock,
                  transport=FakeGateway(clock=clock).transport(),
                  store=Store(store_url, upgrade=True)) as pasarela:
        for n in range(30):  # each card payment: payment.succeeded
            pasarela.pay(Order(reference=f"o-{n}", amount=Money.of("10.00", "PEN"),
                               customer=Customer(first_name="R", last_name="Q")),
                         method="card", idempotency_key=f"k-{n}")
        host.kill_at = 25
        with pytest.raises(Killed):
            pasarela.dispatch_outbox()
        first = sum(host.seen.values())
        assert first == 25
        # The restarted worker claims what the dead one held once its lease ran out.
        lease = pasarela.store.outbox_lease
        with time_machine.travel(datetime.now(UTC) + lease + timedelta(seconds=1)):
            pasarela.dispatch_outbox()
        events = len(host.seen)
        assert events >= 30
        assert all(count >= 1 for count in host.seen.values())
        redelivered = sum(host.seen.values()) - events
        assert redelivered <= MARK_EVERY
        assert redelivered == 25 - (25 // MARK_EVERY) * MARK_EVERY
