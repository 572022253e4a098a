"""Culqi as the acquirer of Yape payments (``acquirer = "culqi"``)."""

from __future__ import annotations

from pasarela_yape.culqi.acquirer import CulqiAcquirer


__all__ = ["CulqiAcquirer"]
