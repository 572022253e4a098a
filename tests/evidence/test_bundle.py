"""``pasarela payments evidence ID``: the archive holds every part of the payment's
trail, each checked against what the store holds (on SQLite and PostgreSQL), the
summaries in three languages, and no personal value unmasked."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po

from pasarela.engine.evidence import (
    LANGUAGES,
    LOCALE_DIR,
    archive_names,
    personal_forms,
    translator,
)
from pasarela.logs import mask_email, mask_phone
from pasarela.store.personal import ERASED
from pasarela.store.reconcile_schema import settlement_lines
from pasarela.store.schema import exchanges as exchanges_table
from pasarela.store.schema import routing_decisions, webhook_deliveries
from pasarela.store.sealing import new_key
from tests.evidence.conftest import CUSTOMER, RAW, Setup, bundle_of, make_setup, open_bundle


def utc(value: Any) -> datetime:
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def same_moment(stamp: dict[str, str], expected: datetime) -> None:
    at_utc = datetime.fromisoformat(stamp["utc"])
    at_lima = datetime.fromisoformat(stamp["lima"])
    assert at_utc == utc(expected)
    assert at_lima == utc(expected)
    assert at_utc.utcoffset() == timedelta(0)
    assert at_lima.utcoffset() == timedelta(hours=-5)


def masked(text: str) -> str:
    """*text* with the customer's values in their masked forms."""
    for form, mask in personal_forms(CUSTOMER):
        text = text.replace(form, mask)
    return text


def rows(setup: Setup, query: sa.Select[Any]) -> list[dict[str, Any]]:
    with setup.app() as p, p.store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def test_the_archive_holds_its_files_and_their_digests(setup: Setup, bundle: Any) -> None:
    members, _doc, _ = bundle(setup.paid.id)
    assert sorted(members) == sorted(archive_names())
    manifest = json.loads(members["manifest.json"])
    assert manifest["payment_id"] == setup.paid.id
    assert set(manifest["files"]) == set(members) - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(members[name]).hexdigest() == digest


