"""Culqi's answers as the sandbox gives them: the error body, the decline texts,
and the small field rules every object shares (metadata, public fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final


__all__ = [
    "DECLINE_TEXT",
    "REFUND_REASONS",
    "CulqiError",
    "decline",
    "not_found",
    "param",
    "parse_metadata",
    "public",
]

DECLINE_TEXT: Final[Mapping[str, tuple[str, str]]] = {
    "invalid_otp": (
        "Código de aprobación inválido. El código no corresponde al celular o ya fue usado.",
        "El código de aprobación es incorrecto. Genera uno nuevo en Yape e inténtalo otra vez.",
    ),
    "expired_otp": (
        "Código de aprobación expirado.",
        "El código de aprobación venció. Genera uno nuevo en Yape e inténtalo otra vez.",
    ),
    "insufficient_funds": (
        "Fondos insuficientes. La cuenta Yape no tiene saldo suficiente para la compra.",
        "No tienes saldo suficiente en Yape. Recarga o usa otro medio de pago.",
    ),
    "issuer_decline_operation": (
        "Operación denegada por la entidad emisora por una razón desconocida.",
        "La operación fue denegada. Intenta con otro medio de pago.",
    ),
    "processing_error": (
        "Error de procesamiento. Ocurrió un error mientras se procesaba la compra.",
        "Ocurrió un error mientras procesábamos tu compra. Inténtalo más tarde.",
    ),
    "fraudulent": (
        "Operación sospechosa de fraude.",
        "La operación fue denegada. Intenta con otro medio de pago.",
    ),
}

REFUND_REASONS: Final[Mapping[str, str]] = {
    "duplicado": "Devolución por cargo duplicado",
    "fraudulento": "Devolución por cargo fraudulento",
    "solicitud_comprador": "Devolución solicitada por el comercio",
}

class CulqiError(Exception):
    """A refusal, answered as Culqi's error body."""

    def __init__(
        self,
        status: int,
        kind: str,
        merchant_message: str,
        *,
        user_message: str | None = None,
        param: str | None = None,
        code: str | None = None,
        decline_code: str | None = None,
        charge_id: str | None = None,
    ) -> None:
        super().__init__(merchant_message)
        self.status = status
        self.body: dict[str, Any] = {"object": "error", "type": kind}
        if charge_id:
            self.body["charge_id"] = charge_id
        if code:
            self.body["code"] = code
        if decline_code:
            self.body["decline_code"] = decline_code
        self.body["merchant_message"] = merchant_message
        self.body["user_message"] = user_message or (
            "Ocurrió un problema con la operación. Inténtalo nuevamente."
        )
        #: The field refused. Kept out of the body: no recorded or documented Culqi
        #: error carries a ``param`` key (the sandbox invents nothing).
        self.param = param


def param(param: str, message: str) -> CulqiError:
    return CulqiError(400, "parameter_error", message, param=param)


def decline(code: str, *, charge_id: str | None = None) -> CulqiError:
    merchant, user = DECLINE_TEXT.get(code, ("Operación denegada.", "La operación fue denegada."))
    return CulqiError(402, "card_error", merchant, user_message=user, code="card_declined",
                      decline_code=code, charge_id=charge_id)


def not_found(kind: str, ident: str) -> CulqiError:
    return CulqiError(404, "resource_error", f"No existe {kind} con id {ident}.")


def public(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as Culqi shows it (private sandbox fields removed)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def parse_metadata(value: Any) -> dict[str, str]:
    """Culqi's metadata: at most 20 keys, keys 1-30 and values 1-200 characters (the
    official SDK's ``validate_key_and_value_length``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > 20:
        raise param("metadata", "metadata debe ser un objeto de hasta 20 claves.")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str | int | float) or isinstance(
            item, bool
        ):
            raise param("metadata", "Los valores de metadata deben ser texto o números.")
        if not 1 <= len(key) <= 30 or not 1 <= len(str(item)) <= 200:
            raise param("metadata", "El objeto 'metadata' es inválido, límite key (1 - 30), "
                                    "value (1 - 200).")
        out[key] = str(item)
    return out
