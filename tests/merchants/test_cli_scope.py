"""``pasarela --merchant NAME``: the command line works on that merchant's payments and
accounts only. Merchant A's scope asked about merchant B's (or the implicit
merchant's) payment says "not found", its reconciliation never touches B's payments,
and B's accounts are not configured there. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock


CONFIG = """
[store]
url = "{url}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
max_retries = 0
[merchants.a.providers.fake]
max_retries = 0
[merchants.b.providers.cards]
type = "fake"
max_retries = 0
"""
MAPS = ["--map", "provider_reference=Operacion", "--map", "amount=Importe",
        "--map", "occurred_at=Fecha", "--csv-option", "currency=PEN"]
WINDOW = ["--from", "2020-01-01", "--to", "2100-01-01"]


@pytest.fixture
def setup(tmp_path: Path, store_url: str) -> tuple[Path, dict[str, Any], FakeGateway]:
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    gateway = FakeGateway(clock=ManualClock())
    Store(store_url, upgrade=True).close()
    order = Order(reference="pedido-1", amount=Money.of("25.00", "PEN"), country="PE")
    with Pasarela(str(path), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport(), clock=gateway.clock) as app:
        paid = {"root": app.pay(order, method="wallet", idempotency_key="k-root",
                                phone="987654321")}
        for name in ("a", "b"):
            paid[name] = app.merchants[name].pay(order, method="wallet",
                                                 idempotency_key=f"k-{name}",
                                                 phone="987654321")
    return path, paid, gateway


def run(path: Path, merchant: str | None, *args: str) -> Result:
    scope = ["--merchant", merchant] if merchant else []
    return CliRunner().invoke(main, ["--config", str(path), *scope, *args])


@pytest.mark.parametrize(("who", "whose"), [("a", "b"), ("b", "a"), ("a", "root"),
                                            ("root", "a")])
def test_payments_show_of_another_merchants_payment_is_not_found(
    setup: tuple[Path, dict[str, Any], FakeGateway], who: str, whose: str,
) -> None:
    path, paid, _ = setup
    theirs = paid[whose].id
    result = run(path, None if who == "root" else who, "payments", "show", theirs)
    assert result.exit_code == 1, result.output
    assert f"no payment {theirs!r}" in result.output
    mine = run(path, None if who == "root" else who, "payments", "show", paid[who].id,
               "--json")
    assert mine.exit_code == 0, mine.output
    assert paid[who].id in mine.output


def test_an_unknown_merchant_is_refused(setup: tuple[Path, dict[str, Any], FakeGateway]
                                        ) -> None:
    path, paid, _ = setup
    result = run(path, "zz", "payments", "show", paid["a"].id)
    assert result.exit_code == 1
    assert "no merchant 'zz'" in result.output


def test_reconcile_is_the_merchants_own(setup: tuple[Path, dict[str, Any], FakeGateway],
                                        tmp_path: Path) -> None:
    path, paid, gateway = setup
    for account in ("cards", "b.cards"):  # B's account, short or full: not A's
        refused = run(path, "a", "reconcile", "--provider", account, *WINDOW)
        assert refused.exit_code == 2
        assert "is not configured" in refused.output
    gateway.settle(str(paid["b"].provider_reference))
    gateway.settle(str(paid["a"].provider_reference))
    lines = tmp_path / "liquidacion.csv"
    lines.write_text("Operacion,Importe,Fecha\n" + "".join(
        f"{paid[n].provider_reference},25.00,2026-11-10T11:00:00Z\n" for n in ("a", "b")),
        encoding="utf-8")
    result = run(path, "a", "reconcile", "--provider", "fake", *WINDOW, "--file",
                 str(lines), *MAPS)
    assert "a.fake" in result.output
    with Pasarela(str(path), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport(), clock=gateway.clock) as app:
        # A's line healed A's payment; B's line, the same provider's, is no payment of A's.
        assert app.merchants["a"].get(paid["a"].id).status is Status.SUCCEEDED
        assert app.merchants["b"].get(paid["b"].id).status is Status.PENDING