def test_every_part_matches_the_store(setup: Setup, bundle: Any) -> None:
    pid = setup.paid.id
    _, doc, _ = bundle(pid)
    with setup.app() as p:
        payment = p.store.get_payment(pid, history=True)
        exchanges = p.store.exchanges_for(pid)
        refunds = p.store.refunds_for(pid)
    deliveries = rows(setup, sa.select(webhook_deliveries)
                      .where(webhook_deliveries.c.payment_id == pid)
                      .order_by(webhook_deliveries.c.id))
    decisions = rows(setup, sa.select(routing_decisions)
                     .where(routing_decisions.c.payment_id == pid)
                     .order_by(routing_decisions.c.id))
    lines = rows(setup, sa.select(settlement_lines).where(settlement_lines.c.payment_id == pid))

    # the payment and its order
    shown = doc["payment"]
    assert (shown["id"], shown["order_reference"], shown["status"], shown["provider"],
            shown["method"], shown["version"]) == (
        payment.id, payment.order_reference, payment.status.value, payment.provider,
        payment.method.value, payment.version)
    assert shown["amount"] == {"minor": payment.amount.minor, "currency": "PEN"}
    assert shown["refunded"]["minor"] == payment.refunded_amount.minor > 0
    same_moment(shown["created_at"], payment.created_at)
    same_moment(shown["updated_at"], payment.updated_at)
    assert doc["order"]["reference"] == payment.order_reference
    assert doc["order"]["amount"]["minor"] == payment.amount.minor

    # provider references
    assert doc["references"]["provider_reference"] == payment.provider_reference
    assert doc["references"]["refunds"] == {r.id: r.provider_reference for r in refunds}

    # transitions, with their causes and times
    assert len(doc["transitions"]) == len(payment.history) >= 3
    for step, kept in zip(doc["transitions"], payment.history, strict=True):
        assert (step["seq"], step["from"], step["to"], step["cause"], step["applied"],
                step["reason"], step["event_id"]) == (
            kept.seq, kept.source.value, kept.target.value, kept.cause.value, kept.applied,
            kept.reason, kept.event_id)
        same_moment(step["at"], kept.at)
    assert {"api", "webhook"} <= {s["cause"] for s in doc["transitions"]}

    # exchanges: every one, as stored (personal values masked, see the masking test)
    assert [x["id"] for x in doc["exchanges"]] == [x["id"] for x in exchanges]
    assert {x["operation"] for x in doc["exchanges"]} >= {"create", "refund"}
    for shown_x, kept_x in zip(doc["exchanges"], exchanges, strict=True):
        for key in ("operation", "attempt", "method", "url", "status_code", "error",
                    "duration_ms", "response_body", "response_headers"):
            assert shown_x[key] == kept_x[key], key
        same_moment(shown_x["started_at"], kept_x["started_at"])
        assert shown_x["request_body"] == masked(kept_x["request_body"])
        sent, kept_body = json.loads(shown_x["request_body"]), json.loads(kept_x["request_body"])
        assert set(sent) == set(kept_body)
        if "customer" in kept_body:
            assert sent["customer"]["email"] == mask_email(CUSTOMER.email or "")
            assert sent["customer"]["phone"] == mask_phone(CUSTOMER.phone or "")
    same_moment(doc["last_exchange"]["started_at"], exchanges[-1]["started_at"])

    # webhook deliveries and their verdicts
    assert [(d["id"], d["event_id"], d["event_type"], d["outcome"]) for d in doc["deliveries"]
            ] == [(d["id"], d["event_id"], d["event_type"], d["outcome"]) for d in deliveries]
    assert deliveries, "the webhook was recorded"
    for shown_d, kept_d in zip(doc["deliveries"], deliveries, strict=True):
        same_moment(shown_d["received_at"], kept_d["received_at"])
        assert shown_d["verification"] == ("rejected" if kept_d["outcome"] == "rejected"
                                           else "passed")

    # refunds
    assert [(r["id"], r["amount"]["minor"], r["status"], r["provider_reference"])
            for r in doc["refunds"]] == [(r.id, r.amount.minor, r.status.value,
                                          r.provider_reference) for r in refunds]

    # the routing decision, as the payment keeps it and as recorded
    assert doc["routing"]["decision"] == json.loads(json.dumps(dict(payment.routing)))
    assert [d["decision"] for d in doc["routing"]["recorded"]] == [d["decision"]
                                                                   for d in decisions]
    assert decisions

    # the reconciliation lines that matched it
    assert lines, "the settlement line matched the payment"
    assert [(x["run_key"], x["line_no"], x["amount"]["minor"], x["fee"]["minor"],
             x["category"], x["matched_by"]) for x in doc["reconciliation"]["lines"]] == [
        (x["run_key"], x["line_no"], x["amount_minor"], x["fee_minor"], x["category"],
         x["matched_by"]) for x in lines]
    same_moment(doc["reconciliation"]["lines"][0]["occurred_at"], lines[0]["occurred_at"])


def test_an_error_exchange_is_kept_with_the_providers_error(setup: Setup, bundle: Any) -> None:
    for payment in (setup.retried, setup.refused):
        _, doc, _ = bundle(payment.id)
        with setup.app() as p:
            exchanges = p.store.exchanges_for(payment.id)
            kept = p.store.get_payment(payment.id)
        failed = [x for x in exchanges if (x["status_code"] or 0) >= 400]
        assert failed
        by_id = {x["id"]: x for x in doc["exchanges"]}
        for exchange in failed:
            error = json.loads(exchange["response_body"])["error"]
            assert by_id[exchange["id"]]["status_code"] == exchange["status_code"]
            assert by_id[exchange["id"]]["provider_error"] == {
                "code": error["code"], "message": error["message"],
                "status_code": exchange["status_code"]}
        assert doc["payment"]["status"] == kept.status.value
    _, doc, _ = bundle(setup.refused.id)
    [last_failed] = [x for x in exchanges if (x["status_code"] or 0) >= 400]
    assert doc["last_provider_error"]["message"] == json.loads(
        last_failed["response_body"])["error"]["message"]


