"""pasarela-mercadopago: Mercado Pago Peru (PagoEfectivo cash, Yape, cards) for pasarela.

Installed, it registers the ``mercadopago`` provider through the ``pasarela`` entry
point group::

    [providers.mercadopago]
    access_token = "env:MERCADOPAGO_ACCESS_TOKEN"
    public_key = "env:MERCADOPAGO_PUBLIC_KEY"
    webhook_secrets = ["env:MERCADOPAGO_WEBHOOK_SECRET"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pasarela.hookspecs import hookimpl
from pasarela_mercadopago.errors import ERROR_CODES, STATUSES, MercadoPagoDeclinedError
from pasarela_mercadopago.provider import MercadoPagoProvider
from pasarela_mercadopago.settings import MercadoPagoSettings


if TYPE_CHECKING:
    from pasarela.registry import ProviderRegistry


__all__ = [
    "ERROR_CODES",
    "STATUSES",
    "MercadoPagoDeclinedError",
    "MercadoPagoProvider",
    "MercadoPagoSettings",
    "pasarela_register_providers",
]


@hookimpl
def pasarela_register_providers(register: ProviderRegistry) -> None:
    """Register :class:`MercadoPagoProvider`."""
    register.add(MercadoPagoProvider)
