"""The ``pasarela`` command. Only the console script imports this package."""

from __future__ import annotations

from pasarela.cli.main import main


__all__ = ["main"]
