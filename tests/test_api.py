"""The unified API end to end, through the fake provider, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import anyio
import pytest

from pasarela import hookimpl
from pasarela.api import AsyncPasarela, Pasarela
from pasarela.errors import (
    AuthenticationError,
    IdempotencyConflictError,
    IllegalTransitionError,
    PaymentInProgressError,
    ProviderNotFoundError,
    ProviderValidationError,
    RefundError,
    UnsupportedError,
    ValidationError,
)
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.next_action import ShowCashCode
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import EventRecorder as Observer
from pasarela.testing.helpers import ManualClock as Clock


def rosa() -> Customer:
    return Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                    phone="+51 987 654 321", document=("DNI", "45678912"))


def order(ref: str = "pedido-1042", amount: str = "149.90", **kw) -> Order:
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos",
                 customer=rosa(), **kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(clock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def observer() -> Observer:
    return Observer()


@pytest.fixture
def make(store_url, gateway, clock, observer):
    opened: list[Pasarela] = []

    def build(**overrides) -> Pasarela:
        config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
        config.update(overrides)
        p = Pasarela(config, plugins=[FakePlugin(), observer], load_entrypoints=False,
                     transport=gateway.transport(), clock=clock,
                     store=Store(store_url, upgrade=True))
        p.service.sleep_scale = 0
        opened.append(p)
        return p

    yield build
    for p in opened:
        p.close()


@pytest.fixture
def pasarela(make) -> Pasarela:
    return make()


class TestCashCheckout:
    def test_pending_then_webhook_succeeds(self, pasarela, gateway, observer):
        payment = pasarela.pay(order(), method="cash", idempotency_key="pedido-1042")
        assert payment.status is Status.PENDING
        assert isinstance(payment.next_action, ShowCashCode)
        assert payment.next_action.amount == Money.of("149.90", "PEN")
        headers, body = gateway.settle(payment.provider_reference)
        reply = pasarela.handle_webhook("fake", headers, body)
        assert reply.status_code == 200
        done = pasarela.get(payment.id)
        assert done.status is Status.SUCCEEDED
        assert [(t.source, t.target, t.cause.value) for t in done.history] == [
            (Status.CREATED, Status.PENDING, "api"), (Status.PENDING, Status.SUCCEEDED, "webhook")]
        assert [e.type for e in observer.events] == ["payment.pending", "payment.succeeded"]
        assert observer.events[-1].order_reference == "pedido-1042"

    def test_duplicate_webhook_applied_once(self, pasarela, gateway):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        headers, body = gateway.settle(payment.provider_reference)
        for _ in range(3):
            assert pasarela.handle_webhook("fake", headers, body).status_code == 200
        done = pasarela.get(payment.id)
        assert done.version == 3  # created, pending, succeeded
        assert len(done.history) == 2

    def test_forged_webhook_rejected_and_changes_nothing(self, pasarela, gateway):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        headers, body = gateway.settle(payment.provider_reference)
        tampered = body.replace(b"succeeded", b"succeedeX")
        assert pasarela.handle_webhook("fake", headers, tampered).status_code == 400
        assert pasarela.handle_webhook("fake", {}, body).status_code == 400
        assert pasarela.get(payment.id).status is Status.PENDING

    def test_stale_webhook_rejected(self, pasarela, gateway, clock):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        headers, body = gateway.settle(payment.provider_reference)
        clock.now += timedelta(minutes=10)
        assert pasarela.handle_webhook("fake", headers, body).status_code == 400
        assert pasarela.get(payment.id).status is Status.PENDING

    def test_amount_mismatch_not_applied(self, pasarela, gateway):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        headers, body = gateway.settle(payment.provider_reference, amount=100)
        assert pasarela.handle_webhook("fake", headers, body).status_code == 200
        assert pasarela.get(payment.id).status is Status.PENDING

    def test_unknown_provider_is_404(self, pasarela):
        assert pasarela.handle_webhook("nope", {}, b"{}").status_code == 404

    def test_webhook_for_unknown_payment_is_recorded(self, pasarela, gateway):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        _headers, body = gateway.settle(payment.provider_reference)
        body2 = body.replace(payment.provider_reference.encode(), b"fp_999999")
        import json

        from pasarela.testing.fake import sign_fake_webhook

        ts = int(json.loads(body2) and gateway.clock().timestamp())
        reply = pasarela.handle_webhook("fake", sign_fake_webhook(body2, "whsec_fake_123", ts),
                                        body2)
        assert reply.status_code == 200
        assert pasarela.get(payment.id).status is Status.PENDING


class TestExpiry:
    def test_sweep_expires_and_emits_event(self, pasarela, gateway, clock, observer):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        clock.now += timedelta(days=2)
        assert pasarela.expire_due() == 1
        assert pasarela.get(payment.id).status is Status.EXPIRED
        assert observer.events[-1].type == "payment.expired"
        assert pasarela.expire_due() == 0

    def test_sweep_finds_a_last_minute_payment(self, pasarela, gateway, clock):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        gateway.payments[payment.provider_reference].status = "succeeded"  # webhook lost
        clock.now += timedelta(days=2)
        assert pasarela.expire_due() == 0
        assert pasarela.get(payment.id).status is Status.SUCCEEDED

    def test_late_payment_is_its_own_event(self, pasarela, gateway, clock, observer):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        clock.now += timedelta(days=2)
        pasarela.expire_due()
        headers, body = gateway.settle(payment.provider_reference)
        assert pasarela.handle_webhook("fake", headers, body).status_code == 200
        assert pasarela.get(payment.id).status is Status.SUCCEEDED
        assert observer.events[-1].type == "payment.late_succeeded"


class TestUnknownOutcome:
    def test_timeout_after_send_is_unknown_then_resolved(self, pasarela, gateway, clock):
        payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="timeout")
        assert payment.status is Status.UNKNOWN
        assert len(gateway.payments) == 1
        clock.now += timedelta(minutes=1)
        assert pasarela.resolve_due() == 1
        resolved = pasarela.get(payment.id)
        assert resolved.status is Status.SUCCEEDED
        assert resolved.provider_reference == next(iter(gateway.payments))
        assert len(gateway.payments) == 1  # no second payment at the provider

    def test_unknown_is_not_failed_by_time(self, pasarela, gateway, clock):
        payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="timeout")
        gateway.payments.clear()  # the provider cannot answer: still unknown
        gateway.by_payment_id.clear()
        for _ in range(3):
            clock.now += timedelta(hours=7)
            pasarela.resolve_due()
        assert pasarela.get(payment.id).status is Status.UNKNOWN


class TestFailures:
    def test_decline_is_a_failed_payment_with_a_customer_message(self, pasarela):
        payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="decline")
        assert payment.status is Status.FAILED
        assert payment.error_code == "card_declined"
        assert "rechazada" in payment.customer_message("es")

    def test_5xx_on_create_is_unknown_and_asked_about_not_failed(self, pasarela):
        # A server fault answered after the request arrived says nothing about what the
        # provider made: the payment is unknown, with a next check, never failed.
        payment = pasarela.pay(order(), method="card", idempotency_key="k", scenario="5xx")
        assert payment.status is Status.UNKNOWN
        assert payment.error_code == "provider_unavailable"
        assert pasarela.store.get_payment(payment.id).next_check_at is not None

    def test_provider_validation_before_anything_is_written(self, pasarela):
        naked = Order(reference="x", amount=Money.of("10", "PEN"))
        with pytest.raises(ProviderValidationError):
            pasarela.pay(naked, method="cash", idempotency_key="k")
        assert pasarela.store.find_payment(idempotency_key="k") is None

    @pytest.mark.parametrize(("kwargs", "error", "field"), [
        ({"method": "crypto"}, ValidationError, "method"),
        ({"method": "cash", "idempotency_key": ""}, ValidationError, "idempotency_key"),
    ])
    def test_bad_input_names_field_and_writes_nothing(self, pasarela, kwargs, error, field):
        kwargs.setdefault("idempotency_key", "k")
        with pytest.raises(error) as info:
            pasarela.pay(order(), **kwargs)
        assert info.value.field == field
        assert pasarela.store.find_payment(idempotency_key="k") is None

    def test_unknown_provider(self, pasarela):
        with pytest.raises(ProviderNotFoundError):
            pasarela.pay(order(), method="cash", provider="nope", idempotency_key="k")

    def test_unsupported_currency(self, pasarela):
        eur = Order(reference="x", amount=Money.of("10", "EUR"), customer=rosa())
        with pytest.raises(UnsupportedError) as info:
            pasarela.pay(eur, method="card", idempotency_key="k")
        assert pasarela.store.find_payment(idempotency_key="k") is None
        assert "EUR" in str(info.value)

    def test_illegal_cancel(self, pasarela):
        payment = pasarela.pay(order(), method="card", idempotency_key="k")
        with pytest.raises(IllegalTransitionError):
            pasarela.cancel(payment.id)

    def test_cancel_pending(self, pasarela):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        assert pasarela.cancel(payment.id).status is Status.CANCELED


class TestIdempotency:
    def test_same_key_same_payment(self, pasarela, gateway):
        first = pasarela.pay(order(), method="cash", idempotency_key="k")
        again = pasarela.pay(order(), method="cash", idempotency_key="k")
        assert again.id == first.id
        assert len(gateway.payments) == 1

    def test_same_key_other_parameters(self, pasarela):
        pasarela.pay(order(), method="cash", idempotency_key="k")
        with pytest.raises(IdempotencyConflictError):
            pasarela.pay(order(amount="10.00"), method="cash", idempotency_key="k")

    def test_concurrent_duplicates_make_one_payment_and_one_call(self, make, gateway):
        pasarela = make()
        barrier = threading.Barrier(50)
        ids: list[str] = []
        errors: list[BaseException] = []

        in_progress: list[PaymentInProgressError] = []

        def worker() -> None:
            barrier.wait()
            for _ in range(200):  # an in-progress answer says to ask again shortly
                try:
                    ids.append(pasarela.pay(order(), method="cash", idempotency_key="same").id)
                    return
                except PaymentInProgressError as exc:
                    in_progress.append(exc)
                    time.sleep(0.01)
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=worker) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(ids) == 50
        assert len(set(ids)) == 1
        # Every duplicate that came while the first create was in flight was told so,
        # about that same payment, and that it may ask again.
        assert {e.payment_id for e in in_progress} <= set(ids)
        assert all(e.retryable and e.retry_after > 0 for e in in_progress)
        assert [c for c in gateway.calls if c == ("POST", "/v1/payments")] == [
            ("POST", "/v1/payments")]


class TestKeysFreedWhenNothingWasCreated:
    """Stripe's rule: a result is kept only when the provider began executing."""

    def test_a_wrong_api_key_leaves_the_key_free_for_the_fixed_retry(self, make, gateway):
        wrong = make(providers={"fake": {"max_retries": 0, "api_key": "fake_sk_wrong"}})
        with pytest.raises(AuthenticationError) as refused:
            wrong.pay(order(), method="cash", idempotency_key="pedido-1042")
        failed = wrong.get(refused.value.payment_id)
        assert failed.status is Status.FAILED
        assert failed.idempotency_key != "pedido-1042"
        assert "idempotency key 'pedido-1042' released" in failed.history[-1].reason
        fixed = make()
        payment = fixed.pay(order(), method="cash", idempotency_key="pedido-1042")
        assert payment.id != failed.id
        assert payment.status is Status.PENDING
        # and from now on the key is this payment's
        assert fixed.pay(order(), method="cash", idempotency_key="pedido-1042").id == payment.id

    def test_a_provider_field_refusal_leaves_the_key_free(self, make, gateway, monkeypatch):
        from pasarela.testing.fake import FakeProvider

        pasarela = make()

        def refuse(self, request):
            raise ProviderValidationError("fake: refused the description",
                                          fields={"description": "too long"},
                                          provider="fake")
            yield  # a flow

        monkeypatch.setattr(FakeProvider, "create", refuse)
        with pytest.raises(ProviderValidationError):
            pasarela.pay(order(), method="cash", idempotency_key="k-refused")
        monkeypatch.undo()
        assert pasarela.pay(order(), method="cash",
                            idempotency_key="k-refused").status is Status.PENDING

    def test_a_decline_keeps_the_key(self, pasarela, gateway):
        first = pasarela.pay(order(), method="card", idempotency_key="k-dec",
                             scenario="decline")
        assert first.status is Status.FAILED
        assert first.idempotency_key == "k-dec"
        again = pasarela.pay(order(), method="card", idempotency_key="k-dec",
                             scenario="decline")
        assert again.id == first.id

    def test_concurrent_retries_after_a_freed_key_make_one_payment(self, make, gateway):
        """Some callers use a wrong API key, the others the right one, all with one
        key: one payment is created at the provider, and every right caller ends with
        it; the refused creates created nothing and left failed rows. (Four wrong
        callers: a fifth would open the wrong configuration's circuit breaker.)"""
        wrong = make(providers={"fake": {"max_retries": 0, "api_key": "fake_sk_wrong"}})
        right = make()
        barrier = threading.Barrier(12)
        got: list[str] = []
        problems: list[BaseException] = []

        def worker(p) -> None:
            barrier.wait()
            for _ in range(300):
                try:
                    got.append(p.pay(order(), method="cash", idempotency_key="shared").id)
                    return
                except PaymentInProgressError:
                    time.sleep(0.01)
                except AuthenticationError:
                    return  # the wrong key: refused before the provider executed
                except BaseException as exc:
                    problems.append(exc)
                    return

        threads = [threading.Thread(target=worker, args=(wrong if i % 3 == 0 else right,))
                   for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert problems == []
        assert len(got) >= 8
        assert len(set(got)) == 1
        assert len(gateway.payments) == 1


class TestRefunds:
    def test_partial_then_full(self, pasarela, observer):
        payment = pasarela.pay(order(amount="100.00"), method="card", idempotency_key="k")
        pasarela.refund(payment.id, Money.of("30", "PEN"))
        assert pasarela.get(payment.id).status is Status.PARTIALLY_REFUNDED
        pasarela.refund(payment.id)
        done = pasarela.get(payment.id)
        assert done.status is Status.REFUNDED
        assert done.refunded_amount == Money.of("100", "PEN")
        assert [e.type for e in observer.events][-2:] == ["payment.partially_refunded",
                                                          "payment.refunded"]

    def test_never_more_than_captured(self, pasarela):
        payment = pasarela.pay(order(amount="100.00"), method="card", idempotency_key="k")
        with pytest.raises(RefundError):
            pasarela.refund(payment.id, Money.of("100.01", "PEN"))
        pasarela.refund(payment.id, Money.of("60", "PEN"))
        with pytest.raises(RefundError):
            pasarela.refund(payment.id, Money.of("40.01", "PEN"))
        assert pasarela.get(payment.id).refunded_amount == Money.of("60", "PEN")

    def test_refund_of_pending_refused(self, pasarela):
        payment = pasarela.pay(order(), method="cash", idempotency_key="k")
        with pytest.raises(RefundError):
            pasarela.refund(payment.id)


class TestOutbox:
    def test_observer_failure_does_not_undo_and_others_still_run(self, make, observer):
        class Broken:
            @hookimpl
            def pasarela_payment_event(self, event):
                raise RuntimeError("host bug")

        pasarela = make()
        pasarela.plugins.register(Broken())
        payment = pasarela.pay(order(), method="card", idempotency_key="k")
        assert pasarela.get(payment.id).status is Status.SUCCEEDED
        assert [e.type for e in observer.events] == ["payment.succeeded"]

    def test_worker_mode_dispatches_later_with_stable_ids(self, make, observer):
        pasarela = make(events={"dispatch": "worker"})
        payment = pasarela.pay(order(), method="card", idempotency_key="k")
        assert observer.events == []
        assert pasarela.dispatch_outbox() == 1
        assert observer.events[0].payment_id == payment.id
        assert pasarela.dispatch_outbox() == 0


class TestOptions:
    def test_each_method_with_provider_fee_and_reason(self, make):
        pasarela = make(providers={"fake": {"fees": {"percent": "3.5", "fixed": "PEN 0.50",
                                                     "igv": True}}})
        options = {o.method.value: o for o in pasarela.options(order(amount="100.00"))}
        assert set(options) == {m.value for m in Method}
        # (3.50 + 0.50) * 1.18 = 4.72
        assert options["cash"].fee == Money.of("4.72", "PEN")
        assert options["cash"].provider == "fake"

    def test_unavailable_method_says_why(self, make):
        pasarela = make()
        big = order(amount="60000.00")
        options = pasarela.options(big)
        assert all(not o.available for o in options)
        assert "above maximum" in options[0].reason


def test_async_api_same_behaviour(store_url, gateway, clock):
    async def scenario() -> tuple[Status, Status, Status]:
        async with AsyncPasarela({"store": {"url": store_url}, "providers": {"fake": {}}},
                                 plugins=[FakePlugin()], load_entrypoints=False,
                                 transport=gateway.transport(), clock=clock,
                                 store=Store(store_url, upgrade=True)) as p:
            payment = await p.pay(order(), method="cash", idempotency_key="k")
            headers, body = gateway.settle(payment.provider_reference)
            reply = await p.handle_webhook("fake", headers, body)
            assert reply.status_code == 200
            done = await p.get(payment.id)
            card = await p.pay(order("o-2"), method="card", idempotency_key="k2")
            refunded = await p.refund(card.id)
            return payment.status, done.status, refunded.status

    pending, succeeded, refund = anyio.run(scenario)
    assert (pending, succeeded, refund.value) == (Status.PENDING, Status.SUCCEEDED, "succeeded")


def test_concurrent_refunds_never_exceed_the_capture(make, gateway):
    """Two full refunds at once: one reserves the amount, the other conflicts or is
    refused; never both."""
    from pasarela.errors import ConcurrencyConflictError

    pasarela = make()
    payment = pasarela.pay(order(amount="100.00"), method="card", idempotency_key="k")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def worker() -> None:
        barrier.wait()
        try:
            pasarela.refund(payment.id, Money.of("100.00", "PEN"))
            outcomes.append("refunded")
        except (RefundError, ConcurrencyConflictError) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("refunded") == 1
    assert len(outcomes) == 8
    # Stopped by pasarela before any I/O, not by the provider's own check.
    assert gateway.calls.count(("POST", "/v1/refunds")) == 1
    assert sum(f.refunded for f in gateway.payments.values()) == 10000
    assert pasarela.get(payment.id).status is Status.REFUNDED
