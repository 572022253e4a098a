"""``pasarela costs`` (report, its default), in three languages, JSON, CSV, HTML."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasarela.cli import main
from pasarela.store import Store

from .conftest import Planter
from .test_worked_example import DOC, plant_example


WINDOW = ["--from", "2026-11-01", "--to", "2026-12-01", "--as-of", "2026-11-01"]


@pytest.fixture
def config(store: Store, plant: Planter, tmp_path: Path, store_url: str) -> Path:
    plant_example(plant)
    text = DOC.read_text(encoding="utf-8").split("## Worked example", 1)[1]
    fees = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "pasarela.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n[plugins]\nmodules = '
                    '["pasarela.testing.fake"]\n'
                    + fees.replace("[providers.pagoefectivo.fees]",
                                   '[providers.pagoefectivo]\ntype = "fake"\n'
                                   "[providers.pagoefectivo.fees]")
                    .replace("[providers.culqi.fees]",
                             '[providers.culqi]\ntype = "fake"\n[providers.culqi.fees]')
                    .replace("[providers.dlocal.fees]",
                             '[providers.dlocal]\ntype = "fake"\n[providers.dlocal.fees]'),
                    encoding="utf-8")
    return path


def invoke(*args: str) -> object:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_report_is_the_default_and_json_has_every_figure(config: Path) -> None:
    result = invoke("--config", str(config), "costs", *WINDOW, "--json")
    data = json.loads(result.stdout)  # type: ignore[attr-defined]
    rows = {r["provider"]: r for r in data["rows"]}
    assert rows["pagoefectivo"]["total_cost"] == {"minor": 141638, "currency": "PEN"}
    assert rows["culqi"]["network"] == "visa"
    assert data["total"]["effective_rate"] == "6.584%"
    [warning] = data["warnings"]
    assert warning["code"] == "renewal_notice_due"
    assert "2026-11-02" in warning["text"]
    assert "2026-11-02" in result.stderr  # type: ignore[attr-defined]
    same = invoke("--config", str(config), "costs", "report", *WINDOW, "--json")
    assert json.loads(same.stdout)["rows"] == data["rows"]  # type: ignore[attr-defined]


def test_csv(config: Path) -> None:
    result = invoke("--config", str(config), "costs", *WINDOW, "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # type: ignore[attr-defined]
    pe = next(r for r in rows if r["provider"] == "pagoefectivo")
    assert (pe["volume"], pe["shortfall"], pe["transit_cost"], pe["total_cost"]) == (
        "2500000", "20650", "1644", "141638")


@pytest.mark.parametrize(("lang", "words"), [
    ("en", ["Where the money goes", "total cost of acceptance", "renews on 2027-01-01"]),
    ("es_PE", ["A dónde va el dinero", "costo total de aceptación",
               "se renueva el 2027-01-01"]),
    ("zh_CN", ["费用去向", "总收单成本", "将于 2027-01-01 自动续约"]),
])
def test_html_in_three_languages(config: Path, tmp_path: Path, lang: str,
                                 words: list[str]) -> None:
    page_path = tmp_path / f"costs.{lang}.html"
    result = invoke("--config", str(config), "costs", *WINDOW, "--lang", lang,
                    "--html", str(page_path))
    page = page_path.read_text(encoding="utf-8")
    for word in words:
        assert word in page
    assert f'lang="{lang.replace("_", "-")}"' in page
    assert page.count("<svg") == 3
    for external in ("src=", "<link", "<script", "http://", "https://"):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert words[1] in result.stdout  # type: ignore[attr-defined]  # the table too


def test_a_bad_fee_table_names_its_key(config: Path) -> None:
    text = config.read_text(encoding="utf-8").replace('percent = "3.0" }]',
                                                      'percent = "3.0" }, '
                                                      '{ from = "PEN 1.00" }]')
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "costs", *WINDOW])
    assert result.exit_code != 0
    assert "providers.pagoefectivo.fees.tiers[1].from" in result.output
