"""pasarela's contract suite, run over the PagoEfectivo provider and its sandbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.notifications import build_notification, sign

from pasarela.money import Money
from pasarela.provider import CreateRequest
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


def test_the_entry_point_registers_the_provider() -> None:
    from pasarela.plugins import get_plugin_manager

    manager: Any = get_plugin_manager(load_entrypoints=False)
    import pasarela_pagoefectivo

    manager.register(pasarela_pagoefectivo, name="pagoefectivo")
    assert manager.providers().get("pagoefectivo") is PagoEfectivoProvider
