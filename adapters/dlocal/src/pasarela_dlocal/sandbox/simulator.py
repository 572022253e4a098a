"""The dLocal account the sandbox simulates: payments, refunds, their rules and the
notifications they send, without HTTP.

Answers are dLocal's documented objects only (the payment, ticket, bank transfer,
currency exchange, refund and error objects of docs.dlocal.com; ``DOCUMENTED`` lists
their keys and ``tests/test_sandbox_keys.py`` holds every answer to it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

import attrs

from pasarela.retry import Backoff
from pasarela.testing.sandbox import (
    Credential,
    Delivery,
    Knobs,
    Sandbox,
    Webhook,
    choice,
    count,
    text,
)
from pasarela_dlocal import api


__all__ = [
    "DEFAULT_SECRET_KEY",
    "DEFAULT_X_LOGIN",
    "DEFAULT_X_TRANS_KEY",
    "DOCUMENTED",
    "NOTIFICATION_SCHEDULE",
    "Answer",
    "DlocalKnobs",
    "DlocalSandbox",
]

DEFAULT_X_LOGIN: Final = "sandbox-login-pasarela"
DEFAULT_X_TRANS_KEY: Final = "sandbox-trans-key-pasarela"
DEFAULT_SECRET_KEY: Final = "sandbox-secret-key-pasarela"  # noqa: S105 - a public test key

#: dLocal's retries of a notification not answered 2xx (docs/receive-notifications):
#: hourly for 6 hours, then every 12 hours for 4 days, at most 12 attempts in all.
NOTIFICATION_SCHEDULE: Final = Backoff.fixed(*([timedelta(hours=1)] * 6),
                                             *([timedelta(hours=12)] * 5))

#: Documented keys of each object the sandbox answers (docs.dlocal.com/reference:
#: the payment object and notification example, the-bank-transfer-object,
#: the-currency-exchange-object, the-refund-object, http-errors-payments; the ticket's
#: keys from docs/peru's PagoEfectivo response).
DOCUMENTED: Final[Mapping[str, frozenset[str]]] = {
    "payment": frozenset({
        "id", "amount", "currency", "country", "payment_method_id", "payment_method_type",
        "payment_method_flow", "payer", "order_id", "notification_url", "created_date",
        "approved_date", "status", "status_detail", "status_code", "description",
        "redirect_url", "ticket", "bank_transfer", "currency_exchange"}),
    "payer": frozenset({"name", "user_reference", "email"}),
    "ticket": frozenset({"number", "expiration_date", "id", "image_url"}),
    "bank_transfer": frozenset({
        "bank_account_type", "bank_name", "bank_code", "beneficiary_name", "bank_account",
        "bank_account2", "bank_account_label", "bank_account2_label",
        "beneficiary_document_type", "benficiary_document", "reference", "redirect_url",
        "user_payment_amount", "payment_instruction"}),
    "currency_exchange": frozenset({"from", "to", "rate"}),
    "refund": frozenset({
        "id", "payment_id", "amount", "amount_refunded", "currency", "status", "status_code",
        "status_detail", "created_date", "notification_url", "description", "order_id"}),
    "error": frozenset({"code", "message", "param"}),
}

#: (status, status_code, status_detail) by the code a description may force
#: (docs.dlocal.com/reference/payment-status-codes).
_FORCED: Final[Mapping[str, tuple[str, str]]] = {
    "100": ("PENDING", "The payment is pending."),
    "200": ("PAID", "The payment was paid."),
    "300": ("REJECTED", "The payment was rejected."),
    "301": ("REJECTED", "Rejected by bank."),
    "302": ("REJECTED", "Insufficient amount."),
    "304": ("REJECTED", "Score validation."),
    "317": ("REJECTED", "Rejected due to high risk."),
    "320": ("REJECTED", "3D-Secure is required."),
    "400": ("CANCELLED", "The payment was cancelled."),
    "600": ("AUTHORIZED", "The payment was authorized."),
    "700": ("VERIFIED", "The payment was verified."),
}
_TYPES: Final = {"CARD": "CARD", "EF": "TICKET", "BC": "BANK_TRANSFER",
                 "IO": "BANK_TRANSFER", "YP": "WALLET"}
_BANKS: Final = {"BC": ("BCP", "00219300123456789012"), "IO": ("Interbank", "00389801234567890123")}

#: (HTTP status, error body) of dLocal's documented errors.
Answer = tuple[int, dict[str, Any]]


def _error(status: int, code: int, message: str, param: str | None = None) -> Answer:
    body: dict[str, Any] = {"code": code, "message": message}
    if param:
        body["param"] = param
    return status, body


@attrs.define(kw_only=True)
class DlocalKnobs(Knobs):
    """The shared knobs (12 attempts per notification, as dLocal's at most 12, waiting
    dLocal's schedule on the sandbox's clock), the USD rate and the refund outcome."""

    webhook_retries: int = count(
        11, "further attempts after one the receiver did not accept (dLocal: at most 12 "
            "attempts in all)")
    notification_schedule: str = choice(
        "documented", ("documented", "fast"),
        "documented: the waits of dLocal's NOTIFICATION_SCHEDULE (hourly for 6 h, then "
        "every 12 h) on the sandbox's clock, reached by POST /_control/clock; fast: "
        "webhook_retry_delay doubling, in real time")
    usd_rate: str | None = text("0.266845", "USD per PEN applied to currency_to_charge=USD")
    refund_status: str = choice("SUCCESS", ("SUCCESS", "PENDING", "REJECTED"),
                                "the status new card refunds get (cash refunds are PENDING)")
    webhook_signature: str = choice("valid", ("valid", "invalid"),
                                    "valid, or invalid (signed with another key)")


class DlocalSandbox(Sandbox):
    """One dLocal merchant account: payments by id, refunds by id."""

    name: ClassVar[str] = "dlocal"
    title: ClassVar[str] = "dLocal (Payins API 2.1)"
    default_port: ClassVar[int] = 8815
    knobs_class: ClassVar[type[Knobs]] = DlocalKnobs
    operations: ClassVar[tuple[str, ...]] = ("create", "get", "cancel", "refund",
                                             "get_refund")

    def __init__(self, *, x_login: str = DEFAULT_X_LOGIN,
                 x_trans_key: str = DEFAULT_X_TRANS_KEY,
                 secret_key: str = DEFAULT_SECRET_KEY, **options: Any) -> None:
        super().__init__(**options)
        self.x_login, self.x_trans_key, self.secret_key = x_login, x_trans_key, secret_key
        self.courier.schedule = self._notification_schedule
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._seq = 0

    def _notification_schedule(self) -> Backoff | None:
        """dLocal's documented waits, unless the ``fast`` knob asks for the toolkit's."""
        documented = self.dknobs.notification_schedule == "documented"
        return NOTIFICATION_SCHEDULE if documented else None

    @property
    def dknobs(self) -> DlocalKnobs:
        knobs = self.knobs
        assert isinstance(knobs, DlocalKnobs)
        return knobs

    def clear(self) -> None:
        self.payments.clear()
        self.refunds.clear()
        self._seq = 0

    def counts(self) -> dict[str, int]:
        return {"payments": len(self.payments), "refunds": len(self.refunds)}

    def credentials(self) -> list[Credential]:
        return [Credential("x_login", self.x_login),
                Credential("x_trans_key", self.x_trans_key),
                Credential("secret_key", self.secret_key, "signs requests and notifications")]

    # --- authentication ---------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> Answer | None:
        """None when the request is ours and signed; dLocal's 3001 otherwise."""
        login, date = headers.get("x-login", ""), headers.get("x-date", "")
        if (login != self.x_login or headers.get("x-trans-key") != self.x_trans_key
                or not date or not api.verify([self.secret_key], login, date, body,
                                              headers.get("authorization"))):
            return _error(403, 3001, "Invalid credentials.")
        return None

    # --- payments -----------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-4-{self.random.getrandbits(48):012x}-{self._seq:04d}"

    def create(self, body: Any, *, card: bool, base_url: str) -> Answer:
        if not isinstance(body, dict):
            return _error(400, 5000, "Invalid request.")
        for name in ("amount", "currency", "country", "payment_method_id", "payer"):
            if body.get(name) in (None, ""):
                return _error(400, 5001, f"Missing parameter. {name}", name)
        payer = body["payer"]
        if not isinstance(payer, dict) or not payer.get("document"):
            return _error(400, 5001, "Missing parameter. payer.document", "payer.document")
        if body["country"] != "PE":
            return _error(400, 5003, "Country not supported.", "country")
        if body["currency"] not in ("PEN", "USD"):
            return _error(400, 5004, "Currency not allowed for this country.", "currency")
        method = body["payment_method_id"]
        if method not in _TYPES or (method == "CARD") != card:
            return _error(400, 5010, "Method not available.", "payment_method_id")
        try:
            amount = Decimal(str(body["amount"]))
        except InvalidOperation:
            return _error(400, 5000, "Invalid request.", "amount")
        if method == "CARD" and body["currency"] == "PEN" and amount < 5:
            return _error(400, 5007, "Amount exceeded.", "amount")
        if card and not (isinstance(body.get("card"), dict) and body["card"].get("token")):
            return _error(400, 5001, "Missing parameter. card.token", "card.token")
        order_id = body.get("order_id")
        if order_id and any(p.get("order_id") == order_id for p in self.payments.values()):
            return _error(400, 5009, "Order ID is duplicated.", "order_id")
        now = self.now()
        pid = self._id("D")
        default = "200" if card else "100"
        forced = str(body.get("description") or "")
        code = forced if forced in _FORCED else default
        status, detail = _FORCED[code]
        payment: dict[str, Any] = {
            "id": pid, "amount": amount, "currency": body["currency"], "country": "PE",
            "payment_method_id": method, "payment_method_type": _TYPES[method],
            "payment_method_flow": body.get("payment_method_flow") or "DIRECT",
            "payer": {"name": payer.get("name"), "email": payer.get("email")},
            "order_id": order_id, "created_date": api.x_date(now), "status": status,
            "status_detail": detail, "status_code": code,
        }
        if body.get("description"):
            payment["description"] = body["description"]
        if body.get("notification_url"):
            payment["notification_url"] = body["notification_url"]
        if status == "PAID":
            payment["approved_date"] = api.x_date(now)
        charged = amount
        if body.get("currency_to_charge") == "USD" and body["currency"] == "PEN":
            rate = Decimal(self.dknobs.usd_rate or "0.266845")
            payment["currency_exchange"] = {"from": "PEN", "to": "USD", "rate": rate}
            charged = (amount * rate).quantize(Decimal("0.01"))
        expires = now + timedelta(days=2)
        root = base_url.rstrip("/")
        if method == "EF":
            number = f"{self._seq:08d}"
            payment["ticket"] = {"number": number, "expiration_date": api.x_date(expires),
                                 "id": f"EF-{number}", "image_url": f"{root}/tickets/{pid}"}
        elif method in ("BC", "IO"):
            bank, account = _BANKS[method]
            payment["bank_transfer"] = {
                "bank_name": bank, "beneficiary_name": "dLocal Peru S.A.C.",
                "bank_account": account, "bank_account_label": "CCI",
                "reference": f"DL{self._seq:06d}", "redirect_url": f"{root}/transfers/{pid}",
                "user_payment_amount": charged,
                "payment_instruction": "Transfiere el monto exacto e indica la referencia."}
        elif method == "YP":
            payment["redirect_url"] = f"{root}/yape/{pid}"
        self.payments[pid] = payment
        self._notify(payment)
        return 200, payment

    def get(self, pid: str, *, status_only: bool = False) -> Answer:
        payment = self.payments.get(pid)
        if payment is None:
            return _error(404, 4000, "Payment not found.")
        if status_only:
            return 200, {k: payment[k] for k in ("id", "status", "status_code", "status_detail")}
        return 200, payment

    def cancel(self, pid: str) -> Answer:
        payment = self.payments.get(pid)
        if payment is None:
            return _error(404, 4000, "Payment not found.")
        if payment["status"] != "PENDING" or payment["payment_method_type"] == "CARD":
            return _error(400, 5002, "Invalid transaction status.")
        self._move(payment, "400")
        return 200, payment

    def _move(self, payment: dict[str, Any], code: str) -> list[Delivery]:
        payment["status"], payment["status_detail"] = _FORCED[code]
        payment["status_code"] = code
        if code == "200":
            payment["approved_date"] = api.x_date(self.now())
        return self._notify(payment)

    def pay(self, pid: str) -> tuple[Answer, list[Delivery]]:
        """The customer pays the ticket or makes the transfer."""
        payment = self.payments.get(pid)
        if payment is None:
            return _error(404, 4000, "Payment not found."), []
        if payment["status"] != "PENDING":
            return _error(400, 5002, "Invalid transaction status."), []
        sent = self._move(payment, "200")
        return (200, payment), sent

    def expire(self, pid: str) -> tuple[Answer, list[Delivery]]:
        payment = self.payments.get(pid)
        if payment is None or payment["status"] != "PENDING":
            return _error(400, 5002, "Invalid transaction status."), []
        return (200, payment), self._move(payment, "400")

    def resend(self, pid: str) -> tuple[Answer, list[Delivery]]:
        payment = self.payments.get(pid)
        if payment is None:
            return _error(404, 4000, "Payment not found."), []
        return (200, payment), self._notify(payment, again=True)

    # --- refunds -------------------------------------------------------------------------------

    def refund(self, body: Any) -> Answer:
        if not isinstance(body, dict) or not body.get("payment_id"):
            return _error(400, 5001, "Missing parameter. payment_id", "payment_id")
        payment = self.payments.get(str(body["payment_id"]))
        if payment is None:
            return _error(404, 4000, "Payment not found.")
        if payment["status"] != "PAID":
            return _error(400, 5002, "Invalid transaction status.")
        try:
            amount = Decimal(str(body.get("amount", payment["amount"])))
        except InvalidOperation:
            return _error(400, 5000, "Invalid request.", "amount")
        done = sum((r["amount"] for r in self.refunds.values()
                    if r["payment_id"] == payment["id"] and r["status"] != "REJECTED"),
                   Decimal(0))
        if amount <= 0 or done + amount > payment["amount"]:
            return _error(400, 5007, "Amount exceeded.", "amount")
        status = (self.dknobs.refund_status if payment["payment_method_type"] == "CARD"
                  else "PENDING")
        rid = self._id("REF")
        refund: dict[str, Any] = {
            "id": rid, "payment_id": payment["id"], "amount": amount,
            "currency": payment["currency"], "status": status,
            "status_code": {"SUCCESS": 200, "PENDING": 100, "REJECTED": 300}[status],
            "status_detail": {"SUCCESS": "The refund was paid.",
                              "PENDING": "The refund is pending.",
                              "REJECTED": "The refund was rejected."}[status],
            "created_date": api.x_date(self.now()), "order_id": payment.get("order_id"),
        }
        if body.get("notification_url"):
            refund["notification_url"] = body["notification_url"]
        self.refunds[rid] = refund
        return 200, refund

    def get_refund(self, rid: str) -> Answer:
        refund = self.refunds.get(rid)
        if refund is None:
            return _error(404, 4000, "Payment not found.")
        return 200, {k: refund[k] for k in ("id", "payment_id", "status", "status_code",
                                            "status_detail", "amount", "currency")}

    def settle_refund(self, rid: str, status: str) -> tuple[Answer, list[Delivery]]:
        refund = self.refunds.get(rid)
        if refund is None or status not in ("SUCCESS", "REJECTED"):
            return _error(400, 5000, "Invalid request."), []
        refund["status"] = status
        refund["status_code"] = 200 if status == "SUCCESS" else 300
        refund["status_detail"] = ("The refund was paid." if status == "SUCCESS"
                                   else "The refund was rejected.")
        sent = self.send_webhook(Webhook(event_id=f"{rid}:{status}", type=f"refund.{status}",
                                         payload=dict(refund), object_id=rid))
        return (200, refund), sent

    # --- notifications -------------------------------------------------------------------------

    def _notify(self, payment: dict[str, Any], *, again: bool = False) -> list[Delivery]:
        event = f"{payment['id']}:{payment['status_code']}"
        return self.send_webhook(Webhook(
            event_id=event + (":again" if again else ""), type=f"payment.{payment['status']}",
            payload=dict(payment), object_id=payment["id"]))

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        """The payment (or refund) object, signed as dLocal signs a request."""
        body = api.dumps(webhook.payload)
        date = api.x_date(self.now())
        key = self.secret_key if self.dknobs.webhook_signature == "valid" else "another-key"
        return body, {"Content-Type": "application/json", "X-Date": date,
                      "X-Login": self.x_login,
                      "Authorization": api.authorization(key, self.x_login, date, body)}
