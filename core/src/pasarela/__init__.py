"""pasarela: one Python API to take payments in Peru.

Cash codes (PagoEfectivo CIP), wallets (Yape; Plin through interoperable QR) and
cards (Stripe), each provider a plugin, every payment a durable state machine.
"""

from __future__ import annotations

from typing import Any

from pasarela.api import AsyncPasarela, Pasarela
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
from pasarela.model import Customer, Method, NextAction, Order, Payment, Refund
from pasarela.money import Money
from pasarela.provider import Provider, ProviderSettings
from pasarela.service import Option


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
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        return version("pasarela")
    raise AttributeError(f"module 'pasarela' has no attribute {name!r}")
