"""The sandbox's memory and Culqi's rules, without HTTP.

Objects are kept as the JSON Culqi would answer with, in dicts; private fields
(``_...``) never leave the sandbox. Every rule breach raises :class:`CulqiError`
with Culqi's error body shape (the one in the recorded cassettes).
"""

from __future__ import annotations

import random
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from pasarela_yape.sandbox.knobs import TOKEN_STAGE_DECLINES, Knobs


__all__ = ["CulqiError", "Sandbox", "not_found", "public"]

_DECLINE_TEXT: Final[Mapping[str, tuple[str, str]]] = {
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

_REFUND_REASONS: Final[Mapping[str, str]] = {
    "duplicado": "Devolución por cargo duplicado",
    "fraudulento": "Devolución por cargo fraudulento",
    "solicitud_comprador": "Devolución solicitada por el comercio",
}

_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE: Final = re.compile(r"^9\d{8}$")
_OTP_RE: Final = re.compile(r"^\d{6}$")
_ALPHABET: Final = string.ascii_letters + string.digits


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
        if param:
            self.body["param"] = param


def _param(param: str, message: str) -> CulqiError:
    return CulqiError(400, "parameter_error", message, param=param)


def _decline(code: str, *, charge_id: str | None = None) -> CulqiError:
    merchant, user = _DECLINE_TEXT.get(code, ("Operación denegada.", "La operación fue denegada."))
    return CulqiError(402, "card_error", merchant, user_message=user, code="card_declined",
                      decline_code=code, charge_id=charge_id)


def not_found(kind: str, ident: str) -> CulqiError:
    return CulqiError(404, "resource_error", f"No existe {kind} con id {ident}.")


class Sandbox:
    """Culqi's objects and rules, in memory."""

    def __init__(
        self,
        knobs: Knobs,
        *,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
        public_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.knobs = knobs
        self._clock = clock or time.time
        self.offset = 0.0
        self.random = random.Random(seed)  # noqa: S311 (a simulator, not security)
        self._seeded = seed is not None
        self.public_key = public_key
        self.secret_key = secret_key
        self.tokens: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        #: per route ("POST /v2/charges"), the faults to apply to the next calls
        self.faults: dict[str, list[str]] = {}

    # --- basics -------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self.offset

    def new_id(self, prefix: str) -> str:
        pick = self.random.choice if self._seeded else secrets.choice
        return f"{prefix}_test_" + "".join(pick(_ALPHABET) for _ in range(16))

    def check_key(self, header: str | None, kind: str) -> None:
        """``Authorization: Bearer pk_test_...`` (tokens) or ``sk_test_...`` (the rest)."""
        expected = self.public_key if kind == "pk" else self.secret_key
        key = header[7:].strip() if header and header.startswith("Bearer ") else ""
        ok = key.startswith(f"{kind}_test_") and (expected is None or key == expected)
        if not ok:
            which = "pública" if kind == "pk" else "secreta"
            raise CulqiError(
                401, "authentication_error",
                f"La llave {which} es inválida o no corresponde a este entorno ({kind}_test_).",
                user_message="No pudimos procesar tu pago. Inténtalo más tarde.",
            )

    def take_fault(self, route: str) -> str | None:
        queue = self.faults.get(route)
        return queue.pop(0) if queue else None

    # --- Yape tokens ------------------------------------------------------------------

    def create_yape_token(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _param("amount", "El monto debe ser un entero positivo en céntimos.")
        if amount > self.knobs.yape_max:
            raise _param("amount", f"El monto máximo para Yape es {self.knobs.yape_max} céntimos.")
        phone = body.get("number_phone")
        if not isinstance(phone, str) or not _PHONE_RE.match(phone):
            raise _param("number_phone", "El número de celular debe tener 9 dígitos (9XXXXXXXX).")
        otp = body.get("otp")
        if not isinstance(otp, str) or not _OTP_RE.match(otp):
            raise _param("otp", "El código de aprobación debe tener 6 dígitos.")
        metadata = _metadata(body.get("metadata"))
        outcome = self.knobs.yape_outcomes.get(phone, self.knobs.yape_default)
        if outcome in TOKEN_STAGE_DECLINES:
            raise _decline(outcome)
        now = self.now()
        token = {
            "object": "token",
            "id": self.new_id("ype"),
            "type": "yape",
            "creation_date": int(now * 1000),
            "email": None,
            "number_phone": f"{phone[:3]}****{phone[-2:]}",
            "amount": amount,
            "active": True,
            "metadata": metadata,
            "_phone": phone,
            "_outcome": outcome,
            "_used": False,
        }
        self.tokens[str(token["id"])] = token
        return public(token)

    # --- charges ------------------------------------------------------------------

    def create_charge(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _param("amount", "El monto debe ser un entero positivo en céntimos.")
        currency = body.get("currency_code")
        if currency not in ("PEN", "USD"):
            raise _param("currency_code", "La moneda debe ser PEN o USD.")
        email = body.get("email")
        if not isinstance(email, str) or not _EMAIL_RE.match(email):
            raise _param("email", "El email es inválido.")
        description = body.get("description")
        if description is not None and (
            not isinstance(description, str) or not 5 <= len(description) <= 80
        ):
            raise _param("description", "La descripción debe tener entre 5 y 80 caracteres.")
        metadata = _metadata(body.get("metadata"))
        source_id = body.get("source_id")
        if not isinstance(source_id, str) or not source_id.startswith(("tkn", "ype", "crd")):
            raise _param("source_id", "El source_id debe empezar con tkn, ype o crd.")
        token = self.tokens.get(source_id)
        if token is None:
            raise _param("source_id", f"No existe un token con id {source_id} (este sandbox "
                                      "solo emite tokens Yape).")
        if token["_used"]:
            raise _param("source_id", "El token ya fue usado.")
        if self.now() - token["creation_date"] / 1000 > self.knobs.token_ttl:
            raise _param("source_id", "El token expiró.")
        if currency != "PEN":
            raise _param("currency_code", "Yape solo acepta soles (PEN).")
        if amount != token["amount"]:
            raise _param("amount", "El monto no coincide con el del token Yape.")
        token["_used"] = True
        token["active"] = False
        now = self.now()
        charge_id = self.new_id("chr")
        outcome = token["_outcome"]
        variable = round(amount * 0.0399)
        taxes = round(variable * 0.18)
        charge: dict[str, Any] = {
            "duplicated": False,
            "object": "charge",
            "id": charge_id,
            "creation_date": int(now * 1000),
            "amount": amount,
            "amount_refunded": 0,
            "current_amount": amount,
            "installments": 0,
            "installments_amount": None,
            "currency_code": currency,
            "email": email,
            "description": description,
            "source": public(token),
            "outcome": {
                "type": "venta_exitosa",
                "code": "AUT0000",
                "merchant_message": "La operación de venta ha sido autorizada exitosamente",
                "user_message": "Su compra ha sido exitosa.",
            },
            "fraud_score": round(self.random.uniform(1, 40), 1),
            "dispute": False,
            "capture": True,
            "reference_code": "".join(self.random.choice(_ALPHABET) for _ in range(10)),
            "authorization_code": "".join(self.random.choice(_ALPHABET) for _ in range(6)),
            "metadata": metadata,
            "total_fee": variable + taxes,
            "fee_details": {
                "fixed_fee": {},
                "variable_fee": {"currency_code": currency, "commision": 0.0399,
                                 "total": variable},
            },
            "total_fee_taxes": taxes,
            "transfer_amount": amount - variable - taxes,
            "paid": False,
            "statement_descriptor": "CULQI*",
            "transfer_id": None,
            "capture_date": int(now * 1000),
        }
        if outcome is not None:
            merchant, user = _DECLINE_TEXT.get(outcome, ("Operación denegada.", ""))
            charge["outcome"] = {"type": "venta_denegada", "code": "card_declined",
                                 "decline_code": outcome, "merchant_message": merchant,
                                 "user_message": user}
            charge["capture"] = False
            charge["capture_date"] = None
            charge["current_amount"] = 0
            self.charges[charge_id] = charge
            raise _decline(outcome, charge_id=charge_id)
        self.charges[charge_id] = charge
        return charge

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        charge = self.charges.get(charge_id)
        if charge is None:
            raise not_found("un cargo", charge_id)
        return charge

    # --- orders -------------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _param("amount", "El monto debe ser un entero positivo en céntimos.")
        if body.get("currency_code") != "PEN":
            raise _param("currency_code", "Las billeteras móviles solo aceptan soles (PEN).")
        if not self.knobs.qr_min <= amount <= self.knobs.qr_max:
            raise _param("amount", f"El monto debe estar entre {self.knobs.qr_min} y "
                                   f"{self.knobs.qr_max} céntimos.")
        description = body.get("description")
        if not isinstance(description, str) or not 5 <= len(description) <= 80:
            raise _param("description", "La descripción debe tener entre 5 y 80 caracteres.")
        number = body.get("order_number")
        if not isinstance(number, str) or not 1 <= len(number) <= 50:
            raise _param("order_number", "El número de orden es obligatorio (hasta 50 caracteres).")
        if any(o["order_number"] == number for o in self.orders.values()):
            raise _param("order_number", f"Ya existe una orden con el número {number}.")
        expiration = body.get("expiration_date")
        if isinstance(expiration, bool) or not isinstance(expiration, int):
            raise _param("expiration_date", "La fecha de expiración debe ser un timestamp Unix "
                                            "en segundos.")
        now = self.now()
        if expiration <= now:
            raise _param("expiration_date", "La fecha de expiración debe ser futura.")
        client = body.get("client_details")
        if not isinstance(client, Mapping):
            raise _param("client_details", "Los datos del cliente son obligatorios.")
        for field in ("first_name", "last_name", "email", "phone_number"):
            value = client.get(field)
            if not isinstance(value, str) or not value.strip():
                raise _param(f"client_details.{field}", f"El campo {field} es obligatorio.")
        if not _EMAIL_RE.match(client["email"]):
            raise _param("client_details.email", "El email es inválido.")
        order_id = self.new_id("ord")
        order: dict[str, Any] = {
            "object": "order",
            "id": order_id,
            "amount": amount,
            "payment_code": "".join(self.random.choice(string.digits) for _ in range(8)),
            "currency_code": "PEN",
            "description": description,
            "order_number": number,
            "state": "pending",
            "total_fee": None,
            "net_amount": None,
            "fee_details": None,
            "creation_date": int(now),
            "expiration_date": expiration,
            "updated_at": None,
            "paid_at": None,
            "available_on": None,
            "metadata": _metadata(body.get("metadata")),
            "qr": f"culqi-sandbox://wallet-qr?order={order_id}&amount={amount}&currency=PEN",
            "_wallet": None,
        }
        self.orders[order_id] = order
        return public(order)

    def order(self, order_id: str) -> dict[str, Any]:
        """The order, its expiry applied by the clock."""
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("una orden", order_id)
        if order["state"] == "pending" and self.now() >= order["expiration_date"]:
            order["state"] = "expired"
            order["updated_at"] = int(order["expiration_date"])
        return order

    def due_orders(self) -> list[str]:
        """Pending orders whose time is up (not yet marked)."""
        now = self.now()
        return [o["id"] for o in self.orders.values()
                if o["state"] == "pending" and now >= o["expiration_date"]]

    def delete_order(self, order_id: str) -> dict[str, Any]:
        order = self.order(order_id)
        if order["state"] != "pending":
            raise _param("id", f"La orden no puede eliminarse en estado {order['state']}.")
        order["state"] = "deleted"
        order["updated_at"] = int(self.now())
        return {"id": order_id, "deleted": True,
                "merchant_message": f"Se eliminó la orden con ID {order_id} exitosamente."}

    def pay_order(self, order_id: str, wallet: str, *, late: bool = False) -> dict[str, Any]:
        order = self.order(order_id)
        if wallet not in ("yape", "plin"):
            raise _param("wallet", "La billetera debe ser yape o plin.")
        if order["state"] != "pending" and not (late and order["state"] == "expired"):
            raise CulqiError(409, "invalid_request_error",
                             f"La orden está en estado {order['state']} y no se puede pagar.")
        now = self.now()
        fee = round(order["amount"] * 0.0344)
        order.update(state="paid", paid_at=int(now), updated_at=int(now), total_fee=fee,
                     net_amount=order["amount"] - fee, available_on=int(now) + 2 * 86400)
        order["_wallet"] = wallet
        return order

    def expire_order(self, order_id: str) -> dict[str, Any]:
        order = self.order(order_id)
        if order["state"] != "pending" and order["state"] != "expired":
            raise CulqiError(409, "invalid_request_error",
                             f"La orden está en estado {order['state']} y no puede expirar.")
        now = int(self.now())
        order.update(state="expired", updated_at=now,
                     expiration_date=min(order["expiration_date"], now))
        return order

    # --- refunds ------------------------------------------------------------------

    def create_refund(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _param("amount", "El monto debe ser un entero positivo en céntimos.")
        reason = body.get("reason")
        if reason not in _REFUND_REASONS:
            raise _param("reason", "El motivo debe ser duplicado, fraudulento o "
                                   "solicitud_comprador.")
        charge_id = body.get("charge_id")
        if not isinstance(charge_id, str) or not charge_id.startswith("chr_"):
            raise _param("charge_id", "El charge_id es inválido.")
        charge = self.charges.get(charge_id)
        if charge is None:
            raise _param("charge_id", f"No existe un cargo con id {charge_id}.")
        if charge["outcome"]["type"] != "venta_exitosa":
            raise _param("charge_id", "Solo se puede devolver un cargo exitoso.")
        if amount > charge["current_amount"]:
            raise _param("amount", "El monto a devolver excede el monto disponible del cargo.")
        charge["amount_refunded"] += amount
        charge["current_amount"] -= amount
        refund: dict[str, Any] = {
            "object": "refund",
            "id": self.new_id("ref"),
            "charge_id": charge_id,
            "creation_date": int(self.now() * 1000),
            "amount": amount,
            "reason": _REFUND_REASONS[str(reason)],
            "metadata": _metadata(body.get("metadata")),
        }
        self.refunds[refund["id"]] = refund
        return refund

    # --- lists --------------------------------------------------------------------

    def search(self, kind: str, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v2/charges`` or ``/v2/orders``: newest first, filtered, paged by ``limit``
        and the ``after`` cursor (the id of the last item of the previous page)."""
        items = list((self.charges if kind == "charges" else self.orders).values())
        if kind == "orders":
            items = [self.order(o["id"]) for o in items]
        scale = 1000 if kind == "charges" else 1  # charges in ms, orders in seconds

        def number(name: str) -> int | None:
            value = query.get(name)
            if value is None:
                return None
            if not value.isdigit():
                raise _param(name, f"{name} debe ser un número entero.")
            return int(value)

        amount = number("amount")
        since, until = number("creation_date_from"), number("creation_date_to")
        limit = number("limit") or 50
        if not 1 <= limit <= 100:
            raise _param("limit", "limit debe estar entre 1 y 100.")

        def seconds(value: int) -> float:
            return value / 1000 if value > 10**11 else value

        out = []
        for item in sorted(items, key=lambda i: i["creation_date"], reverse=True):
            created = item["creation_date"] / scale
            if amount is not None and item["amount"] != amount:
                continue
            if "currency_code" in query and item["currency_code"] != query["currency_code"]:
                continue
            if "email" in query and item.get("email") != query["email"]:
                continue
            if "state" in query and item.get("state") != query["state"]:
                continue
            if since is not None and created < seconds(since):
                continue
            if until is not None and created > seconds(until):
                continue
            out.append(public(item))
        after = query.get("after")
        if after:
            at = next((n for n, item in enumerate(out) if item["id"] == after), None)
            if at is None:
                raise _param("after", f"after no corresponde a un objeto de la lista: {after}.")
            out = out[at + 1:]
        page, rest = out[:limit], out[limit:]
        return {
            "data": page,
            "paging": {
                "previous": None,
                "next": None,  # the app fills in the URL of the next page
                "cursors": {"before": page[0]["id"] if page else None,
                            "after": page[-1]["id"] if rest else None},
            },
        }


def public(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as Culqi shows it (private sandbox fields removed)."""
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or len(value) > 20:
        raise _param("metadata", "metadata debe ser un objeto de hasta 20 claves.")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str | int | float) or isinstance(
            item, bool
        ):
            raise _param("metadata", "Los valores de metadata deben ser texto o números.")
        out[key] = str(item)
    return out
