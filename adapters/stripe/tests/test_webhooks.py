"""Webhook verification (pure, clock passed in) and event parsing.

The official ``stripe`` package is the oracle: headers it generates must verify, and
headers ours generate must pass its ``construct_event``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from pasarela_stripe import StripeProvider, StripeSettings
from pasarela_stripe.webhooks import sign, signature_header, verify

from pasarela.errors import ConfigurationError, SignatureInvalidError, WebhookError
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.provider import WebhookHeaders


SECRET = "whsec_test_1234567890abcdef"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def intent(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "pi_1", "object": "payment_intent", "amount": 14990, "currency": "pen",
            "status": status, "client_secret": "pi_1_secret_x", "metadata": {},
            "last_payment_error": None, "next_action": None, **extra}


def event(type_: str, obj: dict[str, Any], event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": type_, "created": T,
                       "api_version": "2023-08-16", "livemode": False, "pending_webhooks": 1,
                       "data": {"object": obj}}, indent=2).encode()


def provider(*secrets: str, tolerance: int = 300) -> StripeProvider:
    return StripeProvider(StripeSettings(api_key="sk_test_x", webhook_secrets=secrets,
                                         webhook_tolerance=tolerance))


def sdk_header(body: bytes, secret: str = SECRET, timestamp: int = T) -> WebhookHeaders:
    value = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)
    return WebhookHeaders({"Stripe-Signature": value})


BODY = event("payment_intent.succeeded", intent("succeeded"))


# --- verification ----------------------------------------------------------------------


def test_stripe_generated_header_verifies() -> None:
    events = provider(SECRET).parse_webhook(sdk_header(BODY), BODY, now=NOW)
    assert [e.event_id for e in events] == ["evt_1"]


def test_our_header_passes_stripe_construct_event() -> None:
    header = signature_header(BODY, [SECRET], T)
    # stripe-python checks age against the real clock: sign "now" for it
    import time

    now = int(time.time())
    parsed = stripe.Webhook.construct_event(BODY, signature_header(BODY, [SECRET], now), SECRET)
    assert parsed["id"] == "evt_1"
    assert header == f"t={T},v1={sign(BODY, SECRET, T)}"


def test_header_name_is_case_insensitive() -> None:
    value = sdk_header(BODY)["Stripe-Signature"]
    for name in ("stripe-signature", "STRIPE-SIGNATURE", "Stripe-Signature"):
        assert provider(SECRET).parse_webhook(WebhookHeaders({name: value}), BODY, now=NOW)


def test_tampered_body_is_refused() -> None:
    headers = sdk_header(BODY)
    tampered = BODY.replace(b"14990", b"14991")
    with pytest.raises(SignatureInvalidError):
        provider(SECRET).parse_webhook(headers, tampered, now=NOW)


def test_reserialized_json_is_refused() -> None:
    """The HMAC covers the raw bytes: equal JSON with other whitespace fails."""
    headers = sdk_header(BODY)
    compact = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    with pytest.raises(SignatureInvalidError):
        provider(SECRET).parse_webhook(headers, compact, now=NOW)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalidError):
        provider("whsec_other").parse_webhook(sdk_header(BODY), BODY, now=NOW)


@pytest.mark.parametrize(("offset", "ok"), [
    (0, True), (-300, True), (-301, False), (300, True), (301, False), (-86400, False),
])
def test_timestamp_tolerance_both_ways(offset: int, ok: bool) -> None:
    headers = sdk_header(BODY, timestamp=T + offset)
    if ok:
        assert provider(SECRET).parse_webhook(headers, BODY, now=NOW)
    else:
        with pytest.raises(SignatureInvalidError, match="tolerance"):
            provider(SECRET).parse_webhook(headers, BODY, now=NOW)


def test_tolerance_is_a_setting() -> None:
    headers = sdk_header(BODY, timestamp=T - 600)
    assert provider(SECRET, tolerance=900).parse_webhook(headers, BODY, now=NOW)


def test_stale_even_when_the_stripe_sdk_would_check_the_same() -> None:
    old = sdk_header(BODY, timestamp=T - 301)["Stripe-Signature"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(BODY.decode(), old, SECRET, tolerance=300)


def test_rotated_secrets_either_one_verifies() -> None:
    for secret in ("whsec_old", "whsec_new"):
        assert provider("whsec_old", "whsec_new").parse_webhook(
            sdk_header(BODY, secret), BODY, now=NOW)


def test_several_v1_any_one_matches() -> None:
    good = sign(BODY, SECRET, T)
    header = f"t={T},v1={'0' * 64},v1={good},v0=ignored"
    headers = WebhookHeaders({"Stripe-Signature": header})
    assert provider(SECRET).parse_webhook(headers, BODY, now=NOW)
    # the v0 scheme is not accepted alone
    with pytest.raises(SignatureInvalidError):
        verify(WebhookHeaders({"Stripe-Signature": f"t={T},v0={good}"}), BODY, [SECRET],
               now=NOW)


@pytest.mark.parametrize("header", [
    None, "", "garbage", f"v1={'a' * 64}", "t=abc,v1=ff", f"t={T}", f"t={T},t={T},v1=aa",
    f"t={T},v1=ñ",
])
def test_malformed_headers_are_refused(header: str | None) -> None:
    headers = WebhookHeaders({} if header is None else {"Stripe-Signature": header})
    with pytest.raises(SignatureInvalidError):
        provider(SECRET).parse_webhook(headers, BODY, now=NOW)


def test_no_secret_configured_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        provider().parse_webhook(sdk_header(BODY), BODY, now=NOW)


def test_signed_but_not_an_event_is_malformed() -> None:
    for body in (b"not json", b"[1, 2]", json.dumps({"id": "evt_1"}).encode()):
        with pytest.raises(WebhookError) as info:
            provider(SECRET).parse_webhook(sdk_header(body), body, now=NOW)
        assert not isinstance(info.value, SignatureInvalidError)


# --- parsing -------------------------------------------------------------------------------


def parse(body: bytes) -> list[Any]:
    return provider(SECRET).parse_webhook(sdk_header(body), body, now=NOW)


@pytest.mark.parametrize(("type_", "obj", "status"), [
    ("payment_intent.succeeded", intent("succeeded"), Status.SUCCEEDED),
    ("payment_intent.processing", intent("processing"), Status.PROCESSING),
    ("payment_intent.canceled", intent("canceled"), Status.CANCELED),
    ("payment_intent.requires_action", intent("requires_action"), Status.PENDING),
    # a failed attempt leaves the intent open for another card: pending, not failed
    ("payment_intent.payment_failed", intent("requires_payment_method", last_payment_error={
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline"}),
     Status.PENDING),
    # the object's status wins over the event's name (a late, reordered delivery)
    ("payment_intent.processing", intent("succeeded"), Status.SUCCEEDED),
])
def test_intent_events_report_the_objects_status(type_: str, obj: dict[str, Any],
                                                 status: Status) -> None:
    (parsed,) = parse(event(type_, obj))
    assert parsed.event_id == "evt_1"
    assert parsed.type == type_
    assert parsed.provider_reference == "pi_1"
    assert parsed.status is status
    assert parsed.amount == Money(14990, "PEN")
    assert parsed.occurred_at == NOW
    assert parsed.refund is None


def test_refund_updated_carries_the_refund() -> None:
    refund = {"id": "re_1", "object": "refund", "amount": 4990, "currency": "pen",
              "status": "succeeded", "payment_intent": "pi_1", "charge": "ch_1",
              "metadata": {"refund_id": "01JDREF1"}}
    (parsed,) = parse(event("refund.updated", refund))
    assert parsed.status is None
    assert parsed.provider_reference == "pi_1"
    assert parsed.refund is not None
    assert parsed.refund.status is RefundStatus.SUCCEEDED
    assert parsed.refund.reference == "re_1"
    assert parsed.refund.refund_id == "01JDREF1"
    assert parsed.refund.amount == Money(4990, "PEN")


def test_charge_refunded_gives_one_event_per_listed_refund() -> None:
    refunds = [
        {"id": f"re_{n}", "object": "refund", "amount": amount, "currency": "pen",
         "status": "succeeded", "payment_intent": None, "charge": "ch_1", "metadata": {}}
        for n, amount in ((2, 10000), (1, 4990))
    ]
    charge = {"id": "ch_1", "object": "charge", "amount": 14990, "amount_refunded": 14990,
              "currency": "pen", "refunded": True, "payment_intent": "pi_1",
              "refunds": {"object": "list", "data": refunds, "has_more": False, "url": "/x"}}
    parsed = parse(event("charge.refunded", charge))
    assert [p.event_id for p in parsed] == ["evt_1:re_2", "evt_1:re_1"]
    assert all(p.provider_reference == "pi_1" for p in parsed)
    assert all(p.refund.payment_reference == "pi_1" for p in parsed)
    assert [p.refund.amount.minor for p in parsed] == [10000, 4990]
    without_list = {**charge, "refunds": None}
    (bare,) = parse(event("charge.refunded", without_list))
    assert bare.refund is None
    assert bare.status is None


def test_other_event_types_are_ignored() -> None:
    assert parse(event("payment_intent.created", intent("requires_payment_method"))) == []
    assert parse(event("customer.created", {"id": "cus_1", "object": "customer"})) == []


def test_a_known_type_with_a_bad_object_is_malformed() -> None:
    with pytest.raises(WebhookError):
        parse(event("payment_intent.succeeded", {"id": "ch_1", "object": "charge"}))
    with pytest.raises(WebhookError):
        parse(event("payment_intent.succeeded", intent("teleported")))


def test_sandbox_events_parse(stripe_fixtures: dict[str, Any]) -> None:
    """Stripe's own refund fixture parses as a refund.updated event."""
    (parsed,) = parse(event("refund.updated", stripe_fixtures["refund"]))
    assert parsed.refund is not None
    assert parsed.refund.reference == stripe_fixtures["refund"]["id"]


def test_tolerance_is_measured_from_the_clock_passed_in() -> None:
    later = NOW + timedelta(minutes=6)
    with pytest.raises(SignatureInvalidError):
        provider(SECRET).parse_webhook(sdk_header(BODY), BODY, now=later)
