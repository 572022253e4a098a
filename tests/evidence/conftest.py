"""Fixtures of the evidence bundle tests: a store (SQLite and PostgreSQL) with a
payment that went through create, webhook and refund and was reconciled, and one
whose create met a provider error first; the provider sends the customer's email,
phone and document in its create request (as PagoEfectivo and dLocal do), so the
recorded exchanges carry personal data the bundle must mask."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.errors import PasarelaError
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway


PLUGIN = '''
import json

from pasarela.hookspecs import hookimpl
from pasarela.testing.fake import FakeProvider


class Personal(FakeProvider):
    """The fake provider, sending the customer in its create request."""

    name = "personal"
    display_name = "Fake provider that is sent the customer"

    def build_create(self, request):
        plain = super().build_create(request)
        data = json.loads(plain.content)
        customer = request.order.customer
        if customer is not None:
            data["customer"] = {
                "name": f"{customer.first_name} {customer.last_name}",
                "email": customer.email, "phone": customer.national_phone,
                "document": customer.document.number if customer.document else None,
                "description": request.order.description,
            }
        return self._request("POST", "/v1/payments", data,
                             idempotency_key=request.idempotency_key)


@hookimpl
def pasarela_register_providers(register):
    register.add(Personal)
'''

CONFIG = """
[store]
url = "{url}"
[plugins]
modules = ["evidence_personal_plugin"]
[providers.personal]
max_retries = 1
[merchants.other.providers.personal]
max_retries = 1
{privacy}
"""
CUSTOMER = Customer(first_name="Rosa", last_name="Quispe", email="rosa.quispe@example.pe",
                    phone="+51 987 654 321", document=("DNI", "45678912"))
#: Every raw personal value, and the forms a request may carry them in.
RAW = ("Rosa", "Quispe", "rosa.quispe@example.pe", "rosa.quispe%40example.pe",
       "+51987654321", "987654321", "45678912")
MAPS = ["--map", "provider_reference=Operacion", "--map", "amount=Importe",
        "--map", "fee=Comision", "--map", "occurred_at=Fecha", "--csv-option", "currency=PEN"]
WINDOW = ["--from", "2020-01-01", "--to", "2100-01-01"]


@attrs.frozen
class Setup:
    config: Path
    url: str
    gateway: FakeGateway
    #: create, webhook, partial refund, reconciled.
    paid: Payment
    #: a 503 on its first create attempt, then created.
    retried: Payment
    #: the provider refused the create (400).
    refused: Payment
    #: another merchant's.
    other: Payment

    def app(self) -> Pasarela:
        p = Pasarela(str(self.config), load_entrypoints=False,
                     transport=self.gateway.transport())
        p.service.sleep_scale = 0
        return p

    def run(self, *args: str, merchant: str | None = None) -> Result:
        scope = ["--merchant", merchant] if merchant else []
        return CliRunner().invoke(main, ["--config", str(self.config), *scope, *args])


def write_config(tmp_path: Path, url: str, keys: tuple[str, ...] = ()) -> Path:
    privacy = ("[privacy]\nkeys = [" + ", ".join(f'"{k}"' for k in keys) + "]") if keys else ""
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=url, privacy=privacy), encoding="utf-8")
    return path


def make_setup(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch,
               keys: tuple[str, ...] = ()) -> Setup:
    (tmp_path / "evidence_personal_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    Store(url, upgrade=True).close()
    config = write_config(tmp_path, url, keys)
    gateway = FakeGateway()
    setup = Setup(config, url, gateway, *([None] * 4))  # type: ignore[arg-type]
    with setup.app() as p:
        order = Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"),
                      description="Audífonos para Rosa Quispe", customer=CUSTOMER)
        paid = p.pay(order, method="cash", idempotency_key="k-paid")
        headers, body = gateway.settle(str(paid.provider_reference))
        p.handle_webhook("personal", headers, body)
        p.refund(paid.id, Money.of("40.00", "PEN"), reason="devolución pedida por Rosa")
        retried = p.pay(attrs.evolve(order, reference="pedido-1043",
                                     metadata={"scenario": "5xx_once"}),
                        method="cash", idempotency_key="k-retried")
        with pytest.raises(PasarelaError) as failure:
            p.pay(attrs.evolve(order, reference="pedido-1044", metadata={"scenario": "invalid"}),
                  method="cash", idempotency_key="k-refused")
        refused = p.get(str(failure.value.payment_id))
        other = p.merchants["other"].pay(attrs.evolve(order, reference="pedido-9"),
                                         method="cash", idempotency_key="k-other")
        created = p.get(paid.id).created_at
    lines = tmp_path / "liquidacion.csv"
    lines.write_text("Operacion,Importe,Comision,Fecha\n"
                     f"{paid.provider_reference},149.90,4.72,{created.isoformat()}\n",
                     encoding="utf-8")
    result = setup.run("reconcile", "--provider", "personal", *WINDOW, "--file", str(lines),
                       *MAPS)
    assert result.exit_code in (0, 1), result.output
    return attrs.evolve(setup, paid=paid, retried=retried, refused=refused, other=other)


@pytest.fixture
def setup(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Setup:
    return make_setup(tmp_path, store_url, monkeypatch)


def open_bundle(data: bytes) -> dict[str, bytes]:
    """The archive's members by their name inside its one folder."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        folders = {n.split("/", 1)[0] for n in names}
        assert len(folders) == 1, names
        return {n.split("/", 1)[1]: zf.read(n) for n in names}


def bundle_of(setup: Setup, payment_id: str, tmp_path: Path,
              merchant: str | None = None) -> tuple[dict[str, bytes], dict[str, Any], bytes]:
    out = tmp_path / f"{payment_id}.zip"
    result = setup.run("payments", "evidence", payment_id, "--out", str(out),
                       merchant=merchant)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    members = open_bundle(data)
    return members, json.loads(members["evidence.json"]), data


@pytest.fixture
def bundle(setup: Setup, tmp_path: Path) -> Callable[..., tuple[dict[str, bytes],
                                                                 dict[str, Any], bytes]]:
    def make(payment_id: str, merchant: str | None = None) -> tuple[dict[str, bytes],
                                                                     dict[str, Any], bytes]:
        return bundle_of(setup, payment_id, tmp_path, merchant)
    return make
