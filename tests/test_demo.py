"""`make demo` is the main job: it must run the whole checkout and end in the expected
states (the script itself checks them and exits non-zero otherwise). The demo runs once
for this module; its audit trail and each checkout payment's evidence bundle are then
checked against the store it leaves (issue 24's "done when")."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pasarela.cli import main
from pasarela.engine.evidence import LANGUAGES, archive_names, translator
from pasarela.logs import mask_email, mask_phone
from pasarela.store import Store
from pasarela.store import schema as t
from pasarela.store.reconcile_schema import settlement_lines
from tests.evidence.conftest import open_bundle
from tests.evidence.test_bundle import same_moment


ROOT = Path(__file__).resolve().parents[1]


@attrs.frozen
class Demo:
    out: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    cwd = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, str(ROOT / "demo" / "checkout.py")], cwd=cwd,
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Demo(cwd / "demo-out", result.stdout, result.stderr)


def test_demo_checkout_runs_end_to_end(demo: Demo) -> None:
    out, tmp_out = demo.stdout, demo.out
    for expected in ("CIP", "Yape", "Plin", "partially_refunded", "expired", "unknown",
                     "review the late payment of pedido-1048",
                     "payment_transitions_total{merchant=,method=cash",
                     "release the stock of pedido-1046", "Two merchants on one server",
                     "the other's"):
        assert expected in out
    assert (tmp_out / "pasarela.db").exists()
    assert (tmp_out / "merchants.db").exists()
    assert "shows the other's" not in out
    assert (tmp_out / "cip-qr.svg").read_text().startswith("<svg")
    assert "webhook_rejected" not in out + demo.stderr
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
    check_the_cash_routes(tmp_out)


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


# --- the audit trail and the evidence bundles (issue 24) -------------------------------


def verify(db: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    config = tmp_path / f"verify-{db.stem}.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db.as_posix()}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "audit", "verify", "--all",
                                       *args])
    return result.exit_code, result.output


def test_the_demo_says_its_stores_verify_and_writes_a_bundle_per_payment(demo: Demo) -> None:
    act = demo.stdout[demo.stdout.index("11. The audit trail"):]
    stores = sorted(demo.out.glob("*.db"))
    assert len(stores) >= 2
    assert act.count("audit verify --all") == len(stores)
    assert act.count(" record(s) of ") == len(stores)  # each store's "ok N record(s) of"
    assert "does not match" not in act
    with Store(f"sqlite:///{demo.out / 'pasarela.db'}") as store, \
            store.engine.connect() as conn:
        ids = set(conn.execute(sa.select(t.payments.c.id)).scalars())
    assert len(ids) == 7
    assert {p.stem for p in (demo.out / "evidence").glob("*.zip")} == ids


def test_every_demo_store_verifies_and_a_planted_edit_is_named(demo: Demo,
                                                               tmp_path: Path) -> None:
    for db in sorted(demo.out.glob("*.db")):
        code, output = verify(db, tmp_path, "--json")
        report = json.loads(output)
        assert code == 0, (db.name, report)
        assert report["ok"] is True
        assert report["checked"] > 0
        assert report["unchained"] == 0
    planted = tmp_path / "planted.db"  # a copy: the bundles' test reads the demo's own
    shutil.copy(demo.out / "pasarela.db", planted)
    with sqlite3.connect(planted) as db:
        exchange, payment = db.execute(
            "SELECT id, payment_id FROM exchanges WHERE payment_id IS NOT NULL AND "
            "operation = 'create' ORDER BY id LIMIT 1").fetchone()
        db.execute("UPDATE exchanges SET status_code = 599 WHERE id = ?", (exchange,))
    code, output = verify(planted, tmp_path, "--json")
    report = json.loads(output)
    assert code == 1
    assert report["ok"] is False
    bad = report["first_bad"]
    assert (bad["kind"], bad["record_id"], bad["payment_id"]) == ("exchange", exchange,
                                                                  payment)
    code, output = verify(planted, tmp_path)
    assert code == 1
    assert f"exchange {exchange} of payment {payment}" in " ".join(output.split())


def rows(store: Store, query: sa.Select[Any]) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def check_bundle(store: Store, payment_id: str, members: dict[str, bytes]) -> dict[str, Any]:
    """Every part of one bundle against *store*; the bundle's JSON."""
    assert sorted(members) == sorted(archive_names())
    manifest = json.loads(members["manifest.json"])
    assert manifest["payment_id"] == payment_id
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(members[name]).hexdigest() == digest, name
    doc: dict[str, Any] = json.loads(members["evidence.json"])
    payment = store.get_payment(payment_id, history=True)
    exchanges = store.exchanges_for(payment_id)
    refunds = store.refunds_for(payment_id)
    deliveries = rows(store, sa.select(t.webhook_deliveries)
                      .where(t.webhook_deliveries.c.payment_id == payment_id)
                      .order_by(t.webhook_deliveries.c.id))
    decisions = rows(store, sa.select(t.routing_decisions)
                     .where(t.routing_decisions.c.payment_id == payment_id)
                     .order_by(t.routing_decisions.c.id))
    lines = rows(store, sa.select(settlement_lines)
                 .where(settlement_lines.c.payment_id == payment_id))

    # the payment, its order and its customer (masked; no raw value anywhere)
    shown = doc["payment"]
    assert (shown["id"], shown["order_reference"], shown["status"], shown["provider"],
            shown["method"], shown["version"]) == (
        payment.id, payment.order_reference, payment.status.value, payment.provider,
        payment.method.value, payment.version)
    assert shown["amount"] == {"minor": payment.amount.minor,
                               "currency": payment.amount.currency}
    same_moment(shown["created_at"], payment.created_at)
    same_moment(shown["updated_at"], payment.updated_at)
    order = payment.order
    assert order is not None
    assert customer_checked(doc, order.customer, members)
    assert doc["order"]["reference"] == order.reference
    assert doc["order"]["amount"]["minor"] == order.amount.minor

    # every exchange, as stored, with UTC and Lima times
    assert exchanges
    assert [x["id"] for x in doc["exchanges"]] == [x["id"] for x in exchanges]
    for shown_x, kept in zip(doc["exchanges"], exchanges, strict=True):
        for key in ("operation", "attempt", "method", "status_code", "error",
                    "duration_ms"):
            assert shown_x[key] == kept[key], key
        same_moment(shown_x["started_at"], kept["started_at"])

    # provider references: the payment's, its refunds', and each one found named where
    # the store has it (a response body, or a notification's event id)
    refs = doc["references"]
    assert refs["provider_reference"] == payment.provider_reference
    assert refs["refunds"] == {r.id: r.provider_reference for r in refunds}
    kept_text = json.dumps([x["response_body"] for x in exchanges]) + json.dumps(
        [d["event_id"] for d in deliveries])
    for values in refs["more"].values():
        assert all(value in kept_text for value in values), refs

    # transitions with their causes
    assert len(doc["transitions"]) == len(payment.history) >= 1
    for step, kept_t in zip(doc["transitions"], payment.history, strict=True):
        assert (step["seq"], step["from"], step["to"], step["cause"], step["applied"],
                step["reason"]) == (kept_t.seq, kept_t.source.value, kept_t.target.value,
                                    kept_t.cause.value, kept_t.applied, kept_t.reason)
        same_moment(step["at"], kept_t.at)

    # webhook deliveries with their verdicts
    assert [(d["id"], d["event_id"], d["outcome"]) for d in doc["deliveries"]] == [
        (d["id"], d["event_id"], d["outcome"]) for d in deliveries]
    for shown_d, kept_d in zip(doc["deliveries"], deliveries, strict=True):
        same_moment(shown_d["received_at"], kept_d["received_at"])
        assert shown_d["verification"] == ("rejected" if kept_d["outcome"] == "rejected"
                                           else "passed")

    # the routing decision
    assert decisions
    assert doc["routing"]["decision"] == json.loads(json.dumps(dict(payment.routing)))
    assert [d["decision"] for d in doc["routing"]["recorded"]] == [
        d["decision"] for d in decisions]

    # the reconciliation lines that matched it
    assert [(x["run_key"], x["line_no"], x["amount"]["minor"], x["category"])
            for x in doc["reconciliation"]["lines"]] == [
        (x["run_key"], x["line_no"], x["amount_minor"], x["category"]) for x in lines]

    # the chain proof of each record, the store's
    records = store.chain_records(payment_id)
    assert doc["chain"]["available"] is True
    assert doc["chain"]["verified"]["ok"] is store.verify_chain(payment_id=payment_id).ok
    assert doc["chain"]["verified"]["ok"] is True
    assert [(r["kind"], r["record_id"], r["prev_hash"], r["hash"])
            for r in doc["chain"]["records"]] == [
        (r.kind, r.record_id, r.prev_hash, r.hash) for r in records]
    proofs = {(r.kind, r.record_id): r.hash for r in records}
    for kind, part in (("exchange", "exchanges"), ("transition", "transitions"),
                       ("delivery", "deliveries")):
        for item in doc[part]:
            assert item["chain"]["hash"] == proofs[(kind, item["id"])], (kind, item["id"])

    # the summaries, HTML and text, in each language
    titles = set()
    for lang in LANGUAGES:
        _ = translator(lang).gettext
        text = members[f"summary.{lang}.txt"].decode()
        page = members[f"summary.{lang}.html"].decode()
        title = _("Evidence for payment {id}").format(id=payment_id)
        titles.add(title)
        assert text.startswith(title)
        assert f"<title>{title}</title>" in page
        assert f'<html lang="{lang.replace("_", "-")}">' in page
        for heading in ("Transitions", "Provider exchanges (redacted)"):
            assert _(heading) in text
            assert _(heading) in page
        for fact in (payment.order_reference, str(payment.provider_reference)):
            assert fact in text
            assert fact in page
    assert len(titles) == len(LANGUAGES)
    return doc


