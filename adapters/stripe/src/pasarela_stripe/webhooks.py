"""Stripe webhook signatures: pure functions of the raw bytes and a clock.

``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``: each ``v1`` is the
hex HMAC-SHA256, keyed with an endpoint secret (``whsec_...``, used as is), of
``b"<t>." + raw body``. Several ``v1`` values appear while secrets roll; several
secrets may be configured here for the same reason. A delivery verifies when any
configured secret matches any ``v1`` (constant-time), and its timestamp is no
more than ``tolerance`` seconds old (300 by default, as Stripe's libraries) and,
a pasarela addition, no more than ``tolerance`` seconds in the future.

No frame where verification raises holds a secret in the clear: :func:`verify` keeps
the secrets it is given as :class:`pasarela.secret.Secret` values (whose ``repr`` is
``'***'``; the configuration already gives them so) and compares them in a helper that
has returned before anything is raised, so a traceback printed with its local
variables shows ``secrets = ('***', '***')``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime

from pasarela.errors import SignatureInvalidError
from pasarela.provider import WebhookHeaders
from pasarela.secret import seal


__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "sign",
    "signature_header",
    "verify",
]

DEFAULT_TOLERANCE = 300
SIGNATURE_HEADER = "Stripe-Signature"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature of *body* at *timestamp* with *secret*."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets: Iterable[str], timestamp: int) -> str:
    """A ``Stripe-Signature`` value with one ``v1`` per secret (as during a roll)."""
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={sign(body, secret, timestamp)}" for secret in secrets)
    return ",".join(parts)


def _error(message: str) -> SignatureInvalidError:
    return SignatureInvalidError(message, provider="stripe")


def parse_header(value: str) -> tuple[int, list[str]]:
    """``(timestamp, [v1 signatures])`` from a ``Stripe-Signature`` value."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not val.isdigit() or timestamp is not None:
                raise _error("Stripe-Signature has a malformed timestamp")
            timestamp = int(val)
        elif key == "v1" and val:
            signatures.append(val.strip())
    if timestamp is None:
        raise _error("Stripe-Signature has no timestamp")
    if not signatures:
        raise _error("Stripe-Signature has no v1 signature")
    return timestamp, signatures


def verify(
    headers: WebhookHeaders,
    body: bytes,
    secrets: Iterable[str],
    *,
    now: datetime,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Verify a delivery's raw *body*; return its signed timestamp.

    *headers* are the delivery's, as the core passes them (looked up without regard
    to case). Raises :class:`~pasarela.errors.SignatureInvalidError` when the header is
    missing or malformed, no secret matches any ``v1``, or the timestamp is
    outside ``now ± tolerance``.
    """
    # Rebound first: from here on this frame's `secrets` prints as ('***', ...).
    secrets = seal(tuple(secrets))
    value = headers.get(SIGNATURE_HEADER)
    if not value:
        raise _error("no Stripe-Signature header")
    timestamp, signatures = parse_header(value)
    if not _signed_by_any(body, timestamp, signatures, secrets):
        raise _error("no signature matches the expected signature for the payload")
    age = int(now.timestamp()) - timestamp
    if age > tolerance:
        raise _error(f"timestamp outside the tolerance zone ({age} s old)")
    if -age > tolerance:
        raise _error(f"timestamp outside the tolerance zone ({-age} s in the future)")
    return timestamp


def _signed_by_any(body: bytes, timestamp: int, signatures: list[str],
                   secrets: Iterable[str]) -> bool:
    """Does any secret's signature equal any ``v1``? Every pair is compared in constant
    time (no early exit that leaks which one matched). Raises nothing, so its frame,
    the only one holding a secret in the clear, is never part of a traceback."""
    matched = False
    for secret in secrets:
        expected = sign(body, secret, timestamp).encode("ascii")
        for candidate in signatures:
            matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched
