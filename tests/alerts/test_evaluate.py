"""Alerts evaluated over a real store (SQLite and PostgreSQL): opened once, kept up
to date while they fire, resolved when the cause goes, told to the notifiers and
the ``pasarela_alert`` hook, kept as history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from pasarela import hookimpl
from pasarela.api import Pasarela
from pasarela.config.sections import AlertsConfig
from pasarela.engine.alerts import AlertJob, evaluate
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.monitoring import alert_history, open_alerts
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


CONFIG = AlertsConfig(notification_delay=timedelta(minutes=30), min_finished=10,
                      outbox_lag=timedelta(minutes=5), log=False)


def order(ref: str) -> Order:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    return Order(reference=ref, amount=Money.of("49.90", "PEN"), description="Polo",
                 customer=customer)


class Seen:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def __call__(self, document: Any) -> None:
        self.documents.append(dict(document))

    @hookimpl
    def pasarela_alert(self, alert: Any) -> None:
        self.documents.append({"hook": True, **alert})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gateway(clock: ManualClock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def pasarela(store_url: str, gateway: FakeGateway, clock: ManualClock) -> Iterator[Pasarela]:
    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}},
              "events": {"dispatch": "worker"}}
    p = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                 transport=gateway.transport(), clock=clock, store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


def now() -> datetime:
    return datetime.now(UTC)


def test_silent_notifications_fire_once_and_resolve_when_the_payments_are_heard(
        pasarela, gateway, clock):
    clock.now = now() - timedelta(hours=1)
    waiting = [pasarela.pay(order(f"w-{i}"), method="cash", idempotency_key=f"w-{i}")
               for i in range(2)]
    clock.now = now()
    seen = Seen()
    first = evaluate(pasarela.store, CONFIG, now=clock.now, notify=[seen])
    assert [(a.kind, a.merchant, a.subject) for a in first.fired] == [
        ("notifications_silent", "", "fake")]
    assert "2 payment(s) wait" in first.fired[0].message
    assert [(d["state"], d["kind"]) for d in seen.documents] == [
        ("firing", "notifications_silent")]
    again = evaluate(pasarela.store, CONFIG, now=clock.now + timedelta(minutes=1), notify=[seen])
    assert again.fired == ()
    assert [a.id for a in again.firing] == [first.fired[0].id]
    assert len(seen.documents) == 1  # told once
    for payment in waiting:  # the customers paid and the notifications arrive
        pasarela.handle_webhook("fake", *gateway.settle(payment.provider_reference))
    assert {pasarela.get(p.id).status for p in waiting} == {Status.SUCCEEDED}
    done = evaluate(pasarela.store, CONFIG, now=clock.now + timedelta(minutes=2), notify=[seen])
    assert [a.id for a in done.resolved] == [first.fired[0].id]
    assert done.firing == ()
    assert [d["state"] for d in seen.documents] == ["firing", "resolved"]
    assert open_alerts(pasarela.store) == []
    [row] = alert_history(pasarela.store)
    assert row.resolved_at is not None
    assert row.kind == "notifications_silent"


def test_a_provider_heard_recently_is_not_silent(pasarela, gateway, clock):
    clock.now = now() - timedelta(hours=1)
    pasarela.pay(order("old"), method="cash", idempotency_key="old")
    clock.now = now()
    fresh = pasarela.pay(order("new"), method="cash", idempotency_key="new")
    pasarela.handle_webhook("fake", *gateway.settle(fresh.provider_reference))
    found = evaluate(pasarela.store, CONFIG, now=clock.now)
    assert [a.kind for a in found.fired if a.kind == "notifications_silent"] == []


def test_unknown_overdue_outbox_lag_and_differences(pasarela, clock, store_url):
    payment = pasarela.pay(order("u-1"), method="cash", idempotency_key="u-1")
    engine = pasarela.store.engine
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE payments SET status = 'unknown', check_attempts = 5 "
                             "WHERE id = :id"), {"id": payment.id})
        conn.execute(sa.text(
            "INSERT INTO reconciliation_results (run_key, item_key, provider, category, "
            "resolved, healed, created_at) VALUES ('r1', 'i1', 'fake', 'missing', :f, :f, "
            ":at)"), {"f": False, "at": now()})
    config = attrs.evolve(CONFIG, notification_delay=timedelta(days=1))
    later = now() + timedelta(minutes=10)  # the outbox's events are 10 min old
    found = evaluate(pasarela.store, config, now=later)
    assert sorted((a.kind, a.subject, a.value) for a in found.fired) == [
        ("outbox_lag", "outbox", pytest.approx(600, abs=5)),
        ("reconciliation_differences", "fake", 1.0),
        ("unknown_overdue", "fake", 1.0),
    ]
    pasarela.dispatch_outbox()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE reconciliation_results SET resolved = :t"), {"t": True})
    after = evaluate(pasarela.store, config, now=later)
    assert sorted(a.kind for a in after.resolved) == ["outbox_lag",
                                                      "reconciliation_differences"]
    assert [a.kind for a in after.firing] == ["unknown_overdue"]


def test_success_rate_drop_against_the_accounts_own_baseline(pasarela, gateway, clock):
    for i in range(10):  # the baseline: all paid
        p = pasarela.pay(order(f"b-{i}"), method="cash", idempotency_key=f"b-{i}")
        pasarela.handle_webhook("fake", *gateway.settle(p.provider_reference))
    time.sleep(0.02)
    boundary = now()
    for i in range(10):  # recently: 4 of 10 paid
        p = pasarela.pay(order(f"r-{i}"), method="cash", idempotency_key=f"r-{i}")
        status = "succeeded" if i < 4 else "failed"
        pasarela.handle_webhook("fake", *gateway.settle(p.provider_reference, status))
    config = attrs.evolve(CONFIG, window=timedelta(hours=1), baseline=timedelta(hours=24))
    found = evaluate(pasarela.store, config, now=boundary + timedelta(hours=1))
    [alert] = [a for a in found.fired if a.kind == "success_rate"]
    assert (alert.subject, alert.value, alert.threshold) == ("fake/cash", 0.4, 0.8)


def test_the_job_evaluates_every_so_often_and_calls_the_hook(pasarela, clock):
    seen = Seen()
    pasarela.plugins.register(seen)
    clock.now = now() - timedelta(hours=1)
    pasarela.pay(order("j-1"), method="cash", idempotency_key="j-1")
    clock.now = now()
    ticks = [0.0]
    job = AlertJob(pasarela.store, CONFIG, clock=clock,
                   hook=pasarela.plugins.alert, monotonic=lambda: ticks[0])
    assert job() == 1
    assert job() == 0  # not yet due: evaluated at most every minute
    assert [(d.get("hook"), d["kind"]) for d in seen.documents] == [
        (True, "notifications_silent")]
    ticks[0] = 61.0
    assert job() == 0  # due, nothing changed
    off = AlertJob(pasarela.store, attrs.evolve(CONFIG, enabled=False), clock=clock)
    assert off() == 0
