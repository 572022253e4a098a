"""Pure build_*/parse_* of the Culqi API, against literal requests and answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pasarela_yape import YapeProvider
from pasarela_yape.acquirer import CodeCharge, QrOrder
from pasarela_yape.culqi.api import (
    build_charge_request,
    build_delete_order_request,
    build_get_request,
    build_order_request,
    build_refund_request,
    build_search_request,
    build_token_request,
    culqi_reason,
    match_search,
    parse_charge,
    parse_json,
    parse_order,
    parse_refund,
    parse_token,
)
from pasarela_yape.errors import error_from_body, error_from_response

from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
    UnknownOutcomeError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment
from pasarela.money import Money
from pasarela.next_action import OpenCheckout


EXPIRES = datetime(2030, 1, 2, 15, 30, tzinfo=UTC)


def code_charge() -> CodeCharge:
    return CodeCharge(payment_id="01JPAY", amount=Money(2500, "PEN"), phone="900000001",
                      code="425251", email="rosa@example.pe", description="Audífonos",
                      metadata={"order_reference": "pedido-1042"})


def qr_order() -> QrOrder:
    return QrOrder(payment_id="01JPAY", order_reference="pedido-1042",
                   amount=Money(2500, "PEN"), expires_at=EXPIRES, description="Audífonos",
                   first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                   phone="+51987654321")


def answer(status: int, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content,
                          headers={"content-type": "application/json"})


def sent(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- build ------------------------------------------------------------------------


def test_yape_token_goes_to_the_tokens_host_with_the_public_key(h: Any) -> None:
    settings = h.make_settings(base_url="", secure_url="")
    request = build_token_request(settings, code_charge())
    assert request.method == "POST"
    assert str(request.url) == "https://secure.culqi.com/v2/tokens/yape"
    assert request.headers["authorization"] == f"Bearer {h.PK}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-culqi-env"] == "test"
    assert request.headers["x-api-version"] == "2"
    assert sent(request) == {
        "amount": 2500, "number_phone": "900000001", "otp": "425251",
        "metadata": {"order_reference": "pedido-1042", "pasarela_payment_id": "01JPAY"},
    }


def test_charge_goes_to_the_api_host_with_the_secret_key(h: Any) -> None:
    settings = h.make_settings(base_url="")
    request = build_charge_request(settings, code_charge(), "ype_test_abc")
    assert str(request.url) == "https://api.culqi.com/v2/charges"
    assert request.headers["authorization"] == f"Bearer {h.SK}"
    body = sent(request)
    assert body["amount"] == 2500
    assert body["currency_code"] == "PEN"
    assert body["email"] == "rosa@example.pe"
    assert body["source_id"] == "ype_test_abc"
    assert body["metadata"]["pasarela_payment_id"] == "01JPAY"
    assert 5 <= len(body["description"]) <= 80


def test_a_sandbox_base_url_serves_tokens_too(h: Any) -> None:
    settings = h.make_settings(base_url="http://127.0.0.1:8802/")
    assert str(build_token_request(settings, code_charge()).url) == (
        "http://127.0.0.1:8802/v2/tokens/yape")
    assert str(build_charge_request(settings, code_charge(), "ype_x").url) == (
        "http://127.0.0.1:8802/v2/charges")


def test_order_has_unix_seconds_expiry_and_client_details(h: Any) -> None:
    request = build_order_request(h.make_settings(), qr_order())
    assert request.url.path == "/v2/orders"
    body = sent(request)
    assert body["expiration_date"] == int(EXPIRES.timestamp()) == 1893598200
    assert body["amount"] == 2500
    assert body["currency_code"] == "PEN"
    assert body["order_number"] == "01JPAY"
    assert body["client_details"] == {"first_name": "Rosa", "last_name": "Quispe",
                                      "email": "rosa@example.pe",
                                      "phone_number": "+51987654321"}
    assert body["metadata"]["order_reference"] == "pedido-1042"


def test_get_picks_orders_or_charges_by_prefix(h: Any) -> None:
    settings = h.make_settings()
    assert build_get_request(settings, "ord_test_x").url.path == "/v2/orders/ord_test_x"
    assert build_get_request(settings, "chr_test_x").url.path == "/v2/charges/chr_test_x"
    delete = build_delete_order_request(settings, "ord_test_x")
    assert delete.method == "DELETE"
    assert delete.url.path == "/v2/orders/ord_test_x"


@pytest.mark.parametrize(("given", "culqi"), [
    ("duplicado", "duplicado"), ("fraudulento", "fraudulento"),
    ("solicitud_comprador", "solicitud_comprador"), ("duplicate", "duplicado"),
    ("fraudulent", "fraudulento"), ("requested_by_customer", "solicitud_comprador"),
    ("", "solicitud_comprador"), ("cliente cambió de opinión", "solicitud_comprador"),
])
def test_refund_reasons_are_culqis_three(given: str, culqi: str, h: Any) -> None:
    assert culqi_reason(given) == culqi
    request = build_refund_request(h.make_settings(), "chr_test_1", Money(500, "PEN"),
                                   refund_id="rf-1", reason=given)
    assert request.url.path == "/v2/refunds"
    assert sent(request) == {"amount": 500, "charge_id": "chr_test_1", "reason": culqi,
                             "metadata": {"pasarela_refund_id": "rf-1"}}


def test_search_filters_by_amount_and_a_window_around_creation(h: Any) -> None:
    created = datetime(2030, 1, 1, tzinfo=UTC)
    request = build_search_request(h.make_settings(), "charges", Money(2500, "PEN"), created,
                                   window=timedelta(minutes=10))
    assert request.method == "GET"
    assert request.url.path == "/v2/charges"
    params = dict(request.url.params)
    assert params["amount"] == "2500"
    assert params["currency_code"] == "PEN"
    assert int(params["creation_date_from"]) == int(created.timestamp()) - 600
    assert int(params["creation_date_to"]) == int(created.timestamp()) + 601  # inclusive
    in_ms = build_search_request(h.make_settings(), "charges", Money(2500, "PEN"), created,
                                 window=timedelta(minutes=10), unit=1, after="chr_test_9")
    ms = dict(in_ms.url.params)
    assert int(ms["creation_date_from"]) == int(created.timestamp() - 600) * 1000
    assert int(ms["creation_date_to"]) == int(created.timestamp() + 600) * 1000 + 1
    assert ms["after"] == "chr_test_9"


# --- parse ----------------------------------------------------------------------------


def test_parse_token() -> None:
    assert parse_token(answer(201, {"object": "token", "id": "ype_test_1", "type": "yape"})) == (
        "ype_test_1")
    with pytest.raises(ProviderUnavailableError):
        parse_token(answer(201, {"object": "token", "id": "tkn_test_1"}))
    with pytest.raises(ProviderUnavailableError):
        parse_token(answer(201, b"<html>gateway</html>"))


def test_parse_charge_succeeded() -> None:
    reported = parse_charge({"object": "charge", "id": "chr_test_1", "amount": 2500,
                             "currency_code": "PEN", "capture": True,
                             "outcome": {"type": "venta_exitosa", "code": "AUT0000"}})
    assert reported.status is Status.SUCCEEDED
    assert reported.reference == "chr_test_1"
    assert reported.amount == Money(2500, "PEN")


def test_parse_charge_declined_outcome_is_failed_with_its_code() -> None:
    reported = parse_charge({
        "object": "charge", "id": "chr_test_2", "amount": 2500, "currency_code": "PEN",
        "outcome": {"type": "venta_denegada", "code": "card_declined",
                    "decline_code": "insufficient_funds", "merchant_message": "Fondos"},
    })
    assert reported.status is Status.FAILED
    assert reported.failure_code == "insufficient_funds"
    assert reported.failure_message == "Fondos"


def test_parse_order_states(h: Any) -> None:
    # A real Culqi order's keys (providers.md §4.4): no "qr"; payment_code is a CIP.
    base = {"object": "order", "id": "ord_test_1", "amount": 2500, "payment_code": "36338442",
            "currency_code": "PEN", "description": "Orden de compra 416",
            "order_number": "#id-2570", "total_fee": None, "net_amount": None,
            "fee_details": None, "creation_date": int(EXPIRES.timestamp()) - 900,
            "expiration_date": int(EXPIRES.timestamp()), "updated_at": None, "paid_at": None,
            "available_on": None, "metadata": {}}
    settings = h.make_settings(base_url="")
    pending = parse_order({**base, "state": "pending"}, settings)
    assert pending.status is Status.PENDING
    assert pending.expires_at == EXPIRES
    action = pending.next_action
    assert isinstance(action, OpenCheckout)
    assert action.script_url == "https://js.culqi.com/checkout-js"
    assert action.settings == {"public_key": h.PK, "order": "ord_test_1", "amount": 2500,
                               "currency": "PEN", "title": "Orden de compra 416"}
    assert action.cash_code == "36338442"
    assert action.expires_at == EXPIRES
    assert action.instructions["es"][0] == "Paga desde Yape, Plin u otra billetera móvil."
    assert "S/\u00a025.00" in action.instructions["es"][2]  # Babel, es-PE
    assert "10:30" in action.instructions["es"][2]  # Lima time (UTC-5)
    assert "CIP 36338442" in action.instructions["es"][-1]
    assert "PagoEfectivo" in action.instructions["en"][-1]
    assert h.SK not in str(action.to_dict())
    without_cip = parse_order({**base, "state": "pending", "payment_code": None}, settings)
    assert isinstance(without_cip.next_action, OpenCheckout)
    assert without_cip.next_action.cash_code is None
    assert not any("CIP" in line for line in without_cip.next_action.instructions["es"])
    assert parse_order({**base, "state": "paid"}, settings).status is Status.SUCCEEDED
    assert parse_order({**base, "state": "paid"}, settings).next_action is None
    assert parse_order({**base, "state": "expired"}, settings).status is Status.EXPIRED
    assert parse_order({**base, "state": "deleted"}, settings).status is Status.CANCELED
    with pytest.raises(ProviderUnavailableError, match="unknown state"):
        parse_order({**base, "state": "mystery"}, settings)


def test_parse_refund_unreadable_2xx_or_5xx_is_unknown() -> None:
    with pytest.raises(UnknownOutcomeError):
        parse_refund(answer(201, b"oops"), currency="PEN", refund_id="r")
    with pytest.raises(UnknownOutcomeError):
        parse_refund(answer(503, b"down"), currency="PEN", refund_id="r")
    with pytest.raises(ProviderValidationError) as caught:
        parse_refund(answer(400, {"object": "error", "type": "parameter_error", "param": "amount",
                                  "merchant_message": "excede"}), currency="PEN", refund_id="r")
    assert caught.value.fields == {"amount": "excede"}


def test_match_search_finds_by_payment_id_and_reports_more_pages() -> None:
    mine = {"object": "charge", "id": "chr_2", "metadata": {"pasarela_payment_id": "P"}}
    other = {"object": "charge", "id": "chr_1", "metadata": {"pasarela_payment_id": "Q"}}
    assert match_search({"data": [other, mine], "paging": {}}, "P") == (mine, None)
    assert match_search({"data": [other], "paging": {"cursors": {"after": "chr_1"}}}, "P") == (
        None, "chr_1")
    assert match_search({"data": [other], "paging": {
        "next": "https://api.culqi.com/v2/charges?limit=1&after=chr_1"}}, "P") == (None, "chr_1")
    assert match_search({"data": [], "paging": {"cursors": {"after": None}}}, "P") == (
        None, None)
    order = {"object": "order", "id": "ord_1", "order_number": "P", "metadata": {}}
    assert match_search({"data": [order]}, "P") == (order, None)
    refund = {"object": "refund", "id": "ref_1", "metadata": {"pasarela_refund_id": "R"}}
    assert match_search({"data": [refund]}, "R", key="pasarela_refund_id") == (refund, None)
    with pytest.raises(ProviderUnavailableError):
        match_search({"items": []}, "P")


# --- errors ----------------------------------------------------------------------------


def error(kind: str, **extra: Any) -> dict[str, Any]:
    return {"object": "error", "type": kind, "merchant_message": "m", "user_message": "u",
            **extra}


def test_wrong_or_expired_approval_code_is_invalid_code() -> None:
    for code in ("invalid_otp", "expired_otp"):
        exc = error_from_body(error("card_error", code="card_declined", decline_code=code),
                              status=402)
        assert isinstance(exc, DeclinedError)
        assert exc.code is ErrorCode.INVALID_CODE
        assert exc.created_nothing is True  # refused at the token: no charge exists
        assert "código de aprobación" in exc.customer_message("es")


def test_parameter_and_request_errors_name_the_param() -> None:
    for kind in ("parameter_error", "invalid_request_error"):
        exc = error_from_body(error(kind, param="number_phone"), status=400)
        assert isinstance(exc, ProviderValidationError)
        assert exc.fields == {"number_phone": "m"}
        assert "number_phone" in exc.message
        assert exc.created_nothing is True


def test_authentication_rate_limit_and_missing_resource() -> None:
    assert isinstance(error_from_body(error("authentication_error"), status=401),
                      AuthenticationError)
    limited = error_from_response(httpx.Response(
        429, json=error("limit_api_error"), headers={"retry-after": "3"}))
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 3.0
    assert limited.retryable is True
    missing = error_from_body(error("resource_error"), status=404)
    assert type(missing) is ProviderError
    assert missing.code is ErrorCode.NOT_FOUND


@pytest.mark.parametrize("body", [
    None, "text", {"error": "x"}, {"object": "error"}, {"object": "charge", "type": "x"},
])
def test_unexpected_bodies_are_provider_unavailable(body: Any) -> None:
    exc = error_from_body(body, status=400)
    assert isinstance(exc, ProviderUnavailableError)
    assert exc.retryable is True


def test_any_5xx_is_provider_unavailable_even_with_an_error_body() -> None:
    exc = error_from_body(error("api_error"), status=503)
    assert isinstance(exc, ProviderUnavailableError)
    assert exc.http_status == 503
    with pytest.raises(ProviderUnavailableError):
        parse_json(httpx.Response(502, content=b"Bad Gateway"))


def test_the_charge_step_treats_unclear_answers_as_unknown(h: Any) -> None:
    from pasarela_yape.culqi.acquirer import CulqiAcquirer

    acquirer = CulqiAcquirer(h.make_settings(), clock=lambda: datetime.now(UTC))
    for unclear in (answer(503, error("api_error")), answer(502, b"Bad Gateway"),
                    answer(201, b"{truncated"), answer(201, {"object": "token"})):
        with pytest.raises(UnknownOutcomeError):
            acquirer._charged(unclear)
    with pytest.raises(RateLimitedError):  # refused before any work: not unknown
        acquirer._charged(answer(429, error("limit_api_error")))
    with pytest.raises(DeclinedError):
        acquirer._charged(answer(402, error("card_error", code="card_declined",
                                           decline_code="insufficient_funds",
                                           charge_id="chr_test_1")))


# --- a 429's Retry-After, through the provider's flow ----------------------------------


@pytest.mark.parametrize("culqi_says", [True, False])  # Culqi's error body, or none
def test_a_429_retry_after_reaches_the_error(h: Any, culqi_says: bool) -> None:
    provider = YapeProvider(h.make_settings())
    now = datetime.now(UTC)
    payment = Payment(id="01JPAY", order_reference="pedido-1042", idempotency_key="k",
                      provider="yape", method=Method.WALLET, amount=Money(2500, "PEN"),
                      status=Status.PENDING, version=1, created_at=now, updated_at=now,
                      provider_reference="chr_test_1")
    waits: list[float | None] = []
    for header in ("3", (now + timedelta(minutes=10)).strftime("%a, %d %b %Y %H:%M:%S GMT"),
                   "later"):
        flow = provider.get(payment)
        request = next(flow)
        assert request.url.path == "/v2/charges/chr_test_1"
        body = {"json": error("limit_api_error")} if culqi_says else {"content": b"slow down"}
        with pytest.raises(RateLimitedError) as info:
            flow.send(httpx.Response(429, headers={"Retry-After": header}, request=request,
                                     **body))
        assert info.value.retryable is True
        assert info.value.http_status == 429
        waits.append(info.value.retry_after)
    seconds, dated, unreadable = waits
    assert seconds == 3.0
    assert dated is not None
    assert 540 < dated <= 600
    assert unreadable is None
