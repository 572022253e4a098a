"""The Stripe sandbox's own knobs, beside the ones every sandbox has.

The names and units follow :mod:`pasarela.testing.sandbox.knobs`: times in
seconds (``latency`` too), shares from 0 to 1, webhook faults ``<verb>_webhooks``
(``hold_webhooks`` keeps every event until ``POST /_control/webhooks/flush``).
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from pasarela.errors import ValidationError
from pasarela.testing.sandbox import Knobs, choice, count, flag, knob, seconds, share


__all__ = ["DEFAULT_WEBHOOK_SECRET", "StripeKnobs"]

DEFAULT_WEBHOOK_SECRET: Final = "whsec_pasarela_sandbox"  # noqa: S105 - a public test secret


def _secrets(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise ValidationError("must be a list of signing secrets (whsec_...)", field=name)
    return list(value)


@attrs.define(kw_only=True)
class StripeKnobs(Knobs):
    """The shared knobs, Stripe's rate limit, settlement and signature faults."""

    rate_limit_rate: float = share(0.0, "share of API requests answered 429")
    rate_limit_next: int = count(0, "the next N API requests are answered 429")
    retry_after: float = seconds(1.0, "the Retry-After seconds sent with a 429")
    processing: bool = flag(
        False, "successful confirmations stop at processing until settled by control")
    refund_status: str = choice(
        "succeeded", ("succeeded", "pending"), "the status new refunds get")
    webhook_secrets: list[str] = knob(  # noqa: RUF009 - an attrs field (factory)
        _secrets, "the endpoint's signing secrets; one v1 signature each (as during a roll)",
        factory=lambda: [DEFAULT_WEBHOOK_SECRET], unit="secrets")
    webhook_signature: str = choice(
        "valid", ("valid", "invalid", "stale"),
        "valid, invalid (signed with another secret) or stale (an hour old)")
