"""Merchants on one deployment: each one's payments, idempotency keys, accounts and
webhooks are its own. Merchant A's API asked about merchant B's objects answers "not
found", on SQLite and PostgreSQL; the implicit merchant sees neither."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pasarela.api import MerchantPasarela, Pasarela
from pasarela.errors import NotFoundError, ProviderNotFoundError
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.schema import webhook_deliveries
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway(clock=ManualClock())


@pytest.fixture
def platform(store_url: str, gateway: FakeGateway) -> Iterator[Pasarela]:
    config = {
        "store": {"url": store_url},
        "providers": {"fake": {"max_retries": 0}},
        "merchants": {
            "a": {"display_name": "Bodega A", "providers": {"fake": {"max_retries": 0}}},
            "b": {"display_name": "Bodega B",
                  "providers": {"cards": {"type": "fake", "max_retries": 0}}},
        },
    }
    app = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                   transport=gateway.transport(), clock=gateway.clock,
                   store=Store(store_url, upgrade=True))
    app.service.sleep_scale = 0
    yield app
    app.close()


def order(reference: str = "pedido-1") -> Order:
    return Order(reference=reference, amount=Money.of("25.00", "PEN"), country="PE")


def test_each_merchant_pays_through_its_own_accounts(platform: Pasarela) -> None:
    a, b = platform.merchants["a"], platform.merchants["b"]
    assert sorted(platform.merchants) == ["a", "b"]
    assert list(a.providers) == ["a.fake"]
    assert list(b.providers) == ["b.cards"]
    paid_a = a.pay(order(), method="card", idempotency_key="k-1", payment_method="pm_ok")
    paid_b = b.pay(order(), method="card", idempotency_key="k-1", payment_method="pm_ok")
    assert (paid_a.provider, paid_b.provider) == ("a.fake", "b.cards")
    # The same idempotency key is each merchant's own: two payments, not a replay.
    assert paid_a.id != paid_b.id
    assert a.pay(order(), method="card", idempotency_key="k-1",
                 payment_method="pm_ok").id == paid_a.id
    assert [o.provider for o in b.options(order()) if o.available] == ["b.cards"] * len(
        [o for o in b.options(order()) if o.available])


@pytest.fixture
def paid(platform: Pasarela) -> dict[str, Any]:
    a, b = platform.merchants["a"], platform.merchants["b"]
    return {
        # (keys differ: the one fake gateway stands for every merchant's account)
        "a": a.pay(order(), method="wallet", idempotency_key="k-a", phone="987654321"),
        "b": b.pay(order(), method="wallet", idempotency_key="k-b", phone="987654321"),
        "root": platform.pay(order(), method="wallet", idempotency_key="k-root",
                             phone="987654321"),
    }


CALLS: dict[str, Callable[[Any, str], object]] = {
    "get": lambda api, pid: api.get(pid),
    "sync": lambda api, pid: api.sync(pid),
    "cancel": lambda api, pid: api.cancel(pid),
    "confirm": lambda api, pid: api.confirm(pid, approval_code="123456"),
    "refund": lambda api, pid: api.refund(pid),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(("who", "whose"), [("a", "b"), ("b", "a"), ("root", "a"),
                                            ("a", "root")])
def test_another_merchants_payment_is_not_found(
    platform: Pasarela, paid: dict[str, Any], call: str, who: str, whose: str,
) -> None:
    api: Pasarela | MerchantPasarela = (platform if who == "root"
                                        else platform.merchants[who])
    target = paid[whose]
    before = platform.store.get_payment(target.id)
    with pytest.raises(NotFoundError) as caught:
        CALLS[call](api, target.id)
    assert target.id in str(caught.value)
    after = platform.store.get_payment(target.id)
    assert (after.status, after.version) == (before.status, before.version)


def test_own_payments_are_found(platform: Pasarela, paid: dict[str, Any]) -> None:
    for who in ("a", "b"):
        assert platform.merchants[who].get(paid[who].id).id == paid[who].id
    assert platform.get(paid["root"].id).id == paid["root"].id


def test_another_merchants_account_is_not_configured(platform: Pasarela) -> None:
    a = platform.merchants["a"]
    for name in ("b.cards", "cards", "fake.x"):
        with pytest.raises(ProviderNotFoundError):
            a.pay(order(), method="card", idempotency_key=f"k-{name}", provider=name,
                  payment_method="pm_ok")
    with pytest.raises(ProviderNotFoundError):
        platform.pay(order(), method="card", idempotency_key="k-root", provider="a.fake",
                     payment_method="pm_ok")


def _deliveries(platform: Pasarela) -> list[tuple[str, str, str | None]]:
    t = webhook_deliveries
    with platform.store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.provider, t.c.outcome, t.c.payment_id)
                            .order_by(t.c.id)).all()
    return [(r.provider, r.outcome, r.payment_id) for r in rows]


def test_a_webhook_to_one_merchant_never_moves_anothers_payment(
    platform: Pasarela, paid: dict[str, Any], gateway: FakeGateway,
) -> None:
    headers, body = gateway.settle(str(paid["b"].provider_reference))
    reply = platform.merchants["a"].handle_webhook("fake", headers, body)
    assert reply.status_code == 200  # acknowledged: nothing of A's to apply
    assert platform.store.get_payment(paid["b"].id).status is Status.PENDING
    assert _deliveries(platform) == [("a.fake", "unknown_payment", None)]
    # At B's own account it applies.
    assert platform.merchants["b"].handle_webhook("cards", headers, body).status_code == 200
    assert platform.merchants["b"].get(paid["b"].id).status is Status.SUCCEEDED


def test_the_platform_webhook_url_names_the_merchants_account(
    platform: Pasarela, paid: dict[str, Any], gateway: FakeGateway,
) -> None:
    headers, body = gateway.settle(str(paid["a"].provider_reference))
    assert platform.handle_webhook("a.fake", headers, body).status_code == 200
    assert platform.merchants["a"].get(paid["a"].id).status is Status.SUCCEEDED
    assert platform.handle_webhook("b.cards", *gateway.settle(
        str(paid["a"].provider_reference))).status_code == 200
    assert [d[:2] for d in _deliveries(platform)] == [
        ("a.fake", "applied"), ("b.cards", "unknown_payment")]


def test_an_unknown_merchant_is_not_found(platform: Pasarela) -> None:
    with pytest.raises(NotFoundError):
        platform.merchants["c"]
