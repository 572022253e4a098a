"""The one error table: PagoEfectivo's codes to pasarela's errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.errors import (
    ERROR_TABLE,
    PagoEfectivoConfigurationError,
    error_from_response,
)

from pasarela.errors import (
    AuthenticationError,
    ConfigurationError,
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    RateLimitedError,
    UnsupportedError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment
from pasarela.money import Money


def error(status: int, text: str) -> ProviderError:
    return error_from_response(httpx.Response(status, content=text.encode()), operation="test")


def test_111_envelope_names_each_field_by_its_order_field() -> None:
    # The spec's error body (its closing quote fixed), plus a 113 entry.
    exc = error(400, """{
        "code": "111",
        "message": "Solicitud con datos inválidos.",
        "data": [
            {"code": "112", "message": "Requerido.", "field": "amount"},
            {"code": "113", "message": "Valor invalido.", "field": "userPhone"},
            {"code": 112, "message": "Requerido.", "field": "UserEmail"}
        ]
    }""")
    assert isinstance(exc, ProviderValidationError)
    assert exc.code is ErrorCode.VALIDATION
    assert exc.created_nothing
    assert exc.provider_code == "111"
    assert exc.provider_message == "Solicitud con datos inválidos."
    assert exc.fields == {
        "amount": "Requerido. (amount, code 112)",
        "customer.phone": "Valor invalido. (userPhone, code 113)",
        "customer.email": "Requerido. (UserEmail, code 112)",
    }


@pytest.mark.parametrize("code", ['"508"', "508"])
def test_508_is_a_configuration_error(code: str) -> None:
    exc = error(400, f'{{"code": {code}, "message": "Servicio asociado al token es inválido."}}')
    assert isinstance(exc, PagoEfectivoConfigurationError)
    assert isinstance(exc, ConfigurationError)
    assert isinstance(exc, ProviderError)
    assert exc.code is ErrorCode.CONFIGURATION
    assert exc.created_nothing
    assert not exc.retryable


def test_511_is_amount_out_of_range_and_created_nothing() -> None:
    exc = error(400, '{"code": "511", "message": "Usted ha generado un Código CIP que excede '
                     'el valor máximo permitido en este comercio."}')
    assert isinstance(exc, UnsupportedError)
    assert exc.code is ErrorCode.AMOUNT_OUT_OF_RANGE
    assert exc.created_nothing


@pytest.mark.parametrize(("status", "text"), [
    (500, '{"code": "166", "message": "Error interno del servidor."}'),
    (500, '{"code": 166}'),
    (502, "<html>bad gateway</html>"),
    (503, ""),
])
def test_166_and_5xx_are_unavailable_and_may_have_created_something(
    status: int, text: str
) -> None:
    exc = error(status, text)
    assert isinstance(exc, ProviderUnavailableError)
    assert exc.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert exc.retryable
    assert not exc.created_nothing  # PagoEfectivo does not say a 166 made no CIP


def test_401_is_authentication_whatever_the_body() -> None:
    exc = error(401, '{"code": "111", "message": "x"}')
    assert isinstance(exc, AuthenticationError)
    assert exc.code is ErrorCode.AUTHENTICATION
    assert exc.http_status == 401


def test_unknown_4xx_is_a_plain_provider_error() -> None:
    exc = error(404, "")
    assert type(exc) is ProviderError
    assert exc.provider_code == "404"


def test_provider_declares_every_documented_code() -> None:
    documented = {"111", "112", "113", "508", "511", "166"}
    assert documented <= set(ERROR_TABLE)
    assert documented | {"401"} == set(PagoEfectivoProvider.error_codes)
    assert PagoEfectivoProvider.error_codes["511"] is ErrorCode.AMOUNT_OUT_OF_RANGE


# --- a 429's Retry-After, through the provider's flow ----------------------------------


def _search_answered_429(retry_after: str) -> BaseException:
    """Drive ``get`` of a CIP: the authorization succeeds, the search gets a 429."""
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    provider = PagoEfectivoProvider(
        PagoEfectivoSettings(access_key="ak", secret_key="sk", service_id=913),
        clock=lambda: now)
    payment = Payment(id="01JPAY", order_reference="pedido-1", idempotency_key="k",
                      provider="pagoefectivo", method=Method.CASH, amount=Money(2205, "PEN"),
                      status=Status.PENDING, version=1, created_at=now, updated_at=now,
                      provider_reference="11546901")
    flow = provider.get(payment)
    request = next(flow)
    assert request.url.path == "/v1/authorizations"
    request = flow.send(httpx.Response(201, json={"code": "100", "data": {"token": "tok"}},
                                       request=request))
    assert request.url.path == "/v1/cips/search"
    with pytest.raises(RateLimitedError) as info:
        flow.send(httpx.Response(429, headers={"Retry-After": retry_after},
                                 content=b"Too Many Requests", request=request))
    return info.value


def test_a_429_retry_after_in_seconds_reaches_the_error() -> None:
    exc = _search_answered_429("12")
    assert isinstance(exc, RateLimitedError)
    assert exc.retry_after == 12.0
    assert exc.retryable
    assert exc.http_status == 429


def test_a_429_retry_after_http_date_reaches_the_error() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=10)
    exc = _search_answered_429(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert isinstance(exc, RateLimitedError)
    assert exc.retry_after is not None
    assert 540 < exc.retry_after <= 600


def test_an_unreadable_retry_after_is_none() -> None:
    exc = _search_answered_429("later")
    assert isinstance(exc, RateLimitedError)
    assert exc.retry_after is None
