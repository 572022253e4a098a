"""PagoEfectivo's error answers, mapped in one table to pasarela's errors.

The codes are those of PE spec v1.1 "Respuesta de validaciones"::

    HTTP  code  meaning                                   pasarela
    400   111   invalid request data (envelope)           ProviderValidationError  (nothing created)
    400   112   a required field is missing (per field)   ProviderValidationError  (nothing created)
    400   113   a field has an invalid value (per field)  ProviderValidationError  (nothing created)
    400   508   the token's service is invalid            PagoEfectivoConfigurationError
    400   511   amount above the merchant's maximum       UnsupportedError amount_out_of_range
    500   166   internal server error                     ProviderUnavailableError (retryable)
    401   -     token missing, invalid or expired         AuthenticationError
    5xx   -     any other server error                    ProviderUnavailableError (retryable)

A 111 envelope lists its per-field 112/113 entries in ``data``; the error names
each field by the order field it came from (``userPhone`` is ``customer.phone``).
Whether a 166 or another 5xx left a CIP behind is not documented, so those errors
never claim ``created_nothing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

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
from pasarela.provider import imported_on_use


if TYPE_CHECKING:
    import httpx

    from pasarela import jsontext, retry
else:  # for an error's body, not for discovery (it brings secrets, hmac, random)
    jsontext = imported_on_use("pasarela.jsontext", globals())
    retry = imported_on_use("pasarela.retry", globals())


__all__ = [
    "ERROR_TABLE",
    "FIELD_PATHS",
    "PROVIDER",
    "ErrorRule",
    "PagoEfectivoConfigurationError",
    "error_from_response",
    "response_code",
]

PROVIDER: Final = "pagoefectivo"


class PagoEfectivoConfigurationError(ProviderError, ConfigurationError):
    """PagoEfectivo refused the merchant's setup (code 508: the token's service is
    invalid). Both a :class:`ProviderError` (with the raw code) and a
    :class:`ConfigurationError` (fix ``providers.pagoefectivo.service_id`` or the keys)."""

    default_code = ErrorCode.CONFIGURATION


@attrs.frozen
class ErrorRule:
    """How one PagoEfectivo code maps: the error class, its normalized code, and
    whether PagoEfectivo documents that nothing was created."""

    error: type[ProviderError]
    code: ErrorCode
    created_nothing: bool


#: The one table: PagoEfectivo ``code`` → pasarela error.
ERROR_TABLE: Final[Mapping[str, ErrorRule]] = {
    "111": ErrorRule(ProviderValidationError, ErrorCode.VALIDATION, True),
    "112": ErrorRule(ProviderValidationError, ErrorCode.VALIDATION, True),
    "113": ErrorRule(ProviderValidationError, ErrorCode.VALIDATION, True),
    "508": ErrorRule(PagoEfectivoConfigurationError, ErrorCode.CONFIGURATION, True),
    "511": ErrorRule(UnsupportedError, ErrorCode.AMOUNT_OUT_OF_RANGE, True),
    "166": ErrorRule(ProviderUnavailableError, ErrorCode.PROVIDER_UNAVAILABLE, False),
}
#: HTTP statuses that decide on their own, whatever the body says.
_HTTP_RULES: Final[Mapping[int, ErrorRule]] = {
    401: ErrorRule(AuthenticationError, ErrorCode.AUTHENTICATION, True),
}

#: PagoEfectivo's field names → the pasarela field they are made from.
FIELD_PATHS: Final[Mapping[str, str]] = {
    "currency": "amount",
    "amount": "amount",
    "transactioncode": "payment_id",
    "dateexpiry": "expires_at",
    "paymentconcept": "description",
    "additionaldata": "reference",
    "adminemail": "providers.pagoefectivo.admin_email",
    "useremail": "customer.email",
    "userid": "customer",
    "username": "customer.first_name",
    "userlastname": "customer.last_name",
    "userubigeo": "customer",
    "usercountry": "country",
    "userdocumenttype": "customer.document",
    "userdocumentnumber": "customer.document",
    "userphone": "customer.phone",
    "usercodecountry": "customer.phone",
    "accesskey": "providers.pagoefectivo.access_key",
    "idservice": "providers.pagoefectivo.service_id",
    "hashstring": "providers.pagoefectivo.secret_key",
    "daterequest": "providers.pagoefectivo.clock",
    "cip": "provider_reference",
    "origin": "providers.pagoefectivo.origin",
}


def response_code(body: Any) -> str | None:
    """The ``code`` of a PagoEfectivo body as text: the spec writes it as a number
    in some examples and as a string in others (``100`` / ``"100"``)."""
    if isinstance(body, Mapping):
        code = body.get("code")
        if isinstance(code, bool):
            return None
        if isinstance(code, int | str):
            return str(code).strip()
    return None


def field_path(provider_field: str) -> str:
    """The pasarela field a PagoEfectivo field name comes from (case-insensitive,
    as PagoEfectivo binds names); unknown names are kept, prefixed."""
    return FIELD_PATHS.get(provider_field.lower(), f"pagoefectivo.{provider_field}")


def _field_errors(body: Mapping[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    details = body.get("data")
    if not isinstance(details, list):
        return fields
    for item in details:
        if not isinstance(item, Mapping):
            continue
        name = str(item.get("field") or "")
        if not name:
            continue
        message = str(item.get("message") or "").strip()
        code = response_code(item)
        reason = f"{message or 'invalid'} ({name}{', code ' + code if code else ''})"
        path = field_path(name)
        fields[path] = f"{fields[path]}; {reason}" if path in fields else reason
    return fields


def error_from_response(response: httpx.Response, *, operation: str) -> ProviderError:
    """The pasarela error for a PagoEfectivo error *response* (not raised)."""
    try:
        body = jsontext.loads(response.content) if response.content else None
    except ValueError:
        body = None
    code = response_code(body)
    message = (
        str(body.get("message") or "").strip() if isinstance(body, Mapping) else ""
    ) or response.reason_phrase
    status = response.status_code
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "provider_code": code or str(status),
        "provider_message": message,
        "http_status": status,
    }
    rule = _HTTP_RULES.get(status) or (ERROR_TABLE.get(code) if code else None)
    if rule is None:
        if status == 429:
            return RateLimitedError(
                f"PagoEfectivo is limiting requests ({operation})",
                retry_after=retry.parse_retry_after(response.headers.get("retry-after")),
                **common,
            )
        if status >= 500:
            rule = ERROR_TABLE["166"]
        else:
            return ProviderError(
                f"PagoEfectivo refused the {operation}: HTTP {status} {message}".rstrip(),
                **common,
            )
    text = f"PagoEfectivo refused the {operation}: {message}"
    if rule.error is ProviderValidationError:
        fields = _field_errors(body) if isinstance(body, Mapping) else {}
        if fields:
            text += " — " + "; ".join(f"{path}: {why}" for path, why in sorted(fields.items()))
        return ProviderValidationError(
            text, fields=fields, created_nothing=rule.created_nothing, **common
        )
    return rule.error(text, code=rule.code, created_nothing=rule.created_nothing, **common)
