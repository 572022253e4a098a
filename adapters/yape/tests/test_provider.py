"""The provider's declarations, settings and request checks (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from pasarela_yape import YapeProvider, YapeSettings, pasarela_register_providers
from pasarela_yape.acquirer import ACQUIRERS
from pasarela_yape.culqi import CulqiAcquirer
from pasarela_yape.provider import national_mobile

from pasarela.config import InvalidConfigError, structure_settings
from pasarela.engine.redaction import redact_exchange
from pasarela.errors import (
    ConfigurationError,
    ErrorCode,
    ProviderValidationError,
    UnsupportedError,
    ValidationError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, Order
from pasarela.money import Money
from pasarela.next_action import ApproveInWallet
from pasarela.provider import Operation, ProviderSettings


def run(flow: Any) -> Any:
    """Run a flow that must finish without any request."""
    with pytest.raises(StopIteration) as done:
        next(flow)
    return done.value.value


def test_declarations() -> None:
    assert YapeProvider.name == "yape"
    assert YapeProvider.display_name == "Yape / Plin"
    assert YapeProvider.methods == {Method.WALLET}
    assert YapeProvider.currencies == {"PEN"}
    assert YapeProvider.limits["PEN"] == (300, 50_000)  # Culqi: a charge of S/ 3.00 or more
    assert YapeProvider.flow_limits["qr"]["PEN"] == (600, 50_000)
    assert YapeProvider.settings_class is YapeSettings
    assert YapeProvider.sandbox_factory == "pasarela_yape.sandbox:create_app"
    assert YapeProvider.error_codes["insufficient_funds"] is ErrorCode.INSUFFICIENT_FUNDS
    assert YapeProvider.error_codes["invalid_otp"] is ErrorCode.INVALID_CODE
    assert {"otp", "number_phone", "email"} <= YapeProvider.secret_fields
    assert YapeProvider.supports(Operation.CONFIRM)
    assert YapeProvider.supports(Operation.WEBHOOK)
    assert YapeProvider.supports(Operation.SETTLEMENTS)
    assert YapeProvider.supports(Operation.GET_REFUND)
    assert YapeProvider.retry_safe == {Operation.PROBE, Operation.GET, Operation.GET_REFUND,
                                       Operation.SETTLEMENTS}


def test_the_hook_registers_the_provider() -> None:
    added: list[type] = []

    class Register:
        def add(self, cls: type) -> None:
            added.append(cls)

    pasarela_register_providers(Register())
    assert added == [YapeProvider]


def test_the_sandbox_factory_resolves() -> None:
    import importlib

    module, _, function = YapeProvider.sandbox_factory.partition(":")  # type: ignore[union-attr]
    app = getattr(importlib.import_module(module), function)(latency=0.0)
    assert app.state.sandbox.knobs.latency == 0.0


def test_settings_check_keys_without_echoing_them(h: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        h.make_settings(secret_key="sk_bogus_1234")
    assert caught.value.field == "secret_key"
    assert "sk_bogus_1234" not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        h.make_settings(public_key="nope")
    assert caught.value.field == "public_key"
    with pytest.raises(ValidationError, match="both"):
        h.make_settings(secret_key="sk_live_1")
    with pytest.raises(ValidationError) as caught:
        h.make_settings(environment="production")
    assert caught.value.field == "environment"
    live = h.make_settings(environment="production", public_key="pk_live_1",
                           secret_key="sk_live_1")
    assert live.live
    assert h.SK not in repr(h.make_settings())
    assert h.make_settings().secret_values() == [h.SK]


def test_settings_from_a_pasarela_toml_table(h: Any) -> None:
    settings = structure_settings("yape", {
        "public_key": "env:CULQI_PK", "secret_key": "env:CULQI_SK", "acquirer": "culqi",
        "base_url": "http://127.0.0.1:8802", "expiry": "20m", "max_amount": "PEN 300.00",
    }, YapeSettings, env={"CULQI_PK": h.PK, "CULQI_SK": h.SK})
    assert settings.secret_key == h.SK
    assert settings.expiry == timedelta(minutes=20)
    assert settings.max_amount == Money(30000, "PEN")
    assert settings.tokens_url == settings.api_url == "http://127.0.0.1:8802"
    with pytest.raises(InvalidConfigError) as caught:
        structure_settings("yape", {"public_key": h.PK, "secret_key": "sk_oops_secret"},
                           YapeSettings)
    assert caught.value.errors == [
        "providers.yape.secret_key: must be a Culqi key starting with sk_test_ or sk_live_"]


def test_the_acquirer_is_a_seam(h: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(YapeProvider(h.make_settings()).acquirer, CulqiAcquirer)
    with pytest.raises(ValidationError) as caught:
        h.make_settings(acquirer="niubiz")
    assert caught.value.field == "acquirer"

    class Niubiz:
        qr_limits = (100, 50_000)
        error_codes: ClassVar[dict[str, ErrorCode]] = {}
        added_metadata = ("order_reference",)

        def __init__(self, settings: Any, clock: Any) -> None:
            self.settings = settings

    monkeypatch.setitem(ACQUIRERS, "niubiz", Niubiz)
    provider = YapeProvider(h.make_settings(acquirer="niubiz"))
    assert isinstance(provider.acquirer, Niubiz)
    # the QR floor is the provider's (Culqi's wallets) and the acquirer's, the higher
    provider.check_request(h.create_request(h.order("6.00"), flow="qr"))
    assert provider.flow_amount_limits("qr", "PEN") == (600, 50_000)
    with pytest.raises(ProviderValidationError):
        provider.check_request(h.create_request(h.order("5.99"), flow="qr"))


@pytest.mark.parametrize(("given", "national"), [
    ("987654321", "987654321"), ("+51 987 654 321", "987654321"), ("51987654321", "987654321"),
    ("+51-987-654-321", "987654321"), (987654321, "987654321"),
    ("187654321", None), ("98765432", None), ("+1 987 654 321", None), ("", None), (None, None),
    (True, None),
])
def test_national_mobile(given: Any, national: str | None) -> None:
    assert national_mobile(given) == national


def test_code_flow_requests_are_checked(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    provider.check_request(h.create_request(phone="900000001", code="123456"))

    def refused(field: str, **params: Any) -> None:
        with pytest.raises(ProviderValidationError) as caught:
            provider.check_request(h.create_request(**params))
        assert field in caught.value.fields, caught.value.fields

    refused("code", phone="900000001", code="12345")
    refused("code", phone="900000001", code="abcdef")
    refused("phone", phone="12345", code="123456")
    refused("phone", phone="12345")  # a bad phone is refused even before the code
    refused("flow", flow="push")
    no_email = h.order(customer=h.customer(email=None))
    with pytest.raises(ProviderValidationError) as caught:
        provider.check_request(h.create_request(no_email, code="123456", phone="900000001"))
    assert "customer.email" in caught.value.fields
    provider.check_request(h.create_request(no_email, code="123456", phone="900000001",
                                            email="x@example.pe"))


def test_phone_defaults_to_the_customers_mobile(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    plan = provider._plan(h.create_request(code="123456"))
    assert plan is not None
    assert plan.phone == "987654321"  # type: ignore[union-attr]
    landline = h.order(customer=h.customer(phone="+51 1 4567890"))
    with pytest.raises(ProviderValidationError) as caught:
        provider.check_request(h.create_request(landline, code="123456"))
    assert "phone" in caught.value.fields


def test_currency_and_amount_limits(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    usd = Order(reference="pedido-usd", amount=Money.of("25.00", "USD"), customer=h.customer())
    with pytest.raises(UnsupportedError) as caught:
        provider.check_request(h.create_request(usd))
    assert caught.value.code is ErrorCode.UNSUPPORTED_CURRENCY
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(h.order("500.01")))
    assert refused.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE
    assert refused.value.fields.keys() == {"amount"}
    assert refused.value.created_nothing is True
    provider.check_request(h.create_request(h.order("500.00")))
    provider.check_request(h.create_request(h.order("3.00")))
    capped = YapeProvider(h.make_settings(max_amount=Money.of("100.00", "PEN")))
    with pytest.raises(ProviderValidationError):
        capped.check_request(h.create_request(h.order("100.01")))
    assert capped.ineligibility(h.order("100.01"), Method.WALLET) is not None
    assert capped.ineligibility(h.order("100.00"), Method.WALLET) is None


@pytest.mark.parametrize("params", [{"phone": "900000001", "code": "425251"}, {},
                                    {"flow": "qr"}])
def test_culqis_least_charge_is_three_soles(h: Any, params: dict[str, Any]) -> None:
    """Culqi refuses charges under S/ 3.00 (PEN 300): refused before anything is sent,
    naming the field, and visible to routing (Yape is not eligible for S/ 2.99)."""
    provider = YapeProvider(h.make_settings())
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(h.order("2.99"), **params))
    assert refused.value.fields.keys() == {"amount"}
    assert refused.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE
    assert refused.value.created_nothing is True
    unfit = provider.ineligibility(h.order("2.99"), Method.WALLET)
    assert unfit is not None
    assert unfit.code is ErrorCode.AMOUNT_OUT_OF_RANGE
    assert "3.00" in unfit.message
    assert provider.ineligibility(h.order("3.00"), Method.WALLET) is None


@pytest.mark.parametrize("params", [{"phone": "900000001", "code": "425251"}, {"flow": "qr"}])
def test_culqi_takes_emails_of_5_to_50_characters(h: Any, params: dict[str, Any]) -> None:
    provider = YapeProvider(h.make_settings())
    at_most = "r" * 39 + "@example.pe"   # 50 characters
    provider.check_request(h.create_request(h.order(customer=h.customer(email=at_most)),
                                            **params))
    too_long = "r" * 40 + "@example.pe"  # 51
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(h.order(customer=h.customer(email=too_long)),
                                                **params))
    assert refused.value.fields.keys() == {"customer.email"}
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(email="a@bc", **params))  # 4 characters
    assert refused.value.fields.keys() == {"email"}


@pytest.mark.parametrize("params", [{"phone": "900000001", "code": "425251"}, {"flow": "qr"}])
def test_culqis_metadata_limits_count_what_the_adapter_adds(h: Any,
                                                            params: dict[str, Any]) -> None:
    """At most 20 keys (the adapter adds order_reference and pasarela_payment_id, so 18
    are the merchant's), keys up to 30 characters, values up to 200."""
    provider = YapeProvider(h.make_settings())

    def check(metadata: dict[str, str]) -> None:
        provider.check_request(h.create_request(h.order(metadata=metadata), **params))

    check({f"k{i}": "v" for i in range(18)})
    check({"k" * 30: "v" * 200})
    for metadata, field in (({f"k{i}": "v" for i in range(19)}, "order.metadata"),
                            ({"k" * 31: "v"}, "order.metadata." + "k" * 31),
                            ({"nota": "v" * 201}, "order.metadata.nota")):
        with pytest.raises(ProviderValidationError) as refused:
            check(metadata)
        assert refused.value.fields.keys() == {field}, metadata
        assert refused.value.created_nothing is True


def test_qr_orders_need_six_soles_and_the_customer(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    provider.check_request(h.create_request(h.order("6.00"), flow="qr"))
    provider.check_request(h.create_request(h.order("500.00"), flow="qr"))
    for amount in ("5.99", "500.01"):
        with pytest.raises(ProviderValidationError) as caught:
            provider.check_request(h.create_request(h.order(amount), flow="qr"))
        assert caught.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE
        assert caught.value.fields.keys() == {"amount"}
        assert "6.00" in caught.value.message
    usd = Order(reference="pedido-usd", amount=Money.of("25.00", "USD"), customer=h.customer())
    with pytest.raises(UnsupportedError):  # soles only
        provider.check_request(h.create_request(usd, flow="qr"))
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(h.order(customer=None), flow="qr"))
    assert "customer" in refused.value.fields
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(h.order(customer=h.customer(phone=None)),
                                                flow="qr"))
    assert "customer.phone" in refused.value.fields
    soon = datetime.now(UTC) + timedelta(seconds=30)
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(h.create_request(flow="qr", expires_at=soon))
    assert "expires_at" in refused.value.fields



