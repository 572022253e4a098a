"""The Stripe sandbox: a local, stateful simulator of the PaymentIntents API.

``pasarela sandbox stripe --port N`` serves :func:`create_app`.
"""

from __future__ import annotations

from pasarela_stripe.sandbox.app import Knobs, Sandbox, create_app


__all__ = ["Knobs", "Sandbox", "create_app"]
