"""`make demo` is the main job: it must run the whole checkout and end in the expected
states (the script itself checks them and exits non-zero otherwise)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tomllib
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]


def test_demo_checkout_runs_end_to_end(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "demo" / "checkout.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for expected in ("CIP", "Yape", "Plin", "partially_refunded", "expired", "unknown",
                     "review the late payment of pedido-1048", "payments{method=cash",
                     "release the stock of pedido-1046", "Two merchants on one server",
                     "the other's"):
        assert expected in out
    assert (tmp_path / "demo-out" / "pasarela.db").exists()
    assert (tmp_path / "demo-out" / "merchants.db").exists()
    assert "shows the other's" not in out
    assert (tmp_path / "demo-out" / "cip-qr.svg").read_text().startswith("<svg")
    assert "webhook_rejected" not in out + result.stderr
    dlocal = out[out.index("8. dLocal"):].replace("\xa0", " ")  # Money.format: no-break space
    for expected in ("BankTransfer", "bank: BCP", "CCI: ", "reference: DL", "amount: S/ 250.00",
                     "deadline: 20", "charged USD 40.00", "fx_rate 0.266845"):
        assert expected in dlocal
    assert dlocal.count("succeeded (by webhook)") == 2
    mercadopago = " ".join(out[out.index("9. Mercado Pago"):].split())  # unwrapped
    for expected in ("cash -> mercadopago (pending)", "wallet -> yape (succeeded)",
                     "strategy cheapest: expected fees mercadopago PEN 3.33, pagoefectivo "
                     "PEN 3.89", "chose yape (expected fee PEN 2.36)",
                     "attempt 2; calls that reached the PagoEfectivo sandbox: 0",
                     "attempt 1 at pagoefectivo: provider_unavailable",
                     "while both answer: cash -> mercadopago",
                     "meet its 500s: unknown, unknown, unknown",
                     "after the failures: cash -> pagoefectivo",
                     "mercadopago 57.1% of 7; pagoefectivo 100.0% of 3"):
        assert expected in mercadopago
    costs = " ".join(out[out.index("10. What cash costs"):].split())
    for expected in ("current routing", "PagoEfectivo direct", "through dLocal",
                     "through Mercado Pago", "cross-border fee", "FX spread",
                     "effective cost", "unroutable", "Cheapest in PEN"):
        assert expected in costs
    check_the_cash_routes(tmp_path / "demo-out")


CENT = Decimal("0.01")
PAID = ("succeeded", "partially_refunded", "refunded")


def fee_parts(table: dict[str, Any], minor: int) -> tuple[int, int, int]:
    """(commission + IGV, FX spread, cross-border fee) in céntimos of *minor* céntimos
    of PEN, from a ``fees`` table, each part rounded half-up on its own: worked out
    here with Decimal, not by pasarela."""
    amount = Decimal(minor) / 100
    fixed = Decimal(table["fixed"].split()[1]) if "fixed" in table else Decimal(0)
    commission = (amount * Decimal(table.get("percent", "0")) / 100 + fixed).quantize(
        CENT, ROUND_HALF_UP)
    igv = (commission * Decimal("0.18")).quantize(CENT, ROUND_HALF_UP) if table.get(
        "igv") else Decimal(0)
    abroad = table.get("settlement_currency", "PEN") != "PEN"
    fx = (amount * Decimal(table.get("fx_spread", "0")) / 100).quantize(
        CENT, ROUND_HALF_UP) if abroad else Decimal(0)
    cross = (amount * Decimal(table.get("cross_border", "0")) / 100).quantize(
        CENT, ROUND_HALF_UP)
    return int((commission + igv) * 100), int(fx * 100), int(cross * 100)


def route_of(config: dict[str, Any], method: str) -> str:
    """The account a routing file's first matching rule uses first for *method*."""
    for rule in config["routes"]:
        if rule.get("when", {}).get("method", method) == method:
            return str(rule["use"][0])
    raise AssertionError(f"no rule for {method}")


def check_the_cash_routes(out: Path) -> None:
    """The comparison's figures, per route, against the routing files' fee tables
    applied to the paid orders of the checkout's store (read with sqlite3)."""
    comparison = json.loads((out / "costs-what-if.json").read_text(encoding="utf-8"))[
        "comparison"]
    with sqlite3.connect(out / "pasarela.db") as db:
        paid = db.execute("SELECT provider, method, amount_minor FROM payments WHERE "
                          "status IN (?, ?, ?) AND \"order\" IS NOT NULL", PAID).fetchall()
    assert len(paid) == comparison["orders"] == 6
    assert sum(1 for _, method, _ in paid if method == "cash") == 2
    demo = Path(__file__).resolve().parents[1] / "demo"
    files = {"current routing": None, "PagoEfectivo direct": "routes-direct.toml",
             "through dLocal": "routes-dlocal.toml",
             "through Mercado Pago": "routes-mercadopago.toml"}
    shop = tomllib.loads((demo / "routes-direct.toml").read_text(encoding="utf-8"))
    assert [r["name"] for r in comparison["routes"]] == list(files)
    totals = {}
    for route, name in zip(comparison["routes"], files.values(), strict=True):
        config = shop if name is None else tomllib.loads(
            (demo / name).read_text(encoding="utf-8"))
        fees = fx = cross = volume = 0
        for provider, method, minor in paid:
            account = provider if name is None else route_of(config, method)
            parts = fee_parts(config["providers"][account]["fees"], minor)
            fees, fx, cross, volume = (fees + parts[0], fx + parts[1], cross + parts[2],
                                       volume + minor)
        assert route["orders"] == 6, route
        assert route["unroutable"] == 0, route
        assert route["volume"]["PEN"]["minor"] == volume
        assert (route["fees"]["PEN"]["minor"], route["fx_spread"]["PEN"]["minor"],
                route["cross_border"]["PEN"]["minor"]) == (fees, fx, cross), route["name"]
        total = fees + fx + cross
        assert route["total"]["PEN"]["minor"] == total
        rate = (Decimal(total) * 100 / volume).quantize(Decimal("0.001"), ROUND_HALF_UP)
        assert route["effective_rate"]["PEN"] == f"{rate}%"
        totals[route["name"]] = total
    through = comparison["routes"][2]
    assert through["fx_spread"]["PEN"]["minor"] > 0  # dLocal's two lines
    assert through["cross_border"]["PEN"]["minor"] > 0
    assert totals["current routing"] == totals["PagoEfectivo direct"]
    assert comparison["cheapest"]["PEN"] == min(totals, key=lambda n: (totals[n],
                                                                      list(files).index(n)))
