"""The Mercado Pago sandbox's own knobs, beside the ones every sandbox has.

The names and units follow :mod:`pasarela.testing.sandbox.knobs`: times in seconds,
shares from 0 to 1, webhook faults ``<verb>_webhooks``.
"""

from __future__ import annotations

import attrs

from pasarela.testing.sandbox import Knobs, choice


__all__ = ["MercadoPagoKnobs"]


@attrs.define(kw_only=True)
class MercadoPagoKnobs(Knobs):
    """The shared knobs and the notifications' signature fault."""

    webhook_signature: str = choice(
        "valid", ("valid", "invalid", "stale"),
        "valid, invalid (signed with another secret) or stale (an hour old)")
