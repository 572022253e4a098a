"""pasarela-yape: Yape / Plin wallet payments for pasarela, through Culqi.

Approval-code charges (phone + the 6-digit code from the Yape app) and QR orders
payable from Yape or Plin, with refunds and Culqi's ``order.status.changed``
webhook. ``pasarela_yape.sandbox.create_app`` is a local Culqi simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pasarela.hookspecs import hookimpl
from pasarela_yape.provider import YapeProvider
from pasarela_yape.settings import YapeSettings


if TYPE_CHECKING:
    from pasarela.registry import ProviderRegistry


__all__ = ["YapeProvider", "YapeSettings", "pasarela_register_providers"]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read when asked: importlib.metadata is not discovery's
        from importlib import metadata  # noqa: PLC0415

        return metadata.version("pasarela-yape")
    raise AttributeError(f"module 'pasarela_yape' has no attribute {name!r}")


@hookimpl
def pasarela_register_providers(register: ProviderRegistry) -> None:
    """Announce the Yape provider to pasarela."""
    register.add(YapeProvider)
