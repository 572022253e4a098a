"""The `pasarela` command: providers, config check, payments show, db upgrade."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.model import Order
from pasarela.money import Money
from pasarela.testing.fake import FakeGateway, FakePlugin


def write_config(tmp_path, body: str):
    path = tmp_path / "pasarela.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = """
[store]
url = "sqlite:///{db}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
expiry = "48h"
fees = {{ percent = "3.5", fixed = "PEN 0.50", igv = true }}
"""


def test_providers_lists_the_fake_from_config(tmp_path):
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "p.db"))
    result = CliRunner().invoke(main, ["--config", str(path), "providers"])
    assert result.exit_code == 0, result.output
    assert "fake" in result.output
    assert "Fake" in result.output  # the display name (rich may wrap it)


def test_config_check_ok(tmp_path):
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "p.db"))
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 provider" in result.output


def test_config_check_names_every_bad_path(tmp_path):
    path = write_config(tmp_path, """
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
timeout = "soon"
expiry = "forever"
api_keey = "x"
""")
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    for expected in ("providers.fake.timeout", "providers.fake.expiry",
                     "providers.fake.api_keey"):
        assert expected in result.output


def test_config_check_unknown_provider(tmp_path):
    path = write_config(tmp_path, "[providers.nope]\n")
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "nope" in result.output


def test_payments_show_history_and_redacted_exchanges(tmp_path):
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "p.db"))
    gateway = FakeGateway()
    with Pasarela(str(path), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport()) as p:
        payment = p.pay(Order(reference="o-1", amount=Money.of("10", "PEN")), method="card",
                        idempotency_key="k")
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "show", payment.id,
                                       "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] == "succeeded"
    assert [h["to"] for h in data["history"]] == ["succeeded"]
    assert data["exchanges"][0]["request_headers"]["authorization"] == "[redacted]"
    assert "fake_sk_test_123" not in result.output
    table = CliRunner().invoke(main, ["--config", str(path), "payments", "show", payment.id])
    assert "succeeded" in table.output


def test_payments_show_unknown_id(tmp_path):
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "p.db"))
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "show", "nope"])
    assert result.exit_code == 1
    assert "nope" in result.output


def test_db_upgrade(tmp_path):
    result = CliRunner().invoke(main, ["db", "upgrade", "--url", f"sqlite:///{tmp_path}/x.db"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.db").exists()


def test_a_missing_payment_names_the_store_it_was_looked_up_in(tmp_path):
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "p.db"))
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "show", "01NOPE"])
    assert result.exit_code == 1
    assert "no payment '01NOPE'" in result.output
    assert str(tmp_path / "p.db") in result.output


def test_error_text_keeps_its_brackets(tmp_path):
    """Console markup never eats a message: ``[a-z]`` and ``[/]`` print as they are."""
    path = write_config(tmp_path, '[plugins]\nmodules = ["pasarela.testing.fake"]\n'
                                  '[providers.fake]\n[providers."bad[name]"]\n')
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert "providers.bad[name]: provider names match ^[a-z][a-z0-9_]*$" in result.output


def test_payments_show_network_charge_and_rate(tmp_path):
    from decimal import Decimal

    path = write_config(tmp_path, GOOD.format(db=tmp_path / "p.db"))
    gateway = FakeGateway()
    with Pasarela(str(path), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=gateway.transport()) as p:
        payment = p.pay(Order(reference="o-2", amount=Money.of("149.90", "PEN")),
                        method="wallet", network="yape", idempotency_key="k2")
        p.store.update_payment(payment.id, expected_version=payment.version,
                               charged=Money.of("40.00", "USD"), fx_rate=Decimal("0.266845"))
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "show", payment.id,
                                       "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["network"] == "yape"
    assert data["charged"] == {"minor": 4000, "currency": "USD"}
    assert data["fx_rate"] == "0.266845"  # exact text, never a float
    table = CliRunner().invoke(main, ["--config", str(path), "payments", "show", payment.id])
    assert "network yape" in table.output
    assert "0.266845 USD per PEN" in table.output
