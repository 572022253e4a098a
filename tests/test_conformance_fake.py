"""The conformance suite, run over the fake provider (and so tested itself)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.conformance import ProviderConformance
from pasarela.testing.fake import FakeGateway, FakeProvider, FakeSettings


class TestFakeConformance(ProviderConformance):
    provider_class = FakeProvider
    documented_error_codes = frozenset({"card_declined", "insufficient_funds",
                                        "invalid_request", "unauthorized", "server_error"})
    has_entry_point = False

    @pytest.fixture
    def gateway(self):
        return FakeGateway()

    @pytest.fixture
    def settings(self):
        return FakeSettings()

    @pytest.fixture
    def client(self, gateway):
        with httpx.Client(transport=gateway.transport()) as client:
            yield client

    @pytest.fixture(params=["card", "cash"])
    def create_request(self, request):
        order = Order(reference="conf-1", amount=Money.of("25.00", "PEN"),
                      customer=Customer(first_name="Ana", last_name="Díaz",
                                        email="ana@example.pe"))
        return CreateRequest(payment_id="01JCONFORMANCE", idempotency_key=f"conf-{request.param}",
                             order=order, method=Method(request.param), amount=order.amount,
                             expires_at=None)

    @pytest.fixture
    def signed_webhook(self, gateway, client, provider, create_request):
        now = datetime.now(UTC)
        gateway.clock = lambda: now
        reported = self._run(provider, client, Operation.CREATE,
                             lambda: provider.create(create_request))
        headers, body = gateway.settle(reported.reference)
        return headers, body, now


def test_suite_catches_a_missing_error_code():
    class Incomplete(TestFakeConformance):
        documented_error_codes = frozenset({"card_declined", "rate_limited_xyz"})

    with pytest.raises(AssertionError, match="rate_limited_xyz"):
        Incomplete().test_error_table_covers_documented_codes()
