"""Culqi as the acquirer of Yape payments: the flows, built from ``api``'s pure parts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import ClassVar

import httpx

from pasarela.errors import (
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    UnknownOutcomeError,
    UnsupportedError,
)
from pasarela.lifecycle import Status
from pasarela.model import Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.provider import (
    Flow,
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    WebhookEvent,
    WebhookHeaders,
)
from pasarela_yape.acquirer import CodeCharge, QrOrder
from pasarela_yape.culqi.api import (
    PAGE_SIZE,
    PAYMENT_KEY,
    REFUND_KEY,
    build_charge_request,
    build_charges_list_request,
    build_delete_order_request,
    build_get_refund_request,
    build_get_request,
    build_order_request,
    build_refund_request,
    build_refunds_search_request,
    build_search_request,
    build_token_request,
    match_search,
    parse_charge,
    parse_charges_page,
    parse_json,
    parse_order,
    parse_refund,
    parse_refund_object,
    parse_token,
    settlement_lines,
)
from pasarela_yape.culqi.webhooks import parse_event
from pasarela_yape.errors import ERROR_CODES, PROVIDER, error_from_response
from pasarela_yape.settings import YapeSettings


__all__ = ["CulqiAcquirer"]


class CulqiAcquirer:
    """Yape through Culqi: approval-code charges, QR orders, refunds, webhooks."""

    #: Culqi's QR wallets take S/ 6 to S/ 500 (providers.md §3).
    qr_limits: tuple[int, int] = (600, 50_000)
    error_codes: Mapping[str, ErrorCode] = ERROR_CODES
    #: Charges and orders carry the order's reference and our payment id in metadata.
    added_metadata: tuple[str, ...] = ("order_reference", PAYMENT_KEY)
    #: Charges asked for per page of the charges list.
    page_size: ClassVar[int] = PAGE_SIZE
    #: Pages of one list a search for a lost answer reads, per unit, at most.
    search_pages: ClassVar[int] = 5

    def __init__(self, settings: YapeSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock

    # --- approval code ------------------------------------------------------------

    def charge_with_code(self, charge: CodeCharge) -> Flow[ProviderPayment]:
        """Token (public key) then charge (secret key). A refused code raises on the token."""
        response = yield build_token_request(self.settings, charge)
        token = parse_token(response)
        response = yield build_charge_request(self.settings, charge, token)
        return self._charged(response)

    def _charged(self, response: httpx.Response) -> ProviderPayment:
        # The charge moves money: a 5xx or an answer we cannot read may hide a charge,
        # so it is an unknown outcome (resolved later by finding the charge), never a
        # failure. A 429 was refused before any work: it stays a rate limit.
        try:
            return parse_charge(parse_json(response))
        except RateLimitedError:
            raise
        except ProviderUnavailableError as exc:
            raise UnknownOutcomeError(
                f"charge sent to Culqi, whose answer (HTTP {response.status_code}) does not "
                f"say what happened: {exc.message}",
                provider=PROVIDER, http_status=response.status_code,
            ) from exc

    # --- QR order -----------------------------------------------------------------

    def create_qr_order(self, order: QrOrder) -> Flow[ProviderPayment]:
        response = yield build_order_request(self.settings, order)
        return parse_order(parse_json(response), self.settings)

    # --- status ---------------------------------------------------------------------

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        reference = payment.provider_reference
        if reference is None:
            return (yield from self._find(payment))
        if not reference.startswith(("ord_", "chr_")):
            raise ProviderError(f"not a Culqi order or charge id: {reference!r}",
                                provider=PROVIDER)
        response = yield build_get_request(self.settings, reference)
        body = parse_json(response)
        if reference.startswith("ord_"):
            return parse_order(body, self.settings)
        return parse_charge(body)

    def _find(self, payment: Payment) -> Flow[ProviderPayment]:
        """Find the charge or order of a payment whose creation answer was lost.

        Both carry our payment id in their metadata (an order its ``order_number`` too).
        The list is asked in both units its date filters may read
        (:func:`~pasarela_yape.culqi.api.search_windows`). When nothing matches, the
        payment is still unknown, however long ago it was made: an empty search is
        not Culqi saying nothing was charged, so it is never failed by time.
        """
        for kind in ("charges", "orders"):
            def listed(unit: int, after: str | None, kind: str = kind) -> httpx.Request:
                return build_search_request(self.settings, kind, payment.amount,
                                            payment.created_at, unit=unit, after=after)

            item = yield from self._search(listed, payment.id, PAYMENT_KEY)
            if item is not None:
                return (parse_charge(item) if kind == "charges"
                        else parse_order(item, self.settings))
        return ProviderPayment(status=Status.UNKNOWN, raw_status="not_found_yet")

    def _search(
        self, request: Callable[[int, str | None], httpx.Request], ours: str, key: str
    ) -> Flow[Mapping[str, object] | None]:
        """The listed object whose metadata *key* is *ours*, over both date units and up
        to :attr:`search_pages` pages each; None when none matched."""
        for unit in (0, 1):  # seconds, then milliseconds (search_windows)
            after: str | None = None
            for _ in range(self.search_pages):
                response = yield request(unit, after)
                item, after = match_search(parse_json(response), ours, key=key)
                if item is not None:
                    return item
                if after is None:
                    break
        return None

    # --- cancel / refund ------------------------------------------------------------

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        reference = payment.provider_reference
        if reference is None:
            # Waiting for an approval code: nothing exists at Culqi yet.
            return ProviderPayment(status=Status.CANCELED, raw_status="canceled")
        if not reference.startswith("ord_"):
            raise UnsupportedError("only a QR order can be canceled at Culqi",
                                   code=ErrorCode.UNSUPPORTED_OPERATION, provider=PROVIDER)
        response = yield build_delete_order_request(self.settings, reference)
        if response.is_success:
            parse_json(response)
            return ProviderPayment(status=Status.CANCELED, reference=reference,
                                   raw_status="deleted")
        if response.status_code in (400, 409, 422):
            # Refused (paid or expired meanwhile?): report what the order is now.
            response = yield build_get_request(self.settings, reference)
            return parse_order(parse_json(response), self.settings)
        raise error_from_response(response)

    def refund(
        self, payment: Payment, amount: Money, *, refund_id: str, reason: str
    ) -> Flow[ProviderRefund]:
        reference = payment.provider_reference
        if reference is None or not reference.startswith("chr_"):
            raise UnsupportedError(
                "Culqi refunds a charge (an approval-code payment); a QR order paid from "
                "a wallet is refunded from CulqiPanel",
                code=ErrorCode.UNSUPPORTED_OPERATION, provider=PROVIDER,
            )
        response = yield build_refund_request(
            self.settings, reference, amount, refund_id=refund_id, reason=reason
        )
        return parse_refund(response, currency=amount.currency, refund_id=refund_id)

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        """*refund* at Culqi: ``GET /v2/refunds/{id}`` when its id is known; else the
        refunds list around its creation, matched by our refund id in the metadata.
        Created at Culqi means done; not found (yet) is pending, never failed."""
        currency = refund.amount.currency
        if refund.provider_reference is not None:
            response = yield build_get_refund_request(self.settings, refund.provider_reference)
            return parse_refund_object(parse_json(response), currency=currency,
                                       refund_id=refund.id)
        item = yield from self._search(
            lambda unit, after: build_refunds_search_request(
                self.settings, refund.created_at, unit=unit, after=after),
            refund.id, REFUND_KEY)
        if item is not None:
            return parse_refund_object(item, currency=currency, refund_id=refund.id)
        return ProviderRefund(status=RefundStatus.PENDING, refund_id=refund.id,
                              payment_reference=payment.provider_reference)

    # --- settlements -----------------------------------------------------------------

    def probe(self) -> Flow[None]:
        """One charge listed (``GET /v2/charges``, secret key): the keys."""
        now = self.clock()
        response = yield build_charges_list_request(self.settings, now - timedelta(seconds=1),
                                                    now, after=None, limit=1)
        parse_json(response)

    def settlements(self, since: datetime, until: datetime) -> Flow[Iterable[SettlementLine]]:
        """The charges created in ``[since, until)`` as settlement lines, page by page
        through ``GET /v2/charges`` until no cursor is left (or one comes back)."""
        lines: list[SettlementLine] = []
        seen: set[str] = set()
        after: str | None = None
        while True:
            response = yield build_charges_list_request(self.settings, since, until,
                                                        after=after, limit=self.page_size)
            charges, after = parse_charges_page(parse_json(response))
            for charge in charges:
                lines.extend(settlement_lines(charge, since, until))
            if after is None or after in seen:
                return lines
            seen.add(after)

    # --- webhooks ---------------------------------------------------------------------

    def parse_webhook(
        self, headers: WebhookHeaders, body: bytes, *, now: datetime
    ) -> list[WebhookEvent]:
        return parse_event(body)
