"""When observers run: never before the operation's transaction commits; inline (in the
call, before it returns) or by the worker (after), as ``[events] dispatch`` says."""

from __future__ import annotations

from typing import Any

from pasarela import hookimpl
from pasarela.api import Pasarela
from pasarela.events import LifecycleEvent
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


class Shop:
    """A host that stored its order before ``pay()`` and looks it up in the observer."""

    def __init__(self) -> None:
        self.orders: dict[str, str] = {}
        self.seen: list[tuple[str, str, Status]] = []
        self.pasarela: Pasarela | None = None

    @hookimpl
    def pasarela_payment_event(self, event: LifecycleEvent) -> None:
        assert self.pasarela is not None
        # What the observer is told is what is committed: another connection sees it.
        other = Store(self.pasarela.config.store.url)
        try:
            stored = other.get_payment(event.payment_id)
        finally:
            other.close()
        self.seen.append((event.type, self.orders[event.order_reference], stored.status))


def _order() -> Order:
    return Order(reference="pedido-7", amount=Money.of("50.00", "PEN"), description="Taza",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


def _pasarela(store_url: str, shop: Shop, dispatch: str) -> Pasarela:
    clock = ManualClock()
    config: dict[str, Any] = {"store": {"url": store_url}, "events": {"dispatch": dispatch},
                              "providers": {"fake": {"max_retries": 0}}}
    pasarela = Pasarela(config, plugins=[FakePlugin(), shop], load_entrypoints=False,
                        clock=clock, transport=FakeGateway(clock=clock).transport(),
                        store=Store(store_url, upgrade=True))
    shop.pasarela = pasarela
    return pasarela


def test_inline_observers_run_after_commit_before_pay_returns(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'inline.db'}"
    shop = Shop()
    shop.orders["pedido-7"] = "order #7 (stored before pay)"
    with _pasarela(url, shop, "inline") as pasarela:
        payment = pasarela.pay(_order(), method="card", idempotency_key="pedido-7")
        assert payment.status is Status.SUCCEEDED
        # Delivered inside pay(), and only once the succeeded payment was committed.
        assert ("payment.succeeded", "order #7 (stored before pay)", Status.SUCCEEDED) in \
            shop.seen


def test_worker_dispatch_runs_observers_only_when_the_worker_does(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    shop = Shop()
    shop.orders["pedido-7"] = "order #7"
    with _pasarela(url, shop, "worker") as pasarela:
        payment = pasarela.pay(_order(), method="card", idempotency_key="pedido-7")
        assert payment.status is Status.SUCCEEDED
        assert shop.seen == []
        assert pasarela.dispatch_outbox() >= 1
        assert ("payment.succeeded", "order #7", Status.SUCCEEDED) in shop.seen
