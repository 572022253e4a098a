"""The Mercado Pago sandbox's account: payments, tokens, refunds, release reports.

Rules as Mercado Pago documents them (README, "The sandbox"): ``X-Idempotency-Key``
required on creates and refunds (a repeated key replays the first answer);
``pagoefectivo_atm`` in PEN from S/ 5 to S/ 10,000, pending with a code and a ticket
URL until paid (control) or expired; Yape tokens from a 9-digit phone and a 6-digit
OTP, paid approved or rejected; card tokens whose cardholder name picks the outcome
(``APRO``, ``OTHE``, ``CONT``, ``CALL``, ``FUND``, ``SECU``, ``EXPI``, ``FORM``);
refunds of approved payments; a webhook (``payment.created`` / ``payment.updated``)
for each change; the release report of approved payments and refunds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Final

import attrs

from pasarela.fees import FeeSchedule
from pasarela.money import Money
from pasarela.testing.sandbox import Credential, Sandbox, Webhook
from pasarela_mercadopago.actions import LIMA
from pasarela_mercadopago.sandbox.knobs import MercadoPagoKnobs
from pasarela_mercadopago.settings import DEFAULT_FEES
from pasarela_mercadopago.webhooks import signature_header


__all__ = ["ACCESS_TOKEN", "PUBLIC_KEY", "WEBHOOK_SECRET", "ApiError", "MercadoPagoSandbox"]

ACCESS_TOKEN: Final = "TEST-0000000000000000-010100-pasarelasandbox0000000000000000-000000001"  # noqa: S105 - a public test value
PUBLIC_KEY: Final = "TEST-pasarela-sandbox-public-key-0000000000"
WEBHOOK_SECRET: Final = "pasarela-mercadopago-sandbox-webhook-secret"  # noqa: S105 - test value
COLLECTOR_ID: Final = 1000000001

#: Card test names -> (status, status_detail) (Mercado Pago "test cards").
CARD_OUTCOMES: Final[Mapping[str, tuple[str, str]]] = {
    "APRO": ("approved", "accredited"),
    "OTHE": ("rejected", "cc_rejected_other_reason"),
    "CONT": ("in_process", "pending_contingency"),
    "CALL": ("rejected", "cc_rejected_call_for_authorize"),
    "FUND": ("rejected", "cc_rejected_insufficient_amount"),
    "SECU": ("rejected", "cc_rejected_bad_filled_security_code"),
    "EXPI": ("rejected", "cc_rejected_bad_filled_date"),
    "FORM": ("rejected", "cc_rejected_bad_filled_other"),
}
#: Yape test phones -> outcome; any other 9-digit phone is approved (README).
YAPE_OUTCOMES: Final[Mapping[str, tuple[str, str]]] = {
    "111111111": ("approved", "accredited"),
    "111111112": ("rejected", "cc_rejected_call_for_authorize"),
    "111111113": ("rejected", "cc_rejected_insufficient_amount"),
    "111111114": ("rejected", "cc_rejected_other_reason"),
}
CASH_LIMITS: Final = (Decimal("5"), Decimal("10000"))
_TYPES: Final = {"pagoefectivo_atm": "atm", "yape": "yape", "visa": "credit_card",
                 "master": "credit_card", "amex": "credit_card", "diners": "credit_card",
                 "debvisa": "debit_card", "debmaster": "debit_card"}


@attrs.define
class ApiError(Exception):
    """An answer in Mercado Pago's error shape."""

    status: int
    message: str
    error: str = "bad_request"
    code: int | None = None
    param: str | None = None

    def body(self) -> dict[str, Any]:
        cause = [] if self.code is None else [{"code": self.code, "description": self.message,
                                               "data": None}]
        return {"message": self.message, "error": self.error, "status": self.status,
                "cause": cause}


