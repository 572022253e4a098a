"""Stripe Event objects -> :class:`~pasarela.provider.WebhookEvent`.

Events arrive at least once and in no particular order. Each carries a snapshot of
its object; the status reported is that object's status (never the event type's
name), so a late ``payment_intent.processing`` after ``payment_intent.succeeded``
reports ``processing``, which the core's lifecycle treats as stale and ignores.

``charge.refunded`` carries the Charge; one WebhookEvent is made per Refund listed
in its ``refunds`` (event id suffixed with the refund id, so each dedupes alone).
When the Charge lists no refunds (API versions since 2022-11-15 leave them out
unless expanded) the event reports nothing to apply and ``refund.updated`` carries
the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from pasarela.errors import WebhookError
from pasarela.provider import WebhookEvent
from pasarela_stripe.api import parse_intent, parse_refund, timestamp


__all__ = ["INTENT_EVENTS", "REFUND_EVENTS", "parse_event", "parse_events"]

INTENT_EVENTS: Final = frozenset({
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.canceled",
    "payment_intent.requires_action",
    "payment_intent.amount_capturable_updated",
})
REFUND_EVENTS: Final = frozenset({"refund.updated", "refund.created", "charge.refund.updated"})
CHARGE_REFUNDED: Final = "charge.refunded"


def _malformed(message: str) -> WebhookError:
    return WebhookError(message, provider="stripe")


def parse_events(body: bytes) -> list[WebhookEvent]:
    """Parse a verified delivery's raw body."""
    try:
        event = json.loads(body)
    except ValueError:
        raise _malformed("the body is not JSON") from None
    if not isinstance(event, dict):
        raise _malformed("the body is not a JSON object")
    return parse_event(event)


def parse_event(event: Mapping[str, Any]) -> list[WebhookEvent]:
    """The WebhookEvents in one Stripe Event (none for types pasarela ignores)."""
    event_id, event_type = event.get("id"), event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if (
        event.get("object") != "event"
        or not isinstance(event_id, str)
        or not isinstance(event_type, str)
        or not isinstance(obj, dict)
    ):
        raise _malformed("not a Stripe event (object, id, type and data.object are required)")
    occurred = timestamp(event.get("created"))
    try:
        if event_type in INTENT_EVENTS:
            payment = parse_intent(obj)
            return [WebhookEvent(
                event_id=event_id, type=event_type, provider_reference=payment.reference,
                status=payment.status, amount=payment.amount, occurred_at=occurred, raw=event,
            )]
        if event_type in REFUND_EVENTS:
            refund = parse_refund(obj)
            return [WebhookEvent(
                event_id=event_id, type=event_type, provider_reference=refund.payment_reference,
                refund=refund, occurred_at=occurred, raw=event,
            )]
        if event_type == CHARGE_REFUNDED:
            return _charge_refunded(event_id, event_type, obj, event)
    except WebhookError:
        raise
    except Exception as exc:  # a ProviderError or a bad value from parsing the object
        raise _malformed(f"{event_type} {event_id}: {exc}") from exc
    return []


def _charge_refunded(
    event_id: str, event_type: str, charge: Mapping[str, Any], event: Mapping[str, Any]
) -> list[WebhookEvent]:
    if charge.get("object") != "charge":
        raise _malformed(f"{event_type} {event_id} does not carry a charge")
    intent = charge.get("payment_intent")
    reference = intent if isinstance(intent, str) else None
    occurred = timestamp(event.get("created"))
    listed = charge.get("refunds")
    refunds = listed.get("data") if isinstance(listed, dict) else None
    if not refunds:
        return [WebhookEvent(event_id=event_id, type=event_type, provider_reference=reference,
                             occurred_at=occurred, raw=event)]
    out = []
    for item in refunds:
        refund = parse_refund(item)
        if refund.payment_reference is None and reference is not None:
            refund = attrs.evolve(refund, payment_reference=reference)
        out.append(WebhookEvent(
            event_id=f"{event_id}:{refund.reference}", type=event_type,
            provider_reference=reference, refund=refund, occurred_at=occurred, raw=event,
        ))
    return out
