"""The dLocal provider: cards, PagoEfectivo tickets, bank transfers and Yape in Peru,
charged in soles or in US dollars, through dLocal's Payins API (version 2.1).

Every operation is a flow of signed requests built here from :mod:`pasarela_dlocal.api`;
the answers become lifecycle reports, next actions and errors (:mod:`.errors`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from pasarela import next_action
from pasarela import provider as contract
from pasarela.errors import (
    DeclinedError,
    ErrorCode,
    ProviderError,
    ProviderValidationError,
    SignatureInvalidError,
    WebhookError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, RefundStatus
from pasarela.money import Money
from pasarela.next_action import NextAction
from pasarela.provider import (
    Flow,
    Ineligibility,
    Operation,
    Provider,
    WebhookHeaders,
    imported_on_use,
)
from pasarela_dlocal.errors import ERROR_CODES, REJECTIONS, error_from
from pasarela_dlocal.settings import API_VERSION, DlocalSettings


if TYPE_CHECKING:
    import httpx

    from pasarela.model import Order, Payment, Refund
    from pasarela.provider import CreateRequest, ProviderPayment, ProviderRefund, WebhookEvent
    from pasarela_dlocal import api
else:  # what only the operations use: imported when a provider first runs one
    httpx = imported_on_use("httpx", globals())
    api = imported_on_use("pasarela_dlocal.api", globals())


__all__ = ["CARD_MINIMUM", "DlocalProvider", "RefundBank"]  # noqa: F822 - CARD_MINIMUM: __getattr__

#: Cards in Peru take at least S/ 5.00 (docs.dlocal.com/docs/peru), in céntimos.
_CARD_MINIMUM_MINOR: Final = 500


@functools.cache
def _card_minimum() -> Money:
    # Built on first use: a Money loads Babel's currency data, which discovering the
    # plugins does not need.
    return Money(_CARD_MINIMUM_MINOR, "PEN")


def __getattr__(name: str) -> Money:
    """``CARD_MINIMUM``: the least a card payment in PEN takes, ``Money(500, "PEN")``."""
    if name == "CARD_MINIMUM":
        return _card_minimum()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
_CENT: Final = Decimal("0.01")


@attrs.frozen(kw_only=True)
class RefundBank:
    """Where dLocal pays a refund of a cash or bank-transfer payment (it pays those by
    bank transfer, docs.dlocal.com/docs/refunds). Without it dLocal e-mails the buyer
    for the details. ``account_type``: ``C`` current, ``S`` savings, ``I`` international."""

    beneficiary_name: str
    bank: str
    bank_account: str
    bank_account_type: str = "S"
    bank_branch: str | None = None

    def fields(self) -> dict[str, str]:
        out = {"beneficiary_name": self.beneficiary_name, "bank": self.bank,
               "bank_account": self.bank_account, "bank_account_type": self.bank_account_type}
        if self.bank_branch:
            out["bank_branch"] = self.bank_branch
        return out


def _lines(fx: api.Fx | None, charged: Money | None, price: Money | None) -> dict[str, tuple[
        str, ...]]:
    if fx is None or charged is None or price is None:
        return {}
    return {
        "es": (f"Pagas {charged} por un precio de {price} (tipo de cambio de dLocal: "
               f"1 {fx.source} = {fx.rate} {fx.target}).",),
        "en": (f"You pay {charged} for a price of {price} (dLocal's exchange rate: "
               f"1 {fx.source} = {fx.rate} {fx.target}).",),
    }


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


_BANK_FIELDS: Final = ("beneficiary_name", "bank", "bank_account", "bank_account_type",
                       "bank_branch")


def _refund_bank(value: Any) -> RefundBank:
    """``params["bank"]`` as a :class:`RefundBank`; a ``ProviderValidationError``
    naming the field when it is not one."""
    if isinstance(value, RefundBank):
        return value
    if not isinstance(value, Mapping):
        raise ProviderValidationError("the refund's bank must be a table of bank details",
                                      fields={"bank": "a mapping"}, provider="dlocal",
                                      created_nothing=True)
    unknown = sorted(set(value) - set(_BANK_FIELDS))
    missing = [name for name in _BANK_FIELDS[:3] if not isinstance(value.get(name), str)
               or not value.get(name)]
    if unknown or missing:
        fields = {f"bank.{name}": "required" for name in missing}
        fields.update({f"bank.{name}": "unknown field" for name in unknown})
        raise ProviderValidationError("the refund's bank details are incomplete",
                                      fields=fields, provider="dlocal", created_nothing=True)
    return RefundBank(**{name: str(value[name]) for name in _BANK_FIELDS if value.get(name)})


class DlocalProvider(Provider[DlocalSettings]):
    """dLocal in Peru. ``pay(..., currency_to_charge="USD")`` (or the setting) charges in
    dollars; ``pay(..., card_token=...)`` pays a card tokenized by dLocal's Smart
    Fields; ``pay(..., bank="IO")`` picks another bank than BCP for a transfer."""

    name = "dlocal"
    display_name = "dLocal"
    methods = frozenset({Method.CARD, Method.CASH, Method.WALLET, Method.BANK_TRANSFER})
    #: PagoEfectivo tickets (EF), Yape (YP) and BCP transfers (BC) collected by dLocal;
    #: cards by brand. (A transfer from another bank, IO, is not a network of its own.)
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {
        Method.CASH: ("pagoefectivo",), Method.WALLET: ("yape",),
        Method.BANK_TRANSFER: ("bcp",), Method.CARD: ("visa", "mastercard", "amex", "diners")}
    countries = frozenset({"PE"})
    currencies = frozenset({"PEN", "USD"})
    default_expiry = timedelta(days=2)
    operations = frozenset({Operation.CREATE, Operation.GET, Operation.CANCEL,
                            Operation.REFUND, Operation.GET_REFUND, Operation.WEBHOOK,
                            Operation.PROBE})
    retry_safe = frozenset({Operation.GET, Operation.GET_REFUND, Operation.PROBE})
    notification_delay = timedelta(hours=1)
    settings_class: ClassVar[type[DlocalSettings]] = DlocalSettings
    error_codes: ClassVar[Mapping[str, ErrorCode]] = {**ERROR_CODES, **REJECTIONS}
    secret_headers = Provider.secret_headers | {"x-trans-key"}
    secret_fields = frozenset({"document", "email", "name", "phone", "token", "bank_account",
                               "beneficiary_name", "user_reference"})
    webhook_content_types = frozenset({"application/json"})
    sandbox_factory = "pasarela_dlocal.sandbox:create_app"

    # --- eligibility and field rules -----------------------------------------------------

    def ineligibility(self, order: Order, method: Method) -> Ineligibility | None:
        reason = super().ineligibility(order, method)
        if (reason is None and method is Method.CARD and order.amount.currency == "PEN"
                and order.amount.minor < _CARD_MINIMUM_MINOR):
            return Ineligibility(ErrorCode.AMOUNT_OUT_OF_RANGE,
                                 f"cards take at least {_card_minimum()}")
        return reason

    def _charge(self, request: CreateRequest) -> str | None:
        wanted = request.params.get("currency_to_charge", self.settings.currency_to_charge)
        if wanted is None or wanted == request.amount.currency:
            return None
        if wanted != "USD" or request.amount.currency != "PEN":
            raise ProviderValidationError(
                "dLocal charges a PEN price in USD or in PEN",
                fields={"currency_to_charge": f"{wanted!r}: use 'USD' for a PEN price"},
                provider=self.name, created_nothing=True)
        return "USD"

    def check_request(self, request: CreateRequest) -> None:
        api.required_document(request.order.customer)
        customer = request.order.customer
        if customer is not None and not customer.email:
            raise ProviderValidationError(
                "dLocal needs the payer's e-mail (it writes to ask for refund details)",
                fields={"customer.email": "an e-mail is required"}, provider=self.name,
                created_nothing=True)
        if request.method is Method.CARD and not isinstance(request.params.get("card_token"),
                                                            str):
            raise ProviderValidationError(
                "a dLocal card payment needs the Smart Fields token",
                fields={"card_token": "pass pay(..., card_token=...)"}, provider=self.name,
                created_nothing=True)
        if request.method is Method.CARD and request.amount.currency == "PEN" and (
                request.amount.minor < _CARD_MINIMUM_MINOR):
            raise ProviderValidationError(
                f"cards take at least {_card_minimum()}",
                fields={"amount": f"at least {_card_minimum()} for a card"}, provider=self.name,
                created_nothing=True)
        bank = request.params.get("bank")
        if bank is not None and bank not in ("BC", "IO"):
            raise ProviderValidationError(
                "the bank transfer is BC (BCP) or IO (another bank)",
                fields={"bank": f"{bank!r} is neither BC nor IO"}, provider=self.name,
                created_nothing=True)
        self._charge(request)

    # --- requests -------------------------------------------------------------------------

    def _request(self, method: str, path: str, payload: Any = None) -> httpx.Request:
        body = api.dumps(payload) if payload is not None else b""
        date = api.x_date(self.clock())
        settings = self.settings
        headers = {
            "X-Date": date, "X-Login": settings.x_login, "X-Trans-Key": settings.x_trans_key,
            "X-Version": API_VERSION, "Content-Type": "application/json",
            "User-Agent": "pasarela-dlocal/0.1",
            "Authorization": api.authorization(settings.secret_key, settings.x_login, date,
                                               body),
        }
        return httpx.Request(method, f"{settings.base_url.rstrip('/')}{path}", headers=headers,
                             content=body)

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise error_from(response, now=self.clock())
        try:
            body = api.loads(response.content)
        except ValueError:
            raise ProviderError("dLocal answered something that is not JSON",
                                provider=self.name, http_status=response.status_code) from None
        if not isinstance(body, dict):
            raise ProviderError("dLocal answered JSON that is not an object", provider=self.name)
        return body

    def build_payment(self, request: CreateRequest) -> tuple[str, dict[str, Any]]:
        """The path and body of a create (pure: the tests read it)."""
        order = request.order
        customer = order.customer
        assert customer is not None
        assert customer.document is not None
        method_id = api.METHOD_IDS[request.method]
        if request.method is Method.BANK_TRANSFER:
            method_id = str(request.params.get("bank") or self.settings.bank)
        payer: dict[str, Any] = {"name": f"{customer.first_name} {customer.last_name}",
                                 "email": customer.email, "document": customer.document.number}
        if customer.phone:
            payer["phone"] = customer.phone
        body: dict[str, Any] = {
            "amount": request.amount.amount, "currency": request.amount.currency,
            "country": order.country, "payment_method_id": method_id,
            "payment_method_flow": "REDIRECT" if request.method is Method.WALLET else "DIRECT",
            "payer": payer, "order_id": request.payment_id,
            "description": order.description or order.reference,
        }
        charge = self._charge(request)
        if charge is not None:
            body["currency_to_charge"] = charge
        if self.settings.notification_url:
            body["notification_url"] = self.settings.notification_url
        if request.method is Method.CARD:
            body["card"] = {"token": request.params["card_token"]}
            return "/secure_payments", body
        return "/payments", body

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        self.check_request(request)
        path, body = self.build_payment(request)
        response = yield self._request("POST", path, body)
        reported = self.parse_payment(self._answer(response), price=request.amount)
        if reported.status is Status.FAILED:
            raise DeclinedError(
                f"dLocal rejected the payment: {reported.failure_message or 'rejected'}",
                code=ErrorCode(reported.failure_code or ErrorCode.DECLINED),
                decline_code=reported.raw_status, provider=self.name,
                provider_code=reported.raw_status, provider_reference=reported.reference)
        return reported

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        reference = self._reference(payment)
        response = yield self._request("GET", f"/payments/{reference}")
        return self.parse_payment(self._answer(response), price=payment.amount)

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        reference = self._reference(payment)
        response = yield self._request("POST", f"/payments/{reference}/cancel")
        return self.parse_payment(self._answer(response), price=payment.amount)

    def refund(self, payment: Payment, amount: Money, *, refund_id: str, reason: str,
               params: Mapping[str, Any] | None = None,
               bank: RefundBank | None = None) -> Flow[ProviderRefund]:
        """Refund *amount* (always in the payment's local currency). A cash or bank
        transfer payment is paid back by bank transfer: *bank* says where, given as
        ``refund(..., bank={"beneficiary_name", "bank", "bank_account",
        "bank_account_type", "bank_branch"})`` through the core (``params["bank"]``, a
        mapping or a :class:`RefundBank`); without it dLocal asks the buyer by e-mail."""
        if bank is None and params and params.get("bank") is not None:
            bank = _refund_bank(params["bank"])
        reference = self._reference(payment)
        body: dict[str, Any] = {"payment_id": reference, "amount": amount.amount,
                                "currency": amount.currency}
        if self.settings.notification_url:
            body["notification_url"] = self.settings.notification_url
        if reason:
            body["description"] = reason[:100]
        if bank is not None and payment.method in (Method.CASH, Method.BANK_TRANSFER):
            body.update(bank.fields())
        response = yield self._request("POST", "/refunds", body)
        return self.parse_refund(self._answer(response), refund_id=refund_id)

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        if not refund.provider_reference:
            # dLocal keeps nothing of our refund id: pending until its answer is known.
            return contract.ProviderRefund(status=RefundStatus.PENDING, refund_id=refund.id)
        response = yield self._request("GET", f"/refunds/{refund.provider_reference}/status")
        return self.parse_refund(self._answer(response), refund_id=refund.id)

    def probe(self) -> Flow[None]:
        """``GET /payments/{id}/status`` of an id no payment has: a 4000 (not found)
        answers that the credentials work; 3001 to 3003 that they do not."""
        response = yield self._request("GET", "/payments/D-pasarela-probe/status")
        if response.status_code == 404:
            return None
        self._answer(response)
        return None

    def _reference(self, payment: Payment) -> str:
        if payment.provider_reference is None:
            raise ProviderError("no dLocal payment id is known yet", provider=self.name,
                                code=ErrorCode.NOT_FOUND)
        return payment.provider_reference

    # --- answers ----------------------------------------------------------------------------

    def parse_payment(self, obj: Mapping[str, Any], *, price: Money | None = None
                      ) -> ProviderPayment:
        """A payment object (an answer or a notification) in lifecycle terms."""
        raw = str(obj.get("status", ""))
        status = api.STATUSES.get(raw, Status.UNKNOWN)
        code = str(obj.get("status_code", "")) or raw
        amount = api.money_of(obj.get("amount"), obj.get("currency"))
        action = self._next_action(obj, price or amount) if status is Status.PENDING else None
        failure_code = failure_message = None
        if status is Status.FAILED:
            failure_code = REJECTIONS.get(code, ErrorCode.DECLINED).value
            failure_message = str(obj.get("status_detail") or "rejected")
        reference = obj.get("id")
        fx = api.fx_of(obj)
        charged = rate = None
        if fx is not None and price is not None and fx.source == price.currency:
            rate = fx.rate
            charged = Money.of((price.amount * fx.rate).quantize(_CENT, rounding=ROUND_HALF_UP),
                               fx.target)
        return contract.ProviderPayment(
            status=status, reference=str(reference) if reference else None, raw_status=code,
            next_action=action, amount=amount, failure_code=failure_code,
            failure_message=failure_message,
            expires_at=getattr(action, "expires_at", None),
            network=api.NETWORKS.get(str(obj.get("payment_method_id") or "")),
            charged=charged, fx_rate=rate)

    def _next_action(self, obj: Mapping[str, Any], price: Money | None) -> NextAction | None:
        fx = api.fx_of(obj)
        charged = price
        if fx is not None and price is not None and fx.source == price.currency:
            converted = (price.amount * fx.rate).quantize(_CENT, rounding=ROUND_HALF_UP)
            charged = Money.of(converted, fx.target)
        ticket = obj.get("ticket")
        if isinstance(ticket, Mapping) and ticket.get("number") and charged is not None:
            return next_action.ShowCashCode(
                code=str(ticket["number"]), amount=charged,
                expires_at=_date(ticket.get("expiration_date")),
                url=str(ticket.get("image_url") or obj.get("redirect_url") or "") or None,
                instructions=_lines(fx, charged, price))
        transfer = obj.get("bank_transfer")
        if isinstance(transfer, Mapping) and charged is not None:
            to_pay = api.money_of(transfer.get("user_payment_amount"), charged.currency)
            lines = _lines(fx, to_pay or charged, price)
            steps = transfer.get("payment_instruction")
            if isinstance(steps, str) and steps:
                lines = {lang: (steps, *lines.get(lang, ())) for lang in ("es", "en")}
            return next_action.BankTransfer(
                bank=str(transfer.get("bank_name") or "BCP"), amount=to_pay or charged,
                expires_at=_date(obj.get("expiration_date")),
                account=transfer.get("bank_account") or None,
                account_label=transfer.get("bank_account_label") or None,
                holder=transfer.get("beneficiary_name") or None,
                reference=transfer.get("reference") or None,
                url=transfer.get("redirect_url") or obj.get("redirect_url") or None,
                instructions=lines)
        redirect = obj.get("redirect_url")
        if isinstance(redirect, str) and redirect:
            return next_action.OpenUrl(url=redirect)
        return None

    def parse_refund(self, obj: Mapping[str, Any], *, refund_id: str | None = None
                     ) -> ProviderRefund:
        status = api.REFUND_STATUSES.get(str(obj.get("status", "")), RefundStatus.PENDING)
        reference = obj.get("id")
        return contract.ProviderRefund(
            status=status, reference=str(reference) if reference else None,
            amount=api.money_of(obj.get("amount"), obj.get("currency")),
            payment_reference=str(obj["payment_id"]) if obj.get("payment_id") else None,
            refund_id=refund_id)

    # --- notifications ----------------------------------------------------------------------

    def parse_webhook(self, headers: WebhookHeaders, body: bytes, *, now: datetime
                      ) -> list[WebhookEvent]:
        """A notification: the payment (or refund) object, signed like a request over
        ``X-Login + X-Date + body`` with the secret key (or a webhook secret being
        rolled). dLocal retries a notification for days, so no age limit applies."""
        login, date = headers.get("x-login", ""), headers.get("x-date", "")
        if login != self.settings.x_login or not date:
            raise SignatureInvalidError("the notification's X-Login or X-Date is not ours",
                                        provider=self.name)
        if not api.verify(self.settings.signing_keys(), login, date, body,
                          headers.get("authorization")):
            raise SignatureInvalidError("the notification's signature does not match",
                                        provider=self.name)
        try:
            obj = api.loads(body)
        except ValueError:
            raise WebhookError("the notification is not JSON", provider=self.name) from None
        if not isinstance(obj, dict) or not obj.get("id") or not obj.get("status"):
            raise WebhookError("the notification carries no id and status", provider=self.name)
        occurred = _date(date) or now
        if "payment_id" in obj:  # a refund object
            refund = self.parse_refund(obj)
            return [contract.WebhookEvent(
                event_id=f"{obj['id']}:{obj['status']}", type=f"refund.{obj['status']}",
                provider_reference=str(obj["payment_id"]), refund=refund, occurred_at=occurred,
                raw=obj)]
        reported = self.parse_payment(obj)
        order_id = obj.get("order_id")
        return [contract.WebhookEvent(
            event_id=f"{obj['id']}:{reported.raw_status}", type=f"payment.{obj['status']}",
            provider_reference=str(obj["id"]),
            payment_id=str(order_id) if isinstance(order_id, str) and order_id else None,
            status=reported.status, amount=reported.amount, occurred_at=occurred, raw=obj)]
