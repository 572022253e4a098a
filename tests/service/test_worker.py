"""The worker: expiry sweep, resolver, outbox dispatcher and late refunds in one loop."""

from __future__ import annotations

import os
import signal
import threading
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from pasarela.cli.serve import worker
from pasarela.config import load_config
from pasarela.engine import worker as worker_module
from pasarela.engine.jobs import expire_due
from pasarela.engine.steps import drive
from pasarela.engine.worker import late_payment_policy, refund_late_payments, run_worker
from pasarela.errors import ConfigurationError
from pasarela.lifecycle import Status

from .conftest import make_order


def wait_for(condition, *, timeout: float = 20.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not met in time")


def test_one_pass_expires_resolves_and_dispatches(make_sync, gateway, clock, observer):
    p = make_sync()
    unpaid = p.pay(make_order("pedido-unpaid"), method="cash", idempotency_key="unpaid")
    last_minute = p.pay(make_order("pedido-lm"), method="cash", idempotency_key="lm")
    gateway.settle(last_minute.provider_reference)  # paid, but the webhook never arrives
    lost = p.pay(make_order("pedido-lost"), method="card", idempotency_key="lost",
                 scenario="timeout")
    assert (unpaid.status, last_minute.status, lost.status) == (
        Status.PENDING, Status.PENDING, Status.UNKNOWN)
    assert observer.events == []  # dispatch = "worker": nothing reached the host yet

    clock.now += timedelta(hours=25)  # past the cash codes' 24 h expiry and the recheck time
    stats = run_worker(p, once=True, handle_signals=False)

    assert p.get(unpaid.id).status is Status.EXPIRED
    assert p.get(last_minute.id).status is Status.SUCCEEDED
    assert p.get(lost.id).status is Status.SUCCEEDED
    assert (stats.ticks, stats.expired, stats.resolved, stats.errors) == (1, 1, 1, 0)
    assert stats.dispatched == 6  # 3 created -> pending/unknown, then 3 outcomes
    assert sorted(observer.types()) == sorted([
        "payment.pending", "payment.pending", "payment.unknown",
        "payment.expired", "payment.succeeded", "payment.succeeded"])
    assert p.store.outbox_lag(now=clock.now + timedelta(days=1))[0] == 0
    expired = p.get(unpaid.id).history[-1]
    assert (expired.source, expired.target, expired.cause.value) == (
        Status.PENDING, Status.EXPIRED, "job")


def test_nothing_due_before_the_clock_moves(make_sync, clock):
    p = make_sync()
    payment = p.pay(make_order("pedido-1"), method="cash", idempotency_key="k1")
    stats = run_worker(p, once=True, handle_signals=False)
    assert (stats.expired, stats.resolved, stats.dispatched) == (0, 0, 1)
    assert p.get(payment.id).status is Status.PENDING


def test_one_pass_drains_more_than_one_batch(make_sync, clock, monkeypatch):
    p = make_sync()
    ids = [p.pay(make_order(f"pedido-{i}"), method="cash", idempotency_key=f"k{i}").id
           for i in range(7)]
    clock.now += timedelta(hours=25)
    batches = []

    def small_batches() -> int:
        batches.append(1)
        return drive(expire_due(p.service, limit=3), p._client)

    monkeypatch.setattr(p, "expire_due", small_batches)
    stats = run_worker(p, once=True, handle_signals=False)
    assert stats.expired == 7
    assert len(batches) == 3
    assert {p.get(i).status for i in ids} == {Status.EXPIRED}


def test_loop_runs_until_stopped(make_sync, gateway, clock, observer):
    p = make_sync()
    payment = p.pay(make_order("pedido-1"), method="cash", idempotency_key="k1")
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault(
        "stats", run_worker(p, interval=0.01, stop=stop)))
    thread.start()
    try:
        wait_for(lambda: "payment.pending" in observer.types())
        clock.now += timedelta(hours=25)
        wait_for(lambda: "payment.expired" in observer.types())
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert p.get(payment.id).status is Status.EXPIRED
    assert result["stats"].ticks >= 2
    assert result["stats"].expired == 1


def test_a_failing_job_backs_off_and_the_others_go_on(make_sync, clock, monkeypatch):
    p = make_sync()
    payment = p.pay(make_order("pedido-1"), method="cash", idempotency_key="k1")
    calls = []
    ticks = []

    def broken() -> int:
        calls.append(1)
        raise RuntimeError("observer store down")

    real_due = worker_module._due_for_expiry

    def counting_due(pasarela) -> int:
        ticks.append(1)
        return real_due(pasarela)

    monkeypatch.setattr(p, "dispatch_outbox", broken)
    monkeypatch.setattr(worker_module, "_due_for_expiry", counting_due)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: run_worker(
        p, interval=0.001, stop=stop, min_backoff=3600, max_backoff=7200))
    thread.start()
    try:
        wait_for(lambda: len(calls) == 1)
        clock.now += timedelta(hours=25)
        wait_for(lambda: p.get(payment.id).status is Status.EXPIRED)  # the sweep goes on
        seen = len(ticks)
        wait_for(lambda: len(ticks) >= seen + 5)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(calls) == 1  # the failing job waits out its pause, tick after tick
    stats = run_worker(p, once=True, handle_signals=False)
    assert stats.errors == 1


