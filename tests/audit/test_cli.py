"""``pasarela audit`` end to end on SQLite and PostgreSQL: a realistic flow through
the API (create, a webhook, a batch of webhooks, a refund, an erasure) verifies; a
row edited behind the store's back is named and the command exits 1; an exported
head is checked with its public key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.engine.audit import new_signing_key
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store import schema as t
from pasarela.testing.fake import FakeGateway, FakePlugin

from .conftest import new_exchange


def _config(tmp_path: Path, store_url: str, extra: str = "") -> Path:
    Store(store_url, upgrade=True).close()
    path = tmp_path / "pasarela.toml"
    path.write_text(f"""
[store]
url = "{store_url}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
max_retries = 0
{extra}
""", encoding="utf-8")
    return path


def _run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args], env=env)
    return result.exit_code, result.output


def _trail(config: Path) -> list[str]:
    """Three payments: one paid by a webhook and refunded in part, two paid by one
    batch of webhooks; the customer's data in every request."""
    gateway = FakeGateway()
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    ids = []
    with Pasarela(str(config), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport()) as p:
        paid = []
        for n in range(3):
            payment = p.pay(Order(reference=f"pedido-{n}", amount=Money.of("149.90", "PEN"),
                                  description="Audífonos", customer=customer),
                            method="cash", idempotency_key=f"key-{n}")
            paid.append(payment)
            ids.append(payment.id)
        headers, body = gateway.settle(paid[0].provider_reference or "")
        assert p.handle_webhook("fake", headers, body).status_code == 200
        p.handle_webhooks([("fake", *gateway.settle(x.provider_reference or ""))
                           for x in paid[1:]])
        p.refund(paid[0].id, Money.of("50.00", "PEN"), reason="talla equivocada")
    return ids


def _verify(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, out = _run(config, "audit", "verify", *args, "--json")
    return code, json.loads(out)


def test_a_realistic_trail_verifies_and_an_edit_is_named(tmp_path: Path,
                                                         store_url: str) -> None:
    config = _config(tmp_path, store_url)
    ids = _trail(config)
    code, report = _verify(config)
    assert code == 0, report
    assert report["ok"], report
    assert report["payments"] == 3
    assert report["checked"] >= 3 * 4
    with Store(store_url) as store:
        kinds = [r.kind for r in store.chain_records(ids[0])]
        assert {"exchange", "transition", "delivery"} <= set(kinds)
    code, out = _run(config, "audit", "verify")
    assert code == 0
    assert "verified" in out
    # The refund's exchange gets a forged status, with raw SQL.
    with Store(store_url) as store, store.engine.begin() as conn:
        target = conn.execute(sa.select(sa.func.max(t.exchanges.c.id))
                              .where(t.exchanges.c.payment_id == ids[0])).scalar_one()
        conn.execute(sa.update(t.exchanges).where(t.exchanges.c.id == target)
                     .values(status_code=500))
    code, report = _verify(config)
    assert code == 1
    assert not report["ok"]
    bad = report["first_bad"]
    assert (bad["kind"], bad["record_id"], bad["payment_id"]) == ("exchange", target, ids[0])
    assert report["reason"].startswith("content:")
    code, out = _run(config, "audit", "verify", "--payment", ids[0])
    assert code == 1
    assert f"exchange {target} of payment {ids[0]}" in " ".join(out.split())
    assert _verify(config, "--payment", ids[1]) == (0, _verify(config, "--payment",
                                                               ids[1])[1])
    assert _verify(config, "--payment", ids[1])[1]["ok"]


def test_erasure_keeps_verify_green(tmp_path: Path, store_url: str) -> None:
    config = _config(tmp_path, store_url)
    ids = _trail(config)
    with Store(store_url) as store:  # a provider that is sent the customer's email
        store.record_exchanges([new_exchange(ids[0], operation="get", request_body=(
            '{"email": "rosa@example.pe", "telefono": "987654321"}'))])
    code, _ = _run(config, "customers", "forget", "pedido-0")
    assert code == 0
    with Store(store_url) as store, store.engine.connect() as conn:
        bodies = " ".join(conn.execute(sa.select(t.exchanges.c.request_body)
                                       .where(t.exchanges.c.payment_id == ids[0])).scalars())
    assert "rosa@example.pe" not in bodies
    assert "[erased]" in bodies
    code, report = _verify(config)
    assert code == 0, report
    assert report["ok"], report
    # The erasure is a record of the chain; what it kept is still covered.
    with Store(store_url) as store:
        last = store.chain_records(ids[0])[-1]
        assert last.kind == "transition"
        assert last.ok
        with store.engine.begin() as conn:
            conn.execute(sa.update(t.exchanges).where(t.exchanges.c.payment_id == ids[0])
                         .values(duration_ms=1.0))
    code, report = _verify(config, "--payment", ids[0])
    assert code == 1
    assert report["first_bad"]["kind"] == "exchange"


def test_an_exported_signed_head_is_checked(tmp_path: Path, store_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = new_signing_key()
    monkeypatch.setenv("AUDIT_KEY", private)
    config = _config(tmp_path, store_url, '[audit]\nsigning_key = "env:AUDIT_KEY"\n')
    _trail(config)
    out_file = tmp_path / "head.json"
    code, out = _run(config, "audit", "head", "--sign", "--out", str(out_file))
    assert code == 0, out
    document = json.loads(out_file.read_text(encoding="utf-8"))
    assert document["signature"]
    assert document["public_key"] == public
    assert document["seq"] == 1
    code, out = _run(config, "audit", "check", str(out_file), "--public-key", public)
    assert code == 0
    assert "holds" in out
    document["count"] += 1
    out_file.write_text(json.dumps(document), encoding="utf-8")
    code, out = _run(config, "audit", "check", str(out_file), "--public-key", public)
    assert code == 1
    assert "altered" in out
    # Standard output, and the head of the same store again (nothing new: the same).
    code, out = _run(config, "audit", "head")
    assert code == 0
    assert json.loads(out)["seq"] == 1


def test_head_sign_without_a_key_fails(tmp_path: Path, sqlite_url: str) -> None:
    config = _config(tmp_path, sqlite_url)
    _trail(config)
    code, out = _run(config, "audit", "head", "--sign")
    assert code == 1
    assert "signing_key" in out


def test_merchant_scope(tmp_path: Path, sqlite_url: str) -> None:
    config = _config(tmp_path, sqlite_url)
    _trail(config)
    code, out = _run(config, "--merchant", "nadie", "audit", "verify")
    assert code == 1
    assert "nadie" in out
    code, out = _run(config, "--merchant", "nadie", "audit", "seal")
    assert code == 2
    assert "--merchant" in out


def test_usage(tmp_path: Path, sqlite_url: str) -> None:
    config = _config(tmp_path, sqlite_url)
    code, out = _run(config, "audit", "verify", "--payment", "x", "--all")
    assert code == 2
    code, out = _run(config, "audit", "new-key")
    assert code == 0
    assert out.startswith("private: ")
