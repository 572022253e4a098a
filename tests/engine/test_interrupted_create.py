"""A process killed while its create is in flight never leaves a payment invisible in
``created``: past a grace the resolver asks the provider, and applies what it made, or
makes the payment ``unknown`` (listed for an operator) when the provider says nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from pasarela.api import Pasarela
from pasarela.engine.payments import CREATE_GRACE
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


class Killed(BaseException):
    """What the process sees when it is killed mid-call (nothing catches it)."""


def _pasarela(store_url: str, gateway: FakeGateway, clock: ManualClock, *,
              kill: str) -> Pasarela:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/payments":
            if kill == "before":
                raise Killed
            gateway.handle(request)  # the provider makes the payment...
            raise Killed             # ...and the process dies before reading the answer
        return gateway.handle(request)

    config = {"store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}}}
    return Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False, clock=clock,
                    transport=httpx.MockTransport(handler), store=Store(store_url, upgrade=True))


def _order() -> Order:
    return Order(reference="o-1", amount=Money.of("10.00", "PEN"),
                 customer=Customer(first_name="R", last_name="Q", email="r@example.pe"))


@pytest.mark.parametrize(("kill", "then"), [("before", Status.UNKNOWN),
                                            ("after", Status.PENDING)])
def test_the_resolver_finds_an_interrupted_create(store_url: str, kill: str,
                                                  then: Status) -> None:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    with _pasarela(store_url, gateway, clock, kill=kill) as pasarela:
        with pytest.raises(Killed):
            pasarela.pay(_order(), method="cash", idempotency_key="k-1")
        [stuck] = [p for p in _all(pasarela) if p.order_reference == "o-1"]
        assert stuck.status is Status.CREATED
        assert stuck.next_check_at == clock() + CREATE_GRACE
        assert pasarela.resolve_due() == 0  # within the grace: the create may be in flight
        assert pasarela.get(stuck.id).status is Status.CREATED
        clock.now += CREATE_GRACE + timedelta(seconds=1)
        pasarela.resolve_due()
        found = pasarela.get(stuck.id)
        assert found.status is then
        assert found.next_check_at is not None  # asked about again, never left unseen
        if then is Status.UNKNOWN:
            assert "interrupted" in found.history[-1].reason
        # the same key now answers with that payment (not "in progress" forever)
        assert pasarela.pay(_order(), method="cash", idempotency_key="k-1").id == stuck.id


def _all(pasarela: Pasarela) -> list[Any]:
    found = pasarela.store.find_payment(idempotency_key="k-1")
    return [found] if found is not None else []
