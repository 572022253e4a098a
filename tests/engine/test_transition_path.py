"""The one transition path: nothing else writes a status, and refunds go through
the lifecycle table like every other change."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pasarela
from pasarela.api import Pasarela
from pasarela.engine import transitions
from pasarela.errors import IllegalTransitionError
from pasarela.lifecycle import Cause, Status
from pasarela.model import Customer, Order, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import ProviderRefund, WebhookEvent
from pasarela.testing.fake import FakeGateway
from pasarela.testing.helpers import EventRecorder


PACKAGE = Path(pasarela.__file__).resolve().parent
#: The writer's methods that write a status or an ignored report.
WRITES = frozenset({"transition", "record_ignored"})
#: Where they may be called: the transition path, and the store that implements them.
ALLOWED = (PACKAGE / "engine" / "transitions.py", PACKAGE / "store")


def writes_in(path: Path) -> Iterator[tuple[int, str]]:
    """Each call of ``<anything>.transition(...)`` or ``.record_ignored(...)`` in *path*."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES):
            yield node.lineno, node.func.attr


def allowed(path: Path) -> bool:
    return any(path == where or where in path.parents for where in ALLOWED)


def test_only_the_transition_path_writes_a_status():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50  # the scan saw the package, not an empty folder
    offenders = [f"{path.relative_to(PACKAGE)}:{line}: .{name}("
                 for path in modules if not allowed(path)
                 for line, name in writes_in(path)]
    assert offenders == [], "status written outside engine/transitions.py"


def test_the_scan_sees_the_calls_it_looks_for(tmp_path: Path):
    """The transition path itself calls both writer methods: the scan finds them,
    and it finds them in any module, however the writer is named."""
    found = {name for _, name in writes_in(PACKAGE / "engine" / "transitions.py")}
    assert found == WRITES
    offender = tmp_path / "offender.py"
    offender.write_text("def f(service):\n    service.store.transition('p')\n"
                        "    getattr(service, 'x').record_ignored('p')\n", encoding="utf-8")
    assert list(writes_in(offender)) == [(2, "transition"), (3, "record_ignored")]


# --- refunds through the table ----------------------------------------------------------


def order(ref: str = "pedido-7", amount: str = "100.00") -> Order:
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


def refund_event(monkeypatch: pytest.MonkeyPatch, p: Pasarela, payment: Payment, *,
                 reference: str, amount: str) -> None:
    """Make the fake provider's next deliveries announce a refund of *payment*."""
    adapter = p.service.providers["fake"]

    def parse_webhook(headers: Any, body: bytes, *, now: Any) -> list[WebhookEvent]:
        return [WebhookEvent(
            event_id=f"evt_{reference}", type="refund.succeeded",
            provider_reference=payment.provider_reference,
            refund=ProviderRefund(status=RefundStatus.SUCCEEDED, reference=reference,
                                  amount=Money.of(amount, "PEN"),
                                  payment_reference=payment.provider_reference))]

    monkeypatch.setattr(adapter, "parse_webhook", parse_webhook)


def assert_untouched(p: Pasarela, before: Payment, refunds: int) -> None:
    after = p.get(before.id)
    assert (after.status, after.version, after.refunded_amount) == (
        before.status, before.version, before.refunded_amount)
    assert len(p.store.refunds_for(before.id)) == refunds


def test_a_refund_event_on_a_failed_payment_is_recorded_and_ignored(
        pasarela: Pasarela, gateway: FakeGateway, observer: EventRecorder,
        monkeypatch: pytest.MonkeyPatch):
    payment = pasarela.pay(order(), method="cash", idempotency_key="k")
    pasarela.handle_webhook("fake", *gateway.settle(payment.provider_reference, "failed"))
    failed = pasarela.get(payment.id)
    assert failed.status is Status.FAILED
    events = observer.types()

    refund_event(monkeypatch, pasarela, failed, reference="re_1", amount="40.00")
    reply = pasarela.handle_webhook("fake", {}, b"{}")

    assert reply.status_code == 200  # acknowledged: the provider need not send it again
    assert_untouched(pasarela, failed, refunds=0)
    last = pasarela.get(payment.id).history[-1]
    assert (last.applied, last.source, last.target, last.cause) == (
        False, Status.FAILED, Status.PARTIALLY_REFUNDED, Cause.WEBHOOK)
    assert last.reason.startswith("illegal: refund ")
    assert observer.types() == events  # no lifecycle event
    assert pasarela.store.seen_delivery("fake", "evt_re_1")


def test_a_refund_event_on_a_refunded_payment_is_recorded_and_ignored(
        pasarela: Pasarela, observer: EventRecorder, monkeypatch: pytest.MonkeyPatch):
    payment = pasarela.pay(order(), method="card", idempotency_key="k")
    pasarela.refund(payment.id)
    refunded = pasarela.get(payment.id)
    assert (refunded.status, refunded.refunded_amount) == (Status.REFUNDED,
                                                           Money.of("100.00", "PEN"))
    events = observer.types()

    refund_event(monkeypatch, pasarela, refunded, reference="re_other", amount="10.00")
    reply = pasarela.handle_webhook("fake", {}, b"{}")

    assert reply.status_code == 200
    assert_untouched(pasarela, refunded, refunds=1)
    last = pasarela.get(payment.id).history[-1]
    assert (last.applied, last.source, last.target) == (False, Status.REFUNDED,
                                                        Status.REFUNDED)
    assert last.reason.startswith("duplicate: refund ")
    assert observer.types() == events


