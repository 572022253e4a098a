"""The Stripe sandbox: a local, stateful simulator of the PaymentIntents API.

``pasarela sandbox stripe`` serves :func:`create_app` on port 8812 (so does
``python -m pasarela_stripe.sandbox``). It is built on
:mod:`pasarela.testing.sandbox`: :class:`StripeSandbox` is the account,
:class:`StripeKnobs` its knobs. It takes any ``sk_test_`` key
(:data:`DEFAULT_API_KEY` is the one its banner suggests) unless given one, and
signs events with :data:`DEFAULT_WEBHOOK_SECRET` unless told otherwise.
"""

from __future__ import annotations

from pasarela_stripe.sandbox.app import create_app
from pasarela_stripe.sandbox.knobs import DEFAULT_WEBHOOK_SECRET, StripeKnobs
from pasarela_stripe.sandbox.simulator import DEFAULT_API_KEY, StripeSandbox


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_WEBHOOK_SECRET",
    "StripeKnobs",
    "StripeSandbox",
    "create_app",
]