def test_the_summaries_are_in_three_languages(setup: Setup, bundle: Any) -> None:
    members, _doc, _ = bundle(setup.paid.id)
    titles = {}
    for lang in LANGUAGES:
        text = members[f"summary.{lang}.txt"].decode()
        page = members[f"summary.{lang}.html"].decode()
        title = translator(lang).gettext("Evidence for payment {id}").format(id=setup.paid.id)
        titles[lang] = title
        assert text.startswith(title)
        assert f"<title>{title}</title>" in page
        assert f'<html lang="{lang.replace("_", "-")}">' in page
        for heading in ("Transitions", "Webhook deliveries", "Refunds",
                        "Reconciliation lines", "Provider exchanges (redacted)"):
            assert translator(lang).gettext(heading) in text
        assert str(setup.paid.provider_reference) in text
    assert len(set(titles.values())) == 3, titles  # translated, not English three times
    assert any("\u4e00" <= ch <= "\u9fff" for ch in titles["zh_CN"])


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_message_of_the_catalogs_is_translated(lang: str) -> None:
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "evidence.po", "rb") as fh:
        catalog = read_po(fh, locale=lang)
    with open(LOCALE_DIR / "en" / "LC_MESSAGES" / "evidence.po", "rb") as fh:
        english = read_po(fh, locale="en")
    ids = {m.id for m in english if m.id}
    assert ids == {m.id for m in catalog if m.id}
    assert all(m.string for m in catalog if m.id), [m.id for m in catalog if not m.string]


def _everything(members: dict[str, bytes], data: bytes) -> list[bytes]:
    return [data, *members.values()]


def test_personal_data_is_masked_everywhere_in_the_archive(setup: Setup, bundle: Any) -> None:
    with setup.app() as p:
        stored = json.dumps(p.store.exchanges_for(setup.paid.id), default=str)
    assert CUSTOMER.email in stored  # the test means something
    assert "45678912" in stored
    for payment in (setup.paid, setup.retried, setup.refused):
        members, doc, data = bundle(payment.id)
        for blob in _everything(members, data):
            for raw in RAW:
                assert raw.encode() not in blob, (payment.id, raw)
        assert doc["customer"] == {"first_name": "R***", "last_name": "Q***",
                                   "email": mask_email(CUSTOMER.email or ""),
                                   "phone": mask_phone(CUSTOMER.phone or ""),
                                   "document": ["DNI", "****912"]}
        assert doc["personal_data"]["sealed_in_store"] is False


