"""The official ``stripe`` package, pointed at the sandbox, is the oracle: it must
accept every answer and map every error as it does against Stripe."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from pasarela_stripe.sandbox import StripeSandbox as Sandbox


@pytest.fixture
def sdk(sandbox: Sandbox, sandbox_key: str) -> stripe.StripeClient:
    url = sandbox.url  # type: ignore[attr-defined]
    return stripe.StripeClient(sandbox_key, base_addresses={"api": url},
                               stripe_version="2023-08-16", max_network_retries=0)


def test_create_retrieve_confirm_refund(sdk: stripe.StripeClient) -> None:
    intent = sdk.v1.payment_intents.create(params={
        "amount": 14990, "currency": "pen", "payment_method_types": ["card"],
        "metadata": {"payment_id": "01JDPAY", "order_reference": "pedido-1042"},
    })
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.status == "requires_payment_method"
    assert intent.metadata["order_reference"] == "pedido-1042"
    fetched = sdk.v1.payment_intents.retrieve(intent.id)
    assert fetched.client_secret == intent.client_secret
    confirmed = sdk.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 14990
    partial = sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 4990})
    assert isinstance(partial, stripe.Refund)
    assert (partial.status, partial.amount) == ("succeeded", 4990)
    rest = sdk.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 10000
    assert sdk.v1.refunds.retrieve(rest.id).payment_intent == intent.id


def test_create_and_cancel(sdk: stripe.StripeClient) -> None:
    intent = sdk.v1.payment_intents.create(params={"amount": 500, "currency": "usd"})
    canceled = sdk.v1.payment_intents.cancel(
        intent.id, params={"cancellation_reason": "requested_by_customer"})
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    with pytest.raises(stripe.InvalidRequestError) as info:
        sdk.v1.payment_intents.cancel(intent.id)
    assert info.value.code == "payment_intent_unexpected_state"


def test_three_d_secure_is_requires_action(sdk: stripe.StripeClient) -> None:
    intent = sdk.v1.payment_intents.create(params={
        "amount": 2000, "currency": "pen", "payment_method": "pm_card_authenticationRequired",
        "confirm": True, "return_url": "https://tienda.pe/vuelta",
    })
    assert intent.status == "requires_action"
    assert intent.next_action is not None
    assert intent.next_action.type == "redirect_to_url"


@pytest.mark.parametrize(("pm", "decline_code"), [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
])
def test_declines_are_card_errors(sdk: stripe.StripeClient, pm: str, decline_code: str) -> None:
    with pytest.raises(stripe.CardError) as info:
        sdk.v1.payment_intents.create(params={
            "amount": 2000, "currency": "pen", "payment_method": pm, "confirm": True})
    error = info.value
    assert error.code == "card_declined"
    assert error.http_status == 402
    assert error.error is not None
    assert error.error.decline_code == decline_code
    assert error.error.payment_intent is not None
    assert error.error.payment_intent.status == "requires_payment_method"


def test_idempotency_error_and_replay(sdk: stripe.StripeClient) -> None:
    options: Any = {"idempotency_key": "pedido-7"}
    first = sdk.v1.payment_intents.create(params={"amount": 700, "currency": "usd"},
                                          options=options)
    again = sdk.v1.payment_intents.create(params={"amount": 700, "currency": "usd"},
                                          options=options)
    assert again.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.payment_intents.create(params={"amount": 800, "currency": "usd"},
                                      options=options)


def test_authentication_and_rate_limit_errors(sandbox: Sandbox) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    wrong = stripe.StripeClient("sk_test_not_the_key_000000", base_addresses={"api": url},
                                max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.payment_intents.retrieve("pi_x")
    sandbox.knobs.update({"rate_limit_next": 1})
    client = stripe.StripeClient("sk_test_pasarela_4eC39HqLyjWDarjtT1zdp7dc",
                                 base_addresses={"api": url}, max_network_retries=0)
    with pytest.raises(stripe.RateLimitError):
        client.v1.payment_intents.retrieve("pi_x")


def test_search_result_is_accepted(sdk: stripe.StripeClient) -> None:
    made = sdk.v1.payment_intents.create(params={
        "amount": 900, "currency": "pen", "metadata": {"payment_id": "01JDSEARCH"}})
    result = sdk.v1.payment_intents.search(params={"query": 'metadata["payment_id"]:"01JDSEARCH"'})
    assert [i.id for i in result.data] == [made.id]


def test_balance_transactions_list_and_auto_paging(sdk: stripe.StripeClient) -> None:
    for amount in (1500, 2500, 3500):
        sdk.v1.payment_intents.create(params={
            "amount": amount, "currency": "pen", "payment_method_types": ["card"],
            "payment_method": "pm_card_visa", "confirm": True,
        })
    page = sdk.v1.balance_transactions.list(params={"limit": 2, "expand": ["data.source"]})
    assert [t.amount for t in page.data] == [3500, 2500]
    assert isinstance(page.data[0], stripe.BalanceTransaction)
    assert isinstance(page.data[0].source, stripe.Charge)
    assert page.has_more is True
    every = list(page.auto_paging_iter())
    assert [t.amount for t in every] == [3500, 2500, 1500]
    assert [t.fee for t in every] == [226, 190, 154]  # 3.6 % + PEN 1.00
