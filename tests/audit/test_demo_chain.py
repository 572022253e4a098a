"""``make demo``'s stores verify (issue 24's "done when"): the demo's checkout runs
(as tests/test_demo.py runs it), then ``pasarela audit verify`` passes on each store it
leaves, and fails naming the row after a planted edit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from pasarela.cli import main
from pasarela.store import Store
from pasarela.store import schema as t


ROOT = Path(__file__).resolve().parents[2]


def _verify(url: str, tmp_path: Path) -> tuple[int, dict[str, object]]:
    config = tmp_path / f"verify-{abs(hash(url))}.toml"
    config.write_text(f'[store]\nurl = "{url}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "audit", "verify", "--json"])
    return result.exit_code, json.loads(result.output)


def test_the_demo_stores_verify_and_a_planted_edit_is_named(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "demo" / "checkout.py")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    urls = [f"sqlite:///{tmp_path / 'demo-out' / name}"
            for name in ("pasarela.db", "merchants.db")]
    for url in urls:
        code, report = _verify(url, tmp_path)
        assert code == 0, report
        assert report["ok"], report
        assert report["checked"] > 0
        assert report["unchained"] == 0
    with Store(urls[0]) as store, store.engine.begin() as conn:
        target, payment = conn.execute(
            sa.select(t.transitions.c.id, t.transitions.c.payment_id)
            .where(t.transitions.c.target == "succeeded").limit(1)).one()
        conn.execute(sa.update(t.transitions).where(t.transitions.c.id == target)
                     .values(target="failed"))
    code, report = _verify(urls[0], tmp_path)
    assert code == 1
    assert not report["ok"]
    bad = report["first_bad"]
    assert isinstance(bad, dict)
    assert (bad["kind"], bad["record_id"], bad["payment_id"]) == ("transition", target,
                                                                  payment)
