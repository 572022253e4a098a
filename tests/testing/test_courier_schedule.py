"""A courier given a provider's documented retry schedule waits it on the sandbox's
clock: a retry falls due when the clock reaches it (not in real time), ``settle`` and
``drain`` do not wait for it, and ``clear`` cancels it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from random import Random

import pytest

from pasarela.retry import Backoff
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import Clock, Courier, Knobs, Webhook


SCHEDULE = Backoff.fixed(timedelta(minutes=10), timedelta(hours=2))


def render(webhook: Webhook) -> tuple[bytes, dict[str, str]]:
    return json.dumps(webhook.payload).encode(), {"Content-Type": "application/json"}


@pytest.fixture
def courier(pasarela_receiver: WebhookReceiver) -> Iterator[tuple[Courier, Clock]]:
    clock = Clock()
    knobs = Knobs(webhook_url=pasarela_receiver.url, webhook_retries=2,
                  webhook_retry_delay=0.01)
    made = Courier(render=render, knobs=lambda: knobs, now=clock.now, random=Random(1),
                   schedule=lambda: SCHEDULE)
    yield made, clock
    made.close()


def until(check: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_retries_wait_the_schedule_on_the_clock(courier: tuple[Courier, Clock],
                                                pasarela_receiver: WebhookReceiver) -> None:
    sender, clock = courier
    pasarela_receiver.status = 500
    (delivery,) = sender.send(Webhook("ev_1", "thing", {"n": 1}, "obj_1"))
    started = time.monotonic()
    sender.settle([delivery], timeout=5)  # returns once it waits on the clock
    sender.drain(timeout=5)
    assert time.monotonic() - started < 3
    assert delivery.status == "scheduled"
    assert delivery.due_at == delivery.attempts[0].at + timedelta(minutes=10)
    time.sleep(0.2)  # real time passes; the sandbox's clock does not reach it
    assert len(delivery.attempts) == 1
    clock.advance(timedelta(minutes=10))
    until(lambda: len(delivery.attempts) == 2 and delivery.due_at is not None)
    assert delivery.due_at == delivery.attempts[1].at + timedelta(hours=2)
    clock.advance(timedelta(hours=2))
    until(lambda: delivery.done)
    assert (delivery.status, len(delivery.attempts)) == ("failed", 3)  # 1 + 2 retries
    assert delivery.describe()["due_at"] is None


def test_clear_cancels_a_retry_waiting_on_the_clock(courier: tuple[Courier, Clock],
                                                    pasarela_receiver: WebhookReceiver
                                                    ) -> None:
    sender, clock = courier
    pasarela_receiver.status = 500
    (delivery,) = sender.send(Webhook("ev_2", "thing", {"n": 2}, "obj_2"))
    sender.settle([delivery], timeout=5)
    sender.clear()
    assert delivery.status == "canceled"
    clock.advance(timedelta(days=1))
    time.sleep(0.2)
    assert len(pasarela_receiver.deliveries) == 1
