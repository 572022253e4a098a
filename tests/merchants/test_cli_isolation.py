"""Every ``pasarela`` command, tried with merchant A's scope (``--merchant a``) against
merchant B's objects: B's payments, order references, accounts, routes and
configuration are "not found" (or simply absent from what A is shown), and nothing of
B's changes. A command that works on the whole deployment refuses ``--merchant``
(exit 2, saying so) rather than acting on every merchant; one that reads no merchant's
data answers the same with and without it.

The command tree is enumerated: a command with no entry in :data:`ENTRIES` fails
:func:`test_every_command_has_an_isolation_entry`, naming it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import uvicorn
from click.testing import CliRunner, Result

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order, Payment
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
[merchants.a]
display_name = "Bodega A"
[merchants.a.providers.fake]
max_retries = 0
[[merchants.a.routes]]
name = "default"
use = ["fake"]
[merchants.b]
display_name = "Bodega B"
[merchants.b.providers.cards]
type = "fake"
max_retries = {b_retries}
[[merchants.b.routes]]
name = "default"
use = ["cards"]
"""
WINDOW = ["--from", "2020-01-01", "--to", "2100-01-01"]
NOT_SCOPED = "takes no --merchant"


@dataclass
class World:
    path: Path
    tmp: Path
    url: str
    paid: dict[str, Payment]
    gateway: FakeGateway

    def run(self, merchant: str | None, *args: str) -> Result:
        scope = ["--merchant", merchant] if merchant else []
        return CliRunner().invoke(main, ["--config", str(self.path), *scope, *args])

    def open(self) -> Pasarela:
        return Pasarela(str(self.path), plugins=[FakePlugin()], load_entrypoints=False,
                        transport=self.gateway.transport(), clock=self.gateway.clock)


def _order(reference: str) -> Order:
    return Order(reference=reference, amount=Money.of("25.00", "PEN"), country="PE",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


@pytest.fixture
def world(tmp_path: Path, store_url: str) -> World:
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=store_url, b_retries=0), encoding="utf-8")
    Store(store_url, upgrade=True).close()
    gateway = FakeGateway(clock=ManualClock())
    w = World(path=path, tmp=tmp_path, url=store_url, paid={}, gateway=gateway)
    with w.open() as app:
        w.paid["root"] = app.pay(_order("pedido-1"), method="card", idempotency_key="k-root",
                                 payment_method="pm_ok")
        for name, account in (("a", "fake"), ("b", "cards")):
            api = app.merchants[name]
            w.paid[name] = api.pay(_order("pedido-1"), method="card",
                                   idempotency_key=f"k-{name}", payment_method="pm_ok")
            w.paid[f"{name}-pending"] = api.pay(_order(f"pedido-{name}"), method="wallet",
                                                idempotency_key=f"k-{name}-2",
                                                phone="987654321")
            assert w.paid[name].status is Status.SUCCEEDED, account
        w.paid["a-2"] = app.merchants["a"].pay(_order("pedido-a2"), method="card",
                                               idempotency_key="k-a-3",
                                               payment_method="pm_ok")
    return w


def _state(w: World, key: str) -> tuple[Any, ...]:
    """What B's (or anyone's) payment looks like in the store: untouched by A."""
    with Store(w.url) as store:
        payment = store.get_payment(w.paid[key].id)
        customer = payment.order.customer if payment.order else None
        return payment.status, payment.version, customer


def _no_b(result: Result) -> None:
    for text in ("b.cards", "Bodega B", "merchants.b"):
        assert text not in result.output, (text, result.output)


def _unknown_merchant(w: World, *args: str) -> None:
    result = w.run("zz", *args)
    assert result.exit_code == 1, result.output
    assert "no merchant 'zz'" in result.output


# --- the entries -------------------------------------------------------------------------


def providers(w: World) -> None:
    # The installed adapters: no merchant's data. The same with and without a scope.
    plain, scoped = w.run(None, "providers", "--json"), w.run("a", "providers", "--json")
    assert plain.exit_code == scoped.exit_code == 0, scoped.output
    assert json.loads(plain.stdout) == json.loads(scoped.stdout)
    _no_b(scoped)


