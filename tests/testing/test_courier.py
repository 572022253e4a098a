"""The webhook courier: each fault is observable at a real receiver on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from random import Random
from typing import Any

import pytest

from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import Courier, Knobs, Webhook


def render(webhook: Webhook) -> tuple[bytes, dict[str, str]]:
    return json.dumps(webhook.payload).encode(), {"Content-Type": "application/json",
                                                  "Toy-Event": webhook.event_id}


def hook(n: int) -> Webhook:
    return Webhook(f"ev_{n}", "thing.happened", {"n": n}, f"obj_{n}")


class Rig:
    """A courier whose knobs a test sets, sending to the loopback receiver."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.knobs = Knobs(webhook_url=receiver.url, webhook_retry_delay=0.01)
        self.courier = Courier(render=render, knobs=lambda: self.knobs, random=Random(5))

    def set(self, **changes: Any) -> None:
        self.knobs.update(changes)

    def arrived(self) -> list[int]:
        return [json.loads(body)["n"] for body in self.receiver.bodies]


@pytest.fixture
def rig(pasarela_receiver: WebhookReceiver) -> Iterator[Rig]:
    made = Rig(pasarela_receiver)
    yield made
    made.courier.close()


def test_a_webhook_is_posted_with_its_headers(rig: Rig) -> None:
    (delivery,) = rig.courier.send(hook(1))
    rig.courier.settle([delivery])
    (received,) = rig.receiver.deliveries
    assert json.loads(received.body) == {"n": 1}
    assert received.headers["toy-event"] == "ev_1"
    assert delivery.status == "delivered"
    assert [a.status for a in delivery.attempts] == [200]
    assert delivery.describe()["body"] == '{"n": 1}'


def test_duplicates_are_the_same_event_again(rig: Rig) -> None:
    rig.set(duplicate_webhooks=2)
    sent = rig.courier.send(hook(1))
    rig.courier.settle(sent)
    assert [d.duplicate for d in sent] == [False, True, True]
    assert rig.arrived() == [1, 1, 1]
    assert len(set(rig.receiver.bodies)) == 1


def test_reorder_holds_each_until_the_next_which_goes_first(rig: Rig) -> None:
    rig.set(reorder_webhooks=True)
    first = rig.courier.send(hook(1))
    assert [d.status for d in first] == ["held"]
    rig.courier.drain()
    assert rig.arrived() == []
    rig.courier.settle(rig.courier.send(hook(2)))
    assert rig.arrived() == [2, 1]
    rig.courier.send(hook(3))  # held again, until a flush
    rig.courier.settle(rig.courier.flush())
    assert rig.arrived() == [2, 1, 3]


def test_hold_keeps_everything_until_flush(rig: Rig) -> None:
    rig.set(hold_webhooks=True)
    for n in (1, 2, 3):
        rig.courier.send(hook(n))
    rig.courier.drain()
    assert rig.arrived() == []
    assert len(rig.courier.held) == 3
    rig.courier.settle(rig.courier.flush())
    assert rig.arrived() == [1, 2, 3]
    rig.set(reorder_webhooks=True)
    for n in (4, 5):
        rig.courier.send(hook(n))
    rig.courier.settle(rig.courier.flush())
    assert rig.arrived() == [1, 2, 3, 5, 4]  # newest first under reorder


def test_delay_sends_later_and_is_not_waited_for(rig: Rig) -> None:
    rig.set(delay_webhooks=0.3)
    started = time.monotonic()
    sent = rig.courier.send(hook(1))
    rig.courier.settle(sent)  # returns at once: a delayed delivery is not waited for
    assert time.monotonic() - started < 0.25
    assert sent[0].delayed
    assert rig.arrived() == []
    rig.receiver.wait(1)
    assert time.monotonic() - started >= 0.3
    rig.courier.drain()
    assert sent[0].status == "delivered"


def test_lost_webhooks_are_logged_and_never_sent(rig: Rig) -> None:
    rig.set(lose_next_webhooks=1, duplicate_webhooks=1)
    lost = rig.courier.send(hook(1))
    assert [d.status for d in lost] == ["lost"]  # no copies of a lost webhook
    assert rig.knobs.lose_next_webhooks == 0
    rig.courier.settle(rig.courier.send(hook(2)))
    rig.set(lose_webhooks=1.0, duplicate_webhooks=0)
    assert [d.status for d in rig.courier.send(hook(3))] == ["lost"]
    rig.courier.drain()
    assert rig.arrived() == [2, 2]
    assert [d["status"] for d in rig.courier.log()] == ["lost", "delivered", "delivered", "lost"]
    assert rig.courier.log()[0]["body"] == '{"n": 1}'  # what would have been sent


