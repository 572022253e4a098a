"""``pasarela route explain`` and ``pasarela route simulate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from pasarela.cli import routing as routing_cli
from pasarela.cli.routing import route
from pasarela.model import Method


PLUGIN = '''
from pasarela.hookspecs import hookimpl
from pasarela.model import Method
from pasarela.provider import Provider


class Beta(Provider):
    name = "beta"
    display_name = "Beta"
    methods = frozenset({Method.CASH, Method.CARD})
    currencies = frozenset({"PEN"})


@hookimpl
def pasarela_register_providers(register):
    register.add(Beta)
'''

CONFIG = """
[store]
url = "sqlite:///{db}"

[plugins]
modules = ["pasarela.testing.fake", "routing_cli_beta_plugin"]

[providers.fake]
fees = {{ percent = "3.5", fixed = "PEN 0.50", igv = true }}

[providers.beta]
fees = {{ percent = "2.0" }}

[[routes]]
name = "cash for mid-size orders"
when = {{ country = "PE", method = "cash", amount = {{ max = "PEN 1500" }} }}
use = ["beta", "fake"]

[[routes]]
name = "evening cards"
when = {{ method = "card", time = {{ from = "18:00", to = "23:00" }} }}
use = ["beta"]

[[routes]]
name = "cards"
when = {{ method = "card" }}
use = {cards}
strategy = "{strategy}"

