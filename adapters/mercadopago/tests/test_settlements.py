"""Settlements from the release report: parsing, and ``pasarela reconcile --provider
mercadopago`` end to end against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from pasarela_mercadopago.api import parse_report

from pasarela.cli import main
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.testing.sandbox import ServedSandbox


REPORT = (
    "DATE;SOURCE_ID;EXTERNAL_REFERENCE;RECORD_TYPE;DESCRIPTION;NET_CREDIT_AMOUNT;"
    "NET_DEBIT_AMOUNT;GROSS_AMOUNT;MP_FEE_AMOUNT;FINANCING_FEE_AMOUNT;PAYMENT_METHOD\n"
    "2026-11-25T10:00:00.000-05:00;;;initial_available_balance;;0.00;0.00;0.00;0.00;0.00;\n"
    "2026-11-25T10:05:00.000-05:00;1320000001;pedido-1;release;payment;141.91;0.00;149.90;"
    "-7.99;0.00;visa\n"
    "2026-11-25T11:00:00.000-05:00;1320000001;pedido-1;release;refund;0.00;20.00;-20.00;"
    "0.00;0.00;visa\n"
    "2026-11-25T12:00:00.000-05:00;;;release;withdrawal;0.00;100.00;-100.00;0.00;0.00;\n"
)


def test_release_lines_of_payments_and_refunds_are_settlement_lines() -> None:
    lines = parse_report(REPORT.encode())
    assert [(n.line_no, n.provider_reference, n.order_reference, n.status, n.amount, n.fee)
            for n in lines] == [
        (1, "1320000001", "pedido-1", "approved", Money(14990, "PEN"), Money(799, "PEN")),
        (2, "1320000001", "pedido-1", "refunded", Money(2000, "PEN"), Money(0, "PEN")),
    ]
    assert lines[0].occurred_at == datetime(2026, 11, 25, 15, 5, tzinfo=UTC)
    # a comma-separated report (the configured separator) reads the same
    assert parse_report(REPORT.replace(";", ",").encode()) == lines


def _order(ref: str, amount: str) -> Order:
    return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Audífonos",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


def test_pasarela_reconcile_reads_the_release_report(
        served: ServedSandbox, pasarela_factory: Callable[..., Any], tmp_path: Path,
        card_token: Callable[..., str]) -> None:
    pasarela = pasarela_factory(served)
    card = pasarela.pay(_order("rec-1", "149.90"), method="card", provider="mercadopago",
                        idempotency_key="rec-1", token=card_token(),
                        payment_method_id="visa")
    assert card.status is Status.SUCCEEDED
    cash = pasarela.pay(_order("rec-2", "80.00"), method="cash", provider="mercadopago",
                        idempotency_key="rec-2")
    assert cash.status is Status.PENDING
    assert cash.next_action.type == "show_cash_code"
    paid = served.control("POST", f"/payments/{cash.provider_reference}/pay")
    assert paid.status_code == 200, paid.text
    pasarela.refund(card.id, Money.of("20.00", "PEN"), reason="requested_by_customer")
    store_url = pasarela.config.store.url
    pasarela.close()

    config = tmp_path / "pasarela.toml"
    table = served.settings()
    config.write_text(
        f'[store]\nurl = "{store_url}"\n\n[providers.mercadopago]\n'
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items()), "utf-8")
    now = datetime.now(UTC)
    since, until = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    result = CliRunner().invoke(main, [
        "--config", str(config), "reconcile", "--provider", "mercadopago", "--from", since,
        "--to", until, "--json", "-"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    counts = report["summary"]["counts"]
    # the card payment and its refund match, fees included
    assert counts.get("matched") == 2, json.dumps(report["differences"], indent=1)
    for category in ("missing_at_provider", "amount_mismatch", "fee_mismatch",
                     "status_mismatch"):
        assert counts.get(category, 0) == 0, (category, report)
    # the ticket paid at the agent (no webhook reached us) is healed from the report
    (healed,) = report["differences"]
    assert (healed["category"], healed["provider_reference"], healed["healed"]) == (
        "missing_in_books", cash.provider_reference, True)
    again = pasarela_factory(served, config={"store": {"url": store_url}})
    assert again.get(cash.id).status is Status.SUCCEEDED
    # the report was asked for once and downloaded
    assert len(served.sandbox.reports) == 1
