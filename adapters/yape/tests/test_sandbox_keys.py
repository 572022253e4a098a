"""The sandbox invents nothing: every object it answers has only keys the real Culqi
API was recorded answering (../shared/peers/culqi, Culqi's own SDK cassettes) or
documents (providers.md §4.3-4.4), and the keys those real objects have.

Skipped with the reason when ``../shared`` is absent; under ``CI=true`` that is a
failure (the ``culqi_cassettes`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml


#: The order object, as Culqi's SDK fixtures and the ``order.status.changed`` payload
#: of Culqi's own PrestaShop module show it (providers.md §4.3-4.4).
DOCUMENTED_ORDER: frozenset[str] = frozenset({
    "object", "id", "amount", "payment_code", "currency_code", "description",
    "order_number", "state", "total_fee", "net_amount", "fee_details", "creation_date",
    "expiration_date", "updated_at", "paid_at", "available_on", "metadata",
})
#: The event of a Culqi webhook, ``data`` a JSON string (providers.md §4.4).
DOCUMENTED_EVENT: frozenset[str] = frozenset({"object", "id", "type", "creation_date", "data"})
#: What a card token has that a Yape token cannot: the card and the browser that typed it.
CARD_ONLY: frozenset[str] = frozenset({"card_number", "last_four", "iin", "client"})


def recorded(folder: Path) -> dict[str, set[str]]:
    """The key sets of every JSON object Culqi answered in the cassettes, by kind
    (``charge``, ``token``, ``refund``, ``error``, ``server_error``), united."""
    kinds: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
            try:
                body = json.loads(interaction["response"]["body"]["string"])
            except ValueError:
                continue
            if not isinstance(body, dict):
                continue
            kind = body.get("object") or ("server_error" if "timestamp" in body else "?")
            kinds.setdefault(str(kind), set()).update(body)
    return kinds


@pytest.fixture(scope="module")
def real(culqi_cassettes: Path) -> dict[str, set[str]]:
    kinds = recorded(culqi_cassettes)
    assert {"charge", "token", "refund", "error", "server_error"} <= kinds.keys(), kinds
    return kinds


class Culqi:
    """The sandbox, called as the adapter calls it; every JSON answer is kept."""

    def __init__(self, served: Any, pk: str, sk: str) -> None:
        self.served = served
        self.pk = pk
        self.sk = sk
        self.answers: list[tuple[str, httpx.Response]] = []

    def call(self, method: str, path: str, *, key: str | None = None,
             **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.sk}"}
        response = self.served.http.request(method, path, headers=headers, **kwargs)
        self.answers.append((f"{method} {path}", response))
        return response

    def charge(self, phone: str = "900000001", amount: int = 2500) -> httpx.Response:
        token = self.call("POST", "/v2/tokens/yape", key=self.pk,
                          json={"amount": amount, "number_phone": phone, "otp": "425251",
                                "metadata": {"pasarela_payment_id": "P1"}})
        token_id = token.json().get("id", "ype_test_missing")
        return self.call("POST", "/v2/charges", json={
            "amount": amount, "currency_code": "PEN", "email": "rosa@example.pe",
            "source_id": token_id, "description": "Audífonos inalámbricos",
            "metadata": {"order_reference": "pedido-1", "pasarela_payment_id": "P1"}})

    def order(self, number: str) -> httpx.Response:
        return self.call("POST", "/v2/orders", json={
            "amount": 2500, "currency_code": "PEN", "description": "Venta de prueba",
            "order_number": number, "expiration_date": 4_102_444_800,
            "client_details": {"first_name": "Rosa", "last_name": "Quispe",
                               "email": "rosa@example.pe", "phone_number": "+51987654321"},
            "metadata": {"dni": "71702935"}})


@pytest.fixture
def culqi(sandbox: Any, h: Any) -> Culqi:
    return Culqi(sandbox, h.PK, h.SK)


def objects(culqi: Culqi) -> list[tuple[str, Mapping[str, Any]]]:
    """Every object answered (list items and nested sources included), by where."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for where, response in culqi.answers:
        body = response.json()
        if isinstance(body.get("data"), list):  # a list page: its items
            out += [(f"{where} data[]", item) for item in body["data"]]
            continue
        out.append((where, body))
    for where, obj in list(out):
        if isinstance(obj.get("source"), Mapping):
            out.append((f"{where} source", obj["source"]))
    return out