def customer_checked(doc: dict[str, Any], customer: Any, members: dict[str, bytes]) -> bool:
    """The bundle's customer is the store's, masked, and no member holds a raw value."""
    assert customer is not None
    assert doc["customer"]["email"] == mask_email(customer.email)
    assert doc["customer"]["phone"] == mask_phone(customer.phone)
    assert doc["customer"]["document"][1].endswith(customer.document.number[-3:])
    raws = (customer.last_name, customer.email, customer.national_phone,
            customer.document.number)
    for name, blob in members.items():
        for raw in raws:
            assert raw.encode() not in blob, (name, raw)
    return True


def test_each_demo_payments_bundle_holds_every_part_of_the_store(demo: Demo) -> None:
    docs = []
    with Store(f"sqlite:///{demo.out / 'pasarela.db'}") as store:
        with store.engine.connect() as conn:
            ids = list(conn.execute(sa.select(t.payments.c.id).order_by(t.payments.c.id))
                       .scalars())
        assert len(ids) == 7
        for payment_id in ids:
            data = (demo.out / "evidence" / f"{payment_id}.zip").read_bytes()
            docs.append(check_bundle(store, payment_id, open_bundle(data)))
    # across the checkout, every kind of part is there to check: each provider's
    # reference, refunds, webhook deliveries, matched settlement lines
    names = {d["payment"]["provider"]: d["references"]["name"] for d in docs}
    assert names == {"pagoefectivo": "CIP", "yape": "charge id", "stripe": "PaymentIntent"}
    more = {key for d in docs for key in d["references"]["more"]}
    assert {"operation_number", "charge_id"} <= more
    assert any(d["references"]["refunds"] for d in docs)
    assert sum(len(d["deliveries"]) for d in docs) >= 4
    matched = [x for d in docs for x in d["reconciliation"]["lines"]]
    paid_cash = [d for d in docs if d["payment"]["provider"] == "pagoefectivo"
                 and d["payment"]["status"] == "succeeded"]
    assert len(matched) == len(paid_cash) == 2
    assert {x["category"] for x in matched} == {"matched"}
