"""The sandbox retries a notification as dLocal documents (docs/receive-notifications):
hourly for 6 hours, then every 12 hours, at most 12 attempts, on the sandbox's clock
(the toolkit's :class:`~pasarela.testing.sandbox.Clock`, moved here as
``POST /_control/clock`` moves it). No retry comes before its time, each comes once
the clock reaches it, the 12th failure is the last, and the control call that paid
the ticket does not wait for retries hours away."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import httpx
from pasarela_dlocal import DlocalProvider, DlocalSettings
from pasarela_dlocal.sandbox import NOTIFICATION_SCHEDULE, create_app

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.provider import Operation
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import Delivery, ServedSandbox

from .conftest import make_request


HOUR = 3600.0


def quiet_for(receiver: WebhookReceiver, count: int, seconds: float = 0.25) -> bool:
    """Whether *receiver* still has *count* deliveries after *seconds* of real time
    (several of the courier's looks at the clock)."""
    time.sleep(seconds)
    return len(receiver.deliveries) == count


def rescheduled(delivery: Delivery, attempts: int) -> None:
    """Wait until the courier has logged *attempts* attempts of *delivery* and put it
    back on the clock (or finished it)."""
    deadline = time.monotonic() + 5
    while len(delivery.attempts) < attempts or (delivery.due_at is None
                                                 and not delivery.done):
        assert time.monotonic() < deadline, (len(delivery.attempts), delivery.status)
        time.sleep(0.01)


def test_retries_follow_dlocals_schedule_on_the_sandbox_clock(
        pasarela_sandbox: Callable[..., ServedSandbox],
        pasarela_receiver: WebhookReceiver) -> None:
    served = pasarela_sandbox(create_app, seed=7)  # the default: the documented schedule
    sandbox, receiver = served.sandbox, pasarela_receiver
    assert sandbox.knobs.notification_schedule == "documented"
    provider = DlocalProvider(DlocalSettings(**served.settings(), max_retries=0))
    with httpx.Client(timeout=5) as client:  # created before any URL: no notice to retry
        reported = drive(run_flow(provider, Operation.CREATE,
                                  lambda: provider.create(make_request()), sleep_scale=0),
                         client)
    sandbox.configure({"webhook_url": receiver.url})
    receiver.status = 500  # every attempt refused
    started = time.monotonic()
    paid = served.control("POST", f"/payments/{reported.reference}/pay")
    assert time.monotonic() - started < 5  # the control call is not held for the retries
    assert paid.status_code == 200
    receiver.wait(1)
    [delivery] = [d for d in sandbox.courier.deliveries if d.url == receiver.url]
    waits = [NOTIFICATION_SCHEDULE.ceiling(n) for n in range(1, 12)]
    assert waits == [HOUR] * 6 + [12 * HOUR] * 5
    for n, wait in enumerate(waits, start=1):
        rescheduled(delivery, n)
        assert delivery.due_at is not None, n
        assert abs((delivery.due_at - delivery.attempts[-1].at).total_seconds() - wait) < 5
        sandbox.clock.advance(wait - 60)  # a minute early: nothing
        assert quiet_for(receiver, n), f"retry {n} came early"
        sandbox.clock.advance(60)
        receiver.wait(n + 1)
    rescheduled(delivery, 12)
    assert len(delivery.attempts) == 12
    gaps = [(b.at - a.at).total_seconds()
            for a, b in zip(delivery.attempts, delivery.attempts[1:], strict=False)]
    assert all(abs(gap - wait) < 5 for gap, wait in zip(gaps, waits, strict=True)), gaps
    sandbox.courier.wait(1, timeout=5, where=lambda d: d is delivery)
    assert delivery.status == "failed"
    assert delivery.due_at is None
    sandbox.clock.advance(timedelta(days=2))  # the 12th attempt was the last
    assert quiet_for(receiver, 12)
    bodies = {r.body for r in receiver.deliveries}
    assert len(bodies) == 1  # the same payment object each time


def test_the_fast_knob_keeps_real_time_retries(
        pasarela_sandbox: Callable[..., ServedSandbox],
        pasarela_receiver: WebhookReceiver) -> None:
    served = pasarela_sandbox(create_app, seed=7, webhook_retry_delay=0.05,
                              notification_schedule="fast")
    provider = DlocalProvider(DlocalSettings(**served.settings(), max_retries=0))
    served.sandbox.configure({"webhook_url": pasarela_receiver.url})
    pasarela_receiver.statuses = [500, 500]
    with httpx.Client(timeout=5) as client:
        drive(run_flow(provider, Operation.CREATE, lambda: provider.create(make_request()),
                       sleep_scale=0), client)
    pasarela_receiver.wait(3)  # the clock never moved
    assert all(d.due_at is None for d in served.sandbox.courier.deliveries)
