"""The Mercado Pago sandbox: a local, stateful simulator of the Payments API for Peru.

``pasarela sandbox mercadopago`` serves :func:`create_app` on port 8814 (so does
``python -m pasarela_mercadopago.sandbox``). It is built on
:mod:`pasarela.testing.sandbox`: :class:`MercadoPagoSandbox` is the account,
:class:`MercadoPagoKnobs` its knobs; it takes only :data:`ACCESS_TOKEN` and
:data:`PUBLIC_KEY` unless given others, and signs notifications with
:data:`WEBHOOK_SECRET`.
"""

from __future__ import annotations

from pasarela_mercadopago.sandbox.app import create_app
from pasarela_mercadopago.sandbox.knobs import MercadoPagoKnobs
from pasarela_mercadopago.sandbox.state import (
    ACCESS_TOKEN,
    PUBLIC_KEY,
    WEBHOOK_SECRET,
    MercadoPagoSandbox,
)


__all__ = ["ACCESS_TOKEN", "PUBLIC_KEY", "WEBHOOK_SECRET", "MercadoPagoKnobs",
           "MercadoPagoSandbox", "create_app"]
