"""The sandbox over real loopback HTTP: Culqi's paths, auth, field rules, errors, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pasarela_yape.sandbox import create_app

from pasarela.errors import ValidationError


PK = "pk_test_yape0000000001"
SK = "sk_test_yape0000000001"


class Culqi:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def call(self, method: str, path: str, key: str = SK, body: Any = None,
             **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http.request(method, path, headers=headers, params=params or None,
                                 json=body)

    def token(self, phone: str = "900000001", otp: str = "123456", amount: Any = 2500,
              key: str = PK) -> httpx.Response:
        return self.call("POST", "/v2/tokens/yape", key,
                         {"amount": amount, "number_phone": phone, "otp": otp})

    def charge(self, source_id: str, amount: int = 2500, **extra: Any) -> httpx.Response:
        body = {"amount": amount, "currency_code": "PEN", "email": "rosa@example.pe",
                "source_id": source_id, **extra}
        return self.call("POST", "/v2/charges", SK, body)

    def order(self, amount: int = 2500, expires_in: int = 900, **extra: Any) -> httpx.Response:
        body = {
            "amount": amount, "currency_code": "PEN", "description": "Venta de prueba",
            "order_number": extra.pop("order_number", f"pedido-{time.monotonic_ns()}"),
            "client_details": {"first_name": "Rosa", "last_name": "Quispe",
                               "email": "rosa@example.pe", "phone_number": "+51987654321"},
            "expiration_date": int(time.time()) + expires_in, **extra,
        }
        return self.call("POST", "/v2/orders", SK, body)


@pytest.fixture
def culqi(sandbox: Any) -> Iterator[Culqi]:
    client = Culqi(sandbox.url)
    yield client
    client.http.close()


def error_of(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["object"] == "error"
    assert body["type"] == kind
    assert body["merchant_message"]
    assert body["user_message"]
    assert "param" not in body  # Culqi's recorded errors name no field
    return dict(body)


def refused_field(response: httpx.Response) -> str:
    """The field a ``parameter_error`` refused (the sandbox's test header)."""
    error_of(response, 400, "parameter_error")
    return response.headers["x-sandbox-param"]


# --- auth --------------------------------------------------------------------------


def test_keys_are_checked_by_kind_and_value(culqi: Culqi) -> None:
    error_of(culqi.token(key=""), 401, "authentication_error")
    error_of(culqi.token(key=SK), 401, "authentication_error")  # tokens need the public key
    error_of(culqi.token(key="pk_test_someoneelse"), 401, "authentication_error")
    error_of(culqi.token(key="pk_live_yape0000000001"), 401, "authentication_error")
    error_of(culqi.call("GET", "/v2/charges", PK), 401, "authentication_error")
    assert culqi.token().status_code == 201


def test_any_test_key_is_accepted_when_none_is_configured(serve: Any) -> None:
    served = serve(create_app())
    ok = httpx.post(f"{served.url}/v2/tokens/yape",
                    headers={"Authorization": "Bearer pk_test_any"},
                    json={"amount": 100, "number_phone": "900000001", "otp": "000000"})
    assert ok.status_code == 201
    assert ok.json()["id"].startswith("ype_test_")
    live = httpx.post(f"{served.url}/v2/tokens/yape",
                      headers={"Authorization": "Bearer pk_live_any"},
                      json={"amount": 100, "number_phone": "900000001", "otp": "000000"})
    assert live.status_code == 401


# --- Yape tokens and charges ---------------------------------------------------------


def test_yape_test_phone_approves_with_any_six_digits(culqi: Culqi) -> None:
    for otp in ("000000", "425251", "999999"):
        token = culqi.token(otp=otp)
        assert token.status_code == 201
        body = token.json()
        assert body["object"] == "token"
        assert body["id"].startswith("ype_test_")
        assert body["type"] == "yape"
        assert "900000001" not in json.dumps(body)  # the phone is masked
        charge = culqi.charge(body["id"])
        assert charge.status_code == 201, charge.text
        sale = charge.json()
        assert sale["object"] == "charge"
        assert sale["id"].startswith("chr_test_")
        assert sale["outcome"]["type"] == "venta_exitosa"
        assert sale["capture"] is True
        assert sale["amount"] == sale["current_amount"] == 2500
        assert sale["source"]["id"] == body["id"]
        assert sale["total_fee"] + sale["transfer_amount"] == 2500


def test_amount_as_an_integer_string_is_accepted(culqi: Culqi) -> None:
    assert culqi.token(amount="36200").status_code == 201


@pytest.mark.parametrize(("body", "param"), [
    ({"amount": 2500, "number_phone": "90000001", "otp": "123456"}, "number_phone"),
    ({"amount": 2500, "number_phone": "800000001", "otp": "123456"}, "number_phone"),
    ({"amount": 2500, "number_phone": "900000001", "otp": "12345"}, "otp"),
    ({"amount": 2500, "number_phone": "900000001", "otp": 123456}, "otp"),
    ({"amount": "25.00", "number_phone": "900000001", "otp": "123456"}, "amount"),
    ({"amount": 0, "number_phone": "900000001", "otp": "123456"}, "amount"),
    ({"amount": 50001, "number_phone": "900000001", "otp": "123456"}, "amount"),
    ({"number_phone": "900000001", "otp": "123456"}, "amount"),
])
def test_token_field_rules(culqi: Culqi, body: dict[str, Any], param: str) -> None:
    assert refused_field(culqi.call("POST", "/v2/tokens/yape", PK, body)) == param


def test_a_body_that_is_not_a_json_object_is_refused(culqi: Culqi) -> None:
    response = culqi.http.post("/v2/tokens/yape", headers={"Authorization": f"Bearer {PK}"},
                               content=b"[1]")
    error_of(response, 400, "invalid_request_error")


@pytest.mark.parametrize(("phone", "stage", "decline"), [
    ("900000002", "charge", "insufficient_funds"),
    ("900000003", "token", "invalid_otp"),
    ("900000004", "token", "expired_otp"),
    ("900000005", "charge", "issuer_decline_operation"),
    ("900000006", "charge", "processing_error"),
    ("912345678", "token", "invalid_otp"),  # any other phone: the code does not match
])
def test_decline_matrix(culqi: Culqi, phone: str, stage: str, decline: str) -> None:
    token = culqi.token(phone=phone)
    if stage == "token":
        refused = error_of(token, 402, "card_error")
        assert refused["decline_code"] == decline
        assert "charge_id" not in refused
        return
    assert token.status_code == 201
    refused = error_of(culqi.charge(token.json()["id"]), 402, "card_error")
    assert refused["code"] == "card_declined"
    assert refused["decline_code"] == decline
    assert refused["charge_id"].startswith("chr_test_")
    stored = culqi.call("GET", f"/v2/charges/{refused['charge_id']}").json()
    assert stored["outcome"]["decline_code"] == decline


def test_decline_matrix_is_configurable(culqi: Culqi, sandbox: Any) -> None:
    sandbox.config(yape_outcomes={"912345678": None, "900000001": "insufficient_funds"},
                   yape_default=None)
    token = culqi.token(phone="912345678")
    assert token.status_code == 201
    assert culqi.charge(token.json()["id"]).status_code == 201
    assert culqi.token(phone="955555555").status_code == 201  # default: approve
    assert culqi.token(phone="900000003").status_code == 402  # the rest of the matrix stays
    declined = culqi.charge(culqi.token(phone="900000001").json()["id"])
    assert error_of(declined, 402, "card_error")["decline_code"] == "insufficient_funds"


def test_charge_rules(culqi: Culqi, sandbox: Any) -> None:
    token = culqi.token().json()["id"]
    assert refused_field(culqi.charge(token, amount=2400)) == "amount"
    assert refused_field(culqi.charge(token, currency_code="USD")) == "currency_code"
    assert refused_field(culqi.charge(token, email="nope")) == "email"
    assert refused_field(culqi.charge("tkn_test_unknown")) == "source_id"
    assert refused_field(culqi.charge("xyz")) == "source_id"
    assert culqi.charge(token).status_code == 201
    assert refused_field(culqi.charge(token)) == "source_id"
    # tokens live five minutes
    stale = culqi.token().json()["id"]
    sandbox.post("/clock", advance=301)
    assert refused_field(culqi.charge(stale)) == "source_id"


def test_unknown_ids_are_resource_errors(culqi: Culqi) -> None:
    error_of(culqi.call("GET", "/v2/charges/chr_test_nope"), 404, "resource_error")
    error_of(culqi.call("GET", "/v2/orders/ord_test_nope"), 404, "resource_error")
    error_of(culqi.call("GET", "/v2/refunds/ref_test_nope"), 404, "resource_error")


# --- refunds -----------------------------------------------------------------------------


def test_partial_refunds_up_to_the_charge(culqi: Culqi) -> None:
    charge = culqi.charge(culqi.token().json()["id"]).json()["id"]

    def refund(amount: int, reason: str = "solicitud_comprador") -> httpx.Response:
        return culqi.call("POST", "/v2/refunds", SK,
                          {"amount": amount, "charge_id": charge, "reason": reason})

    assert refused_field(refund(100, "porque sí")) == "reason"
    first = refund(1000)
    assert first.status_code == 201
    assert first.json()["object"] == "refund"
    assert first.json()["id"].startswith("ref_test_")
    assert first.json()["charge_id"] == charge
    assert refused_field(refund(1501)) == "amount"
    assert refund(1500, "duplicado").status_code == 201
    stored = culqi.call("GET", f"/v2/charges/{charge}").json()
    assert stored["amount_refunded"] == 2500
    assert stored["current_amount"] == 0
    assert refused_field(refund(1)) == "amount"


# --- orders ----------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "param"), [
    ({"amount": 599}, "amount"),
    ({"amount": 50001}, "amount"),
    ({"currency_code": "USD"}, "currency_code"),
    ({"expires_in": -1}, "expiration_date"),
    ({"description": "abc"}, "description"),
    ({"client_details": {"first_name": "Rosa", "last_name": "Quispe",
                         "email": "rosa@example.pe"}}, "client_details.phone_number"),
])
def test_order_rules(culqi: Culqi, extra: dict[str, Any], param: str) -> None:
    response = culqi.order(**extra)
    assert refused_field(response) == param