def config_check(w: World) -> None:
    broken = w.tmp / "broken.toml"
    broken.write_text(CONFIG.format(url=w.url, b_retries=-1), encoding="utf-8")
    mine = w.run("a", "config", "check", str(broken))
    assert mine.exit_code == 0, mine.output  # B's problem is not A's
    assert "merchant a: 1 account(s), 1 route(s)" in mine.output
    _no_b(mine)
    theirs = w.run("b", "config", "check", str(broken))
    assert theirs.exit_code == 1
    assert "merchants.b.providers.cards.max_retries" in theirs.output
    _unknown_merchant(w, "config", "check", str(broken))


def payments_show(w: World) -> None:
    for key in ("b", "b-pending", "root"):
        result = w.run("a", "payments", "show", w.paid[key].id)
        assert result.exit_code == 1
        assert f"no payment {w.paid[key].id!r}" in result.output
    assert w.run("a", "payments", "show", w.paid["a"].id).exit_code == 0


def payments_evidence(w: World) -> None:
    out = w.tmp / "bundle.zip"
    result = w.run("a", "payments", "evidence", w.paid["b"].id, "--out", str(out))
    assert result.exit_code == 1
    assert f"no payment {w.paid['b'].id!r}" in result.output
    assert not out.exists()
    support = w.run("a", "payments", "evidence", w.paid["b"].id, "--support")
    assert support.exit_code == 1
    assert w.paid["b"].id not in support.stdout


def db_upgrade(w: World) -> None:
    result = w.run("a", "db", "upgrade")
    assert result.exit_code == 2
    assert NOT_SCOPED in result.output


def sandbox(w: World) -> None:
    # A provider's simulator: no merchant's data. The same answer with a scope.
    plain, scoped = w.run(None, "sandbox", "nosuch"), w.run("a", "sandbox", "nosuch")
    assert plain.exit_code == scoped.exit_code == 2
    assert plain.output == scoped.output


def reconcile(w: World) -> None:
    before = _state(w, "b-pending")
    for account in ("cards", "b.cards"):
        refused = w.run("a", "reconcile", "--provider", account, *WINDOW)
        assert refused.exit_code == 2
        assert "is not configured" in refused.output
    w.gateway.settle(str(w.paid["b-pending"].provider_reference))
    lines = w.tmp / "lines.csv"
    lines.write_text("Operacion,Importe,Fecha\n"
                     f"{w.paid['b-pending'].provider_reference},25.00,2026-11-10T11:00:00Z\n",
                     encoding="utf-8")
    w.run("a", "reconcile", "--provider", "fake", *WINDOW, "--file", str(lines),
          "--map", "provider_reference=Operacion", "--map", "amount=Importe",
          "--map", "occurred_at=Fecha", "--csv-option", "currency=PEN")
    assert _state(w, "b-pending") == before  # B's line is no payment of A's


def _costs(w: World, *args: str) -> Any:
    result = w.run("a", "costs", *args, *WINDOW, "--json", "-")
    assert result.exit_code == 0, result.output
    _no_b(result)
    for key in ("b", "b-pending", "root"):
        assert w.paid[key].id not in result.output
    _unknown_merchant(w, "costs", *args, *WINDOW)
    return json.loads(result.stdout)


def costs_report(w: World) -> None:
    rows = _costs(w, "report")["rows"]
    assert rows
    assert {row["provider"] for row in rows} == {"a.fake"}


def costs_optimize(w: World) -> None:
    methods = _costs(w, "optimize")["methods"]
    assert methods
    names = {c["name"] for m in methods for c in m["candidates"]} | {
        m["best"] for m in methods if m["best"]}
    assert names == {"a.fake"}


def costs_profile(w: World) -> None:
    # A's two paid orders (B and the implicit merchant have one each).
    assert _costs(w, "profile")["orders"] == 2


def route_explain(w: World) -> None:
    order = w.tmp / "order.json"
    order.write_text(json.dumps({"reference": "o-1", "amount": "PEN 25.00",
                                 "country": "PE"}), encoding="utf-8")
    result = w.run("a", "route", "explain", str(order), "--json")
    assert result.exit_code == 0, result.output
    chosen = {d["provider"] for d in json.loads(result.stdout)}
    assert chosen <= {"a.fake", None}
    assert "a.fake" in chosen
    _no_b(result)
    _unknown_merchant(w, "route", "explain", str(order))


def route_simulate(w: World) -> None:
    orders = w.tmp / "orders.jsonl"
    orders.write_text("".join(json.dumps({"reference": f"o-{i}", "amount": "PEN 25.00",
                                          "country": "PE", "method": "card"}) + "\n"
                              for i in range(3)), encoding="utf-8")
    result = w.run("a", "route", "simulate", str(orders), "--json")
    assert result.exit_code == 0, result.output
    assert {row["provider"] for row in json.loads(result.stdout)["split"]} == {"a.fake"}
    _no_b(result)
    _unknown_merchant(w, "route", "simulate", str(orders))


