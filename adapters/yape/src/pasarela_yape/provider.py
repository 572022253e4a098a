"""The Yape provider: wallet payments by approval code, and QR payable from Yape or Plin.

Two flows, chosen by what ``pay(...)`` is given:

- **approval code** (synchronous): ``phone`` and ``code`` (the 6-digit code from the
  Yape app) charge at once; without them the payment waits, pending, with an
  ``approve_in_wallet`` next action that ``confirm(payment_id, phone=, code=)``
  completes. A wrong or expired code is a decline (``invalid_code``).
- **wallet QR order** (asynchronous): ``flow="qr"`` creates a Culqi order (S/ 6 to
  S/ 500, PEN) and answers an ``open_checkout`` next action: Culqi's checkout for that
  order draws the QR any interoperable wallet (Yape, Plin) can pay until it expires;
  the acquirer's webhook tells when, and the core fetches the order before believing it.

Culqi's field rules are checked before anything is sent (``check_request``, each a
``ProviderValidationError`` naming the field): a charge of at least S/ 3.00, a wallet
QR order of S/ 6.00 to S/ 500.00, an email of 5 to 50 characters, metadata of at most
20 keys (the two the adapter adds counted), keys up to 30 and values up to 200
characters.

The acquirer (Culqi today) sits behind :class:`pasarela_yape.acquirer.Acquirer`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pasarela import next_action
from pasarela import provider as contract
from pasarela.errors import ErrorCode, ProviderValidationError, UnsupportedError
from pasarela.lifecycle import Status
from pasarela.model import Method
from pasarela.money import Money
from pasarela.provider import (
    Flow,
    Operation,
    Provider,
    WebhookHeaders,
    imported_on_use,
)
from pasarela_yape.actions import approve_in_yape
from pasarela_yape.errors import ERROR_CODES
from pasarela_yape.settings import YapeSettings


if TYPE_CHECKING:
    from pasarela.model import Order, Payment, Refund
    from pasarela.provider import (
        CreateRequest,
        ProviderPayment,
        ProviderRefund,
        SettlementLine,
        WebhookEvent,
    )
    from pasarela_yape import acquirer as acquiring
    from pasarela_yape.acquirer import Acquirer, CodeCharge, QrOrder
else:  # the acquirer and its requests: imported when a provider is built
    acquiring = imported_on_use("pasarela_yape.acquirer", globals(), "acquiring")


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


#: Culqi's email length (API reference for charges; README, "Verified against").
EMAIL_LENGTH: Final = (5, 50)
#: Culqi's metadata: at most 20 keys, each 1-30 characters, values 1-200 (the official
#: SDK's ``helpers.py::validate_key_and_value_length``).
METADATA_KEYS: Final = 20
METADATA_KEY_LENGTH: Final = 30
METADATA_VALUE_LENGTH: Final = 200


def _invalid(field: str, reason: str, *, code: ErrorCode | None = None) -> ProviderValidationError:
    extra: dict[str, Any] = {"code": code} if code is not None else {}
    return ProviderValidationError(
        f"{field}: {reason}", fields={field: reason}, provider="yape", created_nothing=True,
        **extra,
    )


def _check_email(field: str, email: str) -> str:
    low, high = EMAIL_LENGTH
    if not low <= len(email) <= high:
        raise _invalid(field, f"Culqi takes an email of {low} to {high} characters")
    return email


def _check_metadata(metadata: Mapping[str, str], *, added: Sequence[str]) -> dict[str, str]:
    """*metadata* as Culqi takes it, counting the *added* keys the adapter sends too."""
    if len(metadata.keys() | set(added)) > METADATA_KEYS:
        room = METADATA_KEYS - len(added)
        raise _invalid("order.metadata", f"Culqi takes at most {METADATA_KEYS} metadata keys "
                                         f"and pasarela adds {len(added)}: give at most {room}")
    for key, value in metadata.items():
        if not 1 <= len(key) <= METADATA_KEY_LENGTH:
            raise _invalid(f"order.metadata.{key[:40]}",
                           f"Culqi takes metadata keys of 1 to {METADATA_KEY_LENGTH} characters")
        if not 1 <= len(str(value)) <= METADATA_VALUE_LENGTH:
            raise _invalid(f"order.metadata.{key}", "Culqi takes metadata values of 1 to "
                                                    f"{METADATA_VALUE_LENGTH} characters")
    return dict(metadata)


class YapeProvider(Provider[YapeSettings]):
    """Yape / Plin wallet payments in PEN, through an acquirer (Culqi)."""

    name: ClassVar[str] = "yape"
    display_name: ClassVar[str] = "Yape / Plin"
    methods: ClassVar[frozenset[Method]] = frozenset({Method.WALLET})
    #: Yape by approval code; the QR flow's interoperable code is paid from Plin too.
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {Method.WALLET: ("yape", "plin")}
    countries: ClassVar[frozenset[str]] = frozenset({"PE"})
    currencies: ClassVar[frozenset[str]] = frozenset({"PEN"})
    #: S/ 3 to S/ 500 by default. S/ 3.00 is Culqi's least charge (its API reference;
    #: the official SDK's ``validate_currency``: PEN 300); Yape's own per-charge cap is
    #: unpublished; S/ 500 is the QR wallets' and other PSPs' cap (providers.md §2.1).
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {"PEN": (300, 50_000)}
    #: Per flow, limits narrower than :attr:`limits`: a wallet QR order takes S/ 6 to
    #: S/ 500, soles only (Culqi "Billeteras móviles"). ``check_request`` refuses the
    #: rest before anything is sent, so routing moves on to the next provider.
    flow_limits: ClassVar[Mapping[str, Mapping[str, tuple[int, int]]]] = {
        "qr": {"PEN": (600, 50_000)}}
    default_expiry: ClassVar[timedelta | None] = timedelta(minutes=15)
    #: A wallet payment is approved within minutes, and Culqi notifies at once.
    notification_delay: ClassVar[timedelta] = timedelta(minutes=30)
    operations: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.CREATE, Operation.CONFIRM, Operation.GET, Operation.CANCEL,
        Operation.REFUND, Operation.GET_REFUND, Operation.WEBHOOK, Operation.SETTLEMENTS,
    })
    #: Reads only: a status, a refund and the charges list (``GET`` all).
    retry_safe: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.GET, Operation.GET_REFUND, Operation.SETTLEMENTS})
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
        self.acquirer: Acquirer = acquiring.make_acquirer(settings, self.clock)

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
        params = request.params
        flow = params.get("flow")
        if flow is not None and flow not in _FLOWS:
            raise _invalid("flow", f"one of {', '.join(_FLOWS)}")
        if flow == "qr":
            return self._qr_order(request)  # its own limits, within the provider's
        self._check_amount(amount, self.amount_limits(amount.currency))
        email = _email(params, request.order)  # needed now, or at confirm
        if params.get("code") in (None, ""):
            phone = params.get("phone")
            if phone is not None and national_mobile(phone) is None:
                raise _invalid("phone", "is not a Peruvian mobile of 9 digits (9XXXXXXXX)")
            return None  # wait for the approval code: confirm(phone=, code=)
        return self._code_charge(request.payment_id, amount, request.order, params, email)

    def _check_amount(self, amount: Money, limits: tuple[int | None, int | None],
                      what: str = "a Yape charge") -> None:
        low, high = limits
        if (low is not None and amount.minor < low) or (high is not None and amount.minor > high):
            bounds = f"{Money(low or 0, amount.currency)} to " + (
                str(Money(high, amount.currency)) if high is not None else "any amount"
            )
            raise _invalid("amount", f"{what} takes {bounds}, not {amount}",
                           code=ErrorCode.AMOUNT_OUT_OF_RANGE)

    def flow_amount_limits(self, flow: str, currency: str) -> tuple[int | None, int | None]:
        """The amounts *flow* takes in *currency*: :meth:`amount_limits` narrowed by
        :attr:`flow_limits` (and by the acquirer's own QR limits for ``qr``)."""
        low, high = self.amount_limits(currency)
        bounds = self.flow_limits.get(flow, {}).get(currency)
        if flow == "qr":
            qr_low, qr_high = self.acquirer.qr_limits
            bounds = (qr_low, qr_high) if bounds is None else (
                max(bounds[0], qr_low), min(bounds[1], qr_high))
        if bounds is None:
            return low, high
        return max(low or 0, bounds[0]), min(high if high is not None else bounds[1], bounds[1])

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
        metadata = _check_metadata(order.metadata if order is not None else {},
                                   added=self.acquirer.added_metadata)
        reference = order.reference if order is not None else payment_id
        if order is not None:
            metadata["order_reference"] = order.reference
        return acquiring.CodeCharge(
            payment_id=payment_id, amount=amount, phone=phone, code=code, email=email,
            description=(order.description if order is not None else "") or f"Pedido {reference}",
            metadata=metadata,
        )

    def _qr_order(self, request: CreateRequest) -> QrOrder:
        self._check_amount(request.amount,
                           self.flow_amount_limits("qr", request.amount.currency),
                           "a wallet QR order (flow=qr)")
        order = request.order
        customer = order.customer
        if customer is None:
            raise _invalid("customer", "a QR order needs the customer's name, email and phone")
        email = request.params.get("email") or customer.email
        if not email or not isinstance(email, str):
            raise _invalid("customer.email", "is required for a QR order")
        _check_email("email" if request.params.get("email") else "customer.email", email)
        metadata = _check_metadata(order.metadata, added=self.acquirer.added_metadata)
        if not customer.phone:
            raise _invalid("customer.phone", "is required for a QR order")
        now = self.clock()
        expiry = self.expiry() or timedelta(minutes=15)
        expires_at = request.expires_at or now + expiry
        if expires_at <= now + timedelta(minutes=1):
            raise _invalid("expires_at", "must be at least a minute in the future")
        return acquiring.QrOrder(
            payment_id=request.payment_id, order_reference=order.reference,
            amount=request.amount, expires_at=expires_at,
            description=order.description or f"Pedido {order.reference}",
            first_name=customer.first_name, last_name=customer.last_name, email=str(email),
            phone=customer.phone, metadata=metadata,
        )

    # --- operations (flows) -----------------------------------------------------------

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        plan = self._plan(request)
        if plan is None:
            return contract.ProviderPayment(
                status=Status.PENDING, raw_status="awaiting_approval_code",
                next_action=approve_in_yape(request.amount), expires_at=request.expires_at,
            )
        if isinstance(plan, acquiring.QrOrder):
            return (yield from self.acquirer.create_qr_order(plan))
        return (yield from self.acquirer.charge_with_code(plan))

    def confirm(self, payment: Payment, params: Mapping[str, Any]) -> Flow[ProviderPayment]:
        """Complete a payment waiting for its approval code with ``phone`` and ``code``."""
        if payment.provider_reference is not None or not isinstance(
            payment.next_action, next_action.ApproveInWallet | None
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
            return contract.ProviderPayment(status=Status.PENDING,
                                            raw_status="awaiting_approval_code",
                                            next_action=payment.next_action)
        return (yield from self.acquirer.get(payment))

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        return (yield from self.acquirer.cancel(payment))

    def refund(
        self, payment: Payment, amount: Money, *, refund_id: str, reason: str,
        params: Mapping[str, Any] | None = None,
    ) -> Flow[ProviderRefund]:
        """Refund through the acquirer (Culqi takes no refund parameters: *params*
        is ignored)."""
        return (yield from self.acquirer.refund(payment, amount, refund_id=refund_id,
                                                reason=reason))

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        """The refund at the acquirer (by its id, else by our refund id): pending while
        it has not said, never failed from an empty search."""
        return (yield from self.acquirer.get_refund(payment, refund))

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
    return _check_email("email" if params.get("email") else "customer.email", email)
