"""pasarela: one Python API to take payments in Peru."""

from __future__ import annotations