def test_a_share_of_losses_follows_the_seeded_draws(rig: Rig) -> None:
    rig.set(lose_webhooks=0.5)
    statuses = [rig.courier.send(hook(n))[0].status for n in range(40)]
    rig.courier.drain()
    lost = statuses.count("lost")
    assert 5 < lost < 35
    assert len(rig.receiver.bodies) == 40 - lost


def test_retries_back_off_then_give_up(rig: Rig) -> None:
    rig.receiver.statuses.extend([500, 503])
    started = time.monotonic()
    (delivered,) = rig.courier.send(hook(1))
    rig.courier.settle([delivered])
    assert [a.status for a in delivered.attempts] == [500, 503, 200]
    assert delivered.status == "delivered"
    # Backoff(base=0.01, factor=2): 0.01 s, then 0.02 s between the attempts
    assert time.monotonic() - started >= 0.03
    rig.receiver.status = 500
    rig.set(webhook_retries=1)
    (failed,) = rig.courier.send(hook(2))
    rig.courier.settle([failed])
    assert failed.status == "failed"
    assert [a.status for a in failed.attempts] == [500, 500]


def test_an_unreachable_receiver_is_an_error_attempt(rig: Rig) -> None:
    rig.set(webhook_url="http://127.0.0.1:9/nobody", webhook_retries=0)
    (delivery,) = rig.courier.send(hook(1))
    rig.courier.settle([delivery])
    assert delivery.status == "failed"
    assert delivery.attempts[0].status is None
    assert delivery.attempts[0].error == "ConnectError"


def test_accepts_decides_what_ends_a_delivery(pasarela_receiver: WebhookReceiver) -> None:
    knobs = Knobs(webhook_url=pasarela_receiver.url, webhook_retries=1,
                  webhook_retry_delay=0.01)
    courier = Courier(render=render, knobs=lambda: knobs, accepts=lambda status: status == 200)
    pasarela_receiver.statuses.append(202)  # a 2xx, but not the 200 this provider wants
    try:
        (delivery,) = courier.send(hook(1))
        courier.settle([delivery])
    finally:
        courier.close()
    assert [a.status for a in delivery.attempts] == [202, 200]


def test_without_a_url_nothing_is_sent(rig: Rig) -> None:
    rig.set(webhook_url=None)
    (delivery,) = rig.courier.send(hook(1))
    assert delivery.status == "no_url"
    assert delivery.done
    assert rig.courier.replay("ev_1")[0].status == "no_url"


def test_replay_sends_a_logged_webhook_again_without_faults(rig: Rig) -> None:
    rig.courier.settle(rig.courier.send(hook(1)))
    rig.set(lose_webhooks=1.0)
    (again,) = rig.courier.replay("ev_1")
    rig.courier.settle([again])
    assert again.duplicate
    assert again.status == "delivered"
    assert rig.arrived() == [1, 1]
    assert rig.courier.replay("ev_nope") == []


def test_wait_counts_finished_deliveries(rig: Rig) -> None:
    rig.set(delay_webhooks=0.1)
    rig.courier.send(hook(1))
    rig.courier.send(hook(2))
    assert [d.event_id for d in rig.courier.wait(2)] == ["ev_1", "ev_2"]
    with pytest.raises(TimeoutError, match="2 of 3"):
        rig.courier.wait(3, timeout=0.05)


def test_clear_cancels_what_is_due_and_forgets_the_log(rig: Rig) -> None:
    rig.set(delay_webhooks=5.0)
    (later,) = rig.courier.send(hook(1))
    rig.set(delay_webhooks=0.0, hold_webhooks=True)
    (held,) = rig.courier.send(hook(2))
    rig.courier.clear()
    assert (later.status, held.status) == ("canceled", "canceled")
    assert later.finished.is_set()
    assert rig.courier.deliveries == []
    assert rig.courier.held == []
    rig.courier.drain(timeout=1)  # nothing left under way
    assert rig.arrived() == []


def test_close_stops_the_thread_and_a_later_send_starts_another(rig: Rig) -> None:
    rig.courier.settle(rig.courier.send(hook(1)))
    rig.courier.close()
    rig.courier.settle(rig.courier.send(hook(2)))
    assert rig.arrived() == [1, 2]
