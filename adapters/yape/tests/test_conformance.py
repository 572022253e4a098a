"""The core's contract suite, run against the Yape provider and its sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import pytest
from pasarela_yape import YapeProvider, YapeSettings
from ulid import ULID

from pasarela.errors import ErrorCode, WebhookError
from pasarela.provider import CreateRequest, Operation, Provider, WebhookHeaders
from pasarela.testing.conformance import FETCH, ProviderConformance


class TestConformance(ProviderConformance):
    provider_class = YapeProvider
    #: Culqi's documented error types, and the decline codes of its recorded sandbox.
    documented_error_codes: ClassVar[frozenset[str]] = frozenset({
        "invalid_request_error", "authentication_error", "parameter_error", "card_error",
        "limit_api_error", "resource_error", "api_error", "card_declined",
        "insufficient_funds", "stolen_card", "lost_card", "contact_issuer", "incorrect_cvv",
        "invalid_card", "issuer_decline_operation", "issuer_not_available",
        "processing_error",
    })

    @pytest.fixture
    def settings(self, sandbox: Any, h: Any) -> YapeSettings:
        return h.make_settings(sandbox.url)  # type: ignore[no-any-return]

    @pytest.fixture
    def client(self) -> Iterator[httpx.Client]:
        with httpx.Client() as http:
            yield http

    @pytest.fixture(params=["approval_code", "qr"])
    def create_request(self, request: pytest.FixtureRequest, h: Any) -> CreateRequest:
        params = ({"phone": "900000001", "code": "425251"} if request.param == "approval_code"
                  else {"flow": "qr"})
        return h.create_request(payment_id=str(ULID()), **params)  # type: ignore[no-any-return]

    @pytest.fixture
    def signed_webhook(self, sandbox: Any, provider: Provider, client: httpx.Client,
                       h: Any) -> tuple[Mapping[str, str], bytes, datetime]:
        """A genuine delivery from the sandbox. Culqi signs nothing: no headers."""
        created = client.post(f"{sandbox.url}/v2/orders",
                              headers={"Authorization": f"Bearer {h.SK}"},
                              json={"amount": 2500, "currency_code": "PEN",
                                    "description": "Venta de prueba", "order_number": "c-1",
                                    "client_details": {"first_name": "Rosa",
                                                       "last_name": "Quispe",
                                                       "email": "rosa@example.pe",
                                                       "phone_number": "+51987654321"},
                                    "expiration_date": int(datetime.now(UTC).timestamp()) + 600})
        sandbox.post(f"/orders/{created.json()['id']}/pay", wallet="plin")
        (logged,) = sandbox.webhooks()
        return {"content-type": "application/json"}, logged["body"].encode(), datetime.now(UTC)

    def test_webhook_accepts_genuine_and_rejects_tampered_bytes(
        self, provider: Provider, signed_webhook: tuple[Mapping[str, str], bytes, datetime]
    ) -> None:
        """Culqi signs nothing, so tampering cannot be seen in the bytes: every event
        must instead be marked ``verify_by_fetch`` so the core applies only what it
        fetches from Culqi; bytes that no longer parse are refused."""
        raw_headers, body, now = signed_webhook
        headers = WebhookHeaders(raw_headers)
        events = provider.parse_webhook(headers, body, now=now)
        assert events
        assert all(e.event_id and e.verify_by_fetch for e in events)
        forged = json.loads(body)
        forged["data"] = json.dumps({**json.loads(forged["data"]), "amount": 1, "state": "paid"})
        assert all(e.verify_by_fetch for e in provider.parse_webhook(
            headers, json.dumps(forged).encode(), now=now))
        for cut in (len(body) // 2, 1):
            with pytest.raises(WebhookError):
                provider.parse_webhook(headers, body[:cut], now=now)

    @pytest.fixture
    def invalid_request(self, h: Any) -> CreateRequest:
        return h.create_request(payment_id=str(ULID()), flow="bogus")  # type: ignore[no-any-return]

    @pytest.fixture
    def webhook_cases(self, sandbox: Any,
                      signed_webhook: tuple[Mapping[str, str], bytes, datetime]
                      ) -> list[tuple[Any, ...]]:
        """Every delivery the sandbox sent (a paid QR order: Culqi notifies orders, an
        approval-code charge is answered at once). Culqi signs nothing: each must be
        fetched before it is applied."""
        delivered = sandbox.webhooks()
        assert delivered
        now = datetime.now(UTC)
        return [({"content-type": "application/json"}, d["body"].encode(), now, FETCH)
                for d in delivered]

    @pytest.fixture
    def wrong_settings(self, h: Any, sandbox: Any) -> YapeSettings:
        return h.make_settings(sandbox.url, secret_key="sk_test_not_the_sandbox_key")  # type: ignore[no-any-return]

    @pytest.fixture
    def sandbox_errors(self, sandbox: Any, h: Any) -> list[tuple[str, Operation, Any, ErrorCode]]:
        def charge(phone: str, fault: str | None = None) -> Any:
            request = h.create_request(payment_id=str(ULID()), phone=phone, code="425251")

            def make(provider: Any) -> Any:
                if fault is not None:
                    sandbox.fault("POST /v2/charges", fault)
                return provider.create(request)
            return make

        return [
            ("insufficient_funds", Operation.CREATE, charge("900000002"),
             ErrorCode.INSUFFICIENT_FUNDS),
            ("invalid_otp", Operation.CREATE, charge("900000003"), ErrorCode.INVALID_CODE),
            # A charge Culqi answered 500 may have been made: unknown, never failed.
            ("a 500 from Culqi", Operation.CREATE, charge("900000001", "500"),
             ErrorCode.TIMEOUT_UNKNOWN_OUTCOME),
        ]
