"""pasarela's contract suite, run over the PagoEfectivo provider and its sandbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.notifications import (
    EVENT_EXPIRED,
    EVENT_PAID,
    build_notification,
    sign,
)

from pasarela.errors import ErrorCode
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.conformance import ProviderConformance


class TestPagoEfectivoConformance(ProviderConformance):
    provider_class = PagoEfectivoProvider
    #: PE spec v1.1 "Respuesta de validaciones" (100 is success).
    documented_error_codes = frozenset({"111", "112", "113", "508", "511", "166"})

    @pytest.fixture
    def settings(self, settings: PagoEfectivoSettings) -> PagoEfectivoSettings:
        return settings  # conftest: the sandbox on loopback

    @pytest.fixture
    def client(self) -> Iterator[httpx.Client]:
        with httpx.Client(timeout=5) as client:
            yield client

    @pytest.fixture
    def create_request(self, create_request: CreateRequest) -> CreateRequest:
        return create_request

    @pytest.fixture
    def signed_webhook(
        self, settings: PagoEfectivoSettings
    ) -> tuple[Mapping[str, str], bytes, datetime]:
        body = build_notification("cip.paid", operation_number="1253", cip="11546901",
                                  amount=Money.of("22.05", "PEN"))
        return {"PE-Signature": sign(body, settings.secret_key)}, body, datetime.now(UTC)

    @pytest.fixture
    def invalid_request(self, create_request: CreateRequest) -> CreateRequest:
        # The spec requires userPhone for a CIP: refused before any request is sent.
        customer = attrs.evolve(create_request.order.customer, phone=None)
        return attrs.evolve(create_request,
                            order=attrs.evolve(create_request.order, customer=customer))

    @pytest.fixture
    def webhook_cases(self, settings: PagoEfectivoSettings) -> list[tuple[Any, ...]]:
        now = datetime.now(UTC)
        cases = []
        for event, expected in ((EVENT_PAID, Status.SUCCEEDED), (EVENT_EXPIRED, Status.EXPIRED)):
            body = build_notification(event, operation_number="1253", cip="11546901",
                                      amount=Money.of("22.05", "PEN"))
            cases.append(({"PE-Signature": sign(body, settings.secret_key)}, body, now,
                          expected))
        return cases

    @pytest.fixture
    def wrong_settings(self, settings: PagoEfectivoSettings) -> PagoEfectivoSettings:
        return attrs.evolve(settings, secret_key="not-the-sandbox-secret", max_retries=0)

    @pytest.fixture
    def sandbox_errors(self, served: Any, create_request: CreateRequest
                       ) -> list[tuple[str, Operation, Any, ErrorCode]]:
        served.config(max_amount="PEN 5000")

        def create(request: CreateRequest, fault: str | None = None) -> Any:
            def make(provider: Any) -> Any:
                if fault is not None:
                    served.fault("create", fault)
                return provider.create(request)
            return make

        big = attrs.evolve(create_request, amount=Money.of("6000.00", "PEN"),
                           order=attrs.evolve(create_request.order,
                                              amount=Money.of("6000.00", "PEN")))
        return [
            ("511: above the merchant's maximum", Operation.CREATE, create(big),
             ErrorCode.AMOUNT_OUT_OF_RANGE),
            ("508: the token's service", Operation.CREATE, create(create_request, "508"),
             ErrorCode.CONFIGURATION),
            ("166: PagoEfectivo is down", Operation.CREATE, create(create_request, "500"),
             ErrorCode.PROVIDER_UNAVAILABLE),
        ]


def test_the_entry_point_registers_the_provider() -> None:
    from pasarela.plugins import get_plugin_manager

    manager: Any = get_plugin_manager(load_entrypoints=False)
    import pasarela_pagoefectivo

    manager.register(pasarela_pagoefectivo, name="pagoefectivo")
    assert manager.providers().get("pagoefectivo") is PagoEfectivoProvider
