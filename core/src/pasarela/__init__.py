"""pasarela: one Python API to take payments in Peru.

Cash codes (PagoEfectivo CIP), wallets (Yape; Plin through interoperable QR) and
cards (Stripe), each provider a plugin, every payment a durable state machine.
"""

from __future__ import annotations

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