def test_sigterm_stops_the_loop_and_restores_handlers(make_sync):
    p = make_sync()
    before = signal.getsignal(signal.SIGTERM)
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        stats = run_worker(p, interval=0.01)
    finally:
        timer.cancel()
    assert stats.ticks >= 1
    assert signal.getsignal(signal.SIGTERM) is before


class TestLatePayments:
    def expire_then_pay_late(self, p, gateway, clock):
        payment = p.pay(make_order("pedido-late"), method="cash", idempotency_key="late")
        clock.now += timedelta(hours=25)
        run_worker(p, once=True, handle_signals=False)
        assert p.get(payment.id).status is Status.EXPIRED
        headers, body = gateway.settle(payment.provider_reference)
        assert p.handle_webhook("fake", headers, body).status_code == 200
        assert p.get(payment.id).status is Status.SUCCEEDED
        clock.now += timedelta(minutes=1)  # the sweep's lease on the payment runs out
        return payment

    def test_flag_is_the_default_and_keeps_the_money(self, make_sync, gateway, clock, observer):
        p = make_sync()
        payment = self.expire_then_pay_late(p, gateway, clock)
        stats = run_worker(p, once=True, handle_signals=False)
        assert stats.refunded == 0
        assert p.get(payment.id).status is Status.SUCCEEDED
        assert observer.types()[-1] == "payment.late_succeeded"

    def test_refund_policy_refunds_once(self, make_sync, gateway, clock, observer):
        p = make_sync()
        payment = self.expire_then_pay_late(p, gateway, clock)
        stats = run_worker(p, once=True, handle_signals=False, late_payment="refund")
        assert stats.refunded == 1
        done = p.get(payment.id)
        assert done.status is Status.REFUNDED
        assert [r.status.value for r in p.store.refunds_for(payment.id)] == ["succeeded"]
        assert gateway.payments[payment.provider_reference].refunded == payment.amount.minor
        again = run_worker(p, once=True, handle_signals=False, late_payment="refund")
        assert again.refunded == 0
        assert observer.types()[-2:] == ["payment.late_succeeded", "payment.refunded"]

    def test_on_time_payments_are_never_refunded(self, make_sync, gateway, observer):
        p = make_sync()
        payment = p.pay(make_order("pedido-ok"), method="cash", idempotency_key="ok")
        headers, body = gateway.settle(payment.provider_reference)
        p.handle_webhook("fake", headers, body)
        assert refund_late_payments(p) == 0
        assert p.get(payment.id).status is Status.SUCCEEDED

    def test_a_failed_refund_is_retried_later_not_at_once(self, make_sync, gateway, clock):
        p = make_sync()
        payment = self.expire_then_pay_late(p, gateway, clock)
        gateway.payments[payment.provider_reference].refunded = payment.amount.minor  # refuses
        assert refund_late_payments(p) == 0
        assert [r.status.value for r in p.store.refunds_for(payment.id)] == ["failed"]
        assert refund_late_payments(p) == 0  # backing off: no second attempt yet
        assert len(p.store.refunds_for(payment.id)) == 1

    def test_policy_comes_from_the_configuration(self, tmp_path: Path):
        def policy(text: str) -> str:
            path = tmp_path / "pasarela.toml"
            path.write_text(text)
            return late_payment_policy(SimpleNamespace(config=load_config(path)))

        assert policy("") == "flag"
        assert policy('[worker]\nlate_payment = "refund"\n') == "refund"
        with pytest.raises(ConfigurationError, match=r"worker\.late_payment"):
            policy('[worker]\nlate_payment = "keep"\n')

    def test_unknown_policy_is_refused(self, make_sync):
        with pytest.raises(ConfigurationError):
            run_worker(make_sync(), once=True, late_payment="keep")  # type: ignore[arg-type]


def test_worker_command_runs_once(tmp_path: Path, monkeypatch):
    db = tmp_path / "pasarela.db"
    config = tmp_path / "pasarela.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n\n[plugins]\n'
                      'modules = ["pasarela.testing.fake"]\n\n[providers.fake]\n')
    monkeypatch.setenv("PASARELA_LOAD_PLUGINS", "")
    result = CliRunner().invoke(worker, ["--config", str(config), "--once"])
    assert result.exit_code == 0, result.output
    assert "1 pass(es), 0 expired" in result.stderr
    missing = CliRunner().invoke(worker, ["--config", str(tmp_path / "nope.toml"), "--once"])
    assert missing.exit_code == 1
    assert "error:" in missing.stderr
