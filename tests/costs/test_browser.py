"""The HTML report in a real browser: Debian's headless Chromium takes a screenshot of
it in each language (the page has no script and no external asset, so a file is
enough). Skipped with the reason when Chromium is missing, except under ``CI=true``.
Screenshots go to ``$PASARELA_ARTIFACTS/costs`` (default: the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pasarela.reconcile import cost_report as cr
from pasarela.reconcile.cost_model import CostSetup, cost_report
from pasarela.store import Store

from .conftest import DEC, NOV, Planter
from .test_worked_example import example_tables, plant_example


CHROMIUM = os.environ.get("PASARELA_CHROMIUM", "/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def _require_browser() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    reason = f"{CHROMIUM} not found (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.mark.parametrize("lang", cr.LANGUAGES)
def test_screenshot_in_each_language(sqlite_url: str, tmp_path: Path, lang: str) -> None:
    _require_browser()
    store = Store(sqlite_url, upgrade=True)  # the page is the same on either store
    try:
        plant_example(Planter(store))
        report = cost_report(store, NOV, DEC, CostSetup.from_tables(example_tables()),
                             as_of=NOV)
    finally:
        store.close()
    page = tmp_path / f"costs.{lang}.html"
    page.write_text(cr.html_page(report, lang), encoding="utf-8")
    out = Path(os.environ.get("PASARELA_ARTIFACTS", tmp_path)) / "costs"
    out.mkdir(parents=True, exist_ok=True)
    shot = out / f"costs.{lang}.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run([CHROMIUM, *FLAGS, f"--screenshot={shot}", "--window-size=1000,1400",
                           page.as_uri()], capture_output=True, text=True, timeout=100,
                          check=False)
    assert shot.exists(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank page compresses to a few kilobytes; three charts and two tables do not.
    assert len(data) > 20_000, len(data)
