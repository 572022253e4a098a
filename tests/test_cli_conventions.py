"""The conventions of the ``pasarela`` command (issue 17): ``--version``, ``python -m``,
``--json`` on stdout for every listing or report, piped output never truncated, ``-``
for standard output, one-line usage errors (2), runtime failures (1) without a
traceback unless ``--debug``, and ``NO_COLOR``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.testing.fake import FakeGateway, FakePlugin


ADAPTERS = {"pagoefectivo": "pasarela-pagoefectivo", "yape": "pasarela-yape",
            "stripe": "pasarela-stripe"}
LONG = "pagoefectivo_with_a_name_far_longer_than_any_terminal_column_is"

PLUGIN = f'''
from pasarela.hookspecs import hookimpl
from pasarela.model import Method
from pasarela.provider import Provider


class Long(Provider):
    name = "{LONG}"
    display_name = "A provider whose display name alone fills most of a terminal line"
    methods = frozenset({{Method.CASH, Method.CARD, Method.WALLET}})
    currencies = frozenset({{"PEN", "USD"}})


@hookimpl
def pasarela_register_providers(register):
    register.add(Long)
'''

CONFIG = """
[store]
url = "sqlite:///{db}"
[plugins]
modules = ["pasarela.testing.fake"{extra}]
[providers.fake]
fees = {{ percent = "3.5", fixed = "PEN 0.50", igv = true }}
"""

ORDER = {"reference": "pedido-1042", "amount": "PEN 149.90", "country": "PE",
         "method": "cash"}
ESC = "\x1b["


def installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration on the fake provider (and the long-named one), on SQLite."""
    (tmp_path / "cli_conventions_long_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # a file named "-" would land here
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(db=tmp_path / "p.db",
                                  extra=', "cli_conventions_long_plugin"'), encoding="utf-8")
    return path


@pytest.fixture
def paid(config: Path) -> str:
    """The id of a succeeded PEN 10.00 card payment in *config*'s store."""
    with Pasarela(str(config), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=FakeGateway().transport()) as p:
        payment = p.pay(Order(reference="o-1", amount=Money.of("10", "PEN")), method="card",
                        idempotency_key="k")
    return payment.id


@pytest.fixture
def settled(config: Path, tmp_path: Path) -> tuple[Path, Path]:
    """*config* with one paid cash payment, and a settlement CSV that matches it."""
    gateway = FakeGateway()
    with Pasarela(str(config), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport()) as p:
        order = Order(reference="o-cash", amount=Money.of("100.00", "PEN"),
                      customer=Customer(first_name="Rosa", last_name="Quispe",
                                        email="rosa@example.pe"))
        payment = p.pay(order, method="cash", idempotency_key="cash")
        headers, body = gateway.settle(payment.provider_reference)
        p.handle_webhook("fake", headers, body)
        created = p.get(payment.id).created_at
    csv_file = tmp_path / "settlement.csv"
    csv_file.write_text("Operacion,Importe,Comision,Fecha\n"
                        f"{payment.provider_reference},100.00,4.72,{created.isoformat()}\n",
                        encoding="utf-8")
    return config, csv_file


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env)


def window(config: Path) -> list[str]:
    """A --from/--to window around today (the payments above are made now)."""
    now = datetime.now(UTC)
    return ["--from", (now - timedelta(days=40)).date().isoformat(),
            "--to", (now + timedelta(days=2)).date().isoformat()]


RECONCILE_MAPS = ["--map", "provider_reference=Operacion", "--map", "amount=Importe",
                  "--map", "fee=Comision", "--map", "occurred_at=Fecha",
                  "--csv-option", "currency=PEN"]


# --- --version and python -m -----------------------------------------------------------


def test_version_names_the_distribution_and_each_installed_adapter() -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"pasarela {metadata.version('pasarela')}"
    for provider, distribution in ADAPTERS.items():
        if installed(distribution):
            assert f"{provider}: {distribution} {metadata.version(distribution)}" in lines