def test_order_numbers_are_unique(culqi: Culqi) -> None:
    assert culqi.order(order_number="pedido-1").status_code == 201
    assert refused_field(culqi.order(order_number="pedido-1")) == "order_number"


def test_orders_expire_by_the_clock(culqi: Culqi, sandbox: Any) -> None:
    created = culqi.order(expires_in=60)
    assert created.status_code == 201
    order = created.json()
    assert order["object"] == "order"
    assert order["id"].startswith("ord_test_")
    assert order["state"] == "pending"
    assert "qr" not in order  # a real Culqi order has no QR: its checkout draws one
    assert order["payment_code"]  # the PagoEfectivo CIP of the order
    assert culqi.call("GET", f"/v2/orders/{order['id']}").json()["state"] == "pending"
    sandbox.post("/clock", advance=61)
    assert culqi.call("GET", f"/v2/orders/{order['id']}").json()["state"] == "expired"
    late = sandbox.http.post(f"/_control/orders/{order['id']}/pay", json={"wallet": "plin"})
    assert late.status_code == 409
    # a late payment (the knob) still goes through
    paid = sandbox.post(f"/orders/{order['id']}/pay", wallet="plin", late=True)
    assert paid["order"]["state"] == "paid"


def test_delete_only_pending_orders(culqi: Culqi, sandbox: Any) -> None:
    order = culqi.order().json()["id"]
    deleted = culqi.call("DELETE", f"/v2/orders/{order}")
    assert deleted.status_code == 200
    assert deleted.json()["deleted"] is True
    assert culqi.call("GET", f"/v2/orders/{order}").json()["state"] == "deleted"
    assert culqi.call("DELETE", f"/v2/orders/{order}").status_code == 400


