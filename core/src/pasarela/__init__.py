"""pasarela: one Python API to take payments in Peru.

Cash codes (PagoEfectivo CIP), wallets (Yape; Plin through interoperable QR) and
cards (Stripe), each provider a plugin, every payment a durable state machine.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from pasarela.api import AsyncPasarela, Pasarela
    from pasarela.engine.payments import Option
    from pasarela.errors import (
        ConfigurationError,
        DeclinedError,
        ErrorCode,
        IdempotencyConflictError,
        NotFoundError,
        PasarelaError,
        ProviderError,
        ValidationError,
    )
    from pasarela.events import LifecycleEvent
    from pasarela.hookspecs import hookimpl
    from pasarela.lifecycle import Status
    from pasarela.model import Customer, Method, Order, Payment, Refund
    from pasarela.money import Money
    from pasarela.next_action import NextAction
    from pasarela.provider import Provider, ProviderSettings


def _defer_httpx_cli() -> None:
    """Leave httpx's command line out of ``import httpx`` until it is used.

    httpx's package imports ``httpx._main`` (its ``httpx`` command: click, rich,
    pygments) with itself, a third of what discovering pasarela's plugins cost; the
    library never runs that command. Before httpx is first imported, a stand-in takes
    the submodule's place: calling ``httpx.main`` or reading any other name of
    ``httpx._main`` imports the real module then (and it replaces the stand-in), so
    nothing changes for code that uses it. The ``httpx`` console script runs in its own
    process and never meets the stand-in.
    """
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main", "httpx's command line, imported on first use")

    def real() -> types.ModuleType:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]
        return import_module("httpx._main")

    def main(*args: Any, **kwargs: Any) -> Any:
        return real().main(*args, **kwargs)

    def attribute(name: str) -> Any:
        if name.startswith("__"):  # the import system's questions (``__path__``...)
            raise AttributeError(name)
        return getattr(real(), name)

    stand_in.main = main  # type: ignore[attr-defined]
    stand_in.__getattr__ = attribute  # type: ignore[method-assign]
    sys.modules["httpx._main"] = stand_in


_defer_httpx_cli()

# Names are imported on first use, so that `import pasarela` (and plugin discovery,
# which imports only what adapters need) stays fast: see `make bench`.
_EXPORTS = {
    "AsyncPasarela": "pasarela.api",
    "Pasarela": "pasarela.api",
    "ConfigurationError": "pasarela.errors",
    "DeclinedError": "pasarela.errors",
    "ErrorCode": "pasarela.errors",
    "IdempotencyConflictError": "pasarela.errors",
    "NotFoundError": "pasarela.errors",
    "PasarelaError": "pasarela.errors",
    "ProviderError": "pasarela.errors",
    "ValidationError": "pasarela.errors",
    "LifecycleEvent": "pasarela.events",
    "hookimpl": "pasarela.hookspecs",
    "Status": "pasarela.lifecycle",
    "Customer": "pasarela.model",
    "Method": "pasarela.model",
    "NextAction": "pasarela.next_action",
    "Order": "pasarela.model",
    "Payment": "pasarela.model",
    "Refund": "pasarela.model",
    "Money": "pasarela.money",
    "Provider": "pasarela.provider",
    "ProviderSettings": "pasarela.provider",
    "Option": "pasarela.engine.payments",
}

__all__ = [
    "AsyncPasarela",
    "ConfigurationError",
    "Customer",
    "DeclinedError",
    "ErrorCode",
    "IdempotencyConflictError",
    "LifecycleEvent",
    "Method",
    "Money",
    "NextAction",
    "NotFoundError",
    "Option",
    "Order",
    "Pasarela",
    "PasarelaError",
    "Payment",
    "Provider",
    "ProviderError",
    "ProviderSettings",
    "Refund",
    "Status",
    "ValidationError",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        return version("pasarela")
    raise AttributeError(f"module 'pasarela' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
