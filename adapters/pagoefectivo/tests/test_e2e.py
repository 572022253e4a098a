"""End to end through ``pasarela.Pasarela`` against the sandbox on loopback.

The sandbox delivers its signed notifications over HTTP to a receiver that hands
the raw headers and bytes to ``Pasarela.handle_webhook``, as a host's endpoint does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pasarela_pagoefectivo
import pytest
from pasarela_pagoefectivo.notifications import build_notification, sign
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

from pasarela.api import Pasarela
from pasarela.errors import ProviderValidationError
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.next_action import ShowCashCode
from pasarela.store import Store
from pasarela.testing.helpers import EventRecorder as Observer
from pasarela.testing.helpers import ManualClock as Clock
from pasarela.web.app import create_app as webhook_app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def observer() -> Observer:
    return Observer()


@pytest.fixture
def shop(served: Any, receiver: Any, tmp_path: Path, clock: Clock,
         observer: Observer) -> Iterator[Pasarela]:
    """A host app: Pasarela on SQLite, its webhook endpoint behind *receiver*."""
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'pasarela.db'}"},
        "providers": {"pagoefectivo": {
            "environment": "sandbox", "base_url": served.url,
            "access_key": "env:PE_ACCESS_KEY", "secret_key": "env:PE_SECRET_KEY",
            "service_id": 1028, "expiry": "48h", "timeout": 2.0,
        }},
    }
    env = {"PE_ACCESS_KEY": DEFAULT_ACCESS_KEY, "PE_SECRET_KEY": DEFAULT_SECRET_KEY}
    app = Pasarela(config, plugins=[pasarela_pagoefectivo, observer], load_entrypoints=False,
                   clock=clock, env=env, store=Store(config["store"]["url"], upgrade=True))
    app.service.sleep_scale = 0
    replies: list[int] = []

    def endpoint(headers: dict[str, str], body: bytes) -> int:
        reply = app.handle_webhook("pagoefectivo", headers, body)
        replies.append(reply.status_code)
        return reply.status_code

    receiver.handler = endpoint
    served.control("POST", "/notification-url", json={"url": receiver.url})
    app.replies = replies  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        served.sandbox.courier.wait(len(served.sandbox.courier.deliveries))
        app.close()


def pay(shop: Pasarela, order: Order, key: str = "pedido-1042") -> Any:
    return shop.pay(order, method="cash", idempotency_key=key)


def test_create_pay_webhook_succeeded(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], observer: Observer,
) -> None:
    payment = pay(shop, order_factory())
    assert payment.status is Status.PENDING
    assert payment.provider == "pagoefectivo"
    action = payment.next_action
    assert isinstance(action, ShowCashCode)
    assert action.code == payment.provider_reference
    assert action.amount == Money.of("149.90", "PEN")
    assert action.qr_svg
    assert action.qr_svg.startswith("<svg")
    assert action.code in action.instructions["es"][0]
    assert served.sandbox.cips[int(action.code)].transaction_code == payment.id
    served.control("POST", f"/cips/{action.code}/pay")
    served.sandbox.courier.wait(1)
    assert shop.replies == [200]  # type: ignore[attr-defined]
    done = shop.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert [(t.source, t.target, t.cause.value) for t in done.history] == [
        (Status.CREATED, Status.PENDING, "api"), (Status.PENDING, Status.SUCCEEDED, "webhook")]
    assert observer.types() == ["payment.pending", "payment.succeeded"]


def test_same_key_gives_the_same_payment_and_one_cip(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    first = pay(shop, order_factory())
    again = pay(shop, order_factory())
    assert again.id == first.id
    assert len(served.sandbox.cips) == 1


def test_duplicate_notifications_apply_once(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], observer: Observer,
) -> None:
    served.control("POST", "/config", json={"duplicate_webhooks": 2})
    payment = pay(shop, order_factory())
    served.control("POST", f"/cips/{payment.provider_reference}/pay")
    served.sandbox.courier.wait(3)
    assert shop.replies == [200, 200, 200]  # type: ignore[attr-defined]
    done = shop.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert len(done.history) == 2
    assert observer.types().count("payment.succeeded") == 1


def test_create_then_expire(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], observer: Observer,
) -> None:
    payment = pay(shop, order_factory())
    served.control("POST", f"/cips/{payment.provider_reference}/expire")
    assert shop.sync(payment.id).status is Status.EXPIRED
    assert observer.types()[-1] == "payment.expired"


def test_expiry_sweep_asks_first_then_expires(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: Clock,
) -> None:
    soon = clock.now + timedelta(hours=1)
    payment = pay(shop, order_factory(expires_at=soon))
    assert payment.expires_at == soon.replace(microsecond=0)
    record = served.sandbox.cips[int(payment.provider_reference)]
    assert record.expires_at == soon.replace(microsecond=0)  # dateExpiry from the order
    clock.now = soon + timedelta(seconds=1)
    served.sandbox.clock.offset = timedelta(hours=1, seconds=1)  # the same time at PagoEfectivo
    assert shop.expire_due() == 1
    done = shop.get(payment.id)
    assert done.status is Status.EXPIRED
    assert done.history[-1].cause.value == "job"


def test_expiry_sweep_asks_about_many_cips_in_one_search(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: Clock,
    observer: Observer,
) -> None:
    served.control("POST", "/config", json={"lose_webhooks": 1.0})
    soon = clock.now + timedelta(hours=1)
    paid, unpaid, other = (
        pay(shop, order_factory(reference=f"pedido-{i}", expires_at=soon), key=f"k{i}")
        for i in range(3))
    served.control("POST", f"/cips/{paid.provider_reference}/pay")  # notification lost
    clock.now = soon + timedelta(seconds=1)
    served.sandbox.clock.offset = timedelta(hours=1, seconds=1)
    searches = served.sandbox.calls["search"]
    assert shop.expire_due() == 2
    assert served.sandbox.calls["search"] - searches == 1  # one search for the three
    assert shop.get(paid.id).status is Status.SUCCEEDED  # paid at the agent: not expired
    for payment in (unpaid, other):
        done = shop.get(payment.id)
        assert done.status is Status.EXPIRED
        assert done.history[-1].cause.value == "job"
    assert sorted(observer.types()[-3:]) == [
        "payment.expired", "payment.expired", "payment.succeeded"]


def test_lost_notification_is_found_by_the_resolver(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: Clock,
    observer: Observer,
) -> None:
    served.control("POST", "/config", json={"lose_webhooks": 1.0})
    payment = pay(shop, order_factory())
    served.control("POST", f"/cips/{payment.provider_reference}/pay")
    served.sandbox.courier.wait(1)
    assert shop.replies == []  # type: ignore[attr-defined]
    assert shop.get(payment.id).status is Status.PENDING
    assert shop.resolve_due() == 0  # not due yet
    clock.now += timedelta(hours=7)  # past the resolver's wait for a pending payment
    served.sandbox.clock.offset = timedelta(hours=7)  # the same time at PagoEfectivo
    assert shop.resolve_due() == 1
    done = shop.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert done.history[-1].cause.value == "job"
    assert observer.types()[-1] == "payment.succeeded"


def test_payment_racing_local_expiry_is_a_late_success(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: Clock,
    observer: Observer,
) -> None:
    served.control("POST", "/config", json={"delay_webhooks": 0.2})
    soon = clock.now + timedelta(hours=1)
    payment = pay(shop, order_factory(expires_at=soon))
    cip = payment.provider_reference
    served.control("POST", f"/cips/{cip}/expire")
    clock.now = soon + timedelta(seconds=1)
    assert shop.expire_due() == 1  # our sweep asked: expired, released the stock
    # ...but the customer paid at the agent in the last second.
    served.control("POST", f"/cips/{cip}/pay", json={"race": True})
    served.sandbox.courier.wait(1)
    done = shop.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert observer.types()[-2:] == ["payment.expired", "payment.late_succeeded"]


def test_forged_notification_gets_a_4xx_and_changes_nothing(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    payment = pay(shop, order_factory())
    body = build_notification("cip.paid", operation_number="1", cip=payment.provider_reference,
                              amount=payment.amount)
    forged = shop.handle_webhook("pagoefectivo", {"PE-Signature": sign(body, "guess")}, body)
    assert 400 <= forged.status_code < 500
    unsigned = shop.handle_webhook("pagoefectivo", {}, body)
    assert 400 <= unsigned.status_code < 500
    assert shop.get(payment.id).status is Status.PENDING


def _malformed_bodies(cip: str) -> list[bytes]:
    return [
        b'{"eventType":"cip.paid","operationNumber":{"n":1},"data":{"cip":"' + cip.encode()
        + b'","currency":"PEN","amount":149.90}}',
        b'{"eventType":"cip.paid","operationNumber":"9","data":{"cip":"' + b"9" * 5000
        + b'","currency":"PEN","amount":149.90}}',
        b'{"eventType":"cip.paid","operationNumber":"9","data":{"cip":"' + cip.encode()
        + b'","currency":"PEN","amount":{"v":1}}}',
        b'{"eventType":"cip.paid","operationNumber":"9","data":{"cip":"' + cip.encode()
        + b'"}}',
    ]


def test_signed_but_malformed_notifications_are_each_a_400(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    payment = pay(shop, order_factory())
    assert payment.provider_reference is not None
    for body in _malformed_bodies(payment.provider_reference):
        reply = shop.handle_webhook("pagoefectivo",
                                    {"PE-Signature": sign(body, DEFAULT_SECRET_KEY)}, body)
        assert reply.status_code == 400, body[:80]
    assert shop.get(payment.id).status is Status.PENDING


def test_a_mixed_storm_through_the_webhook_endpoint_answers_each_on_its_own(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
    pasarela_serve: Callable[[Any], Any],
) -> None:
    """Valid, forged and signed-but-malformed deliveries at once through the core's
    ``POST /webhooks/pagoefectivo`` (its batcher groups them): 200 exactly for the
    valid ones, 400 for the others, and the valid ones applied."""
    payments = [pay(shop, order_factory(reference=f"pedido-{n}"), key=f"k-{n}")
                for n in range(6)]
    deliveries: list[tuple[bytes, dict[str, str], int]] = []
    for n, payment in enumerate(payments):
        cip = payment.provider_reference
        assert cip is not None
        good = build_notification("cip.paid", operation_number=str(100 + n), cip=cip,
                                  amount=payment.amount, transaction_code=payment.id)
        deliveries.append((good, {"PE-Signature": sign(good, DEFAULT_SECRET_KEY)}, 200))
        deliveries.append((good, {"PE-Signature": sign(good, "a guess")}, 400))
        for bad in _malformed_bodies(cip):
            deliveries.append((bad, {"PE-Signature": sign(bad, DEFAULT_SECRET_KEY)}, 400))
    served_app = pasarela_serve(webhook_app(shop))
    url = f"{served_app.url}/webhooks/pagoefectivo"

    def post(item: tuple[bytes, dict[str, str], int]) -> int:
        body, headers, _ = item
        return httpx.post(url, content=body, timeout=10,
                          headers={**headers, "Content-Type": "application/json"}).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(post, deliveries))
    assert codes == [expected for *_, expected in deliveries]
    for payment in payments:
        assert shop.get(payment.id).status is Status.SUCCEEDED


def test_wrong_amount_is_not_applied(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    payment = pay(shop, order_factory())
    body = build_notification("cip.paid", operation_number="2", cip=payment.provider_reference,
                              amount=Money.of("1.00", "PEN"))
    reply = shop.handle_webhook("pagoefectivo", {"PE-Signature": sign(body, DEFAULT_SECRET_KEY)},
                                body)
    assert reply.status_code == 200
    assert shop.get(payment.id).status is Status.PENDING


def test_notification_for_an_unknown_cip_is_answered(shop: Pasarela) -> None:
    body = build_notification("cip.paid", operation_number="3", cip="77777777",
                              amount=Money.of("10.00", "PEN"))
    reply = shop.handle_webhook("pagoefectivo", {"PE-Signature": sign(body, DEFAULT_SECRET_KEY)},
                                body)
    assert reply.status_code == 200


def test_cancel_deletes_the_cip(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    payment = pay(shop, order_factory())
    assert shop.cancel(payment.id).status is Status.CANCELED
    assert served.sandbox.cips[int(payment.provider_reference)].removed_at is not None


def test_bad_input_writes_nothing_and_sends_nothing(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    with pytest.raises(ProviderValidationError) as caught:
        pay(shop, order_factory(customer=None))
    assert "customer" in caught.value.fields
    assert served.sandbox.calls == dict.fromkeys(served.sandbox.calls, 0)
    assert shop.store.find_payment(idempotency_key="pedido-1042") is None


def test_5xx_on_create(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order],
) -> None:
    served.control("POST", "/faults", json={"operation": "create", "kind": "500"})
    # A 166 (internal server error) says nothing of whether a CIP was made: the payment
    # is unknown, asked about and listed for an operator, never failed on a guess.
    unknown = pay(shop, order_factory())
    assert unknown.status is Status.UNKNOWN
    assert unknown.error_code == "provider_unavailable"
    assert served.sandbox.calls["create"] == 1
    # A new attempt (new key) is a new payment and a new CIP; the sandbox's 166
    # made none, so there is exactly one CIP.
    retried = pay(shop, order_factory(), key="pedido-1042-2")
    assert retried.status is Status.PENDING
    assert len(served.sandbox.cips) == 1


def test_timeout_after_send_is_unknown_until_the_notification_resolves_it(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: Clock,
) -> None:
    served.control("POST", "/faults", json={"operation": "create", "kind": "timeout",
                                            "seconds": 3})
    payment = pay(shop, order_factory())
    assert payment.status is Status.UNKNOWN
    assert payment.provider_reference is None
    clock.now += timedelta(minutes=1)
    shop.resolve_due()
    # PagoEfectivo's search takes CIP numbers only: nothing to ask, nothing re-sent.
    assert shop.get(payment.id).status is Status.UNKNOWN
    assert len(served.sandbox.cips) == 1
    assert served.sandbox.calls["create"] == 1
    # When the customer pays, the notification carries our id as transactionCode:
    # the unknown payment learns its CIP and succeeds, still with one CIP.
    (cip,) = served.sandbox.cips
    served.control("POST", f"/cips/{cip}/pay")
    served.sandbox.courier.wait(1)
    done = shop.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert done.provider_reference == str(cip)
    assert [(t.source, t.target) for t in done.history if t.applied] == [
        (Status.CREATED, Status.UNKNOWN), (Status.UNKNOWN, Status.SUCCEEDED)]
