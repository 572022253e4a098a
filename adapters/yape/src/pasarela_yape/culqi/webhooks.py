"""Culqi webhook events, pure.

Culqi POSTs ``{"object": "event", "id": "evt_...", "type", "creation_date" (ms),
"data"}`` where ``data`` is the object **as a JSON string** inside the JSON (seen in
Culqi's own PrestaShop module; an already-decoded object is accepted too). Culqi
signs nothing, so every event is returned with ``verify_by_fetch=True``: the core
fetches the order or charge with the secret key and applies what Culqi says, never
the body. The status and amount given here are informational.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pasarela.errors import PasarelaError, WebhookError
from pasarela.provider import WebhookEvent
from pasarela_yape.culqi.api import ORDER_STATES, moment_of, money_of, parse_charge
from pasarela_yape.errors import PROVIDER


__all__ = ["parse_event"]


def _malformed(reason: str) -> WebhookError:
    return WebhookError(f"malformed Culqi event: {reason}", provider=PROVIDER)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _malformed("the body is not JSON") from None
    if not isinstance(event, dict):
        raise _malformed("the body is not a JSON object")
    return event


def parse_event(body: bytes) -> list[WebhookEvent]:
    """The events in a Culqi webhook delivery (one, or none for types we do not use)."""
    event = _decode(body)
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise _malformed("no event id")
    if not isinstance(kind, str) or not kind:
        raise _malformed("no event type")
    if event.get("object", "event") != "event":
        raise _malformed(f"object is {event.get('object')!r}, not 'event'")
    data: Any = event.get("data")
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise _malformed("data is not a JSON string") from None
    if not isinstance(data, Mapping):
        raise _malformed("data is not an object")
    occurred_at = moment_of(event.get("creation_date"), ms=True)
    raw = {**event, "data": dict(data)}
    reference = data.get("id")
    obj = data.get("object")
    if obj == "order":
        if not isinstance(reference, str) or not reference.startswith("ord_"):
            raise _malformed("order without an ord_ id")
        return [WebhookEvent(
            event_id=event_id, type=kind, provider_reference=reference,
            status=ORDER_STATES.get(str(data.get("state"))), amount=money_of(data),
            verify_by_fetch=True, occurred_at=occurred_at, raw=raw,
        )]
    if obj == "charge":
        if not isinstance(reference, str) or not reference.startswith("chr_"):
            raise _malformed("charge without a chr_ id")
        try:
            status = parse_charge(data).status
        except PasarelaError:
            status = None
        return [WebhookEvent(
            event_id=event_id, type=kind, provider_reference=reference, status=status,
            amount=money_of(data), verify_by_fetch=True, occurred_at=occurred_at, raw=raw,
        )]
    return []