def test_a_sealed_store_is_said_and_still_masked(tmp_path: Path, store_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASARELA_DATA_KEY", new_key())
    sealed = make_setup(tmp_path, store_url, monkeypatch, ("env:PASARELA_DATA_KEY",))
    members, doc, data = bundle_of(sealed, sealed.paid.id, tmp_path)
    assert doc["personal_data"]["sealed_in_store"] is True
    assert doc["customer"]["email"] == mask_email(CUSTOMER.email or "")
    for blob in _everything(members, data):
        for raw in RAW:
            assert raw.encode() not in blob, raw


def test_the_bundle_says_what_was_erased_and_when(setup: Setup, bundle: Any) -> None:
    result = setup.run("customers", "forget", "pedido-1042", "--json")
    assert result.exit_code == 0, result.output
    members, doc, data = bundle(setup.paid.id)
    with setup.app() as p:
        history = p.store.get_payment(setup.paid.id, history=True).history
    [erasure] = [t for t in history if t.reason == ERASED]
    personal = doc["personal_data"]
    assert personal["erased"] is True
    [said] = personal["erasures"]
    same_moment(said["at"], erasure.at)
    assert said["transition_seq"] == erasure.seq
    assert doc["customer"] is None
    assert doc["payment"]["amount"]["minor"] == setup.paid.amount.minor  # the books stay
    for lang in LANGUAGES:
        text = members[f"summary.{lang}.txt"].decode()
        assert translator(lang).gettext("Personal data was erased on request on {at}."
                                        ).split("{at}")[0] in text
    for blob in _everything(members, data):
        for raw in RAW:
            assert raw.encode() not in blob, raw


def test_the_chain_proof_is_the_stores(setup: Setup, bundle: Any) -> None:
    _, doc, _ = bundle(setup.paid.id)
    with setup.app() as p:
        store = p.store
        if not hasattr(store, "chain_records"):
            # The audit chain has not landed in this store: the bundle says so, and no
            # record claims a proof.
            assert doc["chain"]["available"] is False
            assert all(x["chain"] is None for x in doc["exchanges"])
            return
        records = store.chain_records(setup.paid.id)
        report = store.verify_chain(payment_id=setup.paid.id)
    chain = doc["chain"]
    assert chain["available"] is True
    assert chain["verified"]["ok"] is report.ok is True
    assert [(r["kind"], r["record_id"], r["prev_hash"], r["hash"]) for r in chain["records"]
            ] == [(r.kind, r.record_id, r.prev_hash, r.hash) for r in records]
    proofs = {(r.kind, r.record_id): r.hash for r in records}
    for kind, part in (("exchange", "exchanges"), ("transition", "transitions"),
                       ("delivery", "deliveries")):
        for item in doc[part]:
            assert item["chain"]["hash"] == proofs[(kind, item["id"])]


def test_another_merchants_payment_is_not_found(setup: Setup, tmp_path: Path) -> None:
    refused = setup.run("payments", "evidence", setup.other.id, "--out",
                        str(tmp_path / "x.zip"))
    assert refused.exit_code == 1
    assert f"no payment {setup.other.id!r}" in refused.output
    assert not (tmp_path / "x.zip").exists()
    for args in (["--support"], ["--json"]):
        result = setup.run("payments", "evidence", setup.other.id, *args)
        assert result.exit_code == 1
        assert setup.other.id not in result.stdout
    theirs = setup.run("payments", "evidence", setup.paid.id, "--support", merchant="other")
    assert theirs.exit_code == 1
    assert f"no payment {setup.paid.id!r}" in theirs.output
    _, doc, _ = bundle_of(setup, setup.other.id, tmp_path, merchant="other")
    assert doc["merchant"] == "other"
    assert doc["payment"]["provider"] == "other.personal"


def test_dash_writes_the_zip_to_stdout_and_json_prints_the_record(setup: Setup,
                                                                  bundle: Any) -> None:
    result = setup.run("payments", "evidence", setup.paid.id, "--out", "-")
    assert result.exit_code == 0, result.output
    assert not Path("-").exists()
    with zipfile.ZipFile(io.BytesIO(result.stdout_bytes)) as zf:
        assert sorted(n.split("/", 1)[1] for n in zf.namelist()) == sorted(archive_names())
    printed = setup.run("payments", "evidence", setup.paid.id, "--json")
    assert printed.exit_code == 0, printed.output
    record = json.loads(printed.stdout)
    _, doc, _ = bundle(setup.paid.id)
    record.pop("generated_at")
    doc.pop("generated_at")
    assert record == doc


def test_support_and_out_together_is_a_usage_error(setup: Setup) -> None:
    result = setup.run("payments", "evidence", setup.paid.id, "--support", "--out", "x.zip")
    assert result.exit_code == 2
    assert result.output.startswith("error: ")


def test_an_edit_behind_the_stores_back_shows_in_the_proof(setup: Setup, bundle: Any) -> None:
    with setup.app() as p:
        if not hasattr(p.store, "chain_records"):
            _, doc, _ = bundle(setup.paid.id)
            assert doc["chain"]["available"] is False
            return
        first = p.store.exchanges_for(setup.paid.id)[0]
        with p.store.engine.begin() as conn:
            conn.execute(sa.update(exchanges_table).where(exchanges_table.c.id == first["id"])
                         .values(status_code=299))
    members, doc, _ = bundle(setup.paid.id)
    verified = doc["chain"]["verified"]
    assert verified["ok"] is False
    assert verified["first_bad"] == {"kind": "exchange", "record_id": first["id"]}
    [shown] = [x for x in doc["exchanges"] if x["id"] == first["id"]]
    assert shown["status_code"] == 299
    assert shown["chain"]["ok"] is False
    for lang in LANGUAGES:
        bad = translator(lang).gettext(
            "The chain does not verify: first bad record {record} ({reason}).")
        assert bad.split("{record}")[0] in members[f"summary.{lang}.txt"].decode()


def test_json_and_the_zip_cannot_both_be_stdout(setup: Setup, tmp_path: Path) -> None:
    result = setup.run("payments", "evidence", setup.paid.id, "--out", "-", "--json")
    assert result.exit_code == 2
    assert "standard output" in result.output
    written = setup.run("payments", "evidence", setup.paid.id, "--out",
                        str(tmp_path / "b.zip"), "--json")
    assert written.exit_code == 0, written.output
    assert json.loads(written.stdout)["payment"]["id"] == setup.paid.id
    assert open_bundle((tmp_path / "b.zip").read_bytes())["evidence.json"]
