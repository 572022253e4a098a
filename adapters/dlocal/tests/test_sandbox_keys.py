"""The sandbox invents nothing: every key of every answer and notification is a key
of dLocal's documented objects (``pasarela_dlocal.sandbox.DOCUMENTED``, each citing
its page on docs.dlocal.com), at every depth."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pasarela_dlocal import DlocalProvider, api
from pasarela_dlocal.sandbox import DOCUMENTED

from pasarela.model import Method
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox

from .conftest import make_order, make_request


def invented(kind: str, obj: Any) -> list[str]:
    if not isinstance(obj, dict):
        return []
    out = [f"{kind}.{key}" for key in obj if key not in DOCUMENTED[kind]]
    for key in ("payer", "ticket", "bank_transfer", "currency_exchange"):
        if kind == "payment" and isinstance(obj.get(key), dict):
            out += invented(key, obj[key])
    return out


def kind_of(answer: dict[str, Any], status: int) -> str:
    if status >= 400:
        return "error"
    return "refund" if "payment_id" in answer else "payment"


def test_no_answer_or_notification_has_an_undocumented_key(
        provider: DlocalProvider, served: ServedSandbox, receiver: WebhookReceiver) -> None:
    served.sandbox.configure({"webhook_url": receiver.url, "webhook_retries": 0})
    answers: list[httpx.Response] = []

    def send(method: str, path: str, body: Any = None) -> dict[str, Any]:
        request = provider._request(method, path, body)
        with httpx.Client() as http:
            response = http.send(request)
        answers.append(response)
        data: dict[str, Any] = api.loads(response.content)
        return data

    ids = {}
    for method in (Method.CASH, Method.BANK_TRANSFER, Method.WALLET, Method.CARD):
        for charge in (None, "USD"):
            request = make_request(method, **({"currency_to_charge": charge} if charge else {}))
            path, body = provider.build_payment(request)
            ids[(method, charge)] = send("POST", path, body)["id"]
    cash = ids[(Method.CASH, None)]
    send("GET", f"/payments/{cash}")
    send("GET", f"/payments/{cash}/status")
    send("POST", f"/payments/{ids[(Method.WALLET, None)]}/cancel")
    send("POST", f"/payments/{ids[(Method.CARD, None)]}/cancel")  # 400: not a pending APM
    served.control("POST", f"/payments/{cash}/pay")
    refund = send("POST", "/refunds", {"payment_id": cash, "amount": api.loads("10.00"),
                                       "currency": "PEN"})
    send("GET", f"/refunds/{refund['id']}/status")
    served.control("POST", f"/refunds/{refund['id']}/settle", json={"status": "SUCCESS"})
    send("GET", "/payments/D-missing")  # 404
    path, body = provider.build_payment(make_request(Method.CARD,
                                                     order=make_order(description="302")))
    send("POST", path, body)
    send("POST", "/payments", {"amount": 1})  # 400 missing parameter
    statuses = {r.status_code for r in answers}
    assert {200, 400, 404} <= statuses
    found = [key for r in answers for key in invented(kind_of(r.json(), r.status_code),
                                                      api.loads(r.content))]
    assert found == []
    served.sandbox.courier.drain(timeout=10)
    bodies = [json.loads(b) for b in receiver.bodies]
    assert {b["status"] for b in bodies} >= {"PENDING", "PAID", "SUCCESS", "CANCELLED"}
    assert [k for b in bodies for k in invented(kind_of(b, 200), b)] == []


@pytest.mark.parametrize(("kind", "obj", "expected"), [
    ("payment", {"id": "D-1", "qr": "x"}, ["payment.qr"]),
    ("payment", {"id": "D-1", "ticket": {"number": "1", "barcode": "x"}}, ["ticket.barcode"]),
    ("refund", {"id": "R-1", "payment_id": "D-1", "fee": 1}, ["refund.fee"]),
])
def test_the_key_check_catches_an_invented_key(kind: str, obj: Any, expected: list[str]) -> None:
    assert invented(kind, obj) == expected
