"""Merchants are built when first used: ``from_config`` structures and compiles none
of their accounts, fee schedules or routes; a merchant's first use builds it once
(also when many threads ask at once) and its routing is compiled once; a broken
merchant does not stop the others and fails on first use naming its path, while
``pasarela config check`` (:func:`pasarela.api.validate`) reports every problem."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pasarela.api import Pasarela, validate
from pasarela.config import InvalidConfigError, load_config
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.routing import Router
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


FEES = {"percent": "3.99", "fixed": "PEN 0.50"}


def merchants(n: int) -> dict[str, Any]:
    return {f"m{i:03d}": {"display_name": f"Tienda {i}", "providers": {
        "cash": {"type": "fake", "max_retries": 0, "fees": FEES},
        "cards": {"type": "fake", "max_retries": 0, "fees": FEES}},
        "routes": [{"name": "default", "use": ["cards", "cash"]}]} for i in range(n)}


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway(clock=ManualClock())


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The accounts of every router compiled (one entry per compile)."""
    calls: list[tuple[str, ...]] = []
    original = Router.from_config.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Router], routes: Any, providers: Any, **kwargs: Any) -> Router:
        calls.append(tuple(sorted(providers)))
        return original(cls, routes, providers, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(Router, "from_config", classmethod(counting))
    return calls


def _open(store_url: str, gateway: FakeGateway, config: dict[str, Any]) -> Pasarela:
    app = Pasarela({"store": {"url": store_url}, **config}, plugins=[FakePlugin()],
                   load_entrypoints=False, transport=gateway.transport(),
                   clock=gateway.clock, store=Store(store_url, upgrade=True))
    app.service.sleep_scale = 0
    return app


@pytest.fixture
def platform(store_url: str, gateway: FakeGateway,
             compiled: list[tuple[str, ...]]) -> Iterator[Pasarela]:
    app = _open(store_url, gateway, {"providers": {"fake": {"max_retries": 0}},
                                     "merchants": merchants(50)})
    yield app
    app.close()


def order(reference: str = "o-1") -> Order:
    return Order(reference=reference, amount=Money.of("25.00", "PEN"), country="PE")


def test_from_config_builds_no_merchant(platform: Pasarela,
                                        compiled: list[tuple[str, ...]]) -> None:
    assert compiled == [("fake",)]  # the implicit merchant's router only
    assert len(platform.merchants) == 50
    assert platform.merchants.names()[:2] == ["m000", "m001"]
    # Every account is listed, by name, without building its merchant.
    assert "m049.cards" in platform.providers
    assert len(list(platform.providers)) == 1 + 50 * 2
    assert compiled == [("fake",)]


def test_a_merchant_is_built_once_on_first_use(platform: Pasarela,
                                               compiled: list[tuple[str, ...]]) -> None:
    shop = platform.merchants["m007"]
    for i in range(3):
        paid = shop.pay(order(f"o-{i}"), method="card", idempotency_key=f"k-{i}",
                        payment_method="pm_ok")
        assert paid.provider == "m007.cards"
    assert [o.fee for o in shop.options(order()) if o.provider == "m007.cards"]
    assert platform.merchants["m007"].service is shop.service
    assert compiled == [("fake",), ("m007.cards", "m007.cash")]


def test_many_threads_build_a_merchant_once(platform: Pasarela,
                                            compiled: list[tuple[str, ...]]) -> None:
    barrier = threading.Barrier(8)
    seen: list[object] = []

    def first_use() -> None:
        barrier.wait()
        seen.append(platform.merchants.service("m011"))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(seen) == 8
    assert all(s is seen[0] for s in seen)
    assert compiled == [("fake",), ("m011.cards", "m011.cash")]


def test_a_webhook_to_a_merchants_account_builds_only_that_merchant(
    platform: Pasarela, gateway: FakeGateway, compiled: list[tuple[str, ...]],
) -> None:
    paid = platform.merchants["m003"].pay(order(), method="wallet", idempotency_key="k",
                                          phone="987654321", provider="cash")
    headers, body = gateway.settle(str(paid.provider_reference))
    assert platform.handle_webhook("m003.cash", headers, body).status_code == 200
    [reply] = platform.handle_webhooks([("m003.cash", headers, body)])
    assert not isinstance(reply, Exception)
    assert reply.status_code == 200
    assert platform.merchants["m003"].get(paid.id).status is Status.SUCCEEDED
    assert len(compiled) == 2


BROKEN = {"providers": {"fake": {"max_retries": 0, "timeout": 0}},
          "routes": [{"name": "default", "use": ["fake"]}]}


def test_a_broken_merchant_fails_on_first_use_naming_its_path(
    store_url: str, gateway: FakeGateway,
) -> None:
    config = {"merchants": {**merchants(2), "rota": BROKEN}}
    with _open(store_url, gateway, config) as app:
        paid = app.merchants["m001"].pay(order(), method="card", idempotency_key="k",
                                         payment_method="pm_ok")
        assert paid.status is Status.SUCCEEDED
        with pytest.raises(InvalidConfigError) as caught:
            app.merchants["rota"]
        assert "merchants.rota.providers.fake.timeout" in str(caught.value)
        with pytest.raises(InvalidConfigError):  # and again: never half built
            app.merchants.service("rota")


def test_a_merchant_table_of_the_wrong_shape_fails_on_first_use() -> None:
    config = load_config({"merchants": {"ok": {"display_name": "Ok"},
                                        "mal": {"colour": "verde", "routes": "x"}}})
    assert config.merchants["ok"].display_name == "Ok"
    with pytest.raises(InvalidConfigError) as caught:
        config.merchants["mal"]
    text = str(caught.value)
    assert "merchants.mal.routes" in text
    assert "merchants.mal.colour: expected a colour like '#1a7f5a', got 'verde'" in text


def test_config_check_reports_every_merchants_problems_eagerly() -> None:
    config = {"merchants": {**merchants(3), "rota": BROKEN,
                            "mal": {"colour": "verde"}, "Mal!": {}}}
    problems = validate(config, plugins=[FakePlugin()], load_entrypoints=False)
    text = "\n".join(problems)
    assert "merchants.rota.providers.fake.timeout" in text
    assert "merchants.mal.colour: expected a colour" in text
    assert "merchants.Mal!" in text
    assert not any("m001" in p for p in problems)
