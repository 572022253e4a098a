"""Stripe-shaped objects of API version 2023-08-16, and the test PaymentMethods.

Field lists follow the ``payment_intent``, ``charge``, ``refund``,
``balance_transaction`` and ``event`` schemas of Stripe's published OpenAPI spec
for that version; the tests validate what these builders make against that spec.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from typing import Any, Final

import attrs


__all__ = [
    "TEST_CARDS",
    "SandboxCard",
    "balance_transaction",
    "charge",
    "event",
    "new_id",
    "payment_intent",
    "refund",
]

API_VERSION: Final = "2023-08-16"

_ALPHABET: Final = string.ascii_letters + string.digits


def new_id(prefix: str, rng: random.Random, length: int = 24) -> str:
    """A Stripe-looking id: ``pi_3NnlpVGPxmnHQRkJ...``."""
    return prefix + "_" + "".join(rng.choice(_ALPHABET) for _ in range(length))


@attrs.frozen
class SandboxCard:
    """A test PaymentMethod and what confirming with it does."""

    brand: str
    last4: str
    #: ``succeed``, ``decline`` or ``authenticate`` (3-D Secure required)
    outcome: str = "succeed"
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    funding: str = "credit"


_DECLINED = "Your card was declined."

#: Stripe's test PaymentMethod ids (docs.stripe.com/testing) that the sandbox knows.
TEST_CARDS: Final[Mapping[str, SandboxCard]] = {
    "pm_card_visa": SandboxCard("visa", "4242"),
    "pm_card_visa_debit": SandboxCard("visa", "5556", funding="debit"),
    "pm_card_mastercard": SandboxCard("mastercard", "4444"),
    "pm_card_mastercard_debit": SandboxCard("mastercard", "8210", funding="debit"),
    "pm_card_chargeDeclined": SandboxCard(
        "visa", "0002", "decline", "card_declined", "generic_decline", _DECLINED),
    "pm_card_chargeDeclinedInsufficientFunds": SandboxCard(
        "visa", "9995", "decline", "card_declined", "insufficient_funds",
        "Your card has insufficient funds."),
    "pm_card_chargeDeclinedFraudulent": SandboxCard(
        "visa", "0019", "decline", "card_declined", "fraudulent", _DECLINED),
    "pm_card_visa_chargeDeclinedLostCard": SandboxCard(
        "visa", "9987", "decline", "card_declined", "lost_card", _DECLINED),
    "pm_card_visa_chargeDeclinedStolenCard": SandboxCard(
        "visa", "9979", "decline", "card_declined", "stolen_card", _DECLINED),
    "pm_card_chargeDeclinedExpiredCard": SandboxCard(
        "visa", "0069", "decline", "expired_card", "expired_card", "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": SandboxCard(
        "visa", "0127", "decline", "incorrect_cvc", "incorrect_cvc",
        "Your card's security code is incorrect."),
    "pm_card_chargeDeclinedProcessingError": SandboxCard(
        "visa", "0119", "decline", "processing_error", "processing_error",
        "An error occurred while processing your card. Try again in a little bit."),
    "pm_card_authenticationRequired": SandboxCard("visa", "3184", "authenticate"),
    "pm_card_threeDSecure2Required": SandboxCard("visa", "3220", "authenticate"),
}


def payment_intent(
    *,
    id: str,
    amount: int,
    currency: str,
    created: int,
    client_secret: str,
    metadata: Mapping[str, str],
    description: str | None,
    capture_method: str,
    statement_descriptor: str | None = None,
    statement_descriptor_suffix: str | None = None,
    receipt_email: str | None = None,
) -> dict[str, Any]:
    """A new PaymentIntent in ``requires_payment_method``."""
    return {
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": client_secret,
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "description": description,
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(metadata),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": statement_descriptor_suffix,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(
    *,
    id: str,
    intent: Mapping[str, Any],
    card: SandboxCard,
    payment_method: str,
    created: int,
    succeeded: bool,
    balance_transaction: str | None,
) -> dict[str, Any]:
    """The Charge a confirmation made (succeeded, or failed with the card's decline)."""
    if succeeded:
        outcome = {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    else:
        outcome = {
            "network_status": "declined_by_network",
            "reason": card.decline_code,
            "risk_level": "normal",
            "risk_score": 20,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    return {
        "id": id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": balance_transaction,
        "billing_details": {
            "address": {"city": None, "country": None, "line1": None, "line2": None,
                        "postal_code": None, "state": None},
            "email": None,
            "name": None,
            "phone": None,
        },
        "calculated_statement_descriptor": "PASARELA SANDBOX",
        "captured": succeeded,
        "created": created,
        "currency": intent["currency"],
        "customer": None,
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if succeeded else card.code,
        "failure_message": None if succeeded else card.message,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": payment_method,
        "payment_method_details": {
            "card": {
                "brand": card.brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None,
                           "cvc_check": "pass"},
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "fingerprint": "sbx" + card.last4 + card.brand[:4],
                "funding": card.funding,
                "installments": None,
                "last4": card.last4,
                "mandate": None,
                "network": card.brand,
                "network_token": {"used": False},
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False,
                    "url": f"/v1/charges/{id}/refunds"},
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    id: str,
    amount: int,
    currency: str,
    charge_id: str,
    intent_id: str,
    created: int,
    status: str,
    reason: str | None,
    metadata: Mapping[str, str],
    balance_transaction: str | None,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": balance_transaction,
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "metadata": dict(metadata),
        "payment_intent": intent_id,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def balance_transaction(
    *,
    id: str,
    amount: int,
    currency: str,
    created: int,
    available_on: int,
    fee: int,
    type: str,
    source: str,
    description: str | None,
) -> dict[str, Any]:
    """A movement of the account's balance: a charge's gross amount (with Stripe's
    fee), or a refund's negative amount (no fee)."""
    details = [] if fee == 0 else [{
        "amount": fee, "application": None, "currency": currency,
        "description": "Stripe processing fees", "type": "stripe_fee",
    }]
    return {
        "id": id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": details,
        "net": amount - fee,
        "reporting_category": type,
        "source": source,
        "status": "pending",
        "type": type,
    }


def event(
    *,
    id: str,
    type: str,
    obj: Mapping[str, Any],
    created: int,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes:
        data["previous_attributes"] = dict(previous_attributes)
    return {
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }
