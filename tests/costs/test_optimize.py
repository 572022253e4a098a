"""``costs optimize`` on a planted data set whose answer is worked out by hand."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasarela.cli import main
from pasarela.store import Store

from .conftest import NOV, Planter


CONFIG = """
[store]
url = "{url}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.cheap]
type = "fake"
max_amount = "PEN 500.00"
fees = {{ percent = "2.0" }}
[providers.dear]
type = "fake"
fees = {{ percent = "4.0" }}
[providers.flaky]
type = "fake"
fees = {{ percent = "1.0" }}
[[routes]]
name = "all"
use = ["{use}"]
"""


@pytest.fixture
def planted(store: Store, plant: Planter, tmp_path: Path, store_url: str) -> Path:
    """Cash orders, today all on dear but one each on cheap and flaky:
    10 × PEN 100.00 and 2 × PEN 1,000.00 at dear (4 %), 1 × 100.00 at cheap (2 %, at
    most PEN 500.00), 1 × 100.00 paid at flaky (1 %) of 10 attempts."""
    at = NOV + timedelta(days=3)
    for i in range(10):
        plant.payment("dear", "cash", 10000, at + timedelta(minutes=i), keep_order=True)
    for i in range(2):
        plant.payment("dear", "cash", 100000, at + timedelta(hours=1, minutes=i),
                      keep_order=True)
    plant.payment("cheap", "cash", 10000, at + timedelta(hours=2), keep_order=True)
    plant.payment("flaky", "cash", 10000, at + timedelta(hours=3), keep_order=True)
    for i in range(9):
        plant.payment("flaky", "cash", 10000, at + timedelta(hours=4, minutes=i),
                      status="failed", keep_order=True)
    for name in ("dear", "cheap"):
        (tmp_path / f"{name}.toml").write_text(CONFIG.format(url=store_url, use=name),
                                               encoding="utf-8")
    return tmp_path


def run(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


WINDOW = ["--from", "2026-11-01", "--to", "2026-12-01"]


def test_cheapest_provider_meeting_the_success_rate(planted: Path) -> None:
    data = run("--config", str(planted / "dear.toml"), "costs", "optimize", *WINDOW,
               "--min-success", "50", "--json")
    [cash] = data["methods"]
    # today: 10 × 4.00 + 2 × 40.00 + 2.00 (cheap) + 1.00 (flaky) = 123.00
    assert cash["current"] == {"PEN": {"minor": 12300, "currency": "PEN"}}
    cands = {c["name"]: c for c in cash["candidates"]}
    # cheap takes the 12 orders of PEN 100.00 at 2.00 and cannot take the two of
    # PEN 1,000.00 (its max_amount): they stay at dear's 40.00. 24.00 + 80.00.
    assert cands["cheap"]["fees"] == {"PEN": {"minor": 10400, "currency": "PEN"}}
    assert (cands["cheap"]["moved"], cands["cheap"]["unroutable"]) == (11, 2)
    assert cands["dear"]["fees"] == {"PEN": {"minor": 12800, "currency": "PEN"}}
    # flaky would be cheapest (12 × 1.00 + 2 × 10.00) but pays 1 of 10 attempts
    assert cands["flaky"]["fees"] == {"PEN": {"minor": 3200, "currency": "PEN"}}
    assert (cands["flaky"]["success_rate"], cands["flaky"]["eligible"]) == ("10.00%", False)
    assert cash["best"] == "cheap"
    assert cash["saving"] == {"PEN": {"minor": 1900, "currency": "PEN"}}
    assert cash["moved"] == 11


def test_without_a_minimum_the_cheapest_wins(planted: Path) -> None:
    data = run("--config", str(planted / "dear.toml"), "costs", "optimize", *WINDOW,
               "--json")
    assert data["methods"][0]["best"] == "flaky"


def test_candidate_routing_files(planted: Path) -> None:
    dear, cheap = str(planted / "dear.toml"), str(planted / "cheap.toml")
    data = run("--config", dear, "costs", "optimize", *WINDOW, "--candidate", dear,
               "--candidate", cheap, "--min-success", "50", "--json")
    files = {f["name"]: f for f in data["files"]}
    assert files[dear]["fees"] == {"PEN": {"minor": 12800, "currency": "PEN"}}
    # cheap's own routing: orders over its max_amount have no provider (unroutable)
    assert files[cheap]["fees"] == {"PEN": {"minor": 10400, "currency": "PEN"}}
    assert files[cheap]["unroutable"] == 2
    assert data["best_file"] == cheap
