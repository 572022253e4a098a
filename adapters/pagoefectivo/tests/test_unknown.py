"""Unknown stays unknown (issue #15): a create whose outcome PagoEfectivo has not told
us is never made failed or expired by the passing of time or an empty search.

PagoEfectivo's search takes CIP numbers only (``POST /v1/cips/search``, providers.md
§1.6): there is no look-up by our ``transactionCode``. So a create whose answer was
lost (or whose process died mid-call) stays ``unknown``, asked about on the
resolver's schedule, until PagoEfectivo speaks: its ``cip.paid`` notification carries
``transactionCode`` (our payment id), which names the payment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pasarela_pagoefectivo
import pytest
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

from pasarela.api import Pasarela
from pasarela.engine.payments import CREATE_GRACE
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.store import Store
from pasarela.testing.helpers import ManualClock


class Killed(BaseException):
    """What the process sees when it is killed mid-call (nothing catches it)."""


class KillAfterCreate(httpx.BaseTransport):
    """Sends every request; after a ``POST /v1/cips`` has reached PagoEfectivo (the
    CIP exists there) the caller dies before reading the answer, while *armed*."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.armed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.armed and request.method == "POST" and request.url.path == "/v1/cips":
            response.read()
            raise Killed
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def transport() -> Iterator[KillAfterCreate]:
    killing = KillAfterCreate()
    yield killing
    killing.close()


@pytest.fixture
def shop(served: Any, receiver: Any, tmp_path: Path, clock: ManualClock,
         transport: KillAfterCreate) -> Iterator[Pasarela]:
    config = {
        "store": {"url": f"sqlite:///{tmp_path / 'pasarela.db'}"},
        "providers": {"pagoefectivo": {
            "environment": "sandbox", "base_url": served.url,
            "access_key": "env:PE_ACCESS_KEY", "secret_key": "env:PE_SECRET_KEY",
            "service_id": 1028, "expiry": "48h", "timeout": 2.0,
        }},
    }
    env = {"PE_ACCESS_KEY": DEFAULT_ACCESS_KEY, "PE_SECRET_KEY": DEFAULT_SECRET_KEY}
    app = Pasarela(config, plugins=[pasarela_pagoefectivo], load_entrypoints=False,
                   clock=clock, env=env, transport=transport,
                   store=Store(config["store"]["url"], upgrade=True))
    app.service.sleep_scale = 0
    receiver.handler = lambda headers, body: app.handle_webhook(
        "pagoefectivo", headers, body).status_code
    served.control("POST", "/notification-url", json={"url": receiver.url})
    try:
        yield app
    finally:
        served.sandbox.courier.wait(len(served.sandbox.courier.deliveries))
        app.close()


def _advance(served: Any, clock: ManualClock, by: timedelta) -> None:
    """Time passes here and at PagoEfectivo alike (its dateRequest window is strict)."""
    clock.now += by
    served.sandbox.clock.offset += by


def _exhaust_the_resolver(shop: Pasarela, served: Any, clock: ManualClock) -> None:
    """Days of the resolver's schedule (30 s ... 6 h, repeating) and expiry sweeps,
    past the CIP's own 48 h expiry."""
    for wait in (timedelta(seconds=31), timedelta(minutes=3), timedelta(minutes=11),
                 timedelta(hours=1, minutes=1), *[timedelta(hours=6, minutes=1)] * 12):
        _advance(served, clock, wait)
        shop.resolve_due()
        shop.expire_due()


def test_a_create_killed_after_sending_stays_unknown_until_the_cip_is_paid(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: ManualClock,
    transport: KillAfterCreate,
) -> None:
    transport.armed = True
    with pytest.raises(Killed):
        shop.pay(order_factory(), method="cash", idempotency_key="pedido-1042")
    transport.armed = False
    stuck = shop.store.find_payment(idempotency_key="pedido-1042")
    assert stuck is not None
    assert stuck.status is Status.CREATED
    assert len(served.sandbox.cips) == 1  # the CIP exists at PagoEfectivo
    _advance(served, clock, CREATE_GRACE + timedelta(seconds=1))
    shop.resolve_due()
    assert shop.get(stuck.id).status is Status.UNKNOWN
    _exhaust_the_resolver(shop, served, clock)
    still = shop.get(stuck.id)
    assert still.status is Status.UNKNOWN  # never failed, never expired by time alone
    assert still.next_check_at is not None  # still asked about, listed for an operator
    assert all(t.target not in (Status.FAILED, Status.EXPIRED) for t in still.history)
    assert served.sandbox.calls["create"] == 1  # never a second CIP
    # PagoEfectivo speaks: the paid CIP's notification names our payment.
    (cip,) = served.sandbox.cips
    served.sandbox.cips[cip].expires_at = served.sandbox.now() + timedelta(hours=1)
    served.control("POST", f"/cips/{cip}/pay")
    served.sandbox.courier.wait(1)
    done = shop.get(stuck.id)
    assert done.status is Status.SUCCEEDED
    assert done.provider_reference == str(cip)


def test_a_lost_create_answer_stays_unknown_through_the_whole_schedule(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: ManualClock,
) -> None:
    served.control("POST", "/faults", json={"operation": "create", "kind": "timeout",
                                            "seconds": 3})
    payment = shop.pay(order_factory(), method="cash", idempotency_key="pedido-1042")
    assert payment.status is Status.UNKNOWN
    _exhaust_the_resolver(shop, served, clock)
    still = shop.get(payment.id)
    assert still.status is Status.UNKNOWN
    assert still.next_check_at is not None
    assert [(t.source, t.target) for t in still.history if t.applied] == [
        (Status.CREATED, Status.UNKNOWN)]
    assert served.sandbox.calls["create"] == 1
    assert served.sandbox.calls["search"] == 0  # nothing to ask by: no CIP number


def test_a_cip_the_search_leaves_out_is_not_failed(
    served: Any, shop: Pasarela, order_factory: Callable[..., Order], clock: ManualClock,
) -> None:
    """An empty search answer says nothing: the pending payment stays pending (and
    expires only by its own deadline, as any unpaid CIP), never failed."""
    payment = shop.pay(order_factory(), method="cash", idempotency_key="pedido-1042")
    assert payment.status is Status.PENDING
    served.sandbox.cips.clear()  # PagoEfectivo's search no longer lists it
    _advance(served, clock, timedelta(hours=7))
    shop.resolve_due()
    assert shop.get(payment.id).status is Status.PENDING