def test_python_dash_m_pasarela_is_the_same_command(config: Path) -> None:
    version = subprocess.run([sys.executable, "-m", "pasarela", "--version"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines()[0] == f"pasarela {metadata.version('pasarela')}"
    # `pasarela providers --json | python -c "import json,sys; json.load(sys.stdin)"`
    listing = subprocess.run([sys.executable, "-m", "pasarela", "--config", str(config),
                              "providers", "--json"], capture_output=True, text=True,
                             timeout=60, check=False,
                             env={**os.environ, "PYTHONPATH": str(config.parent)})
    assert listing.returncode == 0, listing.stderr
    names = {p["name"] for p in json.loads(listing.stdout)}
    assert {"fake", LONG} <= names


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_every_sandbox_runs_with_python_dash_m(provider: str) -> None:
    if not installed(ADAPTERS[provider]):
        pytest.skip(f"{ADAPTERS[provider]} is not installed")
    module = f"pasarela_{provider}.sandbox"
    shown = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                           text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "--option" in shown.stdout
    bad = subprocess.run([sys.executable, "-m", module, "--option", "bogus=1"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: bogus: no such knob")


def test_a_sandbox_that_cannot_bind_is_one_line_and_exit_1() -> None:
    if not installed("pasarela-stripe"):
        pytest.skip("pasarela-stripe is not installed")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        for command in (["-m", "pasarela", "sandbox", "stripe", "--port", port],
                        ["-m", "pasarela_stripe.sandbox", "--port", port]):
            ran = subprocess.run([sys.executable, *command], capture_output=True, text=True,
                                 timeout=60, check=False)
            assert ran.returncode == 1, ran.stderr
            assert ran.stdout == ""
            assert ran.stderr.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
            assert ran.stderr.count("\n") == 1, ran.stderr


# --- --json on stdout, Money as {"minor", "currency"} -----------------------------------


def test_providers_json(config: Path) -> None:
    result = invoke("--config", str(config), "providers", "--json")
    assert result.exit_code == 0, result.output
    by_name = {p["name"]: p for p in json.loads(result.stdout)}
    fake = by_name["fake"]
    assert fake["display_name"] == "Fake provider"
    assert set(fake) == {"name", "display_name", "methods", "currencies", "operations",
                         "distribution", "version"}
    assert "PEN" in fake["currencies"]
    assert by_name[LONG]["methods"] == ["card", "cash", "wallet"]


def test_payments_show_json_gives_money_in_minor_units(config: Path, paid: str) -> None:
    result = invoke("--config", str(config), "payments", "show", paid, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["amount"] == {"minor": 1000, "currency": "PEN"}
    assert (data["order_reference"], data["method"]) == ("o-1", "card")


def test_route_simulate_json(config: Path, tmp_path: Path) -> None:
    orders = tmp_path / "orders.jsonl"
    orders.write_text("\n".join(json.dumps({**ORDER, "reference": f"o-{n}"})
                                for n in range(3)) + "\n", encoding="utf-8")
    result = invoke("--config", str(config), "route", "simulate", str(orders), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["orders"] == 3
    [row] = data["split"]
    assert (row["method"], row["provider"], row["orders"]) == ("cash", "fake", 3)
    # (3.5 % of 149.90 + 0.50) plus 18 % IGV: PEN 6.79 an order, summed exactly
    assert row["expected_fees"] == [{"minor": 3 * 679, "currency": "PEN"}]
    assert data["expected_fees"] == [{"minor": 3 * 679, "currency": "PEN"}]
    assert data["errors"] == []


def test_route_simulate_json_keeps_stdout_json_when_lines_fail(config: Path,
                                                               tmp_path: Path) -> None:
    orders = tmp_path / "orders.jsonl"
    orders.write_text(json.dumps(ORDER) + "\n{not json\n", encoding="utf-8")
    result = invoke("--config", str(config), "route", "simulate", str(orders), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["orders"] == 1
    assert len(data["errors"]) == 1
    assert "1 line(s) could not be routed" in result.stderr


def test_route_explain_json_money_is_minor_units(config: Path, tmp_path: Path) -> None:
    order = tmp_path / "order.json"
    order.write_text(json.dumps(ORDER), encoding="utf-8")
    result = invoke("--config", str(config), "route", "explain", str(order), "--json")
    assert result.exit_code == 0, result.output
    [decision] = json.loads(result.stdout)
    assert decision["expected_fee"] == {"minor": 679, "currency": "PEN"}


def test_reconcile_json_dash_writes_only_json_to_stdout(settled: tuple[Path, Path]) -> None:
    config, csv_file = settled
    for json_args in (["--json", "-"], ["--json"]):
        result = invoke("--config", str(config), "reconcile", "--provider", "fake",
                        *window(config), "--file", str(csv_file), *RECONCILE_MAPS,
                        *json_args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["summary"]["counts"]["matched"] == 1
        assert report["differences"] == []
        assert "Reconciliation fake" in result.stderr  # the summary for people moved
    assert not Path("-").exists()


def test_reconcile_csv_dash_writes_the_differences_to_stdout(
        settled: tuple[Path, Path]) -> None:
    config, csv_file = settled
    result = invoke("--config", str(config), "reconcile", "--provider", "fake",
                    *window(config), "--file", str(csv_file), *RECONCILE_MAPS, "--csv", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("category,provider,item_key")
    both = invoke("--config", str(config), "reconcile", "--provider", "fake",
                  *window(config), "--file", str(csv_file), *RECONCILE_MAPS,
                  "--csv", "-", "--json", "-")
    assert both.exit_code == 2
    assert both.stderr.startswith("error: ")


def test_costs_json_to_stdout_with_money_in_minor_units(settled: tuple[Path, Path]) -> None:
    config, _ = settled
    result = invoke("--config", str(config), "costs", *window(config), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [row] = data["rows"]
    assert row["volume"] == {"minor": 10000, "currency": "PEN"}
    assert row["expected_fee"] == {"minor": 472, "currency": "PEN"}
    assert "Costs" in result.stderr


def test_costs_html_dash_writes_the_page_to_stdout(settled: tuple[Path, Path]) -> None:
    config, _ = settled
    result = invoke("--config", str(config), "costs", *window(config), "--html", "-")
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().lower().startswith("<!doctype html")
    assert not Path("-").exists()


def test_doctor_json_is_the_only_thing_on_stdout(tmp_path: Path) -> None:
    path = tmp_path / "pasarela.toml"
    path.write_text("[providers.nope]\n", encoding="utf-8")
    result = invoke("doctor", "--config", str(path), "--json")
    assert result.exit_code == 1
    [check] = json.loads(result.stdout)
    assert check["name"] == "configuration"


# --- piped output is never cut ----------------------------------------------------------


def test_piped_tables_are_not_cut_to_80_columns(config: Path) -> None:
    result = invoke("--config", str(config), "providers")  # CliRunner: not a terminal
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    [row] = [line for line in lines if LONG in line]  # `... | grep NAME` finds it, whole
    assert "A provider whose display name alone fills most of a terminal line" in row
    assert "card, cash, wallet" in row
    for provider, distribution in ADAPTERS.items():
        if installed(distribution):
            assert any(provider in line and distribution in line for line in lines)


# --- errors: usage 2 in one line, runtime 1, tracebacks only with --debug ----------------


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["providers", "--bogus"],
    ["nosuchcommand"],
    ["route", "explain", "no-such-order.json"],
    ["sandbox", "pagoefectivo", "--port", "99999"],
    ["sandbox", "pagoefectivo", "--option", "bogus=1"],
    ["sandbox", "pagoefectivo", "--option", "latency=soon"],
    ["sandbox", "pagoefectivo", "--option", "no-equals-sign"],
    ["reconcile", "--provider", "fake", "--from", "yesterday", "--to", "2026-12-01"],
])
def test_usage_errors_are_one_line_on_stderr_with_exit_2(config: Path, args: list[str]) -> None:
    if "pagoefectivo" in args and not installed("pasarela-pagoefectivo"):
        pytest.skip("pasarela-pagoefectivo is not installed")
    result = invoke("--config", str(config), *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_an_unexpected_error_is_one_masked_line_and_exit_1(
        config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pasarela.plugins

    def broken(**_: Any) -> Any:
        raise RuntimeError("lookup failed for rosa.quispe@example.pe")

    monkeypatch.setattr(pasarela.plugins, "get_plugin_manager", broken)
    result = invoke("--config", str(config), "providers")
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: RuntimeError: lookup failed for ")
    assert "rosa.quispe@example.pe" not in line
    assert "example.pe" in line  # masked, not removed

    debug = invoke("--debug", "--config", str(config), "providers")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "in broken" in debug.stderr
    assert "rosa.quispe@example.pe" not in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("error: RuntimeError: ")


def test_a_runtime_failure_exits_1(config: Path) -> None:
    result = invoke("--config", str(config), "payments", "show", "01NOPE")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no payment '01NOPE'")


# --- NO_COLOR and terminals -------------------------------------------------------------


def test_no_color_removes_every_escape_even_on_a_terminal(config: Path) -> None:
    terminal = {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}
    coloured = invoke("config", "check", str(config), env=terminal)
    assert coloured.exit_code == 0
    assert ESC in coloured.stdout  # the control: rich believes it is on a terminal
    plain = invoke("config", "check", str(config), env={**terminal, "NO_COLOR": "1"})
    assert plain.exit_code == 0
    assert ESC not in plain.stdout
    assert plain.stdout.startswith("ok ")
    failed = invoke("--config", str(config), "payments", "show", "01NOPE",
                    env={**terminal, "NO_COLOR": "1"})
    assert failed.exit_code == 1
    assert ESC not in failed.stderr
    table = invoke("--config", str(config), "providers", env={**terminal, "NO_COLOR": "1"})
    assert ESC not in table.stdout


def test_piped_output_has_no_escapes(config: Path, paid: str) -> None:
    for args in (["providers"], ["payments", "show", paid], ["config", "check", str(config)]):
        result = invoke("--config", str(config), *args)
        assert result.exit_code == 0, result.output
        assert ESC not in result.output


def test_logs_honour_no_color_and_pipes(config: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from pasarela.cli.output import configure_logging

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    configure_logging()
    try:
        logging.getLogger("pasarela.test").warning("something for rosa@example.pe")
    finally:
        for handler in list(logging.getLogger("pasarela").handlers):
            if type(handler).__name__ == "_CliHandler":
                logging.getLogger("pasarela").removeHandler(handler)
    err = capsys.readouterr().err
    assert "warning" in err
    assert "rosa@example.pe" not in err
    assert ESC not in err
