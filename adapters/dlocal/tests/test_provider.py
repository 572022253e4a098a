"""The adapter against the sandbox: each method's next action, USD charging and its
rate, cancel, refunds (cash refunds' bank details), and notifications signed and
retried as dLocal retries them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
from pasarela_dlocal import DlocalProvider, DlocalSettings, RefundBank, api
from pasarela_dlocal.sandbox import NOTIFICATION_SCHEDULE

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import DeclinedError, ErrorCode, ProviderValidationError
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.next_action import BankTransfer, OpenUrl, ShowCashCode
from pasarela.provider import CreateRequest, Operation, WebhookHeaders
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox

from .conftest import make_order, make_request


def run(provider: DlocalProvider, client: httpx.Client, operation: Operation, make: Any) -> Any:
    return drive(run_flow(provider, operation, make, sleep_scale=0), client)


def payment_of(request: CreateRequest, reported: Any) -> Payment:
    now = reported.expires_at or datetime.now().astimezone()
    return Payment(id=request.payment_id, order_reference=request.order.reference,
                   idempotency_key=request.idempotency_key, provider="dlocal",
                   method=request.method, amount=request.amount, status=reported.status,
                   version=2, created_at=now, updated_at=now,
                   provider_reference=reported.reference, order=request.order)


def test_bank_transfer_gives_the_bcp_account_reference_and_amount(
        provider: DlocalProvider, client: httpx.Client, sandbox: Any) -> None:
    request = make_request(Method.BANK_TRANSFER)
    reported = run(provider, client, Operation.CREATE, lambda: provider.create(request))
    assert reported.status is Status.PENDING
    action = reported.next_action
    assert isinstance(action, BankTransfer)
    sent = sandbox.payments[reported.reference]
    assert sent["payment_method_id"] == "BC"
    assert (action.bank, action.account_label, action.holder) == (
        "BCP", "CCI", "dLocal Peru S.A.C.")
    assert action.account == sent["bank_transfer"]["bank_account"]
    assert action.reference == sent["bank_transfer"]["reference"]
    assert action.amount == Money.of("149.90", "PEN")
    assert action.instructions["es"][0].startswith("Transfiere el monto exacto")
    other = run(provider, client, Operation.CREATE,
                lambda: provider.create(make_request(Method.BANK_TRANSFER, bank="IO")))
    assert sandbox.payments[other.reference]["payment_method_id"] == "IO"


def test_usd_charging_records_dlocals_rate_and_the_dollar_amount(
        settings: DlocalSettings, client: httpx.Client, sandbox: Any) -> None:
    provider = DlocalProvider(attrs.evolve(settings, currency_to_charge="USD"))
    request = make_request(Method.CASH)
    reported = run(provider, client, Operation.CREATE, lambda: provider.create(request))
    sent = sandbox.payments[reported.reference]
    assert sent["currency"] == "PEN"  # the price stays in soles
    assert reported.amount == Money.of("149.90", "PEN")
    action = reported.next_action
    assert isinstance(action, ShowCashCode)
    assert action.code == sent["ticket"]["number"]
    assert action.amount == Money.of("40.00", "USD")  # 149.90 x 0.266845, to the cent
    assert "1 PEN = 0.266845 USD" in action.instructions["es"][0]
    assert "USD 40.00" in action.instructions["en"][0]
    # a pay() parameter overrides the setting; a currency dLocal cannot charge is refused
    local = make_request(Method.CASH, currency_to_charge="PEN")
    again = run(provider, client, Operation.CREATE, lambda: provider.create(local))
    assert "currency_exchange" not in sandbox.payments[again.reference]
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(make_request(Method.CASH, currency_to_charge="EUR"))
    assert "currency_to_charge" in refused.value.fields


def test_yape_redirects(provider: DlocalProvider, client: httpx.Client, sandbox: Any) -> None:
    reported = run(provider, client, Operation.CREATE,
                   lambda: provider.create(make_request(Method.WALLET)))
    assert isinstance(reported.next_action, OpenUrl)
    sent = sandbox.payments[reported.reference]
    assert (sent["payment_method_id"], sent["payment_method_flow"]) == ("YP", "REDIRECT")
    assert reported.next_action.url == sent["redirect_url"]


def test_a_forced_rejection_is_a_decline_with_the_status_codes_meaning(
        provider: DlocalProvider, client: httpx.Client) -> None:
    request = make_request(Method.CARD, order=make_order(description="320"))
    with pytest.raises(DeclinedError) as declined:
        run(provider, client, Operation.CREATE, lambda: provider.create(request))
    assert declined.value.code is ErrorCode.CARD_DECLINED
    assert declined.value.decline_code == "320"
    assert declined.value.provider_reference


def test_card_minimum_and_document_rules_before_any_request(provider: DlocalProvider) -> None:
    tiny = make_order(amount=Money.of("4.99", "PEN"))
    assert provider.ineligibility(tiny, Method.CARD) is not None
    assert provider.ineligibility(tiny, Method.CASH) is None
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(make_request(Method.CARD, order=tiny))
    assert "amount" in refused.value.fields
    ce = attrs.evolve(make_order().customer, document=("CE", "AB1234567"))
    with pytest.raises(ProviderValidationError) as refused:
        provider.check_request(make_request(Method.CASH, order=make_order(customer=ce)))
    assert "customer.document" in refused.value.fields


def test_a_pending_ticket_is_cancelled(provider: DlocalProvider, client: httpx.Client) -> None:
    request = make_request(Method.CASH)
    reported = run(provider, client, Operation.CREATE, lambda: provider.create(request))
    payment = payment_of(request, reported)
    canceled = run(provider, client, Operation.CANCEL, lambda: provider.cancel(payment))
    assert canceled.status is Status.CANCELED


def test_a_cash_refund_sends_the_bank_details_and_is_pending_until_paid_out(
        provider: DlocalProvider, client: httpx.Client, served: ServedSandbox,
        sandbox: Any) -> None:
    request = make_request(Method.CASH)
    reported = run(provider, client, Operation.CREATE, lambda: provider.create(request))
    served.control("POST", f"/payments/{reported.reference}/pay")
    payment = attrs.evolve(payment_of(request, reported), status=Status.SUCCEEDED)
    bank = RefundBank(beneficiary_name="Rosa Quispe", bank="BCP",
                      bank_account="19112345678012", bank_account_type="S")
    refund = run(provider, client, Operation.REFUND, lambda: provider.refund(
        payment, Money.of("49.90", "PEN"), refund_id="01JREF1", reason="devolución",
        bank=bank))
    assert refund.status is RefundStatus.PENDING
    assert refund.amount == Money.of("49.90", "PEN")
    sent = served.sandbox.calls["refund"]
    assert sent == 1
    ours = Refund(id="01JREF1", payment_id=payment.id, amount=refund.amount,
                  status=RefundStatus.PENDING, created_at=payment.created_at,
                  provider_reference=refund.reference)
    served.control("POST", f"/refunds/{refund.reference}/settle", json={"status": "SUCCESS"})
    later = run(provider, client, Operation.GET_REFUND, lambda: provider.get_refund(
        payment, ours))
    assert later.status is RefundStatus.SUCCEEDED


def test_the_refund_body_carries_the_bank_only_for_cash_and_transfers(
        provider: DlocalProvider) -> None:
    bank = RefundBank(beneficiary_name="Rosa Quispe", bank="BCP", bank_account="191")
    for method, expected in ((Method.CASH, True), (Method.CARD, False)):
        request = make_request(method)
        payment = attrs.evolve(payment_of(request, _Reported()), method=method)
        flow = provider.refund(payment, Money.of("10.00", "PEN"), refund_id="r", reason="",
                               bank=bank)
        body = api.loads(next(flow).content)
        assert ("bank_account" in body) is expected
        assert (body["amount"], body["currency"]) == (Decimal("10.00"), "PEN")


class _Reported:
    status = Status.SUCCEEDED
    reference = "D-4-ref"
    expires_at = None


def test_notifications_are_signed_and_retried_until_accepted(
        provider: DlocalProvider, client: httpx.Client, served: ServedSandbox,
        receiver: WebhookReceiver) -> None:
    served.sandbox.configure({"webhook_url": receiver.url})
    receiver.statuses = [500, 503]  # the first two attempts fail; the third is accepted
    request = make_request(Method.CASH)
    reported = run(provider, client, Operation.CREATE, lambda: provider.create(request))
    received = receiver.wait(3)
    assert len(received) == 3
    assert len({r.body for r in received}) == 1  # the same payment object each time
    events = provider.parse_webhook(WebhookHeaders(received[-1].headers), received[-1].body,
                                    now=served.sandbox.now())
    assert [(e.provider_reference, e.status, e.payment_id) for e in events] == [
        (reported.reference, Status.PENDING, request.payment_id)]
    served.control("POST", f"/payments/{reported.reference}/pay")
    paid = receiver.wait(4)[-1]
    (event,) = provider.parse_webhook(WebhookHeaders(paid.headers), paid.body,
                                      now=served.sandbox.now())
    assert event.status is Status.SUCCEEDED
    assert event.amount == Money.of("149.90", "PEN")


def test_the_documented_retry_schedule() -> None:
    waits = [NOTIFICATION_SCHEDULE.ceiling(n) for n in range(1, 12)]
    assert waits[:6] == [3600.0] * 6
    assert waits[6:] == [43200.0] * 5
    assert len(waits) + 1 == 12  # at most 12 attempts
    assert sum(waits[6:]) <= timedelta(days=4).total_seconds()
