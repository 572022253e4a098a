"""The Mercado Pago provider: PagoEfectivo cash codes, Yape and cards in Peru, one API.

- **cash** (``payment_method_id: pagoefectivo_atm``): the payment is created pending
  with a PagoEfectivo code and ticket URL (``show_cash_code``), paid at banks and
  agents until ``date_of_expiration``; S/ 5 to S/ 10,000; cancel while pending.
- **wallet** (``yape``): ``phone`` and ``otp`` (the approval code from the Yape app)
  buy a one-use token from ``/platforms/pci/yape/v1/payment`` with the public key,
  then pay with it; only approved or rejected. Without them the payment waits with
  an ``approve_in_wallet`` next action that ``confirm(phone=, otp=)`` completes.
- **card**: a ``token`` from MercadoPago.js (or the sandbox's ``/v1/card_tokens``),
  ``payment_method_id`` the brand (``visa``, ``master``), ``installments``,
  ``issuer_id``.

Every create and refund carries ``X-Idempotency-Key`` (required by Mercado Pago)
derived from pasarela's key. A payment whose answer was lost is found by search
(``external_reference`` is the order's reference, ``metadata.payment_id`` ours).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pasarela import next_action
from pasarela import provider as contract
from pasarela.errors import ErrorCode, ProviderError, ProviderValidationError, UnsupportedError
from pasarela.lifecycle import Status
from pasarela.model import Method, RefundStatus
from pasarela.money import Money
from pasarela.provider import (
    Flow,
    Ineligibility,
    Operation,
    Provider,
    WebhookHeaders,
    imported_on_use,
)
from pasarela_mercadopago.actions import LIMA, approve_in_yape
from pasarela_mercadopago.errors import ERROR_CODES
from pasarela_mercadopago.settings import MercadoPagoSettings


if TYPE_CHECKING:
    from pasarela.model import Order, Payment, Refund
    from pasarela.provider import (
        CreateRequest,
        ProviderPayment,
        ProviderRefund,
        SettlementLine,
        WebhookEvent,
    )
    from pasarela_mercadopago import api, webhooks
else:  # the requests, answers and webhooks: imported when a provider first runs one
    api = imported_on_use("pasarela_mercadopago.api", globals())
    webhooks = imported_on_use("pasarela_mercadopago.webhooks", globals())


__all__ = ["METHOD_LIMITS", "MercadoPagoProvider"]

#: Per method, (min, max) in PEN minor units. Cash: S/ 5 to S/ 10,000 (Mercado Pago
#: Peru, "other payment methods"). Yape: the payer's own limit (S/ 500, 900 or 2,000,
#: set in the app) caps it; S/ 2,000 here, S/ 1 minimum assumed. Card: S/ 1 to
#: S/ 50,000 assumed (README: unverified).
METHOD_LIMITS: Final[Mapping[Method, tuple[int, int]]] = {
    Method.CASH: (500, 1_000_000),
    Method.WALLET: (100, 200_000),
    Method.CARD: (100, 5_000_000),
}
#: Mercado Pago parameters -> the order fields they come from (refusals name these).
FIELD_NAMES: Final[Mapping[str, str]] = {
    "payer.email": "customer.email", "transaction_amount": "amount",
    "date_of_expiration": "expires_at", "token": "token", "payment_method_id":
    "payment_method_id", "phoneNumber": "phone", "otp": "otp",
}
_OTP = re.compile(r"^\d{6}$")
_MOBILE = re.compile(r"^\d{9}$")


def _invalid(field: str, reason: str, code: ErrorCode | None = None) -> ProviderValidationError:
    extra: dict[str, Any] = {"code": code} if code is not None else {}
    return ProviderValidationError(f"{field}: {reason}", fields={field: reason},
                                   provider="mercadopago", created_nothing=True, **extra)


def _phone(value: object) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    digits = re.sub(r"[\s\-().]", "", str(value))
    if digits.startswith("+51"):
        digits = digits[3:]
    elif len(digits) == 11 and digits.startswith("51"):
        digits = digits[2:]
    return digits if _MOBILE.match(digits) else None


class MercadoPagoProvider(Provider[MercadoPagoSettings]):
    """Mercado Pago Peru: cash (PagoEfectivo), wallet (Yape) and cards, in PEN."""

    name: ClassVar[str] = "mercadopago"
    display_name: ClassVar[str] = "Mercado Pago"
    methods: ClassVar[frozenset[Method]] = frozenset({Method.CASH, Method.WALLET, Method.CARD})
    #: PagoEfectivo codes (pagoefectivo_atm) and Yape, collected by Mercado Pago; cards
    #: by brand (the answer's payment_method_id names it).
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {
        Method.CASH: ("pagoefectivo",), Method.WALLET: ("yape",),
        Method.CARD: ("visa", "mastercard", "amex", "diners")}
    countries: ClassVar[frozenset[str]] = frozenset({"PE"})
    currencies: ClassVar[frozenset[str]] = frozenset({"PEN"})
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {"PEN": (100, 5_000_000)}
    method_limits: ClassVar[Mapping[Method, tuple[int, int]]] = METHOD_LIMITS
    #: A PagoEfectivo code's life when the order gives none (an assumption: 48 h, as
    #: PagoEfectivo's ``accreditation_time`` of 2880 minutes suggests).
    default_expiry: ClassVar[timedelta | None] = timedelta(hours=48)
    notification_delay: ClassVar[timedelta] = timedelta(minutes=30)
    operations: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.CREATE, Operation.CONFIRM, Operation.GET,
        Operation.GET_MANY, Operation.CANCEL, Operation.REFUND, Operation.GET_REFUND,
        Operation.WEBHOOK, Operation.SETTLEMENTS,
    })
    #: Creates and refunds carry an idempotency key; the rest are reads or a cancel.
    retry_safe: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.CREATE, Operation.GET, Operation.GET_MANY,
        Operation.CANCEL, Operation.REFUND, Operation.GET_REFUND, Operation.SETTLEMENTS,
    })
    #: ``api.SEARCH_LIMIT``, the most one search returns (a test holds them equal).
    get_many_limit: ClassVar[int] = 100
    settings_class: ClassVar[type[MercadoPagoSettings]] = MercadoPagoSettings
    error_codes: ClassVar[Mapping[str, ErrorCode]] = ERROR_CODES
    secret_headers: ClassVar[frozenset[str]] = frozenset({
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-signature"})
    secret_fields: ClassVar[frozenset[str]] = frozenset({
        "otp", "phoneNumber", "token", "email", "first_name", "last_name", "number"})
    webhook_content_types: ClassVar[frozenset[str]] = frozenset({"application/json"})
    sandbox_factory: ClassVar[str | None] = "pasarela_mercadopago.sandbox:create_app"

    # --- checks (no I/O) ----------------------------------------------------------------

    def ineligibility(self, order: Order, method: Method) -> Ineligibility | None:
        reason = super().ineligibility(order, method)
        if reason is not None:
            return reason
        low, high = self.method_limits[method]
        if not low <= order.amount.minor <= high:
            return Ineligibility(
                ErrorCode.AMOUNT_OUT_OF_RANGE,
                f"{method.value} takes {Money(low, 'PEN')} to {Money(high, 'PEN')}")
        return None

    def _json(self, response: Any) -> Any:
        return api.parse_json(response, now=self.clock(), field_names=FIELD_NAMES)

    def check_request(self, request: CreateRequest) -> None:
        self._plan(request)

    def _plan(self, request: CreateRequest) -> dict[str, Any] | None:
        """The body of ``POST /v1/payments`` for *request* (None: wait for Yape's code)."""
        if request.amount.currency not in self.currencies:
            raise UnsupportedError(f"Mercado Pago takes PEN, not {request.amount.currency}",
                                   code=ErrorCode.UNSUPPORTED_CURRENCY, provider=self.name)
        if request.method not in self.methods:
            raise UnsupportedError(f"Mercado Pago does not take {request.method.value}",
                                   code=ErrorCode.UNSUPPORTED_METHOD, provider=self.name)
        low, high = self.method_limits[request.method]
        if not low <= request.amount.minor <= high:
            raise _invalid("amount", f"{request.method.value} takes {Money(low, 'PEN')} to "
                                     f"{Money(high, 'PEN')}", ErrorCode.AMOUNT_OUT_OF_RANGE)
        params = request.params
        body = self._common(request.order, request.payment_id, params)
        if request.method is Method.CASH:
            expires_at = request.expires_at or (self.clock() + (self.expiry()
                                                                or timedelta(hours=48)))
            if expires_at <= self.clock():
                raise _invalid("expires_at", "must be in the future")
            return {**body, "payment_method_id": api.CASH_METHOD,
                    "date_of_expiration": expires_at.astimezone(LIMA).isoformat(
                        timespec="milliseconds")}
        if request.method is Method.WALLET:
            if params.get("otp") in (None, "") and params.get("phone") in (None, ""):
                return None
            self._yape_inputs(params)
            return {**body, "payment_method_id": api.WALLET_METHOD, "installments": 1}
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise _invalid("token", "a card token from MercadoPago.js is required")
        brand = params.get("payment_method_id")
        if not isinstance(brand, str) or not brand:
            raise _invalid("payment_method_id", "the card's brand (visa, master, amex, ...) "
                                                "is required")
        installments = params.get("installments", 1)
        if isinstance(installments, bool) or not isinstance(installments, int) or not (
                1 <= installments <= 36):
            raise _invalid("installments", "must be a whole number from 1 to 36")
        card = {**body, "token": token, "payment_method_id": brand,
                "installments": installments}
        if params.get("issuer_id") not in (None, ""):
            card["issuer_id"] = str(params["issuer_id"])
        if self.settings.statement_descriptor:
            card["statement_descriptor"] = self.settings.statement_descriptor
        return card

    def _common(self, order: Order | None, payment_id: str, params: Mapping[str, Any]
                ) -> dict[str, Any]:
        customer = order.customer if order is not None else None
        email = params.get("email") or (customer.email if customer is not None else None)
        if not isinstance(email, str) or not email:
            raise _invalid("customer.email", "Mercado Pago needs the payer's email")
        payer: dict[str, Any] = {"email": email}
        if customer is not None:
            payer["first_name"], payer["last_name"] = customer.first_name, customer.last_name
            if customer.document is not None:
                payer["identification"] = {"type": customer.document.kind,
                                           "number": customer.document.number}
        reference = order.reference if order is not None else payment_id
        body: dict[str, Any] = {
            "description": ((order.description if order is not None else "")
                            or f"Pedido {reference}")[:600],
            "external_reference": reference,
            "metadata": {"payment_id": payment_id},
            "payer": payer,
        }
        if self.settings.notification_url:
            separator = "&" if "?" in self.settings.notification_url else "?"
            body["notification_url"] = (f"{self.settings.notification_url}{separator}"
                                        "source_news=webhooks")
        return body

    def _yape_inputs(self, params: Mapping[str, Any]) -> tuple[str, str]:
        phone = _phone(params.get("phone"))
        if phone is None:
            raise _invalid("phone", "the 9-digit phone of the Yape account is required")
        otp = str(params.get("otp") or "").strip()
        if not _OTP.match(otp):
            raise _invalid("otp", "the 6-digit approval code from the Yape app is required")
        return phone, otp

    # --- flows ----------------------------------------------------------------------------

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        body = self._plan(request)
        if body is None:
            return contract.ProviderPayment(status=Status.PENDING, raw_status="awaiting_yape_code",
                                            next_action=approve_in_yape(request.amount))
        if request.method is Method.WALLET:
            body["token"] = yield from self._yape_token(request.params, request.idempotency_key)
        response = yield api.build_create(self.settings, body, request.amount,
                                          key=request.idempotency_key)
        return api.parse_payment(self._json(response), raise_rejected=True)

    def _yape_token(self, params: Mapping[str, Any], key: str) -> Flow[str]:
        phone, otp = self._yape_inputs(params)
        response = yield api.build_yape_token(self.settings, phone=phone, otp=otp,
                                              request_id=f"{key}:yape")
        answer = self._json(response)
        token = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderError("Mercado Pago answered no Yape token", provider=self.name,
                                created_nothing=True)
        return token

    def confirm(self, payment: Payment, params: Mapping[str, Any]) -> Flow[ProviderPayment]:
        """Complete a Yape payment waiting for its approval code (``phone``, ``otp``)."""
        if payment.method is not Method.WALLET or payment.provider_reference is not None or (
                not isinstance(payment.next_action, next_action.ApproveInWallet | None)):
            raise UnsupportedError("only a Yape payment waiting for its approval code can be "
                                   "confirmed", code=ErrorCode.UNSUPPORTED_OPERATION,
                                   provider=self.name)
        self._yape_inputs(params)
        body = {**self._common(payment.order, payment.id, params),
                "payment_method_id": api.WALLET_METHOD, "installments": 1}
        key = f"{payment.idempotency_key}:confirm"
        body["token"] = yield from self._yape_token(params, key)
        response = yield api.build_create(self.settings, body, payment.amount, key=key)
        return api.parse_payment(self._json(response), raise_rejected=True)

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        if payment.provider_reference:
            response = yield api.build_get(self.settings, payment.provider_reference)
            return api.parse_payment(self._json(response))
        if payment.method is Method.WALLET and payment.status is Status.PENDING and (
                isinstance(payment.next_action, next_action.ApproveInWallet)):
            return contract.ProviderPayment(status=Status.PENDING, raw_status="awaiting_yape_code",
                                            next_action=payment.next_action)
        # The create's answer was lost: search the order's payments for ours.
        response = yield api.build_search(self.settings, {
            "external_reference": payment.order_reference, "sort": "date_created",
            "criteria": "desc", "limit": api.SEARCH_LIMIT})
        results, _ = api.parse_search(self._json(response))
        for found in results:
            metadata = found.get("metadata") or {}
            if isinstance(metadata, dict) and metadata.get("payment_id") == payment.id:
                return api.parse_payment(found)
        raise ProviderError(f"no Mercado Pago payment found for payment {payment.id} (yet)",
                            provider=self.name, code=ErrorCode.NOT_FOUND, retryable=True)

    def get_many(self, payments: Sequence[Payment]) -> Flow[dict[str, ProviderPayment]]:
        """One search over the payments' creation window (a minute each side), page by
        page; the answer keeps only the references asked about."""
        wanted = {p.provider_reference for p in payments if p.provider_reference}
        if not wanted:
            return {}
        window = api.search_window([p.created_at for p in payments])
        found: dict[str, ProviderPayment] = {}
        offset = 0
        while True:
            response = yield api.build_search(self.settings, {
                **window, "sort": "date_created", "criteria": "asc",
                "limit": api.SEARCH_LIMIT, "offset": offset})
            results, total = api.parse_search(self._json(response))
            for result in results:
                if str(result.get("id")) in wanted:
                    found[str(result["id"])] = api.parse_payment(result)
            offset += len(results)
            if not results or offset >= total or found.keys() >= wanted:
                return found

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        if not payment.provider_reference:
            raise ProviderError("no Mercado Pago payment id is known yet", provider=self.name,
                                code=ErrorCode.NOT_FOUND)
        response = yield api.build_cancel(self.settings, payment.provider_reference)
        return api.parse_payment(self._json(response))

    def refund(self, payment: Payment, amount: Money, *, refund_id: str, reason: str,
               params: Mapping[str, Any] | None = None) -> Flow[ProviderRefund]:
        if amount.currency != payment.amount.currency:
            raise _invalid("amount", f"the payment is in {payment.amount.currency}")
        if not payment.provider_reference:
            raise ProviderError("no Mercado Pago payment id is known yet", provider=self.name,
                                code=ErrorCode.NOT_FOUND, created_nothing=True)
        part = None if amount == payment.amount else amount
        response = yield api.build_refund(self.settings, payment.provider_reference, part,
                                          key=f"refund:{refund_id}")
        return api.parse_refund(self._json(response), amount.currency, refund_id=refund_id)

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        """By its id: ``GET /v1/payments/{id}/refunds/{refund}``. Mercado Pago keeps
        nothing of our refund id (a refund takes only ``amount``), so a refund whose
        answer was lost is ``pending`` until an operator or a webhook says."""
        if not refund.provider_reference or not payment.provider_reference:
            return contract.ProviderRefund(status=RefundStatus.PENDING, refund_id=refund.id,
                                           payment_reference=payment.provider_reference)
        response = yield api.build_get_refund(self.settings, payment.provider_reference,
                                              refund.provider_reference)
        return api.parse_refund(self._json(response), refund.amount.currency,
                                refund_id=refund.id)

    def settlements(self, since: datetime, until: datetime, *,
                    references: Sequence[str] | None = None
                    ) -> Flow[Iterable[SettlementLine]]:
        """The release report of ``[since, until)``: the newest one listed for exactly
        that window, else one asked for now (``POST``, then the list again). A report
        Mercado Pago has not finished is a retryable error: run reconcile again."""
        response = yield api.build_report_list(self.settings)
        file_name = api.parse_report_list(self._json(response), since, until)
        if file_name is None:
            response = yield api.build_report_generate(self.settings, since, until)
            self._json(response)
            response = yield api.build_report_list(self.settings)
            file_name = api.parse_report_list(self._json(response), since, until)
        if file_name is None:
            raise ProviderError("Mercado Pago is still generating the release report: try "
                                "again in a few minutes", provider=self.name, retryable=True,
                                code=ErrorCode.PROVIDER_UNAVAILABLE)
        response = yield api.build_report_download(self.settings, file_name)
        if not response.is_success:
            self._json(response)
        return api.parse_report(response.content)

    def probe(self) -> Flow[None]:
        """One search of one payment: the token, nothing changed."""
        response = yield api.build_search(self.settings, {"limit": 1})
        self._json(response)

    # --- webhooks ---------------------------------------------------------------------

    def parse_webhook(self, headers: WebhookHeaders, body: bytes, *, now: datetime
                      ) -> list[WebhookEvent]:
        if not self.settings.webhook_secrets:
            from pasarela.errors import ConfigurationError  # noqa: PLC0415

            raise ConfigurationError("no webhook secret is configured",
                                     path="providers.mercadopago.webhook_secrets")
        data = webhooks.verify(headers, body, self.settings.webhook_secrets, now=now,
                               tolerance=self.settings.webhook_tolerance)
        return webhooks.parse_notification(data, headers.get("x-request-id"),
                                           signed=webhooks.signed_id(headers, data))
