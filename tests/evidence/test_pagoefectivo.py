"""A PagoEfectivo payment end to end against its sandbox on loopback (the CIP created,
paid at the bodega, the signed notification delivered over HTTP): its bundle names
the CIP and the operation number the notification carried, masks the customer the
order holds (name, email, phone, document), and its support ticket names the
service id; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, create_app

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox
from tests.evidence.conftest import CUSTOMER, RAW, open_bundle


CONFIG = """
[store]
url = "{url}"
[providers.pagoefectivo]
environment = "sandbox"
base_url = "{base}"
access_key = "env:PE_ACCESS_KEY"
secret_key = "env:PE_SECRET_KEY"
service_id = 1028
timeout = 2.0
"""


@pytest.fixture
def served(pasarela_sandbox: Callable[..., ServedSandbox]) -> Iterator[ServedSandbox]:
    served = pasarela_sandbox(create_app, seed=7, webhook_retry_delay=0.05)
    yield served
    served.sandbox.courier.drain(timeout=10)


@pytest.fixture
def paid(served: ServedSandbox, pasarela_receiver: WebhookReceiver, tmp_path: Path,
         store_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """The configuration and the id of a CIP paid and notified."""
    monkeypatch.setenv("PE_ACCESS_KEY", DEFAULT_ACCESS_KEY)
    monkeypatch.setenv("PE_SECRET_KEY", DEFAULT_SECRET_KEY)
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=store_url, base=served.url), encoding="utf-8")
    Store(store_url, upgrade=True).close()
    with Pasarela(str(path)) as app:
        pasarela_receiver.handler = lambda headers, body: app.handle_webhook(
            "pagoefectivo", headers, body).status_code
        served.control("POST", "/notification-url", json={"url": pasarela_receiver.url})
        order = Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"),
                      description="Audífonos inalámbricos", customer=CUSTOMER)
        payment = app.pay(order, method="cash", idempotency_key="pedido-1042")
        served.control("POST", f"/cips/{payment.provider_reference}/pay")
        served.sandbox.courier.wait(1)
        assert app.get(payment.id).status is Status.SUCCEEDED
    return path, payment.id


def test_the_bundle_of_a_paid_cip(paid: tuple[Path, str], served: ServedSandbox,
                                  tmp_path: Path) -> None:
    path, payment_id = paid
    out = tmp_path / "cip.zip"
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "evidence",
                                       payment_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    members = open_bundle(data)
    doc = json.loads(members["evidence.json"])
    with Store(_url(path)) as store:
        payment = store.get_payment(payment_id)
        sent = store.exchanges_for(payment_id)
    cip = served.sandbox.cips[int(str(payment.provider_reference))]
    refs = doc["references"]
    assert refs["name"] == "CIP"
    assert refs["provider_reference"] == payment.provider_reference == str(cip.number)
    assert refs["more"]["operation_number"] == [cip.operation_number]
    assert [d["verification"] for d in doc["deliveries"]] == ["passed"]
    assert doc["account"]["ids"] == {"service id (idService)": "1028"}
    # The adapter redacted the customer in the recorded CIP request; the order keeps
    # it, and nothing of it leaves unmasked.
    assert [x["operation"] for x in sent][-1] == "create"
    assert doc["customer"]["email"] == "r***@example.pe"
    for blob in (data, *members.values()):
        for raw in RAW:
            assert raw.encode() not in blob, raw
        for secret in (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY):
            assert secret.encode() not in blob

    ticket = CliRunner().invoke(main, ["--config", str(path), "payments", "evidence",
                                       payment_id, "--support"])
    assert ticket.exit_code == 0, ticket.output
    assert ticket.stdout.startswith("PagoEfectivo: payment pedido-1042\n")
    assert "Merchant service id (idService): 1028\n" in ticket.stdout
    assert f"Transaction code (CIP): {cip.number}\n" in ticket.stdout
    assert f"Operation number: {cip.operation_number}\n" in ticket.stdout
    assert "Last error: none\n" in ticket.stdout
    for secret in (DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY):
        assert secret not in ticket.stdout


def _url(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("url = "):
            return line.split('"')[1]
    raise AssertionError("no store url")
