"""pasarela-pagoefectivo: PagoEfectivo CIP cash payments for pasarela.

The distribution announces :class:`PagoEfectivoProvider` through the ``pasarela``
entry point; the sandbox is :func:`pasarela_pagoefectivo.sandbox.create_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pasarela.hookspecs import hookimpl
from pasarela_pagoefectivo.provider import PagoEfectivoProvider
from pasarela_pagoefectivo.settings import PagoEfectivoSettings


if TYPE_CHECKING:
    from pasarela.registry import ProviderRegistry


__all__ = ["PagoEfectivoProvider", "PagoEfectivoSettings", "pasarela_register_providers"]


@hookimpl
def pasarela_register_providers(register: ProviderRegistry) -> None:
    register.add(PagoEfectivoProvider)
