"""The Culqi sandbox's memory and Culqi's rules, without HTTP.

Objects are kept as the JSON Culqi would answer with, in dicts; private fields
(``_...``) never leave the sandbox. Every rule breach raises :class:`CulqiError`
with Culqi's error body shape (the one in the recorded cassettes). Knobs, clock,
faults and the webhook courier come from :class:`pasarela.testing.sandbox.Sandbox`.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any, Final

from pasarela.testing.sandbox import Credential, Sandbox, Webhook
from pasarela_yape.sandbox.answers import (
    DECLINE_TEXT,
    REFUND_REASONS,
    CulqiError,
    decline,
    not_found,
    param,
    parse_metadata,
    public,
)
from pasarela_yape.sandbox.knobs import TOKEN_STAGE_DECLINES, CulqiKnobs


__all__ = [
    "DEFAULT_PUBLIC_KEY",
    "DEFAULT_SECRET_KEY",
    "OPERATIONS",
    "CulqiSandbox",
]

#: Keys to use with the sandbox: it takes any ``pk_test_``/``sk_test_`` key unless
#: told to require exact ones.
DEFAULT_PUBLIC_KEY: Final = "pk_test_pasarela_sandbox"
DEFAULT_SECRET_KEY: Final = "sk_test_pasarela_sandbox"  # noqa: S105 - a public test key
#: The API's routes, as one-shot faults name them.
OPERATIONS: Final = (
    "POST /v2/tokens/yape", "POST /v2/charges", "GET /v2/charges", "GET /v2/charges/{id}",
    "POST /v2/orders", "GET /v2/orders", "GET /v2/orders/{id}", "DELETE /v2/orders/{id}",
    "POST /v2/refunds", "GET /v2/refunds", "GET /v2/refunds/{id}",
)

_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE_RE: Final = re.compile(r"^9\d{8}$")
_OTP_RE: Final = re.compile(r"^\d{6}$")
_ALPHABET: Final = string.ascii_letters + string.digits


class CulqiSandbox(Sandbox):
    """Culqi's objects and rules for Yape tokens, charges, QR orders and refunds, in
    memory (see :mod:`pasarela.testing.sandbox` for what every sandbox shares)."""

    name = "yape"
    title = "Culqi (Yape and wallet QR)"
    default_port = 8802
    knobs_class = CulqiKnobs
    operations = OPERATIONS
    #: ``500`` (Culqi's bare 500, nothing done), ``500_after`` (done, then 500),
    #: ``hang`` (the answer held, nothing done), ``hang_after`` (done, then held).
    fault_kinds = ("500", "500_after", "hang", "hang_after")
    knobs: CulqiKnobs

    def __init__(self, *, public_key: str | None = None, secret_key: str | None = None,
                 **options: Any) -> None:
        """*options*: ``clock``, ``seed`` and knobs, as :class:`Sandbox` takes them."""
        self._seeded = options.get("seed") is not None
        self.public_key = public_key
        self.secret_key = secret_key
        self.tokens: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        super().__init__(**options)

    # --- basics -------------------------------------------------------------------

    def unix(self) -> float:
        """The sandbox's time in Unix seconds (Culqi's dates are Unix times)."""
        return self.clock.timestamp()

    def clear(self) -> None:
        self.tokens.clear()
        self.charges.clear()
        self.orders.clear()
        self.refunds.clear()

    def counts(self) -> dict[str, int]:
        return {"tokens": len(self.tokens), "charges": len(self.charges),
                "orders": len(self.orders), "refunds": len(self.refunds)}

    def credentials(self) -> list[Credential]:
        return [
            Credential("public_key", self.public_key or DEFAULT_PUBLIC_KEY,
                       "" if self.public_key else "or any pk_test_ key"),
            Credential("secret_key", self.secret_key or DEFAULT_SECRET_KEY,
                       "" if self.secret_key else "or any sk_test_ key"),
        ]

    def control_error(self, error: Exception) -> tuple[int, Any] | None:
        return (error.status, error.body) if isinstance(error, CulqiError) else None

    def order_event(self, obj: Mapping[str, Any]) -> Webhook:
        """Culqi's ``order.status.changed`` event about *obj*, ``data`` a JSON string."""
        event_id = self.new_id("evt")
        event = {
            "object": "event",
            "id": event_id,
            "type": "order.status.changed",
            "creation_date": int(self.unix() * 1000),
            "data": json.dumps(public(obj), ensure_ascii=False, separators=(",", ":")),
        }
        return Webhook(event_id, "order.status.changed", event, str(obj.get("id")))

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        """Unsigned JSON (Culqi documents no signature)."""
        body = json.dumps(webhook.payload, ensure_ascii=False, separators=(",", ":"))
        return body.encode("utf-8"), {"Content-Type": "application/json",
                                      "User-Agent": "Culqi-Webhook (pasarela-yape sandbox)"}

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

    # --- Yape tokens ------------------------------------------------------------------

    def create_yape_token(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise param("amount", "El monto debe ser un entero positivo en céntimos.")
        if amount > self.knobs.yape_max:
            raise param("amount", f"El monto máximo para Yape es {self.knobs.yape_max} céntimos.")
        phone = body.get("number_phone")
        if not isinstance(phone, str) or not _PHONE_RE.match(phone):
            raise param("number_phone", "El número de celular debe tener 9 dígitos (9XXXXXXXX).")
        otp = body.get("otp")
        if not isinstance(otp, str) or not _OTP_RE.match(otp):
            raise param("otp", "El código de aprobación debe tener 6 dígitos.")
        metadata = parse_metadata(body.get("metadata"))
        outcome = self.knobs.yape_outcomes.get(phone, self.knobs.yape_default)
        if outcome in TOKEN_STAGE_DECLINES:
            raise decline(outcome)
        now = self.unix()
        token = {
            "object": "token",
            "id": self.new_id("ype"),
            "type": "yape",
            "creation_date": int(now * 1000),
            "email": None,
            "active": True,
            "metadata": metadata,
            "_amount": amount,
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
            raise param("amount", "El monto debe ser un entero positivo en céntimos.")
        currency = body.get("currency_code")
        if currency not in ("PEN", "USD"):
            raise param("currency_code", "La moneda debe ser PEN o USD.")
        if currency == "PEN" and amount < self.knobs.charge_min:
            raise param("amount", f"El campo 'amount' admite valores desde "
                                   f"{self.knobs.charge_min} céntimos.")
        email = body.get("email")
        if not isinstance(email, str) or not _EMAIL_RE.match(email) or not 5 <= len(email) <= 50:
            raise param("email", "El campo 'email' es inválido (de 5 a 50 caracteres).")
        description = body.get("description")
        if description is not None and (
            not isinstance(description, str) or not 5 <= len(description) <= 80
        ):
            raise param("description", "La descripción debe tener entre 5 y 80 caracteres.")
        metadata = parse_metadata(body.get("metadata"))
        source_id = body.get("source_id")
        if not isinstance(source_id, str) or not source_id.startswith(("tkn", "ype", "crd")):
            raise param("source_id", "El source_id debe empezar con tkn, ype o crd.")
        token = self.tokens.get(source_id)
        if token is None:
            raise param("source_id", f"No existe un token con id {source_id} (este sandbox "
                                      "solo emite tokens Yape).")
        if token["_used"]:
            raise param("source_id", "El token ya fue usado.")
        if self.unix() - token["creation_date"] / 1000 > self.knobs.token_ttl:
            raise param("source_id", "El token expiró.")
        if currency != "PEN":
            raise param("currency_code", "Yape solo acepta soles (PEN).")
        if amount != token["_amount"]:
            raise param("amount", "El monto no coincide con el del token Yape.")
        token["_used"] = True
        token["active"] = False
        now = self.unix()
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
            merchant, user = DECLINE_TEXT.get(outcome, ("Operación denegada.", ""))
            charge["outcome"] = {"type": "venta_denegada", "code": "card_declined",
                                 "decline_code": outcome, "merchant_message": merchant,
                                 "user_message": user}
            charge["capture"] = False
            charge["capture_date"] = None
            charge["current_amount"] = 0
            self.charges[charge_id] = charge
            raise decline(outcome, charge_id=charge_id)
        self.charges[charge_id] = charge
        return public(charge)

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        charge = self.charges.get(charge_id)
        if charge is None:
            raise not_found("un cargo", charge_id)
        return charge

    # --- orders -------------------------------------------------------------------

    def create_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise param("amount", "El monto debe ser un entero positivo en céntimos.")
        if body.get("currency_code") != "PEN":
            raise param("currency_code", "Las billeteras móviles solo aceptan soles (PEN).")
        if not self.knobs.qr_min <= amount <= self.knobs.qr_max:
            raise param("amount", f"El monto debe estar entre {self.knobs.qr_min} y "
                                   f"{self.knobs.qr_max} céntimos.")
        description = body.get("description")
        if not isinstance(description, str) or not 5 <= len(description) <= 80:
            raise param("description", "La descripción debe tener entre 5 y 80 caracteres.")
        number = body.get("order_number")
        if not isinstance(number, str) or not 1 <= len(number) <= 50:
            raise param("order_number", "El número de orden es obligatorio (hasta 50 caracteres).")
        if any(o["order_number"] == number for o in self.orders.values()):
            raise param("order_number", f"Ya existe una orden con el número {number}.")
        expiration = body.get("expiration_date")
        if isinstance(expiration, bool) or not isinstance(expiration, int):
            raise param("expiration_date", "La fecha de expiración debe ser un timestamp Unix "
                                            "en segundos.")
        now = self.unix()
        if expiration <= now:
            raise param("expiration_date", "La fecha de expiración debe ser futura.")
        client = body.get("client_details")
        if not isinstance(client, Mapping):
            raise param("client_details", "Los datos del cliente son obligatorios.")
        for field in ("first_name", "last_name", "email", "phone_number"):
            value = client.get(field)
            if not isinstance(value, str) or not value.strip():
                raise param(f"client_details.{field}", f"El campo {field} es obligatorio.")
        if not _EMAIL_RE.match(client["email"]):
            raise param("client_details.email", "El email es inválido.")
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
            "metadata": parse_metadata(body.get("metadata")),
            "_wallet": None,
        }
        self.orders[order_id] = order
        return public(order)

    def order(self, order_id: str) -> dict[str, Any]:
        """The order, its expiry applied by the clock."""
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("una orden", order_id)
        if order["state"] == "pending" and self.unix() >= order["expiration_date"]:
            order["state"] = "expired"
            order["updated_at"] = int(order["expiration_date"])
        return order

    def due_orders(self) -> list[str]:
        """Pending orders whose time is up (not yet marked)."""
        now = self.unix()
        return [o["id"] for o in self.orders.values()
                if o["state"] == "pending" and now >= o["expiration_date"]]

    def delete_order(self, order_id: str) -> dict[str, Any]:
        order = self.order(order_id)
        if order["state"] != "pending":
            raise param("id", f"La orden no puede eliminarse en estado {order['state']}.")
        order["state"] = "deleted"
        order["updated_at"] = int(self.unix())
        return {"id": order_id, "deleted": True,
                "merchant_message": f"Se eliminó la orden con ID {order_id} exitosamente."}

    def pay_order(self, order_id: str, wallet: str, *, late: bool = False) -> dict[str, Any]:
        order = self.order(order_id)
        if wallet not in ("yape", "plin"):
            raise param("wallet", "La billetera debe ser yape o plin.")
        if order["state"] != "pending" and not (late and order["state"] == "expired"):
            raise CulqiError(409, "invalid_request_error",
                             f"La orden está en estado {order['state']} y no se puede pagar.")
        now = self.unix()
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
        now = int(self.unix())
        order.update(state="expired", updated_at=now,
                     expiration_date=min(order["expiration_date"], now))
        return order

    # --- refunds ------------------------------------------------------------------

    def create_refund(self, body: Mapping[str, Any]) -> dict[str, Any]:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise param("amount", "El monto debe ser un entero positivo en céntimos.")
        reason = body.get("reason")
        if reason not in REFUND_REASONS:
            raise param("reason", "El motivo debe ser duplicado, fraudulento o "
                                   "solicitud_comprador.")
        charge_id = body.get("charge_id")
        if not isinstance(charge_id, str) or not charge_id.startswith("chr_"):
            raise param("charge_id", "El charge_id es inválido.")
        charge = self.charges.get(charge_id)
        if charge is None:
            raise param("charge_id", f"No existe un cargo con id {charge_id}.")
        if charge["outcome"]["type"] != "venta_exitosa":
            raise param("charge_id", "Solo se puede devolver un cargo exitoso.")
        if amount > charge["current_amount"]:
            raise param("amount", "El monto a devolver excede el monto disponible del cargo.")
        charge["amount_refunded"] += amount
        charge["current_amount"] -= amount
        refund: dict[str, Any] = {
            "object": "refund",
            "id": self.new_id("ref"),
            "charge_id": charge_id,
            "creation_date": int(self.unix() * 1000),
            "amount": amount,
            "reason": REFUND_REASONS[str(reason)],
            "metadata": parse_metadata(body.get("metadata")),
            "_reason": str(reason),
        }
        self.refunds[refund["id"]] = refund
        return public(refund)

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise not_found("una devolución", refund_id)
        return public(refund)

    # --- lists --------------------------------------------------------------------

    def search(self, kind: str, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v2/charges``, ``/v2/orders`` or ``/v2/refunds``: newest first,
        filtered, paged by ``limit`` and the ``after`` cursor (the id of the last item
        of the previous page). The creation-date filters are read in seconds or, when
        they are that large, milliseconds: Culqi documents neither unit, and the
        adapter asks in both (its README)."""
        store = {"charges": self.charges, "orders": self.orders, "refunds": self.refunds}[kind]
        items = list(store.values())
        if kind == "orders":
            items = [self.order(o["id"]) for o in items]
        scale = 1 if kind == "orders" else 1000  # orders in seconds; charges, refunds in ms

        def number(name: str) -> int | None:
            value = query.get(name)
            if value is None:
                return None
            if not value.isdigit():
                raise param(name, f"{name} debe ser un número entero.")
            return int(value)

        amount = number("amount")
        since, until = number("creation_date_from"), number("creation_date_to")
        limit = number("limit") or 50
        if not 1 <= limit <= 100:
            raise param("limit", "limit debe estar entre 1 y 100.")

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
            if "reason" in query and kind == "refunds" and item.get("_reason") != query["reason"]:
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
                raise param("after", f"after no corresponde a un objeto de la lista: {after}.")
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
