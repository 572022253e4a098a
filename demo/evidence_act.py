"""The demo's evidence act: the checkout's audit trail, proved and handed over.

While the sandboxes still run, ``pasarela reconcile --provider pagoefectivo`` asks
PagoEfectivo which of the checkout's CIPs were paid (PagoEfectivo publishes no
settlement file: its search is given the CIP numbers) and matches them to the
payments (:func:`reconcile_cash`). At the end of the demo (:func:`evidence_act`):

- ``pasarela audit seal`` folds the checkout's records into a chain head, and
  ``pasarela audit verify --all`` recomputes every chain of every store the demo left
  (each exchange, transition and webhook delivery is hashed into its payment's chain
  when it is written);
- ``pasarela payments evidence ID --out demo-out/evidence/ID.zip`` writes each
  checkout payment's evidence bundle: summaries in English, Spanish and Chinese (HTML
  and text) and the JSON of the order and masked customer, every redacted exchange,
  the references, transitions, deliveries, routing decision, reconciliation lines and
  each record's chain proof.

The commands run in this process, as a user types them, on a configuration file
written beside the store (``demo-out/shop.toml``): the checkout's accounts.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from pasarela.cli import main as cli


#: The checkout's configuration file, written beside its store.
CONFIG_NAME = "shop.toml"
#: Where the bundles go, one zip per payment.
BUNDLES = "evidence"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for these (plain) values
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def _toml(table: Mapping[str, Any], prefix: str = "") -> str:
    """*table* as TOML: its values, then each sub-table under its dotted name."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in table.items()
             if not isinstance(value, Mapping)]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in table.items():
        if isinstance(value, Mapping):
            name = f"{prefix}{key}"
            text += f"\n[{name}]\n" + _toml(value, f"{name}.").lstrip("\n")
    return text


def write_config(out: Path, config: Mapping[str, Any]) -> Path:
    """The checkout's *config* as the ``pasarela`` command reads it, in *out*."""
    path = out / CONFIG_NAME
    store = {"url": f"sqlite:///{(out / 'pasarela.db').resolve().as_posix()}"}
    path.write_text(_toml({**config, "store": store}), encoding="utf-8")
    return path


def run(args: Sequence[str]) -> tuple[int, str]:
    """``pasarela ARGS`` in this process: its exit code and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            cli.main(args=list(args), prog_name="pasarela", standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
    return code, printed.getvalue()


def _shown(console: Console, config: Path, args: Sequence[str]) -> None:
    console.print(f"  $ pasarela --config {config} {' '.join(args)}", soft_wrap=True,
                  highlight=False, markup=False)


def _indented(console: Console, text: str) -> None:
    for line in text.rstrip().splitlines():
        console.print(f"    {line}", highlight=False, markup=False, soft_wrap=True)


def reconcile_cash(console: Console, config: Path, since: datetime, until: datetime) -> bool:
    """Reconcile the checkout's CIPs with PagoEfectivo (its sandbox running); True when
    the command ran and every paid CIP matched."""
    console.rule("[bold]Reconciling the cash codes with PagoEfectivo")
    args = ["reconcile", "--provider", "pagoefectivo", "--from", since.isoformat(),
            "--to", until.isoformat()]
    _shown(console, config, args)
    code, printed = run(["--config", str(config), *args])
    _indented(console, printed)
    return code == 0


def evidence_act(console: Console, out: Path, config: Path,
                 payment_ids: Sequence[str]) -> bool:
    """Seal and verify the demo's stores, and write the evidence bundle of each of
    *payment_ids* (the checkout's) into *out*; True when every chain verified and
    every bundle was written."""
    console.rule("[bold]11. The audit trail: verified, and each payment's evidence")
    ok = True
    seal = ["audit", "seal"]
    _shown(console, config, seal)
    code, printed = run(["--config", str(config), *seal])
    _indented(console, printed)
    ok = ok and code == 0
    for db in sorted(out.glob("*.db")):
        if db.name == "pasarela.db":
            path = config
        else:  # the other acts' stores: their chains only need the store
            path = out / f"verify-{db.stem}.toml"
            path.write_text(f'[store]\nurl = "sqlite:///{db.resolve().as_posix()}"\n',
                            encoding="utf-8")
        verify = ["audit", "verify", "--all"]
        _shown(console, path, verify)
        code, printed = run(["--config", str(path), *verify])
        _indented(console, printed)
        ok = ok and code == 0
    folder = out / BUNDLES
    folder.mkdir(exist_ok=True)
    console.print(f"  $ pasarela --config {config} payments evidence ID --out "
                  f"{folder}/ID.zip   (each payment of the checkout)", soft_wrap=True,
                  highlight=False, markup=False)
    table = Table("order", "status", "exch.", "trans.", "deliv.", "recon", "chain",
                  box=box.SIMPLE_HEAD)
    for payment_id in payment_ids:
        target = folder / f"{payment_id}.zip"
        code, printed = run(["--config", str(config), "payments", "evidence", payment_id,
                             "--out", str(target)])
        if code != 0 or not target.exists():
            _indented(console, printed)
            ok = False
            continue
        with zipfile.ZipFile(target) as zf:
            [name] = [n for n in zf.namelist() if n.endswith("/evidence.json")]
            doc = json.loads(zf.read(name))
        chain = doc["chain"]
        verified = bool(chain.get("available")) and bool(chain["verified"]["ok"])
        ok = ok and verified
        table.add_row(doc["payment"]["order_reference"], doc["payment"]["status"],
                      str(len(doc["exchanges"])), str(len(doc["transitions"])),
                      str(len(doc["deliveries"])), str(len(doc["reconciliation"]["lines"])),
                      "ok" if verified else "[red]bad[/]")
    console.print(table)
    console.print(f"  {len(payment_ids)} bundles in {folder}/ (exchanges, transitions, webhook "
                  "deliveries and settlement lines of each, each record's chain proof "
                  "checked); each zip: evidence.json (masked customer, redacted exchanges, UTC "
                  "and Lima times, chain proofs), summary.{en,es_PE,zh_CN}.{html,txt}, "
                  "manifest.json (SHA-256 of each file)", highlight=False)
    return ok
