"""The Yape provider: wallet payments by approval code, and QR payable from Yape or Plin.

Two flows, chosen by what ``pay(...)`` is given:

- **approval code** (synchronous): ``phone`` and ``code`` (the 6-digit code from the
  Yape app) charge at once; without them the payment waits, pending, with an
  ``approve_in_wallet`` next action that ``confirm(payment_id, phone=, code=)``
  completes. A wrong or expired code is a decline (``invalid_code``).
- **QR order** (asynchronous): ``flow="qr"`` creates an order whose QR any
  interoperable wallet (Yape, Plin) can pay until it expires; the acquirer's webhook
  tells when, and the core fetches the order before believing it.

The acquirer (Culqi today) sits behind :class:`pasarela_yape.acquirer.Acquirer`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pasarela.errors import ErrorCode, ProviderValidationError, UnsupportedError
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment
from pasarela.money import Money
from pasarela.next_action import ApproveInWallet
from pasarela.provider import (
    CreateRequest,
    Flow,
    Operation,
    Provider,
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    WebhookEvent,
    WebhookHeaders,
)
from pasarela_yape.acquirer import Acquirer, CodeCharge, QrOrder, make_acquirer
from pasarela_yape.actions import approve_in_yape
from pasarela_yape.errors import ERROR_CODES
from pasarela_yape.settings import YapeSettings


__all__ = ["YapeProvider", "national_mobile"]

_CODE_RE = re.compile(r"^\d{6}$")
_MOBILE_RE = re.compile(r"^9\d{8}$")
_FLOWS = ("code", "qr")


def national_mobile(value: object) -> str | None:
    """A Peruvian mobile as its 9 national digits (``987654321``), or None if not one.

    Accepts ``987654321``, ``+51 987 654 321``, ``51987654321``.
    """
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    digits = re.sub(r"[\s\-().]", "", str(value))
    if digits.startswith("+51"):
        digits = digits[3:]
    elif len(digits) == 11 and digits.startswith("51"):
        digits = digits[2:]
    return digits if _MOBILE_RE.match(digits) else None


def _invalid(field: str, reason: str) -> ProviderValidationError:
    return ProviderValidationError(
        f"{field}: {reason}", fields={field: reason}, provider="yape", created_nothing=True
    )


class YapeProvider(Provider[YapeSettings]):
    """Yape / Plin wallet payments in PEN, through an acquirer (Culqi)."""

    name: ClassVar[str] = "yape"
    display_name: ClassVar[str] = "Yape / Plin"
    methods: ClassVar[frozenset[Method]] = frozenset({Method.WALLET})
    countries: ClassVar[frozenset[str]] = frozenset({"PE"})
    currencies: ClassVar[frozenset[str]] = frozenset({"PEN"})
    #: S/ 1 to S/ 500 by default. Yape's own per-charge cap is unpublished; S/ 500 is
    #: the QR wallets' and other PSPs' cap (providers.md §2.1). A QR order also
    #: needs at least S/ 6 (checked per request).
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {"PEN": (100, 50_000)}
    default_expiry: ClassVar[timedelta | None] = timedelta(minutes=15)
    #: A wallet payment is approved within minutes, and Culqi notifies at once.
    notification_delay: ClassVar[timedelta] = timedelta(minutes=30)
    operations: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.CREATE, Operation.CONFIRM, Operation.GET, Operation.CANCEL,
        Operation.REFUND, Operation.WEBHOOK, Operation.SETTLEMENTS,
    })
    #: Reads only: a status and the charges list (``GET`` both).
    retry_safe: ClassVar[frozenset[Operation]] = frozenset({Operation.PROBE, Operation.GET,
                                                            Operation.SETTLEMENTS})
    settings_class: ClassVar[type[YapeSettings]] = YapeSettings
    error_codes: ClassVar[Mapping[str, ErrorCode]] = ERROR_CODES
    secret_fields: ClassVar[frozenset[str]] = frozenset({
        "otp", "number_phone", "email", "phone_number", "first_name", "last_name",
    })
    sandbox_factory: ClassVar[str | None] = "pasarela_yape.sandbox:create_app"
    #: Culqi posts its events as JSON (read by the core's webhook server).
    webhook_content_types: ClassVar[frozenset[str]] = frozenset({"application/json"})

    def __init__(
        self, settings: YapeSettings, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(settings, clock=clock)
        self.acquirer: Acquirer = make_acquirer(settings, self.clock)

    # --- checking requests (no I/O) ----------------------------------------------------

    def check_request(self, request: CreateRequest) -> None:
        self._plan(request)

    def _plan(self, request: CreateRequest) -> CodeCharge | QrOrder | None:
        """The acquirer request *request* asks for (None: wait for an approval code)."""
        amount = request.amount
        if amount.currency not in self.currencies:
            raise UnsupportedError(
                f"Yape takes PEN only, not {amount.currency}",
                code=ErrorCode.UNSUPPORTED_CURRENCY, provider=self.name,
            )
        if request.method is not Method.WALLET:
            raise UnsupportedError(
                f"Yape is a wallet, not {request.method.value}",
                code=ErrorCode.UNSUPPORTED_METHOD, provider=self.name,
            )
        self._check_amount(amount, self.amount_limits(amount.currency))
        params = request.params
        flow = params.get("flow")
        if flow is not None and flow not in _FLOWS:
            raise _invalid("flow", f"one of {', '.join(_FLOWS)}")
        if flow == "qr":
            return self._qr_order(request)
        email = _email(params, request.order)  # needed now, or at confirm
        if params.get("code") in (None, ""):
            phone = params.get("phone")
            if phone is not None and national_mobile(phone) is None:
                raise _invalid("phone", "is not a Peruvian mobile of 9 digits (9XXXXXXXX)")
            return None  # wait for the approval code: confirm(phone=, code=)
        return self._code_charge(request.payment_id, amount, request.order, params, email)

    def _check_amount(self, amount: Money, limits: tuple[int | None, int | None]) -> None:
        low, high = limits
        if (low is not None and amount.minor < low) or (high is not None and amount.minor > high):
            bounds = f"{Money(low or 0, amount.currency)} to " + (
                str(Money(high, amount.currency)) if high is not None else "any amount"
            )
            raise UnsupportedError(
                f"amount {amount} is outside {bounds}",
                code=ErrorCode.AMOUNT_OUT_OF_RANGE, provider=self.name,
            )

    def _code_charge(
        self, payment_id: str, amount: Money, order: Order | None, params: Mapping[str, Any],
        email: str,
    ) -> CodeCharge:
        code = params.get("code")
        if code is None or code == "":
            raise _invalid("code", "the 6-digit approval code from the Yape app is required")
        code = str(code).strip()
        if not _CODE_RE.match(code):
            raise _invalid("code", "must be the 6 digits of the Yape approval code")
        given = params.get("phone")
        customer = order.customer if order is not None else None
        phone = national_mobile(given if given is not None else
                                (customer.phone if customer is not None else None))
        if phone is None:
            what = "is not" if given is not None else "is required: give"
            raise _invalid("phone", f"{what} a Peruvian mobile of 9 digits (9XXXXXXXX)")
        metadata = dict(order.metadata) if order is not None else {}
        reference = order.reference if order is not None else payment_id
        if order is not None:
            metadata["order_reference"] = order.reference
        return CodeCharge(
            payment_id=payment_id, amount=amount, phone=phone, code=code, email=email,
            description=(order.description if order is not None else "") or f"Pedido {reference}",
            metadata=metadata,
        )

    def _qr_order(self, request: CreateRequest) -> QrOrder:
        low, high = self.amount_limits(request.amount.currency)
        qr_low, qr_high = self.acquirer.qr_limits
        self._check_amount(request.amount, (max(low or 0, qr_low), min(high or qr_high, qr_high)))
        order = request.order
        customer = order.customer
        if customer is None:
            raise _invalid("customer", "a QR order needs the customer's name, email and phone")
        email = request.params.get("email") or customer.email
        if not email:
            raise _invalid("customer.email", "is required for a QR order")
        if not customer.phone:
            raise _invalid("customer.phone", "is required for a QR order")
        now = self.clock()
        expiry = self.expiry() or timedelta(minutes=15)
        expires_at = request.expires_at or now + expiry
        if expires_at <= now + timedelta(minutes=1):
            raise _invalid("expires_at", "must be at least a minute in the future")
        return QrOrder(
            payment_id=request.payment_id, order_reference=order.reference,
            amount=request.amount, expires_at=expires_at,
            description=order.description or f"Pedido {order.reference}",
            first_name=customer.first_name, last_name=customer.last_name, email=str(email),
            phone=customer.phone, metadata=dict(order.metadata),
        )

    # --- operations (flows) -----------------------------------------------------------

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        plan = self._plan(request)
        if plan is None:
            return ProviderPayment(
                status=Status.PENDING, raw_status="awaiting_approval_code",
                next_action=approve_in_yape(request.amount), expires_at=request.expires_at,
            )
        if isinstance(plan, QrOrder):
            return (yield from self.acquirer.create_qr_order(plan))
        return (yield from self.acquirer.charge_with_code(plan))

    def confirm(self, payment: Payment, params: Mapping[str, Any]) -> Flow[ProviderPayment]:
        """Complete a payment waiting for its approval code with ``phone`` and ``code``."""
        if payment.provider_reference is not None or not isinstance(
            payment.next_action, ApproveInWallet | None
        ):
            raise UnsupportedError(
                "only a payment waiting for a Yape approval code can be confirmed",
                code=ErrorCode.UNSUPPORTED_OPERATION, provider=self.name,
            )
        self._check_amount(payment.amount, self.amount_limits(payment.amount.currency))
        email = _email(params, payment.order)
        charge = self._code_charge(payment.id, payment.amount, payment.order, params, email)
        return (yield from self.acquirer.charge_with_code(charge))

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        if payment.provider_reference is None and payment.status is Status.PENDING:
            # Still waiting for the customer's approval code: nothing to ask anyone.
            return ProviderPayment(status=Status.PENDING, raw_status="awaiting_approval_code",
                                   next_action=payment.next_action)
        return (yield from self.acquirer.get(payment))

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        return (yield from self.acquirer.cancel(payment))

    def refund(
        self, payment: Payment, amount: Money, *, refund_id: str, reason: str
    ) -> Flow[ProviderRefund]:
        return (yield from self.acquirer.refund(payment, amount, refund_id=refund_id,
                                                reason=reason))

    def settlements(
        self, since: datetime, until: datetime, *, references: Sequence[str] | None = None
    ) -> Flow[Iterable[SettlementLine]]:
        """The acquirer's record of what it collected in ``[since, until)``: at Culqi,
        the captured charges (approval-code payments; a QR order has no charge).
        The acquirer lists them all: *references* is not used."""
        return (yield from self.acquirer.settlements(since, until))

    def probe(self) -> Flow[None]:
        return (yield from self.acquirer.probe())

    def parse_webhook(
        self, headers: WebhookHeaders, body: bytes, *, now: datetime
    ) -> list[WebhookEvent]:
        return self.acquirer.parse_webhook(headers, body, now=now)


def _email(params: Mapping[str, Any], order: Order | None) -> str:
    email = params.get("email") or (
        order.customer.email if order is not None and order.customer is not None else None
    )
    if not email or not isinstance(email, str):
        raise _invalid("customer.email", "is required: Culqi charges need the payer's email")
    return email
