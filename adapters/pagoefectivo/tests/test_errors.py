"""The one error table: PagoEfectivo's codes to pasarela's errors."""

from __future__ import annotations

import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider
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
    UnsupportedError,
)


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