def test_settle_refund_refuses_what_the_table_does_not_allow(pasarela: Pasarela,
                                                             gateway: FakeGateway):
    """Called directly, on each writer: a refund of a payment never captured moves
    nothing, and the refund is not written."""
    payment = pasarela.pay(order(), method="cash", idempotency_key="k")
    assert payment.status is Status.PENDING
    refund = Refund(id="01REFUND", payment_id=payment.id, amount=Money.of("5.00", "PEN"),
                    status=RefundStatus.SUCCEEDED, created_at=payment.created_at)

    out = transitions.settle_refund(pasarela.service, payment, refund, Cause.API)
    assert out.status is Status.PENDING
    with pasarela.store.batch() as batch:
        (held,) = batch.adopt([pasarela.get(payment.id)])
        transitions.settle_refund(pasarela.service, held, refund, Cause.JOB, writer=batch)
    assert_untouched(pasarela, payment, refunds=0)
    ignored = [t for t in pasarela.get(payment.id).history if not t.applied]
    assert [(t.cause, t.target, t.reason.split(":")[0]) for t in ignored] == [
        (Cause.API, Status.PARTIALLY_REFUNDED, "illegal"),
        (Cause.JOB, Status.PARTIALLY_REFUNDED, "illegal")]


def test_refunds_the_table_allows_are_written_once_each(pasarela: Pasarela,
                                                         observer: EventRecorder):
    payment = pasarela.pay(order(), method="card", idempotency_key="k")
    pasarela.refund(payment.id, Money.of("30.00", "PEN"))
    pasarela.refund(payment.id, Money.of("20.00", "PEN"))
    pasarela.refund(payment.id)
    done = pasarela.get(payment.id)
    steps = [(t.source, t.target) for t in done.history if t.applied]
    assert steps[-3:] == [(Status.SUCCEEDED, Status.PARTIALLY_REFUNDED),
                          (Status.PARTIALLY_REFUNDED, Status.PARTIALLY_REFUNDED),
                          (Status.PARTIALLY_REFUNDED, Status.REFUNDED)]
    assert observer.types()[-3:] == ["payment.partially_refunded",
                                     "payment.partially_refunded", "payment.refunded"]
    assert {r.status for r in pasarela.store.refunds_for(payment.id)} == {
        RefundStatus.SUCCEEDED}


# --- moves of our own -------------------------------------------------------------------


def test_an_illegal_move_of_ours_raises_and_writes_nothing(pasarela: Pasarela):
    payment = pasarela.pay(order(), method="card", idempotency_key="k")
    before = pasarela.get(payment.id)
    assert before.status is Status.SUCCEEDED
    with pytest.raises(IllegalTransitionError) as info:
        transitions.move(pasarela.service, before, Status.EXPIRED, Cause.JOB,
                         provider_confirmed=False, reason="expires_at passed")
    assert info.value.payment_id == payment.id
    after = pasarela.get(payment.id)
    assert (after.status, after.version, after.history) == (
        Status.SUCCEEDED, before.version, before.history)


def test_a_stale_report_is_recorded_never_applied(pasarela: Pasarela, gateway: FakeGateway):
    payment = pasarela.pay(order(), method="cash", idempotency_key="k")
    pasarela.handle_webhook("fake", *gateway.settle(payment.provider_reference))
    paid = pasarela.get(payment.id)
    assert paid.status is Status.SUCCEEDED
    pasarela.handle_webhook("fake", *gateway.settle(payment.provider_reference, "pending"))
    after = pasarela.get(payment.id)
    assert (after.status, after.version) == (Status.SUCCEEDED, paid.version)
    last = after.history[-1]
    assert (last.applied, last.target, last.reason.split(":")[0]) == (
        False, Status.PENDING, "stale")


def test_a_report_on_an_outdated_copy_is_planned_again(pasarela: Pasarela,
                                                        gateway: FakeGateway):
    """Another writer moved the payment first: the conflict reloads it and plans
    again on the payment as it now is (here the same news, so a duplicate)."""
    outdated = pasarela.pay(order(), method="cash", idempotency_key="k")
    pasarela.handle_webhook("fake", *gateway.settle(outdated.provider_reference))
    paid = pasarela.get(outdated.id)
    moved = transitions.move(pasarela.service, outdated, Status.SUCCEEDED, Cause.RECONCILE,
                             provider_confirmed=True, reason="settlement line 1")
    assert (moved.status, moved.version) == (Status.SUCCEEDED, paid.version)
    assert pasarela.get(outdated.id).history == paid.history  # applied once, by the webhook