def test_lists_filter_by_amount_and_time(culqi: Culqi) -> None:
    culqi.charge(culqi.token().json()["id"])
    culqi.charge(culqi.token(amount=1000).json()["id"], amount=1000)
    now = int(time.time())
    listed = culqi.call("GET", "/v2/charges", amount="1000", creation_date_from=str(now - 60),
                        creation_date_to=str(now + 60)).json()
    assert [c["amount"] for c in listed["data"]] == [1000]
    assert listed["paging"]["cursors"]["after"] is None
    assert culqi.call("GET", "/v2/charges", creation_date_from=str(now + 120)).json()["data"] == []
    paged = culqi.call("GET", "/v2/charges", limit="1").json()
    assert len(paged["data"]) == 1
    assert paged["paging"]["cursors"]["after"] is not None
    culqi.order()
    assert len(culqi.call("GET", "/v2/orders", amount="2500").json()["data"]) == 1


# --- paying from a wallet, and webhooks ----------------------------------------------------


def test_paying_from_plin_sends_order_status_changed(culqi: Culqi, sandbox: Any,
                                                     receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url)
    order = culqi.order().json()["id"]
    result = sandbox.post(f"/orders/{order}/pay", wallet="plin")
    assert result["wallet"] == "plin"
    assert result["order"]["state"] == "paid"
    (body,) = receiver.bodies
    event = json.loads(body)
    assert event["object"] == "event"
    assert event["id"].startswith("evt_test_")
    assert event["type"] == "order.status.changed"
    assert isinstance(event["data"], str)  # a JSON string inside the JSON
    data = json.loads(event["data"])
    assert data["id"] == order
    assert data["state"] == "paid"
    assert "_wallet" not in data
    assert culqi.call("GET", f"/v2/orders/{order}").json()["state"] == "paid"
    (logged,) = sandbox.webhooks()
    assert logged["status"] == "delivered"
    again = sandbox.http.post(f"/_control/orders/{order}/pay", json={"wallet": "yape"})
    assert again.status_code == 409


