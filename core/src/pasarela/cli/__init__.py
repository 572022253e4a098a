"""The ``pasarela`` command. Only the console script imports this package.

``main`` is loaded on first use, so that ``python -m pasarela.cli.serve`` runs that
module without the package having imported it first.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any


__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name == "main":
        return import_module("pasarela.cli.commands").main
    raise AttributeError(f"module 'pasarela.cli' has no attribute {name!r}")