def serve(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    answers: dict[str, int] = {}

    async def served(self: uvicorn.Server, sockets: Any = None) -> None:
        transport = httpx.ASGITransport(app=self.config.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for account in ("b.cards", "fake", "a.fake"):
                reply = await client.post(f"/webhooks/{account}", content=b"{}",
                                          headers={"content-type": "application/json"})
                answers[account] = reply.status_code

    monkeypatch.setattr(uvicorn.Server, "serve", served)
    result = w.run("a", "serve", "--port", "0")
    assert result.exit_code == 0, result.output
    # B's and the implicit merchant's accounts are not served; A's is (unsigned: 400).
    assert answers == {"b.cards": 404, "fake": 404, "a.fake": 400}
    _unknown_merchant(w, "serve", "--port", "0")


def worker(w: World) -> None:
    before = _state(w, "b-pending")
    result = w.run("a", "worker", "--once")
    assert result.exit_code == 2
    assert NOT_SCOPED in result.output
    assert _state(w, "b-pending") == before


def doctor(w: World) -> None:
    result = w.run("a", "doctor", "--json")
    checks = json.loads(result.stdout)
    assert any("a.fake" in json.dumps(c) for c in checks)
    _no_b(result)
    for key in ("b", "b-pending", "root"):
        assert w.paid[key].id not in result.output
    _unknown_merchant(w, "doctor")


def customers_new_key(w: World) -> None:
    # A new random key: no merchant's data, so no merchant is asked about.
    result = w.run("zz", "customers", "new-key")
    assert result.exit_code == 0
    assert len(result.stdout.strip()) == 44


def customers_rotate_key(w: World) -> None:
    result = w.run("a", "customers", "rotate-key")
    assert result.exit_code == 2
    assert NOT_SCOPED in result.output


def customers_forget(w: World) -> None:
    theirs = {key: _state(w, key) for key in ("b", "root")}
    assert all(state[2] is not None for state in theirs.values())
    result = w.run("a", "customers", "forget", "pedido-1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["erased"] == [w.paid["a"].id]
    assert _state(w, "a")[2] is None
    # B's and the implicit merchant's pedido-1 are theirs: untouched.
    assert {key: _state(w, key) for key in ("b", "root")} == theirs
    only_b = w.run("a", "customers", "forget", "pedido-b")
    assert only_b.exit_code == 1
    assert "no payment of merchant 'a' with order reference 'pedido-b'" in only_b.output
    _unknown_merchant(w, "customers", "forget", "pedido-1")


def _b_operator(w: World) -> list[dict[str, Any]]:
    """B's operator ``rosa`` (added through B's scope), and B's operators listed."""
    added = CliRunner().invoke(main, ["--config", str(w.path), "--merchant", "b", "operators",
                                      "add", "rosa", "--role", "viewer", "--password-stdin"],
                               input="una clave muy larga de b\n")
    assert added.exit_code == 0, added.output
    return _operators(w, "b")


def _operators(w: World, merchant: str) -> list[dict[str, Any]]:
    listed = w.run(merchant, "operators", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return list(json.loads(listed.stdout)["operators"])


def _refused_on_bs_operator(w: World, *args: str) -> None:
    theirs = _b_operator(w)
    result = w.run("a", "operators", *args)
    assert result.exit_code == 1, result.output
    assert "rosa" in result.output  # "no operator 'rosa' ..." of A's
    assert _operators(w, "b") == theirs


def operators_add(w: World) -> None:
    theirs = _b_operator(w)
    mine = CliRunner().invoke(main, ["--config", str(w.path), "--merchant", "a", "operators",
                                     "add", "rosa", "--role", "admin", "--password-stdin"],
                              input="otra clave muy larga de a\n")
    assert mine.exit_code == 0, mine.output  # A's own rosa: another account
    assert _operators(w, "b") == theirs
    assert [o["role"] for o in _operators(w, "a")] == ["admin"]


def operators_list(w: World) -> None:
    _b_operator(w)
    assert _operators(w, "a") == []
    assert "rosa" not in w.run("a", "operators", "list").output


def operators_set_role(w: World) -> None:
    _refused_on_bs_operator(w, "set-role", "rosa", "admin")


def operators_passwd(w: World) -> None:
    theirs = _b_operator(w)
    result = CliRunner().invoke(main, ["--config", str(w.path), "--merchant", "a",
                                       "operators", "passwd", "rosa", "--password-stdin"],
                                input="una clave nueva y larga\n")
    assert result.exit_code == 1, result.output
    assert "no operator 'rosa'" in result.output
    assert _operators(w, "b") == theirs


def operators_remove(w: World) -> None:
    _refused_on_bs_operator(w, "remove", "rosa")


def operators_sign_out_everywhere(w: World) -> None:
    _refused_on_bs_operator(w, "sign-out-everywhere", "rosa")


def operators_log(w: World) -> None:
    _b_operator(w)
    result = w.run("a", "operators", "log", "--json")
    assert result.exit_code == 0, result.output
    assert "rosa" not in result.stdout
    assert "rosa" in w.run("b", "operators", "log", "--json").stdout


def audit_verify(w: World) -> None:
    for key in ("b", "root"):
        result = w.run("a", "audit", "verify", "--payment", w.paid[key].id)
        assert result.exit_code == 1, result.output
        assert f"no payment {w.paid[key].id!r}" in result.output
    mine = w.run("a", "audit", "verify", "--all", "--json")
    assert mine.exit_code == 0, mine.output
    assert json.loads(mine.stdout)["payments"] == 3  # A's three, not B's nor the rest


def _audit_unscoped(w: World, *args: str) -> None:
    result = w.run("a", "audit", *args)
    assert result.exit_code == 2, result.output
    assert NOT_SCOPED in result.output


def audit_seal(w: World) -> None:
    _audit_unscoped(w, "seal")


def audit_head(w: World) -> None:
    _audit_unscoped(w, "head")


def audit_check(w: World) -> None:
    head = w.tmp / "head.json"
    head.write_text("{}", encoding="utf-8")
    _audit_unscoped(w, "check", str(head))


def audit_new_key(w: World) -> None:
    # A new key pair: no merchant's data, so no merchant is asked about.
    result = w.run("zz", "audit", "new-key")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("private: ")


#: Command path -> its check. Add one for every new command: merchant A's scope
#: against merchant B's objects (not found, nothing of B's changed), or, for a command
#: that works on the whole deployment, ``unscoped()`` refusing --merchant.
ENTRIES: dict[str, Callable[..., None]] = {
    "providers": providers,
    "config check": config_check,
    "payments show": payments_show,
    "payments evidence": payments_evidence,
    "db upgrade": db_upgrade,
    "sandbox": sandbox,
    "reconcile": reconcile,
    "costs report": costs_report,
    "costs optimize": costs_optimize,
    "costs profile": costs_profile,
    "route explain": route_explain,
    "route simulate": route_simulate,
    "serve": serve,
    "worker": worker,
    "doctor": doctor,
    "customers new-key": customers_new_key,
    "customers rotate-key": customers_rotate_key,
    "customers forget": customers_forget,
    "operators add": operators_add,
    "operators list": operators_list,
    "operators set-role": operators_set_role,
    "operators passwd": operators_passwd,
    "operators remove": operators_remove,
    "operators sign-out-everywhere": operators_sign_out_everywhere,
    "operators log": operators_log,
    "audit verify": audit_verify,
    "audit seal": audit_seal,
    "audit head": audit_head,
    "audit check": audit_check,
    "audit new-key": audit_new_key,
}


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every command of the ``pasarela`` tree, as ``"group command"``."""
    out: list[str] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += command_paths(command, (*prefix, name))
        else:
            out.append(" ".join((*prefix, name)))
    return out


def test_every_command_has_an_isolation_entry() -> None:
    commands = command_paths()
    missing = [c for c in commands if c not in ENTRIES]
    assert not missing, (
        f"commands without a cross-merchant isolation entry: {missing}; add each to "
        "ENTRIES in tests/merchants/test_cli_isolation.py (merchant A's --merchant "
        "against merchant B's objects: not found; or refuse --merchant with "
        "pasarela.cli.output.unscoped)")
    assert not [c for c in ENTRIES if c not in commands], "entries of removed commands"


@pytest.mark.parametrize("command", sorted(ENTRIES))
def test_merchant_a_never_reaches_merchant_bs_objects(
    world: World, command: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    check = ENTRIES[command]
    if check is serve:
        serve(world, monkeypatch)
    else:
        check(world)
