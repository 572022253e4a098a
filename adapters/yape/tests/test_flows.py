"""The adapter's flows driven by the core's drivers against the sandbox on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from pasarela_yape import YapeProvider
from pasarela_yape.culqi.api import search_windows

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    ProviderUnavailableError,
    ProviderValidationError,
    UnknownOutcomeError,
    UnsupportedError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.next_action import OpenCheckout
from pasarela.provider import Flow, Operation, WebhookHeaders


T = TypeVar("T")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as http:
        yield http


@pytest.fixture
def do(provider: YapeProvider, client: httpx.Client) -> Callable[..., Any]:
    """Run one operation of *provider* through ``run_flow`` and ``drive``."""

    def run(operation: Operation, make: Callable[[], Flow[T]], *,
            record: list[Exchange] | None = None, on: YapeProvider | None = None) -> T:
        who = on or provider
        steps = run_flow(who, operation, make, record=record.append if record is not None
                         else None, sleep_scale=0.0)
        return drive(steps, client)

    return run


# --- approval code ---------------------------------------------------------------------


def test_pay_with_phone_and_code_charges_at_once(provider: YapeProvider, do: Any, h: Any,
                                                 sandbox: Any) -> None:
    request = h.create_request(phone="900000001", code="425251")
    exchanges: list[Exchange] = []
    reported = do(Operation.CREATE, lambda: provider.create(request), record=exchanges)
    assert reported.status is Status.SUCCEEDED
    assert reported.reference.startswith("chr_test_")
    assert reported.amount == Money(2500, "PEN")
    assert [(e.method, e.url.rsplit("/", 2)[-2:]) for e in exchanges] == [
        ("POST", ["tokens", "yape"]), ("POST", ["v2", "charges"])]
    assert all(h.SK not in str(e.request_headers) and h.PK not in str(e.request_headers)
               for e in exchanges)
    assert "425251" not in exchanges[0].request_body
    charge = sandbox.http.get(f"/v2/charges/{reported.reference}",
                              headers={"Authorization": f"Bearer {h.SK}"}).json()
    assert charge["metadata"]["pasarela_payment_id"] == request.payment_id
    assert charge["metadata"]["order_reference"] == "pedido-1042"
    assert charge["email"] == "rosa@example.pe"


@pytest.mark.parametrize(("phone", "code"), [
    ("900000002", ErrorCode.INSUFFICIENT_FUNDS),
    ("900000003", ErrorCode.INVALID_CODE),
    ("900000004", ErrorCode.INVALID_CODE),
    ("912345678", ErrorCode.INVALID_CODE),
    ("900000005", ErrorCode.CARD_DECLINED),
    ("900000006", ErrorCode.DECLINED),
    ("900000007", ErrorCode.FRAUD_SUSPECTED),
])
def test_declines_are_typed(provider: YapeProvider, do: Any, h: Any, phone: str,
                            code: ErrorCode) -> None:
    request = h.create_request(phone=phone, code="123456")
    with pytest.raises(DeclinedError) as caught:
        do(Operation.CREATE, lambda: provider.create(request))
    assert caught.value.code is code
    assert caught.value.provider == "yape"
    assert caught.value.customer_message("es")


def test_wrong_code_has_a_clear_spanish_message(provider: YapeProvider, do: Any,
                                                h: Any) -> None:
    request = h.create_request(phone="900000003", code="000000")
    with pytest.raises(DeclinedError) as caught:
        do(Operation.CREATE, lambda: provider.create(request))
    assert "código de aprobación" in caught.value.customer_message("es")
    assert "approval code" in caught.value.customer_message("en")
    assert caught.value.created_nothing is True


def test_pending_then_confirm(provider: YapeProvider, do: Any, h: Any) -> None:
    request = h.create_request()
    pending = do(Operation.CREATE, lambda: provider.create(request))
    assert pending.status is Status.PENDING
    assert pending.next_action.type == "approve_in_wallet"
    payment = h.payment_for(request, next_action=pending.next_action)
    confirmed = do(Operation.CONFIRM,
                   lambda: provider.confirm(payment, {"phone": "+51 900 000 001",
                                                      "code": "111111"}))
    assert confirmed.status is Status.SUCCEEDED
    assert confirmed.reference.startswith("chr_test_")


def test_confirm_with_a_wrong_code_declines(provider: YapeProvider, do: Any, h: Any) -> None:
    payment = h.payment_for(h.create_request())
    with pytest.raises(DeclinedError) as caught:
        do(Operation.CONFIRM,
           lambda: provider.confirm(payment, {"phone": "900000004", "code": "111111"}))
    assert caught.value.code is ErrorCode.INVALID_CODE


def test_get_a_charge(provider: YapeProvider, do: Any, h: Any) -> None:
    request = h.create_request(phone="900000001", code="425251")
    created = do(Operation.CREATE, lambda: provider.create(request))
    payment = h.payment_for(request, status=Status.SUCCEEDED, reference=created.reference)
    reported = do(Operation.GET, lambda: provider.get(payment))
    assert reported.status is Status.SUCCEEDED
    assert reported.amount == Money(2500, "PEN")


def test_wrong_keys_are_an_authentication_error(sandbox_server: Any, do: Any, h: Any) -> None:
    wrong = YapeProvider(h.make_settings(sandbox_server.url, public_key="pk_test_wrong"))
    request = h.create_request(phone="900000001", code="123456")
    with pytest.raises(AuthenticationError):
        do(Operation.CREATE, lambda: wrong.create(request), on=wrong)


def test_provider_field_refusals_are_validation_errors(sandbox: Any, provider: YapeProvider,
                                                       do: Any, h: Any) -> None:
    sandbox.config(yape_max=1000)  # the acquirer's cap is lower than ours
    request = h.create_request(phone="900000001", code="123456")
    with pytest.raises(ProviderValidationError) as caught:
        do(Operation.CREATE, lambda: provider.create(request))
    # Culqi's recorded errors name no field: the refusal carries Culqi's words only.
    assert caught.value.fields == {}
    assert "1000" in caught.value.message
    assert caught.value.created_nothing is True


# --- refunds ----------------------------------------------------------------------------


def test_partial_then_full_refund(provider: YapeProvider, do: Any, h: Any) -> None:
    request = h.create_request(phone="900000001", code="425251")
    created = do(Operation.CREATE, lambda: provider.create(request))
    payment = h.payment_for(request, status=Status.SUCCEEDED, reference=created.reference)
    first = do(Operation.REFUND, lambda: provider.refund(payment, Money(1000, "PEN"),
                                                         refund_id="rf-1", reason="duplicate"))
    assert first.status is RefundStatus.SUCCEEDED
    assert first.reference.startswith("ref_test_")
    assert first.amount == Money(1000, "PEN")
    assert first.payment_reference == created.reference
    with pytest.raises(ProviderValidationError) as caught:
        do(Operation.REFUND, lambda: provider.refund(payment, Money(1501, "PEN"),
                                                     refund_id="rf-2", reason=""))
    assert "excede" in caught.value.message
    rest = do(Operation.REFUND, lambda: provider.refund(payment, Money(1500, "PEN"),
                                                        refund_id="rf-3", reason=""))
    assert rest.amount == Money(1500, "PEN")


def test_refund_of_a_qr_order_is_unsupported(provider: YapeProvider, h: Any) -> None:
    payment = h.payment_for(h.create_request(), status=Status.SUCCEEDED,
                            reference="ord_test_1")
    with pytest.raises(UnsupportedError):
        next(provider.refund(payment, Money(100, "PEN"), refund_id="r", reason=""))


def test_refund_lost_in_transit_is_unknown(sandbox: Any, provider: YapeProvider, do: Any,
                                           h: Any) -> None:
    request = h.create_request(phone="900000001", code="425251")
    created = do(Operation.CREATE, lambda: provider.create(request))
    payment = h.payment_for(request, status=Status.SUCCEEDED, reference=created.reference)
    sandbox.fault("POST /v2/refunds", "500_after")
    with pytest.raises(UnknownOutcomeError):
        do(Operation.REFUND, lambda: provider.refund(payment, Money(500, "PEN"),
                                                     refund_id="rf", reason=""))


# --- QR orders ----------------------------------------------------------------------------


def create_qr(provider: YapeProvider, do: Any, h: Any, amount: str = "25.00",
              **kwargs: Any) -> tuple[Any, Any]:
    request = h.create_request(h.order(amount), flow="qr", **kwargs)
    created = do(Operation.CREATE, lambda: provider.create(request))
    return request, created


def test_qr_order_opens_culqis_checkout_for_the_order(provider: YapeProvider, do: Any,
                                                      h: Any, sandbox: Any) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    request, created = create_qr(provider, do, h, expires_at=expires)
    assert created.status is Status.PENDING
    assert created.reference.startswith("ord_test_")
    assert created.expires_at == expires
    action = created.next_action
    assert isinstance(action, OpenCheckout)
    assert action.provider == "culqi"
    assert action.script_url == f"{sandbox.url}/checkout-js"  # the sandbox's stand-in
    assert action.settings == {"public_key": h.PK, "order": created.reference,
                               "amount": 2500, "currency": "PEN",
                               "title": "Audífonos inalámbricos"}
    assert h.SK not in str(action.to_dict())
    assert action.expires_at == expires
    order = sandbox.http.get(f"/v2/orders/{created.reference}",
                             headers={"Authorization": f"Bearer {h.SK}"}).json()
    assert "qr" not in order
    # the order's payment_code is a PagoEfectivo CIP, offered as one, never as a QR
    assert action.cash_code == order["payment_code"]
    assert any("CIP" in line and order["payment_code"] in line
               for line in action.instructions["es"])
    assert not any("escanea este código" in line.lower() for line in action.instructions["es"])
    assert order["order_number"] == request.payment_id
    assert order["expiration_date"] == int(expires.timestamp())


def test_the_checkout_script_is_culqis_unless_told(h: Any) -> None:
    production = h.make_settings(base_url="")
    assert production.checkout_url == "https://js.culqi.com/checkout-js"
    proxied = h.make_settings(base_url="https://culqi-proxy.example.pe")
    assert proxied.checkout_url == "https://js.culqi.com/checkout-js"
    told = h.make_settings(checkout_script_url="https://js.culqi.com/checkout-js?v=2")
    assert told.checkout_url == "https://js.culqi.com/checkout-js?v=2"
    assert h.make_settings(base_url="http://127.0.0.1:8802").checkout_url == (
        "http://127.0.0.1:8802/checkout-js")


def test_qr_paid_from_plin_is_succeeded_on_fetch(provider: YapeProvider, do: Any, h: Any,
                                                 sandbox: Any, receiver: Any) -> None:
    sandbox.config(webhook_url=receiver.url)
    request, created = create_qr(provider, do, h)
    sandbox.post(f"/orders/{created.reference}/pay", wallet="plin")
    (body,) = receiver.bodies
    (event,) = provider.parse_webhook(WebhookHeaders(), body, now=datetime.now(UTC))
    assert event.provider_reference == created.reference
    assert event.verify_by_fetch is True
    payment = h.payment_for(request, reference=created.reference)
    fetched = do(Operation.GET, lambda: provider.get(payment))
    assert fetched.status is Status.SUCCEEDED
    assert fetched.amount == Money(2500, "PEN")


def test_qr_expired_and_canceled(provider: YapeProvider, do: Any, h: Any,
                                 sandbox: Any, clock: Any) -> None:
    request, created = create_qr(provider, do, h)
    sandbox.post("/clock", advance=16 * 60)  # past the default 15 minutes
    clock.offset = timedelta(minutes=16)
    payment = h.payment_for(request, reference=created.reference)
    assert do(Operation.GET, lambda: provider.get(payment)).status is Status.EXPIRED
    request2, created2 = create_qr(provider, do, h, payment_id="01J0000000PAYMENT000000002")
    payment2 = h.payment_for(request2, reference=created2.reference)
    canceled = do(Operation.CANCEL, lambda: provider.cancel(payment2))
    assert canceled.status is Status.CANCELED
    assert do(Operation.GET, lambda: provider.get(payment2)).status is Status.CANCELED


def test_cancel_after_the_customer_paid_reports_the_payment(provider: YapeProvider, do: Any,
                                                            h: Any, sandbox: Any) -> None:
    request, created = create_qr(provider, do, h)
    sandbox.post(f"/orders/{created.reference}/pay", wallet="yape")
    payment = h.payment_for(request, reference=created.reference)
    assert do(Operation.CANCEL, lambda: provider.cancel(payment)).status is Status.SUCCEEDED


def test_qr_order_amount_out_of_culqi_range_is_refused_by_the_sandbox(
    sandbox: Any, provider: YapeProvider, do: Any, h: Any
) -> None:
    sandbox.config(qr_min=3000)
    with pytest.raises(ProviderValidationError) as caught:
        create_qr(provider, do, h)
    assert "3000" in caught.value.message


def test_get_retries_a_5xx(sandbox_server: Any, sandbox: Any, do: Any, h: Any,
                           clock: Any) -> None:
    retrying = YapeProvider(h.make_settings(sandbox_server.url, max_retries=2), clock=clock)
    request, created = create_qr(retrying, do, h)
    payment = h.payment_for(request, reference=created.reference)
    sandbox.fault("GET /v2/orders/{id}", "500", times=2)
    exchanges: list[Exchange] = []
    reported = do(Operation.GET, lambda: retrying.get(payment), record=exchanges, on=retrying)
    assert reported.status is Status.PENDING
    assert [e.status_code for e in exchanges] == [500, 500, 200]
    sandbox.fault("GET /v2/orders/{id}", "500", times=3)
    with pytest.raises(ProviderUnavailableError):
        do(Operation.GET, lambda: retrying.get(payment), on=retrying)


# --- unknown outcomes, resolved by fetching ----------------------------------------------------


def test_charge_timeout_after_send_is_unknown_then_found(
    sandbox_server: Any, sandbox: Any, do: Any, h: Any, clock: Any
) -> None:
    impatient = YapeProvider(h.make_settings(sandbox_server.url, timeout=0.3), clock=clock)
    request = h.create_request(phone="900000001", code="425251")
    sandbox.fault("POST /v2/charges", "hang_after")
    with pytest.raises(UnknownOutcomeError):
        do(Operation.CREATE, lambda: impatient.create(request), on=impatient)
    payment = h.payment_for(request, status=Status.UNKNOWN)
    found = do(Operation.GET, lambda: impatient.get(payment), on=impatient)
    assert found.status is Status.SUCCEEDED
    assert found.reference.startswith("chr_test_")


def test_charge_500_after_the_work_is_unknown_then_found(
    sandbox: Any, provider: YapeProvider, do: Any, h: Any
) -> None:
    request = h.create_request(phone="900000002", code="425251")
    sandbox.fault("POST /v2/charges", "500_after")
    with pytest.raises(UnknownOutcomeError):
        do(Operation.CREATE, lambda: provider.create(request))
    payment = h.payment_for(request, status=Status.UNKNOWN)
    found = do(Operation.GET, lambda: provider.get(payment))
    assert found.status is Status.FAILED  # the charge was declined after all
    assert found.failure_code == "insufficient_funds"


def test_order_lost_in_transit_is_found(sandbox: Any, provider: YapeProvider, do: Any,
                                        h: Any) -> None:
    request = h.create_request(flow="qr")
    sandbox.fault("POST /v2/orders", "hang_after")
    slow = YapeProvider(h.make_settings(sandbox.url, timeout=0.3), clock=provider.clock)
    with pytest.raises(UnknownOutcomeError):
        do(Operation.CREATE, lambda: slow.create(request), on=slow)
    found = do(Operation.GET, lambda: provider.get(h.payment_for(request, status=Status.UNKNOWN)))
    assert found.status is Status.PENDING
    assert found.reference.startswith("ord_test_")
    assert isinstance(found.next_action, OpenCheckout)
    assert found.next_action.settings["order"] == found.reference


def test_nothing_found_stays_unknown_however_long_ago(
    sandbox: Any, provider: YapeProvider, do: Any, h: Any, clock: Any, client: httpx.Client
) -> None:
    """An empty search is not Culqi saying nothing was charged: past 10 minutes (and
    hours) of clock the payment is still unknown; the search asks in both units."""
    request = h.create_request(phone="900000001", code="425251")
    sandbox.fault("POST /v2/tokens/yape", "hang")  # the answer is lost
    slow = YapeProvider(h.make_settings(sandbox.url, timeout=0.3), clock=clock)
    with pytest.raises(UnknownOutcomeError):
        do(Operation.CREATE, lambda: slow.create(request), on=slow)
    payment = h.payment_for(request, status=Status.UNKNOWN)
    sent: list[httpx.Request] = []
    soon = drive_recording(provider.get(payment), client, sent)
    assert soon.status is Status.UNKNOWN
    asked = [(r.url.path.rsplit("/", 1)[-1], len(r.url.params["creation_date_from"]),
              len(r.url.params["creation_date_to"])) for r in sent]
    # Unix seconds (10 digits), then milliseconds (13), as a charge's creation_date is
    assert asked == [("charges", 10, 10), ("charges", 13, 13), ("orders", 10, 10),
                     ("orders", 13, 13)]
    for minutes in (11, 60 * 24):
        clock.offset = timedelta(minutes=minutes)
        later = do(Operation.GET, lambda: provider.get(payment))
        assert later.status is Status.UNKNOWN, minutes
        assert later.raw_status == "not_found_yet"


def drive_recording(flow: Flow[T], client: httpx.Client, sent: list[httpx.Request]) -> T:
    """Drive *flow* with *client*, keeping each request it sent (its query included)."""
    try:
        step = next(flow)
        while True:
            sent.append(step)
            step = flow.send(client.send(step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def test_search_windows_cover_seconds_and_milliseconds() -> None:
    at = datetime(2030, 1, 15, 15, 0, tzinfo=UTC)
    (s_from, s_to), (ms_from, ms_to) = search_windows(at, timedelta(minutes=30))
    created_ms = int(at.timestamp() * 1000)  # a charge's creation_date (cassettes: ms)
    assert s_from <= at.timestamp() <= s_to
    assert ms_from <= created_ms <= ms_to
    assert (s_to - s_from) * 1000 == pytest.approx(ms_to - ms_from, abs=1000)


def test_search_with_more_pages_stays_unknown(sandbox: Any, provider: YapeProvider, do: Any,
                                              h: Any, clock: Any) -> None:
    for _ in range(101):  # other charges of the same amount fill the first page
        token = sandbox.http.post("/v2/tokens/yape", headers={"Authorization": f"Bearer {h.PK}"},
                                  json={"amount": 2500, "number_phone": "900000001",
                                        "otp": "123456"}).json()["id"]
        sandbox.http.post("/v2/charges", headers={"Authorization": f"Bearer {h.SK}"},
                          json={"amount": 2500, "currency_code": "PEN",
                                "email": "x@example.pe", "source_id": token})
    clock.offset = timedelta(minutes=11)
    payment = h.payment_for(h.create_request(), status=Status.UNKNOWN)
    assert do(Operation.GET, lambda: provider.get(payment)).status is Status.UNKNOWN


def test_webhook_body_from_the_sandbox_parses(provider: YapeProvider, do: Any, h: Any,
                                              sandbox: Any) -> None:
    _, created = create_qr(provider, do, h)
    sandbox.post(f"/orders/{created.reference}/expire")
    (logged,) = sandbox.webhooks()
    assert logged["status"] == "no_url"
    (event,) = provider.parse_webhook(WebhookHeaders(), logged["body"].encode(),
                                      now=datetime.now(UTC))
    assert event.status is Status.EXPIRED
    assert json.loads(logged["body"])["id"] == event.event_id
