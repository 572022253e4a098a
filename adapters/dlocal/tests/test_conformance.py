"""The core's contract suite, against the loopback sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from pasarela_dlocal import DlocalProvider, DlocalSettings, api

from pasarela.errors import ErrorCode
from pasarela.lifecycle import Status
from pasarela.model import Method
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.conformance import ProviderConformance

from .conftest import make_order, make_request


def signed(settings: DlocalSettings, obj: dict[str, Any]
           ) -> tuple[Mapping[str, str], bytes, datetime]:
    now = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)
    body = api.dumps(obj)
    date = api.x_date(now)
    return ({"X-Login": settings.x_login, "X-Date": date,
             "Authorization": api.authorization(settings.secret_key, settings.x_login, date,
                                                body)}, body, now)


class TestDlocalConformance(ProviderConformance):
    provider_class = DlocalProvider
    finds_refunds_by_id = False
    #: docs.dlocal.com/reference/http-errors-payments and payment-status-codes.
    documented_error_codes = frozenset(
        {"3001", "3002", "3003", "4000", *(str(c) for c in range(5000, 5012)), "5013",
         *(str(c) for c in range(300, 327))})

    @pytest.fixture(params=["card", "cash"])
    def create_request(self, request: pytest.FixtureRequest) -> CreateRequest:
        """A card (paid at once: refunds) and a PagoEfectivo ticket (pending: cancel)."""
        return make_request(Method.CARD if request.param == "card" else Method.CASH)

    @pytest.fixture
    def signed_webhook(self, settings: DlocalSettings
                       ) -> tuple[Mapping[str, str], bytes, datetime]:
        return signed(settings, {"id": "D-4-conf", "amount": api.loads("149.90"),
                                 "currency": "PEN", "status": "PAID", "status_code": "200",
                                 "order_id": "01JCONF"})

    @pytest.fixture
    def invalid_request(self) -> CreateRequest:
        customer = attrs.evolve(make_order().customer, document=None)
        return make_request(Method.CASH, order=make_order(customer=customer))

    @pytest.fixture
    def webhook_cases(self, settings: DlocalSettings) -> list[tuple[Any, ...]]:
        cases = []
        for status, code, expected in [("PENDING", "100", Status.PENDING),
                                       ("PAID", "200", Status.SUCCEEDED),
                                       ("REJECTED", "302", Status.FAILED),
                                       ("CANCELLED", "400", Status.CANCELED)]:
            cases.append((*signed(settings, {"id": "D-4-conf", "status": status,
                                             "status_code": code, "currency": "PEN",
                                             "amount": api.loads("149.90")}), expected))
        return cases

    @pytest.fixture
    def wrong_settings(self, settings: DlocalSettings) -> DlocalSettings:
        return attrs.evolve(settings, secret_key="not-the-sandbox-secret", max_retries=0)

    @pytest.fixture
    def sandbox_errors(self) -> list[tuple[str, Operation, Any, ErrorCode]]:
        def forced(code: str, method: Method = Method.CARD) -> Any:
            request = make_request(method, order=make_order(description=code))
            return lambda provider: provider.create(request)

        chile = make_request(Method.CASH, order=make_order(country="CL"))
        return [
            ("302 insufficient amount", Operation.CREATE, forced("302"),
             ErrorCode.INSUFFICIENT_FUNDS),
            ("301 rejected by bank", Operation.CREATE, forced("301"), ErrorCode.CARD_DECLINED),
            ("317 high risk", Operation.CREATE, forced("317"), ErrorCode.FRAUD_SUSPECTED),
            ("5003 country not supported", Operation.CREATE,
             lambda provider: provider.create(chile), ErrorCode.UNSUPPORTED_METHOD),
        ]
