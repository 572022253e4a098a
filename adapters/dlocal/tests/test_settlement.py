"""dLocal's settlement report (CSV, by e-mail or SFTP) read with the mapping the adapter
ships: ``pasarela reconcile --provider dlocal --file REPORT.csv --mapping
pasarela_dlocal.SETTLEMENT_MAPPING`` matches its lines to the payments by dLocal's
transaction id, heals a payment whose notification never came, and says which line
matches no payment of ours."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pasarela_dlocal
from click.testing import CliRunner

from pasarela import Pasarela
from pasarela.cli import main
from pasarela.lifecycle import Status
from pasarela.reconcile.csv_import import ColumnMap
from pasarela.store import Store

from .conftest import make_order


#: The report's columns, as a published mapping of it lists them (see settlement.toml).
COLUMNS = ("TRANSACTION_ID", "DLOCAL_TRANSACTION_ID", "ROW_TYPE", "CREATION_DATE",
           "TRANSFER_DATE", "LOCAL_AMOUNT", "LOCAL_CURRENCY", "FX_RATE",
           "SETTLEMENT_CURRENCY", "GROSS_AMOUNT", "NET_AMOUNT", "FEE_AMOUNT")


def test_the_mapping_loads_and_names_the_report_columns() -> None:
    mapping = ColumnMap.load(pasarela_dlocal.SETTLEMENT_MAPPING)
    assert set(mapping.columns.values()) <= set(COLUMNS)
    assert mapping.columns["provider_reference"] == "DLOCAL_TRANSACTION_ID"
    assert mapping.columns["amount"] == "LOCAL_AMOUNT"
    assert "fee" not in mapping.columns  # FEE_AMOUNT is in the settlement currency


def test_a_settlement_report_reconciles_through_the_cli(served: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = tmp_path / "pasarela.toml"
    settings = {**served.settings(), "max_retries": 0}
    config.write_text(f'[store]\nurl = "{url}"\n[providers.dlocal]\n' + "".join(
        f"{key} = {json.dumps(value)}\n" for key, value in settings.items()), encoding="utf-8")
    with Pasarela(str(config), plugins=[pasarela_dlocal], load_entrypoints=False,
                  store=Store(url, upgrade=True)) as shop:
        notified = shop.pay(make_order(reference="pedido-1"), method="cash",
                            idempotency_key="k1")
        silent = shop.pay(make_order(reference="pedido-2"), method="cash",
                          idempotency_key="k2")
        served.control("POST", f"/payments/{notified.provider_reference}/pay")
        assert shop.sync(notified.id).status is Status.SUCCEEDED
        # paid at dLocal; its notification never reached us
        served.control("POST", f"/payments/{silent.provider_reference}/pay")
        assert shop.get(silent.id).status is Status.PENDING
    report = tmp_path / "acme_cross_border_report_20261202_060000.csv"
    with open(report, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for payment in (notified, silent):
            writer.writerow([payment.id, payment.provider_reference, "settlement",
                             payment.created_at.isoformat(), "2026-12-04T00:00:00+00:00",
                             "149.90", "PEN", "0.266845", "USD", "40.00", "38.04", "1.96"])
        writer.writerow(["01JNOTOURS", "D-4-unknown", "settlement", "2026-12-01T10:00:00Z",
                         "2026-12-04T00:00:00Z", "10.00", "PEN", "0.266845", "USD", "2.67",
                         "2.54", "0.13"])
    result = CliRunner().invoke(main, [
        "--config", str(config), "reconcile", "--provider", "dlocal", "--from", "2026-01-01",
        "--to", "2100-01-01", "--file", str(report), "--mapping",
        str(pasarela_dlocal.SETTLEMENT_MAPPING), "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 1, result.output  # one line matches nothing of ours
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["bad_line_count"] == 0
    counts = data["summary"]["counts"]
    assert counts["matched"] == 1  # the notified payment: the same amount, paid both sides
    assert data["summary"]["healed"] == 1
    by_reference = {d["provider_reference"]: d for d in data["differences"]}
    assert set(by_reference) == {silent.provider_reference, "D-4-unknown"}
    healed = by_reference[silent.provider_reference]  # paid there, pending here: healed
    assert (healed["category"], healed["payment_id"], healed["healed"]) == (
        "missing_in_books", silent.id, True)
    unknown = by_reference["D-4-unknown"]
    assert (unknown["category"], unknown["payment_id"]) == ("missing_in_books", None)
    with Pasarela(str(config), plugins=[pasarela_dlocal], load_entrypoints=False) as shop:
        assert shop.get(silent.id).status is Status.SUCCEEDED
