"""The core's contract suite against the sandbox, for each method."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from pasarela_mercadopago import MercadoPagoProvider, MercadoPagoSettings
from pasarela_mercadopago.sandbox import WEBHOOK_SECRET
from pasarela_mercadopago.webhooks import signature_header

from pasarela.errors import ErrorCode, ProviderValidationError, SignatureInvalidError
from pasarela.model import Method
from pasarela.provider import CreateRequest, Operation, WebhookHeaders
from pasarela.testing.conformance import FETCH, ProviderConformance


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def notification(payment_id: str, *, request_id: str = "req-conf-1",
                 secret: str = WEBHOOK_SECRET, action: str = "payment.updated"
                 ) -> tuple[dict[str, str], bytes, datetime]:
    body = json.dumps({"id": 110000000999, "live_mode": False, "type": "payment",
                       "date_created": "2026-11-25T07:00:00.000-05:00", "user_id": 1,
                       "api_version": "v1", "action": action,
                       "data": {"id": payment_id}}).encode()
    header = signature_header(secret, data_id=payment_id, request_id=request_id,
                              ts=int(NOW.timestamp()))
    return {"x-signature": header, "x-request-id": request_id}, body, NOW


class TestMercadoPagoConformance(ProviderConformance):
    provider_class = MercadoPagoProvider
    #: The codes the Payments API reference documents for a create, and the refund
    #: errors and status details the README lists.
    documented_error_codes = frozenset({
        "1", "3", "8", "23", "1000", "2002", "2004", "2006", "2007", "2009", "2034", "2059",
        "2060", "2062", "2067", "2063", "2024", "15016", "3024", "4292",
        "cc_rejected_bad_filled_card_number", "cc_rejected_bad_filled_date",
        "cc_rejected_bad_filled_other", "cc_rejected_bad_filled_security_code",
        "cc_rejected_blacklist", "cc_rejected_call_for_authorize",
        "cc_rejected_card_disabled", "cc_rejected_card_error",
        "cc_rejected_duplicated_payment", "cc_rejected_high_risk",
        "cc_rejected_insufficient_amount", "cc_rejected_invalid_installments",
        "cc_rejected_max_attempts", "cc_rejected_other_reason",
    })
    #: A refund takes only ``amount``: nothing of our refund id is kept.
    finds_refunds_by_id = False

    @pytest.fixture(params=["cash", "card", "yape"])
    def create_request(self, request: pytest.FixtureRequest,
                       card_token: Any, make_request: Any) -> CreateRequest:
        if request.param == "cash":
            return make_request(Method.CASH)
        if request.param == "card":
            return make_request(Method.CARD, token=card_token(),
                                payment_method_id="master")
        return make_request(Method.WALLET, phone="111111111", otp="123456")

    @pytest.fixture
    def signed_webhook(self) -> tuple[Mapping[str, str], bytes, datetime]:
        return notification("1320000001")

    @pytest.fixture
    def invalid_request(self, make_request: Any) -> CreateRequest:
        request = make_request(Method.CASH)
        order = attrs.evolve(request.order, customer=attrs.evolve(
            request.order.customer, email=None))
        return attrs.evolve(request, order=order)

    @pytest.fixture
    def webhook_cases(self) -> list[tuple[Any, ...]]:
        return [(*notification("1320000001", action=a), FETCH)
                for a in ("payment.created", "payment.updated")]

    @pytest.fixture
    def wrong_settings(self, settings: MercadoPagoSettings) -> MercadoPagoSettings:
        return attrs.evolve(settings, access_token="TEST-not-the-sandbox-token", max_retries=0)

    @pytest.fixture
    def sandbox_errors(self, card_token: Any, make_request: Any
                       ) -> list[tuple[str, Operation, Any, ErrorCode]]:
        def card(name: str) -> Any:
            request = make_request(Method.CARD, token=card_token(name),
                                   payment_method_id="visa")
            return lambda provider: provider.create(request)

        spent = make_request(Method.CARD, token="0" * 32, payment_method_id="visa")
        yape = make_request(Method.WALLET, phone="111111113", otp="123456")
        return [
            ("FUND", Operation.CREATE, card("FUND"), ErrorCode.INSUFFICIENT_FUNDS),
            ("OTHE", Operation.CREATE, card("OTHE"), ErrorCode.CARD_DECLINED),
            ("CALL", Operation.CREATE, card("CALL"), ErrorCode.CARD_DECLINED),
            ("token not found (2006)", Operation.CREATE,
             lambda provider: provider.create(spent), ErrorCode.VALIDATION),
            ("yape insufficient amount", Operation.CREATE,
             lambda provider: provider.create(yape), ErrorCode.INSUFFICIENT_FUNDS),
        ]

    def test_webhook_accepts_genuine_and_rejects_tampered_bytes(
        self, provider: Any, signed_webhook: tuple[Mapping[str, str], bytes, datetime]
    ) -> None:
        """Mercado Pago signs the manifest (data.id, x-request-id, ts), not the body: a
        genuine delivery is accepted; a different payment id in the body, another
        request id or another time are refused, and the event trusts nothing else of
        the body (it is fetched). Replaces the byte-flip check, which assumes a
        signature over the whole body."""
        raw_headers, body, now = signed_webhook
        headers = WebhookHeaders({k.upper(): v for k, v in raw_headers.items()})
        events = provider.parse_webhook(headers, body, now=now)
        assert [e.verify_by_fetch for e in events] == [True]
        other_id = body.replace(b'"1320000001"', b'"1320000002"')
        with pytest.raises(SignatureInvalidError):
            provider.parse_webhook(headers, other_id, now=now)
        other_request = WebhookHeaders({**raw_headers, "x-request-id": "req-other"})
        with pytest.raises(SignatureInvalidError):
            provider.parse_webhook(other_request, body, now=now)
        ts_moved = raw_headers["x-signature"].replace(
            f"ts={int(now.timestamp())}", f"ts={int(now.timestamp()) + 1}")
        with pytest.raises(SignatureInvalidError):
            provider.parse_webhook(WebhookHeaders({**raw_headers, "x-signature": ts_moved}),
                                   body, now=now)

    def test_get_many_as_declared(self, provider: Any, client: Any,
                                  create_request: CreateRequest) -> None:
        if create_request.method is Method.CARD:
            pytest.skip("a card token pays once: the suite's second payment reuses it "
                        "(get_many is checked with the cash and Yape requests)")
        super().test_get_many_as_declared(provider, client, create_request)

    def test_cash_amount_outside_pagoefectivo_limits(self, provider: Any,
                                                      make_request: Any) -> None:
        too_much = make_request(Method.CASH, amount="10000.01")
        with pytest.raises(ProviderValidationError) as info:
            provider.check_request(too_much)
        assert info.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE
        assert provider.ineligibility(too_much.order, Method.CASH) is not None
        assert provider.ineligibility(too_much.order, Method.CARD) is None
