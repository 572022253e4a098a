"""``pasarela.merchants.create(...)`` at run time: checked in full before anything is
written, kept in the store (sealed with ``[privacy] keys``; without keys, secrets
only as ``env:`` references), and there again after a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.config import InvalidConfigError
from pasarela.errors import ValidationError
from pasarela.model import Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.sealing import new_key
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


SECRET = "fake_sk_test_123"  # the fake gateway's key


def _open(store_url: str, gateway: FakeGateway, **config: Any) -> Pasarela:
    return Pasarela({"store": {"url": store_url}, **config}, plugins=[FakePlugin()],
                    load_entrypoints=False, transport=gateway.transport(),
                    clock=gateway.clock, env={"SHOP_KEY": SECRET},
                    store=Store(store_url, upgrade=True))


def _documents(app: Pasarela) -> list[str]:
    with app.store.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT document FROM merchants")).scalars())


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway(clock=ManualClock())


def order() -> Order:
    return Order(reference="pedido-9", amount=Money.of("30.00", "PEN"), country="PE")


def test_created_merchant_pays_and_survives_a_restart(store_url: str,
                                                      gateway: FakeGateway) -> None:
    with _open(store_url, gateway) as app:
        shop = app.merchants.create("tienda", display_name="Tienda",
                                    providers={"fake": {"api_key": "env:SHOP_KEY"}})
        paid = shop.pay(order(), method="card", idempotency_key="k", payment_method="pm_ok")
        assert paid.provider == "tienda.fake"
        assert "env:SHOP_KEY" in _documents(app)[0]
        assert SECRET not in _documents(app)[0]
    with _open(store_url, gateway) as again:
        assert again.merchants.names() == ["tienda"]
        assert again.merchants["tienda"].get(paid.id).id == paid.id
        assert again.merchants["tienda"].config.display_name == "Tienda"


def test_a_secret_in_clear_needs_keys(store_url: str, gateway: FakeGateway) -> None:
    with _open(store_url, gateway) as app:
        with pytest.raises(ValidationError) as caught:
            app.merchants.create("tienda", providers={"fake": {"api_key": SECRET}})
        assert "providers.fake.api_key" in str(caught.value)
        assert SECRET not in str(caught.value)
        assert _documents(app) == []
        assert "tienda" not in app.merchants


def test_with_keys_a_secret_in_clear_is_sealed_at_rest(store_url: str,
                                                       gateway: FakeGateway) -> None:
    privacy = {"privacy": {"keys": [new_key()]}}
    with _open(store_url, gateway, **privacy) as app:
        app.merchants.create("tienda", providers={"fake": {"api_key": SECRET}})
        [document] = _documents(app)
        assert SECRET not in document
        assert "tienda" not in document
    with _open(store_url, gateway, **privacy) as again:
        shop = again.merchants["tienda"]
        assert shop.pay(order(), method="card", idempotency_key="k",
                        payment_method="pm_ok").provider == "tienda.fake"


def test_a_bad_merchant_is_refused_whole(store_url: str, gateway: FakeGateway) -> None:
    with _open(store_url, gateway) as app:
        with pytest.raises(InvalidConfigError) as caught:
            app.merchants.create("tienda", providers={"fake": {"timeout": 0}},
                                 routes=[{"name": "all", "use": ["nope"]}])
        text = "\n".join(caught.value.errors)
        assert "merchants.tienda.providers.fake.timeout" in text
        assert "merchants.tienda.routes[0].use[0]" in text
        with pytest.raises(ValidationError):
            app.merchants.create("Tienda!", providers={})
        assert _documents(app) == []
        assert app.merchants.names() == []


def test_configured_merchants_come_from_the_file(tmp_path: Path, gateway: FakeGateway) -> None:
    path = tmp_path / "pasarela.toml"
    path.write_text(
        '[plugins]\nmodules = ["pasarela.testing.fake"]\n'
        '[merchants.bodega]\ndisplay_name = "Bodega"\ncolour = "#1a7f5a"\n'
        '[merchants.bodega.providers.fake]\nmax_retries = 0\n', encoding="utf-8")
    with Pasarela(path, load_entrypoints=False, transport=gateway.transport()) as app:
        assert app.merchants.names() == ["bodega"]
        assert app.merchants.table("bodega").colour == "#1a7f5a"
        assert list(app.providers) == ["bodega.fake"]