def test_expire_control_sends_the_expired_state(culqi: Culqi, sandbox: Any,
                                                receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url)
    order = culqi.order().json()["id"]
    sandbox.post(f"/orders/{order}/expire")
    assert json.loads(json.loads(receiver.bodies[0])["data"])["state"] == "expired"
    assert culqi.call("GET", f"/v2/orders/{order}").json()["state"] == "expired"


def test_sweep_expires_due_orders(culqi: Culqi, sandbox: Any, receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url)
    order = culqi.order(expires_in=30).json()["id"]
    assert sandbox.post("/sweep")["webhooks"] == []
    sandbox.post("/clock", advance=31)
    (sent,) = sandbox.post("/sweep")["webhooks"]
    assert sent["object_id"] == order
    assert len(receiver.bodies) == 1


def test_duplicate_deliveries_share_the_event_id(culqi: Culqi, sandbox: Any,
                                                 receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url, duplicate_webhooks=2)
    sandbox.post(f"/orders/{culqi.order().json()['id']}/pay", wallet="yape")
    assert len(receiver.bodies) == 3
    assert len({json.loads(b)["id"] for b in receiver.bodies}) == 1


def test_lost_deliveries(culqi: Culqi, sandbox: Any, receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url, lose_next_webhooks=1)
    sandbox.post(f"/orders/{culqi.order().json()['id']}/pay", wallet="yape")
    assert receiver.bodies == []
    sandbox.post(f"/orders/{culqi.order().json()['id']}/pay", wallet="yape")
    assert len(receiver.bodies) == 1
    sandbox.config(lose_webhooks=1.0)
    sandbox.post(f"/orders/{culqi.order().json()['id']}/pay", wallet="yape")
    assert len(receiver.bodies) == 1
    assert [d["status"] for d in sandbox.webhooks()] == ["lost", "delivered", "lost"]


def test_reordered_deliveries_send_the_newer_first(culqi: Culqi, sandbox: Any,
                                                   receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url, reorder_webhooks=True)
    first, second = culqi.order().json()["id"], culqi.order().json()["id"]
    sandbox.post(f"/orders/{first}/pay", wallet="yape")
    assert receiver.bodies == []  # held until the next one
    sandbox.post(f"/orders/{second}/pay", wallet="plin")
    order_ids = [json.loads(json.loads(b)["data"])["id"] for b in receiver.bodies]
    assert order_ids == [second, first]
    third = culqi.order().json()["id"]
    sandbox.post(f"/orders/{third}/pay", wallet="yape")
    assert len(receiver.bodies) == 2
    sandbox.post("/webhooks/flush")
    assert len(receiver.bodies) == 3


def test_deliveries_are_retried_on_errors(culqi: Culqi, sandbox: Any, receiver: Any) -> None:
    receiver.status = 500
    sandbox.config(webhook_url=receiver.url, webhook_retries=2)
    sandbox.post(f"/orders/{culqi.order().json()['id']}/pay", wallet="yape")
    assert len(receiver.bodies) == 3
    (logged,) = sandbox.webhooks()
    assert logged["status"] == "failed"
    assert [a["status"] for a in logged["attempts"]] == [500, 500, 500]
    receiver.status = 200
    replayed = sandbox.post("/webhooks/replay", event_id=logged["event_id"])
    assert replayed["webhooks"][0]["status"] == "delivered"
    assert receiver.bodies[-1] == receiver.bodies[0]