def test_every_sandbox_object_has_only_real_keys(culqi: Culqi, sandbox: Any,
                                                 real: dict[str, set[str]]) -> None:
    paid = culqi.charge().json()
    culqi.call("GET", f"/v2/charges/{paid['id']}")
    culqi.call("GET", "/v2/charges", params={"amount": "2500"})
    declined = culqi.charge(phone="900000002")             # 402, the charge kept
    culqi.call("GET", f"/v2/charges/{declined.json()['charge_id']}")
    culqi.call("POST", "/v2/tokens/yape", key=culqi.pk,
               json={"amount": 2500, "number_phone": "900000003", "otp": "425251"})
    refund = culqi.call("POST", "/v2/refunds", json={
        "amount": 1000, "charge_id": paid["id"], "reason": "solicitud_comprador",
        "metadata": {"pasarela_refund_id": "R1"}}).json()
    culqi.call("GET", f"/v2/refunds/{refund['id']}")
    culqi.call("GET", "/v2/refunds")
    order = culqi.order("keys-1").json()
    culqi.call("GET", f"/v2/orders/{order['id']}")
    culqi.call("GET", "/v2/orders")
    sandbox.post(f"/orders/{order['id']}/pay", wallet="plin")
    culqi.call("GET", f"/v2/orders/{order['id']}")           # paid
    expiring = culqi.order("keys-2").json()
    sandbox.post(f"/orders/{expiring['id']}/expire")
    culqi.call("GET", f"/v2/orders/{expiring['id']}")        # expired
    # refusals: a field, the key, a missing object, a used token, the amount
    culqi.order("keys-1")
    culqi.call("GET", "/v2/charges", key="sk_test_wrong_and_unknown")
    culqi.call("GET", "/v2/orders/ord_test_nope")
    culqi.call("GET", "/v2/refunds/ref_test_nope")
    culqi.call("POST", "/v2/charges", json={"amount": 100, "currency_code": "PEN",
                                            "email": "rosa@example.pe",
                                            "source_id": "ype_test_x"})
    sandbox.fault("GET /v2/orders/{id}", "500")
    culqi.call("GET", f"/v2/orders/{order['id']}")           # Culqi's bare 500

    kinds: dict[str, int] = {}
    for where, obj in objects(culqi):
        kind = str(obj.get("object") or ("server_error" if "timestamp" in obj else "?"))
        kinds[kind] = kinds.get(kind, 0) + 1
        known = DOCUMENTED_ORDER if kind == "order" else real.get(kind)
        assert known is not None, f"{where}: an object Culqi never answered: {obj}"
        invented = set(obj) - known
        assert not invented, f"{where}: {kind} keys Culqi neither recorded nor documents: " \
                             f"{sorted(invented)}"
        if kind == "order":
            assert set(obj) == DOCUMENTED_ORDER, f"{where}: missing {DOCUMENTED_ORDER - set(obj)}"
        elif kind == "token":
            missing = known - set(obj) - CARD_ONLY
            assert not missing, f"{where}: a token without {sorted(missing)}"
        elif kind in ("charge", "refund"):
            # "operations" only answers a capture (ChargeTest.test_charge_capture)
            missing = known - set(obj) - {"operations"}
            assert not missing, f"{where}: a real {kind} also has {sorted(missing)}"
        elif kind == "error":
            assert {"object", "type", "merchant_message", "user_message"} <= set(obj), where
    assert kinds.keys() >= {"charge", "token", "refund", "order", "error", "server_error"}, kinds


def test_the_webhook_event_is_the_documented_one(culqi: Culqi, sandbox: Any) -> None:
    order = culqi.order("keys-event").json()
    sandbox.post(f"/orders/{order['id']}/pay", wallet="yape")
    (logged,) = sandbox.webhooks()
    event = json.loads(logged["body"])
    assert set(event) == DOCUMENTED_EVENT
    assert event["type"] == "order.status.changed"
    assert isinstance(event["data"], str)  # a JSON string, decoded twice
    assert set(json.loads(event["data"])) == DOCUMENTED_ORDER


def test_an_invented_key_is_caught(real: dict[str, set[str]]) -> None:
    """The check above is not vacuous: the sandbox's old ``qr`` (or a ``param`` on an
    error) is named as invented."""
    assert "qr" not in DOCUMENTED_ORDER
    assert "param" not in real["error"]
    assert "number_phone" not in real["token"]
