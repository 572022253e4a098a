"""Mercado Pago's Webhooks: the ``x-signature`` check and the notification's events.

A notification is a POST with headers ``x-signature: ts=<ts>,v1=<hex>`` and
``x-request-id``, and a JSON body ``{"id", "type": "payment", "action":
"payment.updated", "data": {"id": "<payment id>"}, ...}``. ``v1`` is the hex
HMAC-SHA256, keyed with the application's secret, of the **manifest**::

    id:<data.id>;request-id:<x-request-id>;ts:<ts>;

where ``data.id`` is lower-cased when alphanumeric and a part whose value is absent
is left out (Mercado Pago Webhooks guide, "Validate the origin of a notification").
Mercado Pago documents ``data.id`` as the query parameter of the notification URL
(``?data.id=...&type=payment``); the core hands it over in ``headers.query``, and the
signature is checked over the query's ``data.id``. Only a delivery whose URL has no
``data.id`` (a host that called ``handle_webhook`` without ``query=``) is checked over
the body's ``data.id``. A body whose ``data.id`` is not the signed one is refused: the
payment fetched is always the one signed. The signature covers that id, the request
id and the time, nothing else of the body: the event carries no status to trust, so it
asks the core to fetch the payment (``verify_by_fetch``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from pasarela.errors import SignatureInvalidError, WebhookError
from pasarela.provider import WebhookEvent, WebhookHeaders


__all__ = ["manifest", "parse_notification", "sign", "signature_header", "signed_id", "verify"]

NAME: Final = "mercadopago"


def manifest(data_id: str | None, request_id: str | None, ts: str | None) -> str:
    """The signed template with the parts present (``data.id`` lower-cased when it is
    alphanumeric, as the guide says)."""
    parts = []
    if data_id:
        parts.append(f"id:{data_id.lower() if data_id.isalnum() else data_id};")
    if request_id:
        parts.append(f"request-id:{request_id};")
    if ts:
        parts.append(f"ts:{ts};")
    return "".join(parts)


def sign(secret: str, text: str) -> str:
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def signature_header(secret: str, *, data_id: str, request_id: str, ts: int) -> str:
    """``ts=...,v1=...`` as Mercado Pago sends it (the sandbox signs with this)."""
    return f"ts={ts},v1={sign(secret, manifest(data_id, request_id, str(ts)))}"


def _split(header: str) -> tuple[str | None, list[str]]:
    ts: str | None = None
    v1: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "ts" and value:
            ts = value
        elif key == "v1" and value:
            v1.append(value)
    return ts, v1


def _body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("malformed Mercado Pago notification: not JSON",
                           provider=NAME) from None
    if not isinstance(data, dict):
        raise WebhookError("malformed Mercado Pago notification: not an object", provider=NAME)
    return data


def data_id_of(data: dict[str, Any], *, required: bool = True) -> str | None:
    inner = data.get("data")
    value = inner.get("id") if isinstance(inner, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        if not required:
            return None
        raise WebhookError("malformed Mercado Pago notification: no data.id", provider=NAME)
    return str(value)


def signed_id(headers: WebhookHeaders, data: dict[str, Any]) -> str:
    """The ``data.id`` the signature covers: the notification URL's query parameter,
    else (no ``data.id`` in the query) the body's. A body naming another id than the
    query is refused."""
    queried = headers.query.get("data.id")
    if not queried:
        found = data_id_of(data)
        assert found is not None
        return found
    in_body = data_id_of(data, required=False)
    if in_body is not None and in_body != queried:
        raise WebhookError("malformed Mercado Pago notification: the body's data.id is not "
                           "the URL's", provider=NAME)
    return queried


def _seconds(ts: str) -> float:
    """The notification's time in Unix seconds: the guide calls ``ts`` milliseconds and
    shows seconds (``1704908010``); a value past the year 5000 in seconds is read as
    milliseconds."""
    value = float(ts)
    return value / 1000 if value > 1e11 else value


def verify(headers: WebhookHeaders, body: bytes, secrets: Sequence[str], *,
           now: datetime, tolerance: int) -> dict[str, Any]:
    """The body, once ``x-signature`` matches one of *secrets* and ``ts`` is within
    *tolerance* seconds of *now*; raises :class:`SignatureInvalidError` otherwise."""
    header = headers.get("x-signature")
    if not header:
        raise SignatureInvalidError("x-signature header missing", provider=NAME)
    ts, candidates = _split(header)
    if ts is None or not candidates:
        raise SignatureInvalidError("x-signature has no ts or no v1", provider=NAME)
    try:
        sent_at = _seconds(ts)
    except ValueError:
        raise SignatureInvalidError("x-signature ts is not a number", provider=NAME) from None
    data = _body(body)
    text = manifest(signed_id(headers, data), headers.get("x-request-id"), ts)
    matched = False
    for secret in secrets:  # every secret, every v1: constant time, no early exit
        expected = sign(secret, text)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureInvalidError("x-signature does not match the notification",
                                    provider=NAME)
    if abs(now.timestamp() - sent_at) > tolerance:
        raise SignatureInvalidError(f"x-signature ts is more than {tolerance} s away",
                                    provider=NAME)
    return data


def parse_notification(data: dict[str, Any], request_id: str | None, *,
                       signed: str | None = None) -> list[WebhookEvent]:
    """A verified notification's event: a payment to fetch (or none for other topics).
    *signed* is the ``data.id`` the signature covered (:func:`signed_id`); without it,
    the body's."""
    kind = str(data.get("type") or data.get("topic") or "")
    action = str(data.get("action") or kind)
    if kind != "payment":
        return [WebhookEvent(event_id=_event_id(data, request_id), type=action[:64] or "unknown",
                             provider_reference=None, raw=data)]
    return [WebhookEvent(event_id=_event_id(data, request_id), type=action[:64],
                         provider_reference=signed or data_id_of(data), verify_by_fetch=True,
                         raw=data)]


def _event_id(data: dict[str, Any], request_id: str | None) -> str:
    """The notification's own ``id``; else the ``x-request-id`` (one per sending)."""
    ident = data.get("id")
    if isinstance(ident, str | int) and not isinstance(ident, bool) and str(ident):
        return f"{ident}:{data.get('action') or ''}"
    if request_id:
        return str(request_id)
    raise WebhookError("malformed Mercado Pago notification: no id", provider=NAME)
