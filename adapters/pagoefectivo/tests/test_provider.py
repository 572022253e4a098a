"""The provider's flows, driven by the core's ``run_flow``/``drive`` against the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.errors import PagoEfectivoConfigurationError

from pasarela.engine.calls import run_flow
from pasarela.engine.redaction import redact_exchange
from pasarela.engine.steps import drive
from pasarela.errors import (
    AuthenticationError,
    ConfigurationError,
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    UnknownOutcomeError,
    UnsupportedError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.model import Payment
from pasarela.next_action import ShowCashCode, qr_svg
from pasarela.provider import (
    CreateRequest,
    Operation,
    ProviderPayment,
    ProviderSettings,
    SettlementLine,
)


def run(provider: PagoEfectivoProvider, client: httpx.Client, operation: Operation,
        make: Callable[[], Any], record: list[Exchange] | None = None) -> Any:
    return drive(run_flow(provider, operation, make, sleep_scale=0,
                          record=record.append if record is not None else None), client)


def create(provider: PagoEfectivoProvider, client: httpx.Client,
           request: CreateRequest) -> ProviderPayment:
    result: ProviderPayment = run(provider, client, Operation.CREATE,
                                  lambda: provider.create(request))
    return result


def payment_for(request: CreateRequest, reported: ProviderPayment | None,
                status: Status = Status.PENDING) -> Payment:
    now = datetime.now(UTC)
    return Payment(
        id=request.payment_id, order_reference=request.order.reference,
        idempotency_key=request.idempotency_key, provider="pagoefectivo", method="cash",
        amount=request.amount, status=status, version=2, created_at=now, updated_at=now,
        provider_reference=reported.reference if reported else None, order=request.order,
    )


def test_create_gives_a_pending_payment_with_the_cip_to_show(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    reported = create(provider, client, create_request)
    assert reported.status is Status.PENDING
    assert reported.reference is not None
    assert reported.reference.isdigit()
    record = served.sandbox.cips[int(reported.reference)]
    assert record.transaction_code == create_request.payment_id  # our payment id
    assert record.fields["userphone"] == "987654321"
    action = reported.next_action
    assert isinstance(action, ShowCashCode)
    assert action.code == reported.reference
    assert action.amount == create_request.amount
    assert action.expires_at == reported.expires_at
    assert action.expires_at is not None
    assert abs(action.expires_at - (datetime.now(UTC) + timedelta(hours=48))) < timedelta(
        minutes=1)
    assert action.url is not None
    assert action.url.startswith(served.url + "/payment/")
    assert action.qr_data == action.url
    assert action.qr_svg == qr_svg(action.url)
    es, en = action.instructions["es"], action.instructions["en"]
    assert reported.reference in es[0]
    assert "S/\xa0149.90" in es[0]
    assert "(hora de Lima)" in es[0]
    assert any("Agentes y bodegas" in line for line in es)
    assert any("app de tu banco" in line for line in es)
    assert reported.reference in en[0]
    assert "(Lima time)" in en[0]
    assert httpx.get(action.url).status_code == 200  # the cipUrl page


def test_n_creates_make_one_authorization_call(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    request_factory: Callable[..., CreateRequest],
) -> None:
    references = {create(provider, client, request_factory()).reference for _ in range(5)}
    assert len(references) == 5
    assert served.sandbox.calls["authorization"] == 1
    assert served.sandbox.calls["create"] == 5


def test_token_is_renewed_shortly_before_it_expires(
    served: Any, settings: PagoEfectivoSettings, client: httpx.Client,
    request_factory: Callable[..., CreateRequest],
) -> None:
    now = [datetime.now(UTC)]
    provider = PagoEfectivoProvider(settings, clock=lambda: now[0])
    create(provider, client, request_factory())
    now[0] += timedelta(hours=1, minutes=54)  # 6 minutes left: still used
    served.sandbox.clock.offset = timedelta(hours=1, minutes=54)  # the same time there
    create(provider, client, request_factory())
    assert served.sandbox.calls["authorization"] == 1
    now[0] += timedelta(minutes=2)  # 4 minutes left: inside the 5-minute margin
    served.sandbox.clock.offset = timedelta(hours=1, minutes=56)
    create(provider, client, request_factory())
    assert served.sandbox.calls["authorization"] == 2


def test_a_401_renews_the_token_once_and_repeats(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    request_factory: Callable[..., CreateRequest],
) -> None:
    create(provider, client, request_factory())
    served.control("POST", "/tokens/expire")  # PagoEfectivo no longer takes the token
    reported = create(provider, client, request_factory())
    assert reported.status is Status.PENDING
    assert served.sandbox.calls["authorization"] == 2
    assert served.sandbox.calls["create"] == 3  # the refused one and its repeat
    assert len(served.sandbox.cips) == 2


def test_a_second_401_is_an_authentication_error(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    served.control("POST", "/faults", json={"operation": "create", "kind": "401", "times": 2})
    with pytest.raises(AuthenticationError) as caught:
        create(provider, client, create_request)
    assert caught.value.created_nothing
    assert served.sandbox.calls["authorization"] == 2
    assert not served.sandbox.cips


def test_wrong_credentials_are_an_authentication_error(
    served: Any, settings: PagoEfectivoSettings, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    provider = PagoEfectivoProvider(attrs.evolve(settings, secret_key="not-the-secret"))
    with pytest.raises(AuthenticationError):
        create(provider, client, create_request)
    assert served.sandbox.calls["create"] == 0


def test_bad_input_is_refused_before_any_request(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    order_factory: Callable[..., Any], request_factory: Callable[..., CreateRequest],
) -> None:
    bad = request_factory(order_factory(customer=None))
    with pytest.raises(ProviderValidationError) as caught:
        provider.check_request(bad)
    assert caught.value.fields.keys() == {"customer"}
    with pytest.raises(ProviderValidationError):
        next(provider.create(bad))  # the flow refuses before yielding anything
    assert served.sandbox.calls == dict.fromkeys(served.sandbox.calls, 0)


def test_511_above_the_merchant_maximum(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    served.control("POST", "/config", json={"max_amount": {"PEN": "100.00"}})
    with pytest.raises(UnsupportedError) as caught:
        create(provider, client, create_request)
    assert caught.value.code is ErrorCode.AMOUNT_OUT_OF_RANGE
    assert caught.value.provider_code == "511"
    assert caught.value.created_nothing


def test_508_is_a_configuration_error(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    served.control("POST", "/faults", json={"operation": "create", "kind": "508"})
    with pytest.raises(PagoEfectivoConfigurationError):
        create(provider, client, create_request)


def test_5xx_on_create_is_not_repeated(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    served.control("POST", "/faults", json={"operation": "create", "kind": "500"})
    with pytest.raises(ProviderUnavailableError) as caught:
        create(provider, client, create_request)
    assert caught.value.provider_code == "166"
    assert not caught.value.created_nothing
    assert served.sandbox.calls["create"] == 1  # create is not retry-safe


def test_5xx_on_search_is_retried(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    reported = create(provider, client, create_request)
    served.control("POST", "/faults", json={"operation": "search", "kind": "500"})
    again = run(provider, client, Operation.GET,
                lambda: provider.get(payment_for(create_request, reported)))
    assert again.status is Status.PENDING
    assert served.sandbox.calls["search"] == 2


def test_timeout_after_send_is_unknown_and_search_cannot_find_it(
    served: Any, settings: PagoEfectivoSettings, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    provider = PagoEfectivoProvider(attrs.evolve(settings, timeout=0.5))
    served.control("POST", "/faults", json={"operation": "create", "kind": "timeout",
                                            "seconds": 1.5})
    with pytest.raises(UnknownOutcomeError):
        create(provider, client, create_request)
    assert len(served.sandbox.cips) == 1  # the CIP exists at PagoEfectivo
    # PagoEfectivo's search takes CIP numbers only: without the answer there is no
    # number to ask about, and the payment stays unknown (no request is made).
    with httpx.Client(transport=httpx.MockTransport(lambda r: pytest.fail("no I/O"))) as none:
        reported = run(provider, none, Operation.GET, lambda: provider.get(
            payment_for(create_request, None, Status.UNKNOWN)))
    assert reported.status is Status.UNKNOWN
    assert reported.reference is None


def test_get_follows_the_cip_through_its_life(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    reported = create(provider, client, create_request)
    payment = payment_for(create_request, reported)

    def get() -> ProviderPayment:
        result: ProviderPayment = run(provider, client, Operation.GET,
                                      lambda: provider.get(payment))
        return result

    assert (get().status, get().raw_status) == (Status.PENDING, "22 Generado.")
    assert served.control("POST", f"/cips/{reported.reference}/expire").status_code == 200
    assert get().status is Status.EXPIRED
    later = datetime.now(UTC) + timedelta(hours=3)
    revived = run(provider, client, Operation.GET, lambda: provider.extend(payment, later))
    assert revived.status is Status.PENDING  # PATCH revives an expired CIP
    assert revived.expires_at == later.replace(microsecond=0)
    assert served.control("POST", f"/cips/{reported.reference}/pay").status_code == 200
    paid = get()
    assert paid.status is Status.SUCCEEDED
    assert paid.raw_status == "23 Cancelado."
    assert paid.amount == create_request.amount


def test_get_of_a_cip_the_search_does_not_know(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    payment = attrs.evolve(payment_for(create_request, None), provider_reference="999")
    with pytest.raises(ProviderError) as caught:
        run(provider, client, Operation.GET, lambda: provider.get(payment))
    assert caught.value.code is ErrorCode.NOT_FOUND


def test_cancel_deletes_a_generated_cip(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    reported = create(provider, client, create_request)
    payment = payment_for(create_request, reported)
    canceled = run(provider, client, Operation.CANCEL, lambda: provider.cancel(payment))
    assert canceled.status is Status.CANCELED
    assert served.sandbox.cips[int(reported.reference or 0)].removed_at is not None
    again = run(provider, client, Operation.GET, lambda: provider.get(payment))
    assert again.status is Status.CANCELED  # dateRemoval is set
    assert httpx.get(reported.next_action.url).status_code == 404  # type: ignore[union-attr]


@pytest.mark.parametrize(("action", "status"), [("pay", Status.SUCCEEDED),
                                                 ("expire", Status.EXPIRED)])
def test_cancel_of_a_cip_no_longer_generated_reports_the_truth(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest, action: str, status: Status,
) -> None:
    reported = create(provider, client, create_request)
    served.control("POST", f"/cips/{reported.reference}/{action}")
    result = run(provider, client, Operation.CANCEL,
                 lambda: provider.cancel(payment_for(create_request, reported)))
    assert result.status is status


def test_get_many_searches_many_cips_in_batches(
    served: Any, settings: PagoEfectivoSettings, client: httpx.Client,
    request_factory: Callable[..., CreateRequest],
) -> None:
    provider = PagoEfectivoProvider(attrs.evolve(settings, search_batch_size=2))
    requests = [request_factory() for _ in range(5)]
    payments = [payment_for(r, create(provider, client, r)) for r in requests]
    cips = [p.provider_reference or "" for p in payments]
    served.control("POST", f"/cips/{cips[0]}/pay", json={"notify": False})
    served.control("POST", f"/cips/{cips[1]}/expire")
    unknown = attrs.evolve(payments[0], id="x", provider_reference="999")
    no_cip = attrs.evolve(payments[0], id="y", provider_reference=None)
    searches = served.sandbox.calls["search"]
    answer: dict[str, ProviderPayment] = run(
        provider, client, Operation.GET_MANY,
        lambda: provider.get_many([*payments, unknown, no_cip]))
    # 6 CIPs (the 999 one too), 2 per search; the payment with no CIP is not asked about.
    assert served.sandbox.calls["search"] - searches == 3
    assert set(answer) == set(cips)  # the search left 999 out: PagoEfectivo said nothing
    assert [answer[c].status for c in cips] == [Status.SUCCEEDED, Status.EXPIRED,
                                                Status.PENDING, Status.PENDING, Status.PENDING]
    assert answer[cips[0]].raw_status == "23 Cancelado."
    assert all(answer[c].reference == c for c in cips)
    assert all(answer[c].amount == requests[0].amount for c in cips)


def test_get_many_of_no_cip_makes_no_request(provider: PagoEfectivoProvider,
                                             create_request: CreateRequest) -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda r: pytest.fail("no I/O"))) as none:
        answer = run(provider, none, Operation.GET_MANY,
                     lambda: provider.get_many([payment_for(create_request, None)]))
    assert answer == {}


def test_get_many_5xx_is_retried(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    payment = payment_for(create_request, create(provider, client, create_request))
    served.control("POST", "/faults", json={"operation": "search", "kind": "500"})
    answer = run(provider, client, Operation.GET_MANY, lambda: provider.get_many([payment]))
    assert answer[payment.provider_reference or ""].status is Status.PENDING
    assert served.sandbox.calls["search"] == 2


def test_settlements_search_in_batches(
    served: Any, settings: PagoEfectivoSettings, client: httpx.Client,
    request_factory: Callable[..., CreateRequest],
) -> None:
    provider = PagoEfectivoProvider(attrs.evolve(settings, search_batch_size=2))
    cips = [create(provider, client, request_factory()).reference or "" for _ in range(5)]
    for cip in cips[:3]:
        served.control("POST", f"/cips/{cip}/pay", json={"notify": False})
    searches = served.sandbox.calls["search"]
    start = datetime.now(UTC) - timedelta(minutes=1)
    end = datetime.now(UTC) + timedelta(minutes=1)
    lines: Iterable[SettlementLine] = run(
        provider, client, Operation.SETTLEMENTS,
        lambda: provider.settlements(start, end, references=cips))
    lines = list(lines)
    assert served.sandbox.calls["search"] - searches == 3  # 5 CIPs, 2 per search
    assert sorted(line.provider_reference or "" for line in lines) == sorted(cips[:3])
    assert all(line.status == "paid" and line.fee is None for line in lines)
    assert {line.raw["payment_id"] for line in lines} == {
        served.sandbox.cips[int(c)].transaction_code for c in cips[:3]}
    none: Iterable[SettlementLine] = run(
        provider, client, Operation.SETTLEMENTS,
        lambda: provider.settlements(end, end + timedelta(hours=1), references=cips))
    assert list(none) == []
    with pytest.raises(UnsupportedError, match="references"):
        next(iter(provider.settlements(start, end)))


def test_settlements_are_asked_by_reference() -> None:
    # The core pages through our CIP numbers only for a provider that says so; an
    # adapter without the flag would be asked with no references and refuse.
    assert PagoEfectivoProvider.settlements_by_reference is True


def test_recorded_exchanges_carry_no_secret(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    create_request: CreateRequest,
) -> None:
    exchanges: list[Exchange] = []
    run(provider, client, Operation.CREATE, lambda: provider.create(create_request), exchanges)
    assert [e.url.rsplit("/", 1)[-1] for e in exchanges] == ["authorizations", "cips"]
    settings = provider.settings
    for exchange in exchanges:
        text = repr(exchange.request_headers) + exchange.request_body + exchange.response_body
        for secret in (settings.access_key, settings.secret_key, "rosa@example.pe",
                       "987654321", "45678912"):
            assert secret not in text
        assert "hashString" not in exchange.request_body or (
            '"hashString": "[redacted]"' in exchange.request_body)
    token_answer = exchanges[0].response_body
    assert '"token": "[redacted]"' in token_answer
    assert exchanges[1].request_headers["authorization"] == "[redacted]"


def test_redaction_of_a_raw_exchange(provider: PagoEfectivoProvider) -> None:
    request = httpx.Request("POST", "http://x/v1/authorizations", json={
        "accessKey": provider.settings.access_key, "idService": 1028, "hashString": "ab"})
    headers, body, _, _ = redact_exchange(provider, request, None)
    assert provider.settings.access_key not in body
    assert "[redacted]" in body
    assert headers["content-type"] == "application/json"


def test_undeclared_refund_refuses(provider: PagoEfectivoProvider,
                                   create_request: CreateRequest) -> None:
    with pytest.raises(UnsupportedError):
        provider.refund(payment_for(create_request, None), create_request.amount,
                        refund_id="r", reason="")


def test_settings_validation() -> None:
    from pasarela.config import InvalidConfigError, structure_settings
    from pasarela.errors import ValidationError

    with pytest.raises(ValidationError, match="service_id"):
        PagoEfectivoSettings(access_key="a", secret_key="b", service_id=12345)
    with pytest.raises(ValidationError, match="access_key"):
        PagoEfectivoSettings(access_key="", secret_key="b", service_id=1)
    with pytest.raises(ValidationError, match="origin"):
        PagoEfectivoSettings(access_key="a", secret_key="b", service_id=1, origin="tv")
    where = r"providers\.pagoefectivo\.service_id: must have 1 to 4"
    with pytest.raises(InvalidConfigError, match=where):
        structure_settings("pagoefectivo", {"access_key": "a", "secret_key": "b",
                                            "service_id": 12345}, PagoEfectivoSettings, env={})
    settings = PagoEfectivoSettings(access_key="a" * 20, secret_key="s3cr3t-value",
                                    service_id="1028")  # type: ignore[arg-type]
    assert settings.service_id == 1028
    assert "s3cr3t-value" not in repr(settings)
    assert "a" * 20 not in repr(settings)
    assert set(settings.secret_values()) == {"a" * 20, "s3cr3t-value"}


def test_other_settings_are_refused_by_the_core_check() -> None:
    # The one check, in Provider.__init__: the same error for every adapter.
    with pytest.raises(ConfigurationError,
                       match="settings must be PagoEfectivoSettings, not ProviderSettings"):
        PagoEfectivoProvider(ProviderSettings())


def test_a_checked_request_is_created_with_the_fields_its_check_built(
    served: Any, provider: PagoEfectivoProvider, client: httpx.Client,
    request_factory: Callable[..., CreateRequest], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The core checks a request and then creates it: the CIP's fields are built once
    (the check's), and a request created without a check builds its own."""
    from pasarela_pagoefectivo import api

    built: list[str] = []
    fields = api.cip_fields

    def counted(request: CreateRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append(request.payment_id)
        return fields(request, *args, **kwargs)

    monkeypatch.setattr(api, "cip_fields", counted)
    checked, unchecked = request_factory(), request_factory()
    provider.check_request(checked)
    assert create(provider, client, checked).status is Status.PENDING
    assert create(provider, client, unchecked).status is Status.PENDING
    assert built == [checked.payment_id, unchecked.payment_id]
    assert served.sandbox.calls["create"] == 2
