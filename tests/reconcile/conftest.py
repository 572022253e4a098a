"""Fixtures for reconciliation: a Pasarela on the fake provider, on both stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.provider import SettlementLine
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin


T0 = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
FEES = {"percent": "3.5", "fixed": "PEN 0.50", "igv": True}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def rosa() -> Customer:
    return Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                    phone="+51 987 654 321", document=("DNI", "45678912"))


def order(ref: str, amount: str = "100.00") -> Order:
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos",
                 customer=rosa())


def line(payment: Payment | None = None, *, ref: str | None = None,
         order_ref: str | None = None, amount: str | None = None, fee: str | None = None,
         status: str = "paid", at: datetime | None = None, line_no: int = 0,
         ) -> SettlementLine:
    return SettlementLine(
        provider="fake",
        provider_reference=ref if ref is not None or payment is None
        else payment.provider_reference,
        order_reference=order_ref,
        amount=Money.of(amount, "PEN") if amount else (payment.amount if payment
                                                         else Money.of("1.00", "PEN")),
        fee=Money.of(fee, "PEN") if fee else None, status=status,
        occurred_at=at or T0 + timedelta(hours=1), line_no=line_no)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gateway(clock: Clock) -> FakeGateway:
    return FakeGateway(clock=clock)


@pytest.fixture
def pasarela(store_url: str, gateway: FakeGateway, clock: Clock) -> Iterator[Pasarela]:
    config = {"store": {"url": store_url},
              "providers": {"fake": {"max_retries": 0, "fees": FEES}}}
    p = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                 transport=gateway.transport(), clock=clock,
                 store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


@pytest.fixture
def make_payment(pasarela: Pasarela, gateway: FakeGateway,
                 clock: Clock) -> Callable[..., Payment]:
    def make(ref: str, amount: str = "100.00", *, paid: bool = True) -> Payment:
        clock.tick(minutes=1)
        payment = pasarela.pay(order(ref, amount), method="cash", idempotency_key=ref)
        assert payment.status is Status.PENDING
        if paid:
            headers, body = gateway.settle(payment.provider_reference)
            assert pasarela.handle_webhook("fake", headers, body).status_code == 200
            payment = pasarela.get(payment.id)
            assert payment.status is Status.SUCCEEDED
        return payment

    return make
