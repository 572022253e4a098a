"""`make demo` is the main job: it must run the whole checkout and end in the expected
states (the script itself checks them and exits non-zero otherwise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
