"""The demo's costs act: the same paid orders of the checkout (acts 1 to 6) priced three
ways for cash, side by side with how they were routed.

``pasarela costs --what-if LABEL=FILE`` (repeatable) re-routes every paid order of the
window with each routing file's router and prices it with that file's fee tables:

- ``routes-direct.toml``: cash codes straight to PagoEfectivo (the checkout's routing);
- ``routes-dlocal.toml``: cash codes through dLocal, which settles abroad in US dollars
  (its fee table adds an FX spread and a cross-border fee, each its own line);
- ``routes-mercadopago.toml``: cash codes through Mercado Pago (``pagoefectivo_atm``).

Wallet and card orders go as in the checkout in all three, so only cash moves. The
command is run as a user runs it, on the checkout's store; its JSON is kept in
``demo-out/costs-what-if.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console


HERE = Path(__file__).resolve().parent
ROUTES = (("PagoEfectivo direct", "routes-direct.toml"),
          ("through dLocal", "routes-dlocal.toml"),
          ("through Mercado Pago", "routes-mercadopago.toml"))


def costs_act(console: Console, out: Path, since: datetime, until: datetime) -> bool:
    """Play the costs act over the checkout's store in *out*; True when the command
    compared the three cash routes on the same orders."""
    console.rule("[bold]10. What cash costs: PagoEfectivo direct, through dLocal, through "
                 "Mercado Pago")
    # The shop's configuration as the command reads it: the checkout's store and its
    # fee tables (the same accounts and figures as routes-direct.toml).
    shop = out / "costs.toml"
    shop.write_text(f'[store]\nurl = "sqlite:///{(out / "pasarela.db").resolve().as_posix()}"'
                    f'\n\n{(HERE / ROUTES[0][1]).read_text(encoding="utf-8")}',
                    encoding="utf-8")
    document = out / "costs-what-if.json"
    window = ["--from", since.isoformat(), "--to", until.isoformat()]
    what_ifs = [arg for label, name in ROUTES
                for arg in ("--what-if", f"{label}={HERE / name}")]
    shown = " ".join(f'--what-if "{label}=demo/{name}"' for label, name in ROUTES)
    console.print(f"  $ pasarela --config {shop} costs --from ... --to ... {shown} "
                  f"--json {document}", soft_wrap=True, highlight=False)
    # The table fits the demo's console (rich wraps the cells, not the borders).
    env = {**os.environ, "COLUMNS": str(max(console.width - 2, 60)), "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8"}
    result = subprocess.run(  # noqa: S603 - this interpreter, the demo's own arguments
        [sys.executable, "-m", "pasarela", "--config", str(shop), "costs", *window,
         *what_ifs, "--json", str(document)],
        capture_output=True, text=True, timeout=120, check=False, env=env)
    if result.returncode != 0:
        console.print(f"[red]pasarela costs failed ({result.returncode}):\n"
                      f"{result.stdout}{result.stderr}")
        return False
    start = result.stdout.find("What if")
    for line in result.stdout[start:].rstrip().splitlines():  # the comparison table
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    comparison = json.loads(document.read_text(encoding="utf-8"))["comparison"]
    names = [route["name"] for route in comparison["routes"]]
    cash_moved = all(route["split"].get(account, 0) > 0 for route, account in
                     zip(comparison["routes"][1:], ("pagoefectivo", "dlocal", "mercadopago"),
                         strict=True))
    return (names[1:] == [label for label, _ in ROUTES] and comparison["orders"] > 0
            and cash_moved and all(route["orders"] == comparison["orders"]
                                   for route in comparison["routes"]))


def window_around(moment: datetime) -> tuple[datetime, datetime]:
    """A window that holds every payment the checkout made around *moment*."""
    return moment - timedelta(days=1), moment + timedelta(days=3)
