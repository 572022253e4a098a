"""The sandbox invents nothing: every key it answers is one Mercado Pago documents.

The documented key sets are the response types of Mercado Pago's official Node.js SDK
(github.com/mercadopago/sdk-nodejs: ``src/clients/payment/commonTypes.ts``
``PaymentResponse`` and ``TransactionDetails``, ``src/clients/paymentRefund/
commonTypes.ts`` ``RefundResponse``, ``src/clients/payment/search/types.ts``), the
error shape of the Payments API reference, and the release report's field glossary;
the names are copied here as data, one set per object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pasarela_mercadopago.api import REPORT_COLUMNS

from pasarela.testing.sandbox import ServedSandbox


PAYMENT = frozenset({
    "id", "date_created", "date_approved", "date_last_updated", "date_of_expiration",
    "money_release_date", "money_release_schema", "money_release_status", "operation_type",
    "issuer_id", "payment_method_id", "payment_type_id", "payment_method", "status",
    "status_detail", "currency_id", "description", "live_mode", "sponsor_id",
    "authorization_code", "integrator_id", "taxes_amount", "counter_currency",
    "shipping_amount", "build_version", "pos_id", "store_id", "platform_id",
    "corporation_id", "payer", "collector_id", "metadata", "additional_info", "order",
    "external_reference", "transaction_amount", "transaction_amount_refunded",
    "coupon_amount", "differential_pricing_id", "deduction_schema", "installments",
    "transaction_details", "fee_details", "charges_details", "captured", "binary_mode",
    "call_for_authorize_id", "statement_descriptor", "card", "notification_url", "refunds",
    "processing_mode", "merchant_account_id", "merchant_number", "point_of_interaction",
    "three_ds_info", "callback_url", "coupon_code", "net_amount", "payment_method_option_id",
    "taxes", "internal_metadata", "expanded",
})
TRANSACTION_DETAILS = frozenset({
    "payment_method_reference_id", "acquirer_reference", "net_received_amount",
    "total_paid_amount", "overpaid_amount", "external_resource_url", "installment_amount",
    "financial_institution", "payable_deferral_period", "transaction_id", "barcode",
    "digitable_line", "verification_code", "bank_transfer_id",
})
FEE_DETAILS = frozenset({"type", "amount", "fee_payer"})
PAYER = frozenset({"type", "id", "operator_id", "email", "identification", "phone",
                   "first_name", "last_name", "entity_type", "address"})
REFUND = frozenset({"id", "payment_id", "amount", "metadata", "source", "date_created",
                    "unique_sequence_number", "refund_mode", "adjustment_amount", "status",
                    "reason", "amount_refunded_to_payer"})
SOURCE = frozenset({"id", "name", "type"})
SEARCH = frozenset({"paging", "results"})
PAGING = frozenset({"total", "limit", "offset"})
ERROR = frozenset({"message", "error", "status", "cause"})
CAUSE = frozenset({"code", "description", "data"})


def _payment_keys(payment: dict[str, Any]) -> None:
    assert set(payment) <= PAYMENT, set(payment) - PAYMENT
    assert set(payment["transaction_details"]) <= TRANSACTION_DETAILS
    assert set(payment["payer"]) <= PAYER
    for fee in payment["fee_details"]:
        assert set(fee) <= FEE_DETAILS
    for refund in payment["refunds"]:
        assert set(refund) <= REFUND
        assert set(refund["source"]) <= SOURCE


def test_every_answered_key_is_documented(served: ServedSandbox,
                                          card_token: Callable[..., str]) -> None:
    auth = {"Authorization": f"Bearer {served.sandbox.access_token}"}
    http = served.http
    common = {"description": "x", "external_reference": "keys-1",
              "payer": {"email": "rosa@example.pe"}, "metadata": {"payment_id": "p"}}
    cash = http.post("/v1/payments", headers={**auth, "X-Idempotency-Key": "k1"},
                     json={**common, "transaction_amount": 80, "payment_method_id":
                           "pagoefectivo_atm"}).json()
    card = http.post("/v1/payments", headers={**auth, "X-Idempotency-Key": "k2"},
                     json={**common, "transaction_amount": 100, "payment_method_id": "visa",
                           "token": card_token(), "installments": 1}).json()
    refund = http.post(f"/v1/payments/{card['id']}/refunds",
                       headers={**auth, "X-Idempotency-Key": "k3"}, json={"amount": 10})
    assert refund.status_code == 201
    assert set(refund.json()) <= REFUND
    for payment in (cash, http.get(f"/v1/payments/{card['id']}", headers=auth).json()):
        _payment_keys(payment)
    found = http.get("/v1/payments/search", params={"external_reference": "keys-1"},
                     headers=auth).json()
    assert set(found) == SEARCH
    assert set(found["paging"]) == PAGING
    for result in found["results"]:
        _payment_keys(result)
    refused = http.post("/v1/payments", headers=auth, json=common)
    assert refused.status_code == 400
    assert set(refused.json()) == ERROR
    for cause in refused.json()["cause"]:
        assert set(cause) == CAUSE
    http.post("/v1/account/release_report", headers=auth, json={
        "begin_date": "2020-01-01T00:00:00Z", "end_date": "2020-01-31T00:00:00Z"})
    (listed,) = http.get("/v1/account/release_report/list", headers=auth).json()
    report = http.get(f"/v1/account/release_report/{listed['file_name']}", headers=auth)
    assert report.text.splitlines()[0].split(";") == list(REPORT_COLUMNS)
