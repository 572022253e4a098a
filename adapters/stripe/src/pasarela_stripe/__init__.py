"""pasarela-stripe: Stripe cards (PaymentIntents) for pasarela, with a local sandbox.

Installed, it registers the ``stripe`` provider through the ``pasarela`` entry
point group::

    [providers.stripe]
    api_key = "env:STRIPE_SECRET_KEY"
    webhook_secrets = ["env:STRIPE_WEBHOOK_SECRET"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pasarela.hookspecs import hookimpl
from pasarela_stripe.errors import ERROR_CODES, StripeDeclinedError, StripeServerError
from pasarela_stripe.provider import StripeProvider
from pasarela_stripe.settings import API_VERSION, StripeSettings


if TYPE_CHECKING:
    from pasarela.registry import ProviderRegistry


__all__ = [
    "API_VERSION",
    "ERROR_CODES",
    "StripeDeclinedError",
    "StripeProvider",
    "StripeServerError",
    "StripeSettings",
    "pasarela_register_providers",
]


@hookimpl
def pasarela_register_providers(register: ProviderRegistry) -> None:
    """Register :class:`StripeProvider`."""
    register.add(StripeProvider)