def _amount(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ApiError(400, f"{field} must be a number", code=1, param=field)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ApiError(400, f"{field} must be a number", code=1, param=field) from None
    if number <= 0 or number != number.quantize(Decimal("0.01")):
        raise ApiError(400, f"invalid {field}", code=4037, param=field)
    return number


class MercadoPagoSandbox(Sandbox):
    """One Mercado Pago test account in memory."""

    name: ClassVar[str] = "mercadopago"
    title: ClassVar[str] = "Mercado Pago (Payments API v1)"
    default_port: ClassVar[int] = 8814
    knobs_class: ClassVar[type[MercadoPagoKnobs]] = MercadoPagoKnobs
    operations: ClassVar[tuple[str, ...]] = (
        "create", "get", "search", "cancel", "refund", "get_refund", "yape_token",
        "card_token", "report")
    fault_kinds: ClassVar[tuple[str, ...]] = ("500", "500_after", "hang", "hang_after")

    def __init__(self, *, access_token: str = ACCESS_TOKEN, public_key: str = PUBLIC_KEY,
                 webhook_secret: str = WEBHOOK_SECRET,
                 clock: Callable[[], datetime] | None = None, seed: int | None = None,
                 **knobs: Any) -> None:
        super().__init__(clock=clock, seed=seed, **knobs)
        self.access_token, self.public_key = access_token, public_key
        self.webhook_secret = webhook_secret
        self.clear()

    # --- life ---------------------------------------------------------------------------

    def clear(self) -> None:
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, list[dict[str, Any]]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.saved: dict[str, tuple[int, dict[str, Any]]] = {}
        self.reports: list[dict[str, Any]] = []
        self.report_files: dict[str, bytes] = {}
        self.report_config: dict[str, Any] = {"separator": ";", "display_timezone": "GMT-05",
                                              "file_name_prefix": "release-report"}
        self.next_id = 1320000001
        self.next_refund = 2140000001
        self.next_notification = 110000000001

    def counts(self) -> dict[str, int]:
        return {"payments": len(self.payments), "tokens": len(self.tokens),
                "refunds": sum(len(v) for v in self.refunds.values()),
                "reports": len(self.reports)}

    def credentials(self) -> list[Credential]:
        return [Credential("access_token", self.access_token, "Bearer; only this one"),
                Credential("public_key", self.public_key, "creates Yape and card tokens"),
                Credential("webhook_secrets", self.webhook_secret, "signs x-signature")]

    def settings(self, url: str) -> dict[str, Any]:
        return {"environment": "sandbox", "base_url": url, "access_token": self.access_token,
                "public_key": self.public_key, "webhook_secrets": [self.webhook_secret]}

    def control_error(self, error: Exception) -> tuple[int, Any] | None:
        if isinstance(error, ApiError):
            return error.status, error.body()
        return None

    # --- checks -------------------------------------------------------------------------

    def authenticate(self, header: str) -> None:
        if header != f"Bearer {self.access_token}":
            raise ApiError(401, "invalid access token", error="unauthorized")

    def check_public_key(self, key: str | None) -> None:
        if key != self.public_key:
            raise ApiError(401, "invalid public_key", error="unauthorized")

    def _date(self, moment: datetime) -> str:
        return moment.astimezone(LIMA).isoformat(timespec="milliseconds")

    # --- tokens -------------------------------------------------------------------------

    def yape_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid body", code=1)
        phone, otp = str(body.get("phoneNumber") or ""), str(body.get("otp") or "")
        if not (phone.isdigit() and len(phone) == 9):
            raise ApiError(400, "invalid phoneNumber", code=1, param="phoneNumber")
        if not (otp.isdigit() and len(otp) == 6):
            raise ApiError(400, "invalid otp", code=1, param="otp")
        if not body.get("requestId"):
            raise ApiError(400, "requestId is required", code=1, param="requestId")
        token = uuid.UUID(int=self.random.getrandbits(128)).hex
        now = self._date(self.now())
        self.tokens[token] = {"kind": "yape", "phone": phone, "used": False}
        return {"id": token, "live_mode": False, "date_created": now,
                "date_due": self._date(self.now() + timedelta(minutes=5))}

    def card_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid body", code=1)
        number = str(body.get("card_number") or "")
        found = body.get("cardholder")
        holder: dict[str, Any] = found if isinstance(found, dict) else {}
        if not number.isdigit() or not 13 <= len(number) <= 19:
            raise ApiError(400, "invalid card_number", code=1, param="card_number")
        token = uuid.UUID(int=self.random.getrandbits(128)).hex
        name = str(holder.get("name") or "APRO").upper()
        self.tokens[token] = {"kind": "card", "name": name, "used": False}
        return {"id": token, "first_six_digits": number[:6], "last_four_digits": number[-4:],
                "status": "active", "live_mode": False, "date_created": self._date(self.now()),
                "cardholder": {"name": name}}

    # --- payments -----------------------------------------------------------------------

    def idempotent(self, key: str | None, route: str, run: Callable[[], tuple[int, Any]]
                   ) -> tuple[int, Any]:
        if not key:
            raise ApiError(400, "X-Idempotency-Key header is required", code=4292,
                           param="X-Idempotency-Key")
        saved = self.saved.get(f"{route}|{key}")
        if saved is not None:
            return saved
        answer = run()
        self.saved[f"{route}|{key}"] = answer
        return answer

    def create_payment(self, body: Any, base_url: str) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid body", code=1)
        amount = _amount(body.get("transaction_amount"), "transaction_amount")
        method = body.get("payment_method_id")
        if not isinstance(method, str) or method not in _TYPES:
            raise ApiError(400, "payment_method_id is invalid", code=1,
                           param="payment_method_id")
        found = body.get("payer")
        payer: dict[str, Any] = found if isinstance(found, dict) else {}
        if not payer.get("email") or "@" not in str(payer.get("email")):
            raise ApiError(400, "payer.email is required", code=1, param="payer.email")
        now = self.now()
        expires = None
        token_info: dict[str, Any] | None = None
        if method == "pagoefectivo_atm":
            low, high = CASH_LIMITS
            if not low <= amount <= high:
                raise ApiError(400, "transaction_amount out of range for pagoefectivo_atm",
                               code=4037, param="transaction_amount")
            raw = body.get("date_of_expiration")
            try:
                expires = datetime.fromisoformat(str(raw)) if raw else now + timedelta(days=2)
            except ValueError:
                raise ApiError(400, "The following parameters must be valid date and format "
                                    "(yyyy-MM-dd'T'HH:mm:ssz) date_of_expiration", code=23,
                               param="date_of_expiration") from None
            if expires.tzinfo is None:
                raise ApiError(400, "date_of_expiration needs a time zone", code=23,
                               param="date_of_expiration")
            status, detail = "pending", "pending_waiting_payment"
        else:
            token = body.get("token")
            token_info = self.tokens.get(str(token)) if token else None
            kind = "yape" if method == "yape" else "card"
            if token_info is None or token_info["kind"] != kind or token_info["used"]:
                raise ApiError(400, "Card Token not found", code=2006, param="token")
            token_info["used"] = True
            if kind == "yape":
                status, detail = YAPE_OUTCOMES.get(token_info["phone"],
                                                   ("approved", "accredited"))
            else:
                status, detail = CARD_OUTCOMES.get(token_info["name"],
                                                   ("approved", "accredited"))
        ident = str(self.next_id)
        self.next_id += 1
        payment: dict[str, Any] = {
            "id": int(ident), "date_created": self._date(now),
            "date_approved": self._date(now) if status == "approved" else None,
            "date_last_updated": self._date(now),
            "date_of_expiration": self._date(expires) if expires else None,
            "money_release_date": self._date(now) if status == "approved" else None,
            "operation_type": "regular_payment", "payment_method_id": method,
            "payment_type_id": _TYPES[method], "status": status, "status_detail": detail,
            "currency_id": "PEN", "description": body.get("description"),
            "live_mode": False, "collector_id": COLLECTOR_ID,
            "payer": {"email": payer.get("email"), "identification": payer.get(
                "identification") or {}, "type": "guest"},
            "metadata": body.get("metadata") or {},
            "external_reference": body.get("external_reference"),
            "transaction_amount": amount, "transaction_amount_refunded": Decimal(0),
            "installments": body.get("installments") or 1,
            "transaction_details": {"net_received_amount": Decimal(0),
                                    "total_paid_amount": amount, "overpaid_amount": Decimal(0),
                                    "installment_amount": amount},
            "fee_details": [], "captured": True, "binary_mode": method == "yape",
            "statement_descriptor": body.get("statement_descriptor"),
            "notification_url": body.get("notification_url"), "refunds": [],
        }
        if method == "pagoefectivo_atm":
            code = str(self.random.randint(10_000_000, 99_999_999))
            payment["transaction_details"].update({
                "payment_method_reference_id": code, "financial_institution": "pagoefectivo",
                "external_resource_url": f"{base_url.rstrip('/')}/sandbox/tickets/{ident}"})
        if status == "approved":
            self._approve(payment, now)
        self.payments[ident] = payment
        self._notify(payment, "payment.created")
        return 201, payment

    def _fee(self, payment: dict[str, Any]) -> Money:
        method = {"atm": "cash", "yape": "wallet"}.get(payment["payment_type_id"], "card")
        schedule = FeeSchedule.from_mapping(DEFAULT_FEES, path="sandbox.fees", method=method)
        return schedule.fee(Money.of(payment["transaction_amount"], "PEN"))

    def _approve(self, payment: dict[str, Any], now: datetime) -> None:
        fee = self._fee(payment).amount
        payment.update({"status": "approved", "status_detail": "accredited",
                        "date_approved": self._date(now), "money_release_date": self._date(now),
                        "date_last_updated": self._date(now),
                        "fee_details": [{"type": "mercadopago_fee", "amount": fee,
                                         "fee_payer": "collector"}]})
        payment["transaction_details"]["net_received_amount"] = (
            payment["transaction_amount"] - fee)

    def payment(self, ident: str) -> dict[str, Any]:
        found = self.payments.get(ident)
        if found is None:
            raise ApiError(404, "Payment not found", error="not_found", code=2000)
        self._expire_if_due(found)
        return found

    def _expire_if_due(self, payment: dict[str, Any]) -> None:
        due = payment.get("date_of_expiration")
        if payment["status"] == "pending" and due and datetime.fromisoformat(due) <= self.now():
            payment.update({"status": "cancelled", "status_detail": "expired",
                            "date_last_updated": self._date(self.now())})
            self._notify(payment, "payment.updated")

    def search(self, query: Mapping[str, str]) -> dict[str, Any]:
        for payment in self.payments.values():
            self._expire_if_due(payment)
        found = list(self.payments.values())
        if query.get("external_reference"):
            found = [p for p in found if p.get("external_reference") == query[
                "external_reference"]]
        if query.get("range") == "date_created":
            try:
                low = datetime.fromisoformat(query["begin_date"].replace("Z", "+00:00"))
                high = datetime.fromisoformat(query["end_date"].replace("Z", "+00:00"))
            except (KeyError, ValueError):
                raise ApiError(400, "invalid begin_date or end_date", code=1) from None
            found = [p for p in found
                     if low <= datetime.fromisoformat(p["date_created"]) <= high]
        found.sort(key=lambda p: p["date_created"], reverse=query.get("criteria") == "desc")
        try:
            limit = max(1, min(int(query.get("limit", "30")), 1000))
            offset = max(0, int(query.get("offset", "0")))
        except ValueError:
            raise ApiError(400, "limit and offset must be numbers", code=1) from None
        page = found[offset:offset + limit]
        return {"paging": {"total": len(found), "limit": limit, "offset": offset},
                "results": page}

    def update(self, ident: str, body: Any) -> dict[str, Any]:
        payment = self.payment(ident)
        if not isinstance(body, dict) or body.get("status") != "cancelled":
            raise ApiError(400, "only status cancelled is supported", code=1, param="status")
        if payment["status"] not in ("pending", "in_process", "authorized"):
            raise ApiError(400, "Invalid status for the action", code=2063)
        payment.update({"status": "cancelled", "status_detail": "by_collector",
                        "date_last_updated": self._date(self.now())})
        self._notify(payment, "payment.updated")
        return payment

    def pay_ticket(self, ident: str) -> dict[str, Any]:
        """A bank agent takes the cash for a pending PagoEfectivo code (control)."""
        payment = self.payment(ident)
        if payment["status"] != "pending":
            raise ApiError(400, f"the payment is {payment['status']}, not pending", code=2063)
        self._approve(payment, self.now())
        self._notify(payment, "payment.updated")
        return payment

    def expire(self, ident: str) -> dict[str, Any]:
        payment = self.payment(ident)
        if payment["status"] == "pending":
            payment["date_of_expiration"] = self._date(self.now() - timedelta(seconds=1))
            self._expire_if_due(payment)
        return payment

    # --- refunds ------------------------------------------------------------------------

    def refund(self, ident: str, body: Any) -> tuple[int, dict[str, Any]]:
        payment = self.payment(ident)
        if payment["status"] != "approved":
            raise ApiError(400, "Invalid status for the action", code=2063)
        left = payment["transaction_amount"] - payment["transaction_amount_refunded"]
        raw = body.get("amount") if isinstance(body, dict) else None
        amount = left if raw is None else _amount(raw, "amount")
        if amount > left:
            raise ApiError(400, "amount exceeds the refundable amount", code=2063,
                           param="amount")
        refund = {"id": self.next_refund, "payment_id": int(ident), "amount": amount,
                  "metadata": {}, "source": {"id": str(COLLECTOR_ID), "name": "collector",
                                             "type": "collector"},
                  "date_created": self._date(self.now()), "unique_sequence_number": None,
                  "refund_mode": "standard", "adjustment_amount": Decimal(0),
                  "status": "approved", "reason": None, "amount_refunded_to_payer": amount}
        self.next_refund += 1
        self.refunds.setdefault(ident, []).append(refund)
        payment["refunds"].append(refund)
        payment["transaction_amount_refunded"] += amount
        if payment["transaction_amount_refunded"] == payment["transaction_amount"]:
            payment.update({"status": "refunded", "status_detail": "refunded"})
        else:
            payment["status_detail"] = "partially_refunded"
        payment["date_last_updated"] = self._date(self.now())
        self._notify(payment, "payment.updated")
        return 201, refund

    def get_refund(self, ident: str, refund_id: str) -> dict[str, Any]:
        self.payment(ident)
        for refund in self.refunds.get(ident, []):
            if str(refund["id"]) == refund_id:
                return refund
        raise ApiError(404, "Refund not found", error="not_found", code=2000)

    # --- release report -----------------------------------------------------------------

    def generate_report(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "invalid body", code=1)
        try:
            begin = datetime.fromisoformat(str(body["begin_date"]).replace("Z", "+00:00"))
            end = datetime.fromisoformat(str(body["end_date"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise ApiError(400, "begin_date and end_date are required (yyyy-MM-ddTHH:mm:ssZ)",
                           code=1, param="begin_date") from None
        if end < begin or end - begin > timedelta(days=60):
            raise ApiError(400, "a report spans at most 60 days", code=1, param="end_date")
        ident = len(self.reports) + 1
        file_name = (f"{self.report_config['file_name_prefix']}-"
                     f"{COLLECTOR_ID}-{ident:04d}.csv")
        self.report_files[file_name] = self._report_csv(begin, end)
        report = {"id": ident, "begin_date": body["begin_date"], "end_date": body["end_date"],
                  "file_name": file_name, "created_from": "manual",
                  "date_created": self._date(self.now())}
        self.reports.append(report)
        return report

    def _report_csv(self, begin: datetime, end: datetime) -> bytes:
        sep = str(self.report_config.get("separator") or ";")
        columns = ["DATE", "SOURCE_ID", "EXTERNAL_REFERENCE", "RECORD_TYPE", "DESCRIPTION",
                   "NET_CREDIT_AMOUNT", "NET_DEBIT_AMOUNT", "GROSS_AMOUNT", "MP_FEE_AMOUNT",
                   "FINANCING_FEE_AMOUNT", "PAYMENT_METHOD"]
        rows = [sep.join(columns)]
        for payment in self.payments.values():
            released = payment.get("money_release_date")
            if released and begin <= datetime.fromisoformat(released) <= end:
                fee = sum((d["amount"] for d in payment["fee_details"]), Decimal(0))
                gross = payment["transaction_amount"]
                rows.append(sep.join(str(v) for v in (
                    released, payment["id"], payment.get("external_reference") or "",
                    "release", "payment", gross - fee, "0.00", gross, -fee, "0.00",
                    payment["payment_method_id"])))
            for refund in payment["refunds"]:
                if begin <= datetime.fromisoformat(refund["date_created"]) <= end:
                    rows.append(sep.join(str(v) for v in (
                        refund["date_created"], payment["id"],
                        payment.get("external_reference") or "", "release", "refund", "0.00",
                        refund["amount"], -refund["amount"], "0.00", "0.00",
                        payment["payment_method_id"])))
        return ("\n".join(rows) + "\n").encode("utf-8")

    # --- webhooks -----------------------------------------------------------------------

    def _notify(self, payment: dict[str, Any], action: str) -> None:
        ident = self.next_notification
        self.next_notification += 1
        body = {"id": ident, "live_mode": False, "type": "payment",
                "date_created": self._date(self.now()), "user_id": COLLECTOR_ID,
                "api_version": "v1", "action": action, "data": {"id": str(payment["id"])}}
        # As Mercado Pago's webhooks: the URL names the object (?data.id=...&type=payment),
        # and the signature covers that data.id.
        self.send_webhook(Webhook(event_id=str(ident), type=action, payload=body,
                                  object_id=str(payment["id"]),
                                  query=(("data.id", str(payment["id"])), ("type", "payment"))))

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        import json  # noqa: PLC0415

        body = json.dumps(webhook.payload).encode("utf-8")
        request_id = str(uuid.UUID(int=self.random.getrandbits(128)))
        ts = int(self.clock.timestamp())
        secret = self.webhook_secret
        if self.knobs.webhook_signature == "invalid":  # type: ignore[attr-defined]
            secret = "not-the-application-secret"  # noqa: S105 - a deliberately wrong one
        elif self.knobs.webhook_signature == "stale":  # type: ignore[attr-defined]
            ts -= 3600
        header = signature_header(secret, data_id=str(webhook.payload["data"]["id"]),
                                  request_id=request_id, ts=ts)
        return body, {"Content-Type": "application/json", "x-signature": header,
                      "x-request-id": request_id}