def test_delayed_deliveries_arrive_later(culqi: Culqi, sandbox: Any, receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url, delay_webhooks=0.3)
    result = sandbox.post(f"/orders/{culqi.order().json()['id']}/pay", wallet="yape")
    assert result["webhooks"][0]["status"] == "scheduled"
    assert receiver.bodies == []
    assert sandbox.webhooks()[0]["status"] == "delivered"  # ?wait=1 drains
    assert len(receiver.bodies) == 1


# --- faults on the API ----------------------------------------------------------------------


def test_error_rate_answers_culqis_unexpected_500(culqi: Culqi, sandbox: Any) -> None:
    sandbox.config(fail_rate=1.0)
    response = culqi.token()
    assert response.status_code == 500
    body = response.json()
    assert body["status"] == 500
    assert "object" not in body
    sandbox.config(fail_rate=0.0)
    assert culqi.token().status_code == 201
    assert sandbox.http.get("/_control").json()["counts"]["tokens"] == 1  # the 500 made none


def test_500_after_creates_the_object_anyway(culqi: Culqi, sandbox: Any) -> None:
    sandbox.fault("POST /v2/orders", "500_after")
    assert culqi.order(order_number="lost-1").status_code == 500
    listed = culqi.call("GET", "/v2/orders").json()["data"]
    assert [o["order_number"] for o in listed] == ["lost-1"]
    assert culqi.order().status_code == 201  # the fault was used up


def test_hang_after_times_the_client_out_after_the_work(culqi: Culqi, sandbox: Any) -> None:
    sandbox.fault("POST /v2/charges", "hang_after")
    token = culqi.token().json()["id"]
    with pytest.raises(httpx.ReadTimeout):
        culqi.http.post("/v2/charges", headers={"Authorization": f"Bearer {SK}"}, timeout=0.3,
                        json={"amount": 2500, "currency_code": "PEN",
                              "email": "rosa@example.pe", "source_id": token})
    assert len(culqi.call("GET", "/v2/charges").json()["data"]) == 1


def test_hang_before_does_nothing(culqi: Culqi, sandbox: Any) -> None:
    sandbox.fault("POST /v2/orders", "hang")
    with pytest.raises(httpx.ReadTimeout):
        culqi.http.post("/v2/orders", timeout=0.3, json={})
    assert culqi.call("GET", "/v2/orders").json()["data"] == []


def test_latency(culqi: Culqi, sandbox: Any) -> None:
    sandbox.config(latency=0.25)
    started = time.monotonic()
    culqi.token()
    assert time.monotonic() - started >= 0.25


def test_bad_control_input_is_refused(sandbox: Any) -> None:
    assert sandbox.http.post("/_control/config", json={"nonsense": 1}).status_code == 400
    assert sandbox.http.post("/_control/config", json={"latency": -1}).status_code == 400
    boom = sandbox.http.post("/_control/faults",
                             json={"operation": "POST /v2/charges", "kind": "boom"})
    assert boom.status_code == 400
    assert boom.json()["error"].startswith("kind: must be one of 500, 500_after, hang")
    nowhere = sandbox.http.post("/_control/faults",
                                json={"operation": "POST /v2/nowhere", "kind": "500"})
    assert nowhere.status_code == 400
    assert nowhere.json()["error"].startswith("operation: unknown operation")
    with pytest.raises(ValidationError, match="nonsense: no such knob"):
        create_app(nonsense=True)


# --- a newcomer's first payment ----------------------------------------------------------


def test_the_banner_settings_make_a_first_payment(pasarela_sandbox: Any,
                                                  pasarela_factory: Any, h: Any) -> None:
    """The sandbox started as ``pasarela sandbox yape`` does, configured with what its
    banner prints: the first payment succeeds (no 401)."""
    served = pasarela_sandbox(create_app)
    settings = served.settings()
    assert (settings["public_key"], settings["secret_key"]) == (
        "pk_test_pasarela_sandbox", "sk_test_pasarela_sandbox")
    pasarela = pasarela_factory(served)
    payment = pasarela.pay(h.order("35.00"), method="wallet", idempotency_key="first",
                           phone="900000001", code="425251")
    assert payment.status.value == "succeeded"
    assert served.control("GET", "").json()["counts"]["charges"] == 1
