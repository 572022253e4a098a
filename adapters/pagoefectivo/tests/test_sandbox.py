"""The sandbox against PE spec v1.1, spoken to over loopback HTTP with bare httpx."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pasarela_pagoefectivo.api import auth_hash, lima_timestamp
from pasarela_pagoefectivo.notifications import parse_notification, sign
from pasarela_pagoefectivo.sandbox import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
)

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.money import Money
from pasarela.provider import Operation


def authorize(url: str, **changes: Any) -> httpx.Response:
    date = lima_timestamp(datetime.now(UTC))
    body: dict[str, Any] = {
        "accessKey": DEFAULT_ACCESS_KEY, "idService": DEFAULT_SERVICE_ID, "dateRequest": date,
        "hashString": auth_hash(DEFAULT_SERVICE_ID, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, date),
    }
    body.update(changes)
    return httpx.post(f"{url}/v1/authorizations", json={k: v for k, v in body.items()
                                                        if v is not None})


def token(url: str) -> str:
    answer = authorize(url)
    assert answer.status_code == 201, answer.text
    value: str = answer.json()["data"]["token"]
    return value


def cip_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "currency": "PEN", "amount": 149.90, "transactionCode": "01JDQ3V6Y8K2M4N6P8R0S2T4V6",
        "dateExpiry": lima_timestamp(datetime.now(UTC) + timedelta(hours=2)),
        "paymentConcept": "Audífonos", "userEmail": "rosa@example.pe", "userName": "Rosa",
        "userLastName": "Quispe", "userDocumentType": "DNI", "userDocumentNumber": "45678912",
        "userCodeCountry": "+51", "userPhone": "987654321",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.token = token(url)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Origin": "web", **extra}

    def create(self, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/cips", json=cip_body() if body is None else body,
                          headers=self.headers(**headers))

    def cip(self, **changes: Any) -> str:
        answer = self.create(cip_body(**changes))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["data"]["cip"])

    def search(self, *cips: str) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/cips/search", headers=self.headers(),
                          json={"data": [{"cip": int(c)} for c in cips]})

    def state(self, cip: str) -> dict[str, Any]:
        [item] = self.search(cip).json()["data"]
        return dict(item)

    def patch(self, cip: str, until: datetime) -> httpx.Response:
        return httpx.patch(f"{self.url}/v1/cips/{cip}", headers=self.headers(),
                           json={"dateExpiry": lima_timestamp(until)})

    def delete(self, cip: str) -> httpx.Response:
        return httpx.delete(f"{self.url}/v1/cips/{cip}", headers=self.headers())


@pytest.fixture
def pe(served: Any) -> Api:
    return Api(served.url)


def fields_of(answer: httpx.Response) -> set[tuple[str, str]]:
    body = answer.json()
    assert answer.status_code == 400, answer.text
    assert body["code"] == "111", answer.text
    assert body["message"] == "Solicitud con datos inválidos."
    return {(item["code"], item["field"]) for item in body["data"]}


# --- authorization -----------------------------------------------------------------


def test_authorization_gives_a_two_hour_token(served: Any) -> None:
    answer = authorize(served.url)
    assert answer.status_code == 201
    body = answer.json()
    assert body["code"] == 100
    assert body["message"] == "Solicitud exitosa."
    data = body["data"]
    assert data["token"].count(".") == 2  # a JWT
    start = datetime.fromisoformat(data["tokenStart"])
    assert data["tokenStart"].endswith("-05:00")
    assert datetime.fromisoformat(data["tokenExpires"]) - start == timedelta(hours=2)


def test_authorization_field_rules(served: Any) -> None:
    assert fields_of(authorize(served.url, idService=str(DEFAULT_SERVICE_ID))) == {
        ("113", "idService")}  # a JSON number, not a string
    assert fields_of(authorize(served.url, hashString=None, dateRequest=None)) == {
        ("112", "hashString"), ("112", "dateRequest")}
    assert fields_of(authorize(served.url, dateRequest="ayer")) == {("113", "dateRequest")}


def test_authorization_with_a_wrong_hash_is_refused(served: Any) -> None:
    assert authorize(served.url, hashString="0" * 64).status_code == 401
    assert authorize(served.url, accessKey="X" * 20).status_code == 401


def _signed(date: str, *, upper: bool = False) -> dict[str, str]:
    digest = auth_hash(DEFAULT_SERVICE_ID, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, date)
    return {"dateRequest": date, "hashString": digest.upper() if upper else digest}


def _lima(moment: datetime) -> datetime:
    return moment.astimezone(timezone(timedelta(hours=-5)))


def _variants() -> dict[str, tuple[dict[str, str], str]]:
    """What the official demo's sandbox took and the spec does not: each signed
    correctly for its own text, with the field the strict sandbox refuses."""
    now = datetime.now(UTC).replace(microsecond=0)
    lima = _lima(now)
    return {
        "space for T": (_signed(lima.strftime("%Y-%m-%d %H:%M:%S-05:00")), "dateRequest"),
        "no offset": (_signed(lima.strftime("%Y-%m-%dT%H:%M:%S")), "dateRequest"),
        "UTC offset": (_signed(now.strftime("%Y-%m-%dT%H:%M:%S+00:00")), "dateRequest"),
        "offset without colon": (_signed(lima.strftime("%Y-%m-%dT%H:%M:%S-0500")),
                                 "dateRequest"),
        "upper-case hash": (_signed(lima_timestamp(now), upper=True), "hashString"),
        "an hour old": (_signed(lima_timestamp(now - timedelta(hours=1))), "dateRequest"),
        "ten minutes ahead": (_signed(lima_timestamp(now + timedelta(minutes=10))),
                              "dateRequest"),
    }


def test_strict_by_default_with_a_five_minute_window(served: Any) -> None:
    knobs = served.control("GET", "/config").json()
    assert knobs["strict"] is True
    assert knobs["date_request_tolerance"] == 300


@pytest.mark.parametrize("variant", list(_variants()))
def test_strict_sandbox_refuses_what_the_spec_does_not_write(served: Any, variant: str) -> None:
    changes, field = _variants()[variant]
    assert fields_of(authorize(served.url, **changes)) == {("113", field)}


@pytest.mark.parametrize("variant", list(_variants()))
def test_lenient_sandbox_takes_what_the_official_demo_took(served: Any, variant: str) -> None:
    served.control("POST", "/config", json={"strict": False})
    changes, _ = _variants()[variant]
    answer = authorize(served.url, **changes)
    assert answer.status_code == 201, answer.text


def test_within_the_window_is_taken_and_the_window_is_a_knob(served: Any) -> None:
    date = lima_timestamp(datetime.now(UTC) - timedelta(minutes=4))
    assert authorize(served.url, **_signed(date)).status_code == 201
    old = lima_timestamp(datetime.now(UTC) - timedelta(hours=1))
    served.control("POST", "/config", json={"date_request_tolerance": None})
    assert authorize(served.url, **_signed(old)).status_code == 201
    served.control("POST", "/config", json={"date_request_tolerance": 7200})
    assert authorize(served.url, **_signed(old)).status_code == 201


def test_a_well_formed_wrong_hash_is_still_a_401_when_lenient(served: Any) -> None:
    served.control("POST", "/config", json={"strict": False})
    assert authorize(served.url, hashString="0" * 64).status_code == 401


def test_the_adapters_own_authorization_passes_the_strict_sandbox(
    served: Any, provider: Any, client: httpx.Client,
) -> None:
    assert served.sandbox.knobs.strict
    drive(run_flow(provider, Operation.PROBE, provider.probe, sleep_scale=0), client)
    assert served.sandbox.calls["authorization"] == 1
    assert len(served.sandbox.tokens) == 1


def test_tokens_expire_by_the_clock(served: Any, pe: Api) -> None:
    assert pe.create().status_code == 201
    served.control("POST", "/clock", json={"advance": 2 * 3600 + 1})
    refused = pe.create()
    assert refused.status_code == 401


def test_bearer_needs_exactly_one_space(served: Any, pe: Api) -> None:
    answer = httpx.post(f"{served.url}/v1/cips", json=cip_body(),
                        headers={"Authorization": f"Bearer  {pe.token}", "Origin": "web"})
    assert answer.status_code == 401


# --- create -------------------------------------------------------------------------


def test_create_answer_as_the_spec(served: Any, pe: Api) -> None:
    answer = pe.create()
    assert answer.status_code == 201
    body = answer.json()
    assert body["code"] == 100
    data = body["data"]
    assert isinstance(data["cip"], int)
    assert b'"amount":149.9,' in answer.content  # trailing zero dropped, as PagoEfectivo
    assert data["currency"] == "PEN"
    assert data["transactionCode"] == "01JDQ3V6Y8K2M4N6P8R0S2T4V6"
    assert "T" in data["dateExpiry"]
    assert data["dateExpiry"].endswith("-05:00")
    assert data["cipUrl"].startswith(f"{served.url}/payment/")
    assert data["cipUrl"].endswith(".html")
    page = httpx.get(data["cipUrl"])
    assert page.status_code == 200
    assert str(data["cip"]) in page.text


def test_every_bad_field_gets_its_entry(pe: Api) -> None:
    body = cip_body(currency="EUR", amount="1.005", paymentConcept="x" * 51, userPhone=None,
                    userDocumentType="CE", userUbigeo="15011", userEmail="not-an-email",
                    transactionCode="t" * 37)
    assert fields_of(pe.create(body)) == {
        ("113", "currency"), ("113", "amount"), ("113", "paymentConcept"),
        ("112", "userPhone"), ("113", "userDocumentType"), ("113", "userUbigeo"),
        ("113", "userEmail"), ("113", "transactionCode"),
    }


def test_entries_carry_their_messages(pe: Api) -> None:
    answer = pe.create(cip_body(amount=None))
    assert answer.json()["data"] == [{"code": "112", "message": "Requerido.",
                                      "field": "amount"}]
    english = pe.create(cip_body(amount=None), **{"Accept-Language": "en-US"})
    assert english.json()["message"] == "Request with invalid data."


def test_strict_mode_wants_origin_and_lenient_mode_takes_the_demo_request(
    served: Any, pe: Api
) -> None:
    missing = httpx.post(f"{served.url}/v1/cips", json=cip_body(),
                         headers={"Authorization": f"Bearer {pe.token}"})
    assert fields_of(missing) == {("112", "Origin")}
    served.control("POST", "/config", json={"strict": False})
    demo = {"Currency": "PEN", "Amount": 25, "TransactionCode": "101",
            "UserEmail": "integrationproject.pe6@gmail.com"}  # PascalCase, as the C# demo
    answer = httpx.post(f"{served.url}/v1/cips", json=demo,
                        headers={"Authorization": f"Bearer {pe.token}"})
    assert answer.status_code == 201, answer.text
    created = datetime.now(UTC)
    expiry = datetime.fromisoformat(answer.json()["data"]["dateExpiry"])
    assert abs(expiry - (created + timedelta(hours=4))) < timedelta(minutes=1)  # default


def test_expiry_date_forms(pe: Api) -> None:
    soon = datetime.now(UTC) + timedelta(hours=5)
    spaced = lima_timestamp(soon).replace("T", " ")  # as the spec's request example
    answer = pe.create(cip_body(dateExpiry=spaced))
    assert answer.status_code == 201
    assert answer.json()["data"]["dateExpiry"] == lima_timestamp(soon)
    past = lima_timestamp(datetime.now(UTC) - timedelta(minutes=1))
    assert fields_of(pe.create(cip_body(dateExpiry=past))) == {("113", "dateExpiry")}


def test_511_limit(served: Any, pe: Api) -> None:
    served.control("POST", "/config", json={"max_amount": {"PEN": "100"}})
    answer = pe.create()
    assert answer.status_code == 400
    assert answer.json()["code"] == "511"
    assert pe.create(cip_body(amount=100)).status_code == 201
    assert pe.create(cip_body(currency="USD")).status_code == 201  # the limit is per currency


# --- search, update, delete ------------------------------------------------------------


def test_search_statuses_and_sentinels(served: Any, pe: Api) -> None:
    cip = pe.cip()
    state = pe.state(cip)
    assert (state["status"], state["statusName"]) == (22, "Generado.")
    assert state["datePayment"] == state["dateRemoval"] == "1900-01-01T00:00:00-05:00"
    assert pe.search("99999999").json()["data"] == []  # unknown CIPs are left out
    served.control("POST", f"/cips/{cip}/pay", json={"notify": False})
    paid = pe.state(cip)
    assert (paid["status"], paid["statusName"]) == (23, "Cancelado.")
    assert paid["datePayment"] != "1900-01-01T00:00:00-05:00"


def test_expiry_by_the_clock_and_revival(served: Any, pe: Api) -> None:
    by_clock = pe.cip(dateExpiry=lima_timestamp(datetime.now(UTC) + timedelta(hours=1)))
    assert pe.state(by_clock)["status"] == 22
    served.control("POST", "/clock", json={"advance": 3600 + 1})
    assert pe.state(by_clock)["status"] == 21
    served.control("POST", "/clock", json={"advance": -3601})
    cip = pe.cip()
    served.control("POST", f"/cips/{cip}/expire")
    assert pe.state(cip)["status"] == 21
    later = datetime.now(UTC) + timedelta(hours=6)
    answer = pe.patch(cip, later)
    assert answer.status_code == 200
    assert answer.json() == {"code": 100, "message": "Solicitud exitosa.", "data": {}}
    assert pe.state(cip)["status"] == 22
    assert pe.state(cip)["dateExpiry"] == lima_timestamp(later)


def test_update_and_delete_refusals(served: Any, pe: Api) -> None:
    paid = pe.cip()
    served.control("POST", f"/cips/{paid}/pay", json={"notify": False})
    assert fields_of(pe.patch(paid, datetime.now(UTC) + timedelta(hours=1))) == {
        ("113", "cip")}
    assert fields_of(pe.delete(paid)) == {("113", "cip")}
    expired = pe.cip()
    served.control("POST", f"/cips/{expired}/expire")
    assert fields_of(pe.delete(expired)) == {("113", "cip")}
    generated = pe.cip()
    assert fields_of(pe.patch(generated, datetime.now(UTC) - timedelta(hours=1))) == {
        ("113", "dateExpiry")}
    deleted = pe.delete(generated)
    assert deleted.status_code == 200
    assert deleted.json()["code"] == 100
    state = pe.state(generated)
    assert state["status"] == 24
    assert state["dateRemoval"] != "1900-01-01T00:00:00-05:00"
    assert fields_of(pe.delete(generated)) == {("113", "cip")}


# --- notifications -------------------------------------------------------------------


def test_payment_sends_a_signed_notification(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/notification-url", json={"url": receiver.url})
    cip = pe.cip()
    paid = served.control("POST", f"/cips/{cip}/pay").json()
    [(headers, body)] = receiver.wait(1)
    assert headers["pe-signature"] == sign(body, DEFAULT_SECRET_KEY)
    assert headers["content-type"] == "application/json"
    note = parse_notification(body)
    assert (note.event_type, note.cip, note.operation_number) == (
        "cip.paid", cip, paid["operationNumber"])
    assert note.amount == Money.of("149.90", "PEN")
    assert b'"amount":149.90' in body
    assert note.transaction_code == "01JDQ3V6Y8K2M4N6P8R0S2T4V6"
    assert note.payment_date is not None
    assert json.loads(body)["data"]["cip"] == cip  # a string in the notification


def test_one_retry_on_a_non_200(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/notification-url", json={"url": receiver.url})
    receiver.statuses.extend([500])
    served.control("POST", f"/cips/{pe.cip()}/pay")
    assert len(receiver.wait(2)) == 2
    served.sandbox.courier.wait(1)
    [delivery] = served.control("GET", "/webhooks").json()["deliveries"]
    assert [a["status"] for a in delivery["attempts"]] == [500, 200]
    assert delivery["status"] == "delivered"


def test_no_third_attempt(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/notification-url", json={"url": receiver.url})
    receiver.statuses.extend([500, 503, 500])
    served.control("POST", f"/cips/{pe.cip()}/pay")
    [delivery] = served.sandbox.courier.wait(1)
    assert [a.status for a in delivery.attempts] == [500, 503]
    assert not delivery.delivered
    assert len(receiver.deliveries) == 2


def test_duplicate_and_lost_notifications(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/config", json={"webhook_url": receiver.url,
                                            "duplicate_webhooks": 1})
    served.control("POST", f"/cips/{pe.cip()}/pay")
    first, second = receiver.wait(2)
    assert first[1] == second[1]  # the same body twice
    served.control("POST", "/config", json={"duplicate_webhooks": 0, "lose_webhooks": 1.0})
    served.control("POST", f"/cips/{pe.cip()}/pay")
    served.sandbox.courier.wait(3)
    time.sleep(0.1)
    assert len(receiver.deliveries) == 2
    assert served.control("GET", "/webhooks").json()["deliveries"][-1]["status"] == "lost"


def test_delayed_notification(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/config", json={"webhook_url": receiver.url,
                                            "delay_webhooks": 0.4})
    started = time.monotonic()
    served.control("POST", f"/cips/{pe.cip()}/pay")
    assert not receiver.deliveries
    receiver.wait(1)
    assert time.monotonic() - started >= 0.4


def test_payment_racing_expiry(served: Any, pe: Api) -> None:
    cip = pe.cip()
    served.control("POST", f"/cips/{cip}/expire")
    assert served.control("POST", f"/cips/{cip}/pay").status_code == 409
    raced = served.control("POST", f"/cips/{cip}/pay", json={"race": True, "notify": False})
    assert raced.status_code == 200
    assert raced.json()["late"]
    state = pe.state(cip)
    assert state["status"] == 23
    paid_at = datetime.fromisoformat(state["datePayment"])
    assert paid_at == datetime.fromisoformat(state["dateExpiry"]) - timedelta(seconds=1)


def test_late_payment_grace_knob(served: Any, pe: Api) -> None:
    served.control("POST", "/config", json={"late_payment_grace": 60})
    cip = pe.cip()
    served.control("POST", f"/cips/{cip}/expire")
    assert served.control("POST", f"/cips/{cip}/pay", json={"notify": False}).json()["late"]


def test_expired_and_refunded_notifications(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/config", json={"webhook_url": receiver.url,
                                            "expired_webhooks": True})
    served.control("POST", f"/cips/{pe.cip()}/expire")
    paid = pe.cip()
    served.control("POST", f"/cips/{paid}/pay")
    served.control("POST", f"/cips/{paid}/refund")
    events = [parse_notification(body).event_type for _, body in receiver.wait(3)]
    assert sorted(events) == ["cip.expired", "cip.paid", "cip.refunded"]
    assert served.control("POST", f"/cips/{paid}/refund").status_code == 409


def test_resend_repeats_the_same_operation(served: Any, pe: Api, receiver: Any) -> None:
    served.control("POST", "/notification-url", json={"url": receiver.url})
    cip = pe.cip()
    served.control("POST", f"/cips/{cip}/pay")
    served.control("POST", f"/cips/{cip}/notify")
    first, second = receiver.wait(2)
    assert parse_notification(first[1]).event_id == parse_notification(second[1]).event_id


# --- faults and control ------------------------------------------------------------------


def test_latency_and_error_rate(served: Any, pe: Api) -> None:
    served.control("POST", "/config", json={"latency": 0.3})
    started = time.monotonic()
    assert pe.create().status_code == 201
    assert time.monotonic() - started >= 0.3
    served.control("POST", "/config", json={"latency": 0, "fail_rate": 1.0})
    answer = pe.create()
    assert answer.status_code == 500
    assert answer.json()["code"] == "166"
    assert answer.json()["message"] == "Error interno del servidor."


def test_control_refuses_unknown_knobs_and_faults(served: Any) -> None:
    assert served.control("POST", "/config", json={"lattency": 1}).status_code == 400
    assert served.control("POST", "/faults", json={"kind": "boom"}).status_code == 400
    assert served.control("POST", "/cips/1/dance").status_code == 404
    assert "pay" in served.control("GET", "").text
    config = served.control("GET", "/config").json()
    assert config["token_ttl"] == 7200
    assert config["strict"] is True