[[routes]]
name = "default"
use = ["fake"]
"""

ORDER = {"reference": "pedido-1042", "amount": "PEN 149.90", "country": "PE",
         "description": "Audífonos", "customer": {
             "first_name": "Rosa", "last_name": "Quispe", "email": "rosa@example.pe",
             "phone": "+51 987 654 321", "document": ["DNI", "45678912"]}}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    (tmp_path / "routing_cli_beta_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PASARELA_LOAD_PLUGINS", "")  # only the modules the config names
    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "p.db"
    current = tmp_path / "pasarela.toml"
    current.write_text(CONFIG.format(db=db, cards='["fake", "beta"]', strategy="ordered"),
                       encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.format(db=db, cards='["fake", "beta"]', strategy="cheapest"),
                     encoding="utf-8")
    order = tmp_path / "order.json"
    order.write_text(json.dumps(ORDER), encoding="utf-8")
    monkeypatch.setenv("PASARELA_CONFIG", str(current))
    return {"current": current, "other": other, "order": order, "dir": tmp_path}


def run(*args: str) -> Any:
    return CliRunner().invoke(route, list(args), catch_exceptions=False)


class TestExplain:
    def test_prints_the_trace_for_a_method(self, files):
        result = run("explain", str(files["order"]), "--method", "card",
                     "--at", "2026-03-04T10:00:00-05:00")
        assert result.exit_code == 0, result.output
        lines = [line.strip() for line in result.output.splitlines()]
        assert lines[0] == "card: fake  expected fee PEN 6.79"
        assert lines[1:6] == [
            "order pedido-1042: PEN 149.90, country PE, method card",
            "routes[0] 'cash for mid-size orders': no match: method card is not cash",
            "routes[1] 'evening cards': no match: Lima time 10:00 is outside 18:00-23:00",
            "routes[2] 'cards': matched (method card)",
            "strategy ordered: try in listed order fake, beta",
        ]
        assert lines[6] == "chose fake (expected fee PEN 6.79); failover order fake, beta"
        assert "cash:" not in result.output

    def test_at_a_time_inside_the_window(self, files):
        result = run("explain", str(files["order"]), "--method", "card",
                     "--at", "2026-03-04T19:30:00-05:00")
        assert result.exit_code == 0, result.output
        assert "routes[1] 'evening cards': matched (method card; Lima time from 18:00 to " \
               "23:00)" in result.output
        assert "card: beta  expected fee PEN 3.00" in result.output

    def test_route_order_file_with_explain_flag(self, files):
        result = run(str(files["order"]), "--explain")
        assert result.exit_code == 0, result.output
        for title in ("cash: beta  expected fee PEN 3.00", "wallet: fake  expected fee",
                      "card:"):
            assert title in result.output
        assert "routes[0] 'cash for mid-size orders': matched" in result.output

    def test_json(self, files):
        result = run("explain", str(files["order"]), "--json", "--method", "cash")
        assert result.exit_code == 0, result.output
        [decision] = json.loads(result.output)
        assert (decision["provider"], decision["rule"]) == ("beta", "cash for mid-size orders")
        assert decision["expected_fee"] == {"minor": 300, "currency": "PEN"}
        assert "45678912" not in result.output  # the document stays out of decisions

    def test_configuration_errors_name_their_path(self, files):
        text = files["current"].read_text(encoding="utf-8")
        files["current"].write_text(text.replace('method = "cash"', 'metodo = "cash"'),
                                    encoding="utf-8")
        result = CliRunner().invoke(route, ["explain", str(files["order"])])
        assert result.exit_code == 1
        assert "routes[0].when.metodo: unknown condition" in result.output

    def test_not_an_order(self, files):
        bad = files["dir"] / "bad.json"
        bad.write_text(json.dumps({"reference": "x", "amount": 12.5}), encoding="utf-8")
        result = CliRunner().invoke(route, ["explain", str(bad)])
        assert result.exit_code == 1
        assert "not an order" in result.output

    def test_under_the_pasarela_command(self, files):
        from pasarela.cli import main

        @click.group()
        @click.option("--config", "config_path")
        @click.pass_context
        def cli(ctx: click.Context, config_path: str) -> None:
            ctx.obj = {"config": config_path}

        cli.add_command(route)
        result = CliRunner().invoke(cli, ["--config", str(files["other"]), "route",
                                          str(files["order"]), "--explain", "--method", "card",
                                          "--at", "2026-03-04T10:00:00-05:00"])
        assert result.exit_code == 0, result.output
        assert "strategy cheapest" in result.output  # the --config file, not PASARELA_CONFIG
        assert main.name == "main"  # the real group is left alone; the lead wires it in


# --- simulate ---------------------------------------------------------------------------


def write_orders(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n"
                            for x in lines), encoding="utf-8")
    return path


def orders() -> list[dict[str, Any]]:
    at = "2026-03-04T10:00:00-05:00"
    out = [{"reference": f"c-{i}", "amount": "PEN 100.00", "method": "card", "at": at}
           for i in range(4)]
    out += [{"reference": f"e-{i}", "amount": "PEN 50.00", "method": "cash", "at": at}
            for i in range(3)]
    out += [{"reference": "big", "amount": "PEN 2000.00", "method": "cash", "at": at}]
    return out


class TestSimulate:
    def test_split_by_method_and_provider_with_fees(self, files):
        path = write_orders(files["dir"] / "orders.jsonl", orders())
        result = run("simulate", str(path))
        assert result.exit_code == 0, result.output
        rows = {tuple(cell.strip() for cell in line.split("│")[1:6])
                for line in result.output.splitlines() if line.startswith("│")}
        assert ("card", "fake", "4", "100.0%", "PEN 18.88") in rows  # 4 x 4.72
        assert ("cash", "beta", "3", "75.0%", "PEN 3.00") in rows  # 3 x 1.00
        assert ("cash", "fake", "1", "25.0%", "PEN 83.19") in rows  # the default rule
        assert "expected fees: PEN 105.07" in result.output

    def test_difference_against_another_configuration(self, files):
        path = write_orders(files["dir"] / "orders.jsonl", orders())
        result = run("simulate", str(path), "--config", str(files["other"]))
        assert result.exit_code == 0, result.output
        rows = {tuple(cell.strip() for cell in line.split("│")[1:9])
                for line in result.output.splitlines() if line.startswith("│")}
        # cheapest sends the cards to beta (PEN 2.00 each instead of 4.72)
        assert ("card", "fake", "4", "100.0%", "PEN 18.88", "0", "-4", "-") in rows
        assert ("card", "beta", "0", "0.0%", "-", "4", "+4", "PEN 8.00") in rows
        assert "with the other configuration: PEN 94.19 (change PEN -10.88)" in result.output
        assert "4 of 8 order(s) (50.0%) would go to a different provider" in result.output

    def test_replays_stored_decisions(self, files):
        explained = run("explain", str(files["order"]), "--json")
        decisions = json.loads(explained.output)
        path = write_orders(files["dir"] / "decisions.jsonl", decisions)
        result = run("simulate", str(path), "--config", str(files["other"]))
        assert result.exit_code == 0, result.output
        assert f"routing of {len(Method)} order(s)" in result.output  # one per method

    def test_method_option_and_bad_lines(self, files):
        path = write_orders(files["dir"] / "orders.jsonl", [
            {"reference": "a", "amount": "PEN 10.00"},
            "{not json",
            {"reference": "b", "amount": "PEN 10.00", "method": "cheque"},
            {"reference": "c", "amount": "PEN 10.00", "method": "cash"},
        ])
        result = CliRunner().invoke(route, ["simulate", str(path), "--method", "card"])
        assert result.exit_code == 1
        assert "routing of 2 order(s)" in result.output
        assert f"{path}:2: " in result.output
        assert f"{path}:3: 'cheque' is not a valid Method" in result.output
        assert "2 line(s) could not be routed" in result.output

    def test_a_line_without_a_method_is_an_error(self, files):
        path = write_orders(files["dir"] / "orders.jsonl", [{"reference": "a",
                                                            "amount": "PEN 10.00"}])
        result = CliRunner().invoke(route, ["simulate", str(path)])
        assert result.exit_code == 1
        assert 'no method: give "method" in the line or --method' in result.output

    def test_progress_bar_for_large_files(self, files, monkeypatch):
        shown: list[bool] = []
        real = routing_cli.Progress

        def spy(*args: Any, **kwargs: Any) -> Any:
            shown.append(not kwargs["disable"])
            return real(*args, **kwargs)

        monkeypatch.setattr(routing_cli, "Progress", spy)
        path = write_orders(files["dir"] / "orders.jsonl", orders())
        assert run("simulate", str(path)).exit_code == 0
        monkeypatch.setattr(routing_cli, "PROGRESS_FROM", 5)
        assert run("simulate", str(path)).exit_code == 0
        assert shown == [False, True]
