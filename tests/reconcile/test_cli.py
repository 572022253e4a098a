"""``pasarela reconcile`` and ``pasarela costs`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.lifecycle import Cause, Status
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin

from .conftest import Clock, order


CONFIG = """
[store]
url = "{url}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
fees = {{ percent = "3.5", fixed = "PEN 0.50", igv = true }}
"""
MAPS = ["--map", "provider_reference=Operacion", "--map", "amount=Importe",
        "--map", "fee=Comision", "--map", "occurred_at=Fecha", "--csv-option", "currency=PEN"]
WINDOW = ["--from", "2026-11-01", "--to", "2026-12-01"]


@pytest.fixture
def setup(tmp_path: Path, store_url: str):
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    clock = Clock()
    gateway = FakeGateway(clock=clock)
    Store(store_url, upgrade=True).close()
    made = {}
    with Pasarela(str(path), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport(), clock=clock) as p:
        for ref, paid in (("ok", True), ("heal", False)):
            payment = p.pay(order(ref), method="cash", idempotency_key=ref)
            if paid:
                headers, body = gateway.settle(payment.provider_reference)
                p.handle_webhook("fake", headers, body)
            made[ref] = p.get(payment.id)
            assert made[ref].status is (Status.SUCCEEDED if paid else Status.PENDING)
    return path, made


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_reconcile_a_file_heals_reports_and_reruns_unchanged(setup, tmp_path: Path) -> None:
    path, made = setup
    csv_file = tmp_path / "liquidacion.csv"
    csv_file.write_text(
        "Operacion,Importe,Comision,Fecha\n"
        f"{made['ok'].provider_reference},100.00,4.72,2026-11-10T11:00:00-05:00\n"
        f"{made['heal'].provider_reference},100.00,4.72,2026-11-10T12:00:00-05:00\n"
        "x-1,\"1,000.00\",4.72,2026-11-10T12:00:00Z\n", encoding="utf-8")
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    args = ["--config", str(path), "reconcile", "--provider", "fake", *WINDOW,
            "--file", str(csv_file), *MAPS, "--json", str(out_json), "--csv", str(out_csv)]
    result = run(*args)
    assert result.exit_code == 1, result.output  # a bad line remains
    assert "bad line 4" in result.output
    report = json.loads(out_json.read_text(encoding="utf-8"))
    assert report["summary"]["counts"]["matched"] == 1
    assert report["summary"]["counts"]["missing_in_books"] == 1
    assert report["summary"]["healed"] == 1
    assert report["bad_lines"] == [{"line": 4, "error": report["bad_lines"][0]["error"]}]
    assert "thousands" in report["bad_lines"][0]["error"]
    assert "missing_in_books" in out_csv.read_text(encoding="utf-8")
    with Pasarela(str(path), plugins=[FakePlugin()], load_entrypoints=False) as p:
        healed = p.get(made["heal"].id)
    assert healed.status is Status.SUCCEEDED
    assert healed.history[-1].cause is Cause.RECONCILE

    again = run(*args)
    assert again.exit_code == 1
    assert json.loads(out_json.read_text(encoding="utf-8"))["summary"] == report["summary"]


def test_reconcile_exits_zero_when_everything_matches(setup, tmp_path: Path) -> None:
    path, made = setup
    csv_file = tmp_path / "ok.csv"
    csv_file.write_text(
        "Operacion,Importe,Comision,Fecha\n"
        f"{made['ok'].provider_reference},100.00,4.72,2026-11-10T11:00:00-05:00\n",
        encoding="utf-8")
    result = run("--config", str(path), "reconcile", "--provider", "fake", *WINDOW,
                 "--file", str(csv_file), *MAPS)
    assert result.exit_code == 0, result.output
    assert "unresolved 0" in result.output


def test_reconcile_usage_errors(setup, tmp_path: Path) -> None:
    path, _ = setup
    result = run("--config", str(path), "reconcile", "--provider", "nope", *WINDOW)
    assert result.exit_code == 2
    result = run("--config", str(path), "reconcile", "--provider", "fake",
                 "--from", "2026-12-01", "--to", "2026-11-01")
    assert result.exit_code == 2


def test_costs_with_what_if_and_html(setup, tmp_path: Path) -> None:
    path, _ = setup
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.format(url="sqlite://").replace('"3.5"', '"2.0"'),
                     encoding="utf-8")
    out_html, out_json = tmp_path / "costs.html", tmp_path / "costs.json"
    result = run("--config", str(path), "costs", *WINDOW, "--what-if", str(other),
                 "--html", str(out_html), "--json", str(out_json))
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text(encoding="utf-8"))
    [row] = data["rows"]
    assert (row["provider"], row["method"], row["month"]) == ("fake", "cash", "2026-11")
    assert (row["attempts"], row["succeeded"]) == (2, 1)
    assert row["expected_fee"] == {"minor": 472, "currency": "PEN"}
    assert row["effective_rate"] == "4.720%"
    assert data["what_if"]["current"] == {"PEN": {"minor": 472, "currency": "PEN"}}
    # 2.00 + 0.50, plus 18 % IGV
    assert data["what_if"]["other"] == {"PEN": {"minor": 295, "currency": "PEN"}}
    page = out_html.read_text(encoding="utf-8")
    assert page.count("<svg") == 3  # a chart per question (docs/costs.md)
    assert "src=" not in page
    assert "<link" not in page
    assert "<script" not in page
