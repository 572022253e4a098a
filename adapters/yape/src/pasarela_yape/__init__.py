"""pasarela-yape: Yape / Plin wallet payments for pasarela, through Culqi.

Approval-code charges (phone + the 6-digit code from the Yape app) and QR orders
payable from Yape or Plin, with refunds and Culqi's ``order.status.changed``
webhook. ``pasarela_yape.sandbox.create_app`` is a local Culqi simulator.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from pasarela.hookspecs import hookimpl
from pasarela_yape.provider import YapeProvider
from pasarela_yape.settings import YapeSettings


if TYPE_CHECKING:
    from pasarela.registry import ProviderRegistry


__all__ = ["YapeProvider", "YapeSettings", "pasarela_register_providers"]
__version__ = metadata.version("pasarela-yape")


@hookimpl
def pasarela_register_providers(register: ProviderRegistry) -> None:
    """Announce the Yape provider to pasarela."""
    register.add(YapeProvider)
