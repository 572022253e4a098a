"""The conformance suite, run over the fake provider (and so tested itself)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import httpx
import pytest

from pasarela.errors import ErrorCode
from pasarela.lifecycle import Status
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

    @pytest.fixture
    def invalid_request(self, create_request):
        # A cash code needs the customer: the fake's field rule, checked before any I/O.
        order = attrs.evolve(create_request.order, customer=None)
        return attrs.evolve(create_request, method=Method.CASH, order=order)

    @pytest.fixture
    def webhook_cases(self, gateway, client, provider, create_request):
        now = datetime.now(UTC)
        gateway.clock = lambda: now
        cases = []
        for n, (status, expected) in enumerate([("succeeded", Status.SUCCEEDED),
                                                ("failed", Status.FAILED),
                                                ("expired", Status.EXPIRED)]):
            request = attrs.evolve(create_request, payment_id=f"01JCONF{n}",
                                   idempotency_key=f"conf-webhook-{n}")
            reported = self._run(provider, client, Operation.CREATE,
                                 lambda request=request: provider.create(request))
            headers, body = gateway.settle(reported.reference, status)
            cases.append((headers, body, now, expected))
        return cases

    @pytest.fixture
    def wrong_settings(self):
        return FakeSettings(api_key="fake_sk_wrong", max_retries=0)

    @pytest.fixture
    def sandbox_errors(self, create_request):
        def scenario(name):
            return lambda provider: provider.create(attrs.evolve(
                create_request, params={"scenario": name},
                idempotency_key=f"{create_request.idempotency_key}-{name}"))

        return [
            ("a refused field", Operation.CREATE, scenario("invalid"), ErrorCode.VALIDATION),
            ("a decline", Operation.CREATE, scenario("decline"), ErrorCode.CARD_DECLINED),
            ("no funds", Operation.CREATE, scenario("insufficient_funds"),
             ErrorCode.INSUFFICIENT_FUNDS),
            ("a server error", Operation.CREATE, scenario("5xx"),
             ErrorCode.PROVIDER_UNAVAILABLE),
        ]


def test_suite_catches_a_missing_error_code():
    class Incomplete(TestFakeConformance):
        documented_error_codes = frozenset({"card_declined", "rate_limited_xyz"})

    with pytest.raises(AssertionError, match="rate_limited_xyz"):
        Incomplete().test_error_table_covers_documented_codes()
