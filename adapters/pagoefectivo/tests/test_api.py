"""Build and parse against PE spec v1.1's own examples (reference/providers.md §1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pasarela_pagoefectivo import api
from pasarela_pagoefectivo.settings import PagoEfectivoSettings

from pasarela.errors import ProviderError, ProviderValidationError, UnknownOutcomeError
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest


SETTINGS = PagoEfectivoSettings(
    base_url="https://pre1a.services.pagoefectivo.pe", access_key="ZTU0NmM3ZjBlNWFjNmMy",
    secret_key="ki7/AduMGTZnDk0eRxM21cFRj73EEnXqx6Zw0rBL", service_id=913,
)


def response(status: int, text: str) -> httpx.Response:
    return httpx.Response(status, content=text.encode("utf-8"),
                          headers={"Content-Type": "application/json"})


# --- authorization -------------------------------------------------------------------


def test_auth_hash_matches_the_postman_script_formula() -> None:
    # The spec's Postman pre-request values; the expected hex was computed outside
    # Python with `printf '%s' '913.ZTU0...-05:00' | sha256sum`.
    assert api.auth_hash(
        913, "ZTU0NmM3ZjBlNWFjNmMy", "ki7/AduMGTZnDk0eRxM21cFRj73EEnXqx6Zw0rBL",
        "2019-04-08T09:57:00-05:00",
    ) == "d50ba4ef5cd3a250e227488117ee27ed7fb7d6a2c5eefad601b828e194285d52"


def test_spec_worked_example_is_not_reproducible() -> None:
    # providers.md §1.3: the PDF's example hash cannot be reproduced from its text
    # (a transcription artefact). The algorithm gives the value sha256sum gives.
    ours = api.auth_hash(8, "AKIPJP77AHN2DKVIJURB", "Nfybo8h0yN7CFN1ycX+XaG99pj/y3Vt25urt1LUR",
                         "2020-11-20T16:01:00-05:00")
    assert ours == "0bc098222d1274ae7d192eb17c3a8457b4d6e89db3820777bc56ba75d9624cf4"
    assert ours != "3faa0677fe78c30800d5c9ec71218ddaa81d15ca08e39f50177bbe328906c744"


def test_authorization_request_body() -> None:
    now = datetime(2019, 4, 8, 14, 57, tzinfo=UTC)
    request = api.build_authorization_request(SETTINGS, now)
    assert request.method == "POST"
    assert str(request.url) == "https://pre1a.services.pagoefectivo.pe/v1/authorizations"
    body = json.loads(request.content)
    assert body == {
        "accessKey": "ZTU0NmM3ZjBlNWFjNmMy",
        "idService": 913,  # a JSON number
        "dateRequest": "2019-04-08T09:57:00-05:00",  # Lima time
        "hashString": "d50ba4ef5cd3a250e227488117ee27ed7fb7d6a2c5eefad601b828e194285d52",
    }
    assert b'"idService":913' in request.content
    assert "secretKey" not in body
    assert SETTINGS.secret_key.encode() not in request.content


def test_parse_authorization_response_spec_example_with_string_code() -> None:
    # The spec's example, without its invalid trailing comma; code is "100" here.
    text = """{
        "code": "100",
        "message": "Solicitud exitosa.",
        "data": {
            "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJCSzIifQ.r7USRyoIo",
            "codeService": "SRV",
            "tokenStart": "2019-12-09T16:15:19-05:00",
            "tokenExpires": "2019-12-09T18:15:19-05:00"
        }
    }"""
    token = api.parse_authorization_response(response(201, text), now=datetime.now(UTC))
    assert token.value.startswith("eyJhbGciOiJIUzI1NiIs")
    assert token.start == datetime.fromisoformat("2019-12-09T16:15:19-05:00")
    assert token.expires == datetime.fromisoformat("2019-12-09T18:15:19-05:00")
    assert token.expires - token.start == timedelta(hours=2)


def test_token_without_expiry_lasts_the_documented_two_hours() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    token = api.parse_authorization_response(
        response(201, '{"code":100,"message":"ok","data":{"token":"t"}}'), now=now)
    assert token.expires == now + timedelta(hours=2)
    assert token.usable(now + timedelta(minutes=100), timedelta(minutes=5))
    assert not token.usable(now + timedelta(minutes=116), timedelta(minutes=5))


def test_success_status_without_code_100_is_an_error() -> None:
    with pytest.raises(ProviderError, match="no code 100"):
        api.parse_authorization_response(response(201, '{"code":111}'), now=datetime.now(UTC))


# --- time ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "2020-12-31T23:59:59-05:00", "2020-12-31 23:59:59-05:00", "2020-12-31T23:59:59-0500",
    "2020-12-31T23:59:59",
])
def test_parse_timestamp_accepts_the_forms_seen(text: str) -> None:
    assert api.parse_timestamp(text) == datetime(2021, 1, 1, 4, 59, 59, tzinfo=UTC)


def test_1900_sentinel_means_no_date() -> None:
    assert api.parse_timestamp(api.NO_DATE) is None
    assert api.parse_timestamp(None) is None
    assert api.parse_timestamp("") is None
    with pytest.raises(ValueError, match="isoformat"):
        api.parse_timestamp("mañana")


def test_lima_timestamp() -> None:
    moment = datetime(2020, 11, 21, 19, 30, 20, 123456, tzinfo=UTC)
    assert api.lima_timestamp(moment) == "2020-11-21T14:30:20-05:00"
    with pytest.raises(ValueError, match="aware"):
        api.lima_timestamp(datetime(2020, 1, 1))  # noqa: DTZ001


# --- create ---------------------------------------------------------------------------


def test_cip_fields_for_a_full_order(
    request_factory: Callable[..., CreateRequest], now: datetime
) -> None:
    request = request_factory(payment_id="01JDQ3V6Y8K2M4N6P8R0S2T4V6",
                              expires_at=datetime(2024, 12, 4, 19, 30, tzinfo=UTC))
    fields = api.cip_fields(request, SETTINGS, now=now)
    assert fields == {
        "currency": "PEN",
        "amount": Decimal("149.90"),
        "transactionCode": "01JDQ3V6Y8K2M4N6P8R0S2T4V6",
        "dateExpiry": "2024-12-04T14:30:00-05:00",
        "paymentConcept": "Audífonos inalámbricos",
        "additionalData": "pedido-1042",
        "userEmail": "rosa@example.pe",
        "userName": "Rosa",
        "userLastName": "Quispe",
        "userCountry": "PERU",
        "userDocumentType": "DNI",
        "userDocumentNumber": "45678912",
        "userCodeCountry": "+51",
        "userPhone": "987654321",
    }


def test_create_request_headers_and_two_decimal_amount() -> None:
    fields = {"currency": "PEN", "amount": Decimal("1.00"), "transactionCode": "101"}
    request = api.build_create_request(SETTINGS, "tok", fields)
    assert request.method == "POST"
    assert request.url.path == "/v1/cips"
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Origin"] == "web"
    assert request.headers["Accept-Language"] == "es-PE"
    assert request.headers["Content-Type"] == "application/json"
    # As the spec's example: "amount": 1.00, a JSON number with two decimals.
    assert request.content == b'{"currency":"PEN","amount":1.00,"transactionCode":"101"}'


def test_default_expiry_is_applied_in_lima_time(
    request_factory: Callable[..., CreateRequest], now: datetime
) -> None:
    fields = api.cip_fields(request_factory(), SETTINGS, now=now)
    assert fields["dateExpiry"] == "2024-12-04T10:00:00-05:00"  # now + 48 h
    configured = PagoEfectivoSettings(access_key="a", secret_key="b", service_id=1,
                                      expiry=timedelta(hours=4))
    assert api.cip_fields(request_factory(), configured, now=now)["dateExpiry"] == (
        "2024-12-02T14:00:00-05:00")


@pytest.mark.parametrize(("kind", "number", "sent"), [
    ("DNI", "45678912", ("DNI", "45678912")),
    ("PAS", "123456789", ("PAS", "123456789")),
    ("CE", "001234567", ("NAN", "001234567")),
    ("RUC", "20512333797", ("NAN", "20512333797")),
    ("PAS", "AB123456", None),  # userDocumentNumber is numeric: left out
])
def test_document_types(
    order_factory: Callable[..., Order], request_factory: Callable[..., CreateRequest],
    now: datetime, kind: str, number: str, sent: tuple[str, str] | None,
) -> None:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="987654321", document=(kind, number))
    fields = api.cip_fields(request_factory(order_factory(customer=customer)), SETTINGS, now=now)
    got = (fields["userDocumentType"], fields["userDocumentNumber"]) if (
        "userDocumentType" in fields) else None
    assert got == sent


def _refused(request: CreateRequest, now: datetime) -> ProviderValidationError:
    with pytest.raises(ProviderValidationError) as caught:
        api.cip_fields(request, SETTINGS, now=now)
    assert caught.value.created_nothing
    assert caught.value.provider == "pagoefectivo"
    return caught.value


@pytest.mark.parametrize(("changes", "field"), [
    ({"customer": None}, "customer"),
    ({"customer_email": None}, "customer.email"),
    ({"customer_email": "x" * 95 + "@ex.pe"}, "customer.email"),
    ({"customer_phone": None}, "customer.phone"),
    ({"amount": Money.of("10", "EUR")}, "amount"),
])
def test_field_rules_name_the_order_field(
    order_factory: Callable[..., Order], request_factory: Callable[..., CreateRequest],
    now: datetime, changes: dict[str, Any], field: str,
) -> None:
    person: dict[str, Any] = {"first_name": "Rosa", "last_name": "Quispe",
                              "email": "rosa@example.pe", "phone": "987654321"}
    order_changes: dict[str, Any] = {}
    for key, value in changes.items():
        if key.startswith("customer_"):
            person[key.removeprefix("customer_")] = value
        elif key in ("first_name", "last_name"):
            person[key] = value
        else:
            order_changes[key] = value
    if "customer" not in order_changes:
        order_changes["customer"] = Customer(**person)
    error = _refused(request_factory(order_factory(**order_changes)), now)
    assert field in error.fields, error.fields


def test_past_expiry_and_long_transaction_code_are_refused(
    request_factory: Callable[..., CreateRequest], now: datetime
) -> None:
    error = _refused(request_factory(expires_at=now - timedelta(seconds=1),
                                     payment_id="x" * 37), now)
    assert set(error.fields) == {"expires_at", "payment_id"}


def test_concept_is_cut_to_fifty_bytes_with_an_ascii_mark(
    order_factory: Callable[..., Order], request_factory: Callable[..., CreateRequest],
    now: datetime,
) -> None:
    long = "Zapatillas de running edición limitada, talla 42, color azul marino"
    fields = api.cip_fields(request_factory(order_factory(description=long)), SETTINGS, now=now)
    concept = fields["paymentConcept"]
    assert len(concept.encode("utf-8")) <= 50
    assert concept.endswith("...")
    assert "…" not in concept
    assert long.startswith(concept.removesuffix("..."))
    plain = api.cip_fields(request_factory(order_factory(description="")), SETTINGS, now=now)
    assert plain["paymentConcept"] == "Pedido pedido-1042"


def test_parse_create_response_spec_example() -> None:
    text = """{
        "code": 100,
        "message": "Solicitud exitosa.",
        "data": {
            "cip": 2523136,
            "currency": "PEN",
            "amount": 1,
            "transactionCode": "101",
            "dateExpiry": "2020-12-31T23:59:59-05:00",
            "cipUrl": "https://pre1a.payment.pagoefectivo.pe/AB803C1C-3266-4CFF-A236-4D9DD5AD260A.html"
        }
    }"""
    created = api.parse_create_response(response(201, text))
    assert created.cip == "2523136"
    assert created.amount == Money.of("1.00", "PEN")
    assert created.transaction_code == "101"
    assert created.expires_at == datetime.fromisoformat("2020-12-31T23:59:59-05:00")
    assert created.url is not None
    assert created.url.endswith("4D9DD5AD260A.html")


def test_parse_create_response_demo_screenshot_with_string_code() -> None:
    text = ('{"code": "100", "message": "Solicitud exitosa.", "data": {"cip": 10092757, '
            '"currency": "PEN", "amount": 25, "transactionCode": "101", '
            '"dateExpiry": "2018-08-13T21:13:37-05:00", '
            '"cipUrl": "http://pre.payment.pagoefectivo.pe/42919258.html"}}')
    created = api.parse_create_response(response(201, text))
    assert (created.cip, created.amount) == ("10092757", Money.of("25", "PEN"))


def test_unreadable_success_on_create_is_an_unknown_outcome() -> None:
    with pytest.raises(UnknownOutcomeError):
        api.parse_create_response(response(201, '{"code":100,"data":{}}'))
    with pytest.raises(UnknownOutcomeError):
        api.parse_create_response(response(201, "<html>gateway</html>"))


# --- search, extend, delete ---------------------------------------------------------------


def test_search_request_body() -> None:
    request = api.build_search_request(SETTINGS, "tok", ["10092759", "2523136"])
    assert request.url.path == "/v1/cips/search"
    assert json.loads(request.content) == {"data": [{"cip": 10092759}, {"cip": 2523136}]}
    assert request.headers["Authorization"] == "Bearer tok"


def test_parse_search_response_screenshot() -> None:
    text = """{
      "code": 100,
      "message": "Solicitud exitosa.",
      "data": [
        {
          "cip": 10092759,
          "transactionCode": "101",
          "amount": 25,
          "currency": "PEN",
          "status": 22,
          "statusName": "Generado.",
          "dateCreation": "2018-08-13T17:18:58-05:00",
          "dateExpiry": "2018-08-13T21:18:58-05:00",
          "datePayment": "1900-01-01T00:00:00-05:00",
          "dateRemoval": "1900-01-01T00:00:00-05:00",
          "token": "FFA97506-4BA1-41CF-B866-7B973565C725"
        }
      ]
    }"""
    [state] = api.parse_search_response(response(200, text))
    assert state.cip == "10092759"
    assert state.status == api.STATUS_GENERATED
    assert state.status_name == "Generado."
    assert state.amount == Money.of("25.00", "PEN")
    assert state.created_at == datetime.fromisoformat("2018-08-13T17:18:58-05:00")
    assert state.expires_at == datetime.fromisoformat("2018-08-13T21:18:58-05:00")
    assert state.paid_at is None
    assert state.removed_at is None


def test_extend_and_delete_requests() -> None:
    until = datetime(2019, 1, 24, 16, 56, 52, tzinfo=UTC)
    patch = api.build_extend_request(SETTINGS, "tok", "10092759", until)
    assert (patch.method, patch.url.path) == ("PATCH", "/v1/cips/10092759")
    assert json.loads(patch.content) == {"dateExpiry": "2019-01-24T11:56:52-05:00"}
    delete = api.build_delete_request(SETTINGS, "tok", "10092759")
    assert (delete.method, delete.url.path, delete.content) == (
        "DELETE", "/v1/cips/10092759", b"")
    api.parse_ack_response(response(200, '{"code": 100, "message": "Solicitud exitosa.", '
                                         '"data": {}}'), "CIP update")


def test_environment_picks_the_documented_host() -> None:
    production = PagoEfectivoSettings(environment="production", access_key="a",
                                      secret_key="b", service_id=1)
    assert production.api_base == "https://services.pagoefectivo.pe"
    sandbox = PagoEfectivoSettings(access_key="a", secret_key="b", service_id=1)
    assert sandbox.api_base == "https://pre1a.services.pagoefectivo.pe"