def test_without_a_code_the_payment_waits_for_approval(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    request = h.create_request(h.order("149.90"))
    reported = run(provider.create(request))
    assert reported.status is Status.PENDING
    assert isinstance(reported.next_action, ApproveInWallet)
    assert reported.next_action.wallet == "yape"
    assert "S/\u00a0149.90" in " ".join(reported.next_action.instructions["es"])
    assert reported.next_action.instructions["en"]
    # get() asks nobody while the customer has not given the code
    payment = h.payment_for(request, next_action=reported.next_action)
    again = run(provider.get(payment))
    assert again.status is Status.PENDING
    assert again.next_action == reported.next_action
    # canceling it touches nothing at Culqi either
    assert run(provider.cancel(payment)).status is Status.CANCELED


def test_confirm_only_applies_to_a_payment_waiting_for_its_code(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    request = h.create_request()
    qr_payment = h.payment_for(request, reference="ord_test_1")
    with pytest.raises(UnsupportedError):
        next(provider.confirm(qr_payment, {"phone": "900000001", "code": "123456"}))
    waiting = h.payment_for(request)
    with pytest.raises(ProviderValidationError) as caught:
        next(provider.confirm(waiting, {"phone": "900000001"}))
    assert "code" in caught.value.fields


def test_secrets_and_personal_data_are_redacted_from_exchanges(h: Any) -> None:
    provider = YapeProvider(h.make_settings())
    flow = provider.create(h.create_request(phone="900000001", code="425251"))
    request = next(flow)
    headers, body, _, _ = redact_exchange(provider, request, None)
    assert h.PK not in str(headers)
    assert "425251" not in body
    assert "900000001" not in body
    assert "rosa@example.pe" not in body
    assert '"amount": 2500' in body


def test_other_settings_are_refused_by_the_core_check() -> None:
    # The one check, in Provider.__init__: the same error for every adapter.
    with pytest.raises(ConfigurationError,
                       match="settings must be YapeSettings, not ProviderSettings"):
        YapeProvider(ProviderSettings())
