"""The Stripe provider: card payments on PaymentIntents.

Every POST carries an ``Idempotency-Key`` derived only from the operation's inputs
(the payment's idempotency key, the refund's id), so the core may repeat a
create, confirm, cancel or refund after a timeout or a 5xx and Stripe replays the
first result instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs

from pasarela import provider as contract
from pasarela.errors import (
    ConfigurationError,
    ErrorCode,
    ProviderError,
    ProviderValidationError,
    ValidationError,
)
from pasarela.model import Method, RefundStatus
from pasarela.money import Money
from pasarela.provider import (
    Flow,
    Operation,
    Provider,
    WebhookHeaders,
    imported_on_use,
)
from pasarela_stripe.errors import (
    ERROR_CODES,
    StripeDeclinedError,
    error_from_response,
    error_object,
)
from pasarela_stripe.settings import StripeSettings


if TYPE_CHECKING:
    import httpx

    from pasarela.model import Payment, Refund
    from pasarela.provider import (
        CreateRequest,
        ProviderPayment,
        ProviderRefund,
        SettlementLine,
        WebhookEvent,
    )
    from pasarela_stripe import api, events, webhooks
else:  # the requests, answers and events: imported when a provider first runs an operation
    api = imported_on_use("pasarela_stripe.api", globals())
    events = imported_on_use("pasarela_stripe.events", globals())
    webhooks = imported_on_use("pasarela_stripe.webhooks", globals())


__all__ = ["StripeProvider"]

#: Stripe's minimum charge per currency, in minor units, and the eight-digit maximum
#: of ``amount``. USD 0.50 is documented (docs.stripe.com/currencies, and the spec's
#: ``amount`` description); PEN 2.00 is an assumption (about USD 0.50) that no
#: source available to this project confirms.
LIMITS: Final[Mapping[str, tuple[int | None, int | None]]] = {
    "USD": (50, 99_999_999),
    "PEN": (200, 99_999_999),
}


class StripeProvider(Provider[StripeSettings]):
    """Stripe cards (Visa, Mastercard) for buyers in Peru, in PEN or USD."""

    name: ClassVar[str] = "stripe"
    display_name: ClassVar[str] = "Stripe"
    methods: ClassVar[frozenset[Method]] = frozenset({Method.CARD})
    #: The card brands it takes (a payment's brand comes with its card).
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {
        Method.CARD: ("visa", "mastercard", "amex", "diners")}
    countries: ClassVar[frozenset[str]] = frozenset({"PE", "US"})
    currencies: ClassVar[frozenset[str]] = frozenset({"PEN", "USD"})
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = LIMITS
    #: A PaymentIntent never expires by itself; the host cancels abandoned ones.
    default_expiry: ClassVar[timedelta | None] = None
    #: Stripe sends payment_intent events within seconds.
    notification_delay: ClassVar[timedelta] = timedelta(minutes=15)
    operations: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.CREATE, Operation.CONFIRM, Operation.GET, Operation.CANCEL,
        Operation.REFUND, Operation.GET_REFUND, Operation.WEBHOOK, Operation.SETTLEMENTS,
    })
    retry_safe: ClassVar[frozenset[Operation]] = frozenset({Operation.PROBE,
        Operation.CREATE, Operation.CONFIRM, Operation.GET, Operation.CANCEL, Operation.REFUND,
        Operation.GET_REFUND, Operation.SETTLEMENTS,
    })
    settings_class: ClassVar[type[StripeSettings]] = StripeSettings
    error_codes: ClassVar[Mapping[str, ErrorCode]] = ERROR_CODES
    secret_headers: ClassVar[frozenset[str]] = frozenset(
        {"authorization", "proxy-authorization", "cookie", "set-cookie", "stripe-signature"}
    )
    #: The client secret lets a browser confirm the PaymentIntent: keep it out of logs.
    secret_fields: ClassVar[frozenset[str]] = frozenset({"client_secret"})
    sandbox_factory: ClassVar[str | None] = "pasarela_stripe.sandbox:create_app"

    # --- flows --------------------------------------------------------------------

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """:func:`~pasarela_stripe.api.parse_json` with the provider's clock (for a
        ``Retry-After`` date)."""
        return api.parse_json(response, now=self.clock())

    def check_request(self, request: CreateRequest) -> None:
        """Stripe's field rules (metadata sizes, a PaymentMethod id), before anything
        is stored: the request is built once, and what it refuses names its field."""
        try:
            api.build_create(self.settings, request)
        except ValidationError as exc:
            raise ProviderValidationError(
                f"Stripe: {exc.message}", fields={exc.field or "params": exc.message},
                provider=self.name) from None

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        response = yield api.build_create(self.settings, request)
        if "payment_method" in request.params:
            yield from self._close_if_declined(response, request.idempotency_key)
        return api.parse_intent(self._json(response),
                                after_confirm="payment_method" in request.params)

    def confirm(self, payment: Payment, params: Mapping[str, Any]) -> Flow[ProviderPayment]:
        payment_method = params.get("payment_method")
        if not isinstance(payment_method, str) or not payment_method:
            raise ValidationError("a PaymentMethod id such as pm_card_visa is required",
                                  field="payment_method")
        key = f"{payment.idempotency_key}:confirm:{payment_method}"
        return_url = params.get("return_url")
        request = api.build_confirm(
            self.settings, payment.provider_reference, payment_method, key=key,
            return_url=return_url if isinstance(return_url, str) else None,
        )
        response = yield request
        yield from self._close_if_declined(response, payment.idempotency_key)
        return (yield from self._answer_or_refetch(response, payment.provider_reference,
                                                   after_confirm=True))

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        if payment.provider_reference:
            response = yield api.build_get(self.settings, payment.provider_reference)
            return api.parse_intent(self._json(response))
        # The create's answer was lost: find the PaymentIntent by our payment id.
        response = yield api.build_search(self.settings, payment.id)
        intent = api.parse_search(self._json(response))
        if intent is None:
            raise ProviderError(
                f"no PaymentIntent found for payment {payment.id} (yet: search lags ~1 min)",
                provider=self.name, code=ErrorCode.NOT_FOUND, retryable=True,
            )
        return api.parse_intent(intent)

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        key = f"{payment.idempotency_key}:cancel"
        response = yield api.build_cancel(self.settings, payment.provider_reference, key=key)
        return (yield from self._answer_or_refetch(response, payment.provider_reference))

    def refund(
        self, payment: Payment, amount: Money, *, refund_id: str, reason: str,
        params: Mapping[str, Any] | None = None,
    ) -> Flow[ProviderRefund]:
        if amount.currency != payment.amount.currency:
            raise ValidationError(
                f"the payment is in {payment.amount.currency}, not {amount.currency}",
                field="amount",
            )
        request = api.build_refund(self.settings, payment.provider_reference, amount,
                                   refund_id=refund_id, payment_id=payment.id, reason=reason)
        response = yield request
        refund = api.parse_refund(self._json(response))
        if refund.refund_id is None:
            refund = attrs.evolve(refund, refund_id=refund_id)
        return refund

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        """*refund*'s state at Stripe.

        With its Refund id known: ``GET /v1/refunds/{id}``. Without (the refund's answer
        was lost): the PaymentIntent's refunds, ``GET /v1/refunds?payment_intent=...``
        page by page, and the one whose ``metadata["refund_id"]`` is our refund id
        (:meth:`refund` sets it). A read: nothing is created, where repeating the create
        with its idempotency key would make the refund if the first never arrived.
        Not found is ``pending`` (Stripe has not said), never ``failed``.
        """
        if refund.provider_reference:
            response = yield api.build_get_refund(self.settings, refund.provider_reference)
            found = api.parse_refund(self._json(response))
            return found if found.refund_id else attrs.evolve(found, refund_id=refund.id)
        unknown = contract.ProviderRefund(status=RefundStatus.PENDING, refund_id=refund.id,
                                          payment_reference=payment.provider_reference)
        if not payment.provider_reference:
            # refund() sends nothing without a PaymentIntent id: nothing to find
            return unknown
        cursor: str | None = None
        while True:
            response = yield api.build_list_refunds(self.settings, payment.provider_reference,
                                                    starting_after=cursor)
            page = api.parse_refund_page(self._json(response))
            for obj in page.refunds:
                if api.refund_id_of(obj) == refund.id:
                    return api.parse_refund(obj)
            if page.next_cursor is None:
                return unknown
            cursor = page.next_cursor

    def settlements(
        self, since: datetime, until: datetime, *, references: Sequence[str] | None = None
    ) -> Flow[Iterable[SettlementLine]]:
        """The balance transactions created in ``[since, until)`` that are payments
        (status ``paid``) or refunds (``refunded``), read page by page with the
        ``starting_after`` cursor; lines are numbered from 1 in Stripe's order.
        Stripe lists them all: *references* is not used."""
        lines: list[SettlementLine] = []
        cursor: str | None = None
        while True:
            response = yield api.build_balance_transactions(self.settings, since, until,
                                                            starting_after=cursor)
            page = api.parse_transactions(self._json(response))
            base = len(lines)
            lines.extend(attrs.evolve(line, line_no=base + n)
                         for n, line in enumerate(page.lines, start=1))
            if page.next_cursor is None:
                return lines
            cursor = page.next_cursor

    def probe(self) -> Flow[None]:
        """One balance transaction listed (``GET /v1/balance_transactions``): the key."""
        now = self.clock()
        response = yield api.build_balance_transactions(
            self.settings, now - timedelta(seconds=1), now, limit=1)
        self._json(response)

    def _close_if_declined(self, response: httpx.Response, key: str) -> Flow[None]:
        """After a server-side confirmation is declined, cancel the PaymentIntent.

        The core records a declined payment as ``failed``, which is terminal; Stripe
        keeps the PaymentIntent open (``requires_payment_method``) so that its client
        secret could still confirm another card. Cancelling it makes Stripe agree, so
        a "failed" payment can never take money later. Best effort: the decline is the
        outcome whatever the cancel answers. Then raise the decline.
        """
        if response.status_code != 402:
            return
        error = error_from_response(response, now=self.clock())
        if isinstance(error, StripeDeclinedError) and error.payment_intent:
            yield api.build_cancel(self.settings, error.payment_intent,
                                   key=f"{key}:cancel-after-decline")
        raise error

    def _answer_or_refetch(
        self, response: httpx.Response, reference: str | None, *, after_confirm: bool = False
    ) -> Flow[ProviderPayment]:
        # Confirming or cancelling a PaymentIntent that already moved on (it succeeded,
        # or a concurrent cancel won) answers payment_intent_unexpected_state: ask for
        # its current status, which is the truth the caller needs.
        if (
            response.status_code == 400
            and error_object(response).get("code") == "payment_intent_unexpected_state"
        ):
            fresh = yield api.build_get(self.settings, reference)
            return api.parse_intent(self._json(fresh))
        return api.parse_intent(self._json(response), after_confirm=after_confirm)

    # --- webhooks -------------------------------------------------------------------

    def parse_webhook(
        self, headers: WebhookHeaders, body: bytes, *, now: datetime
    ) -> list[WebhookEvent]:
        # The secrets go straight through, never into a local of this frame: a
        # traceback printed with its locals must not show them (webhooks.verify masks
        # them in its own frame).
        if not self.settings.webhook_secrets:
            raise ConfigurationError("no webhook secret is configured",
                                     path="providers.stripe.webhook_secrets")
        webhooks.verify(headers, body, self.settings.webhook_secrets,
                        now=now, tolerance=self.settings.webhook_tolerance)
        return events.parse_events(body)
