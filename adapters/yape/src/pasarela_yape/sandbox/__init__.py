"""A local simulator of Culqi's API for Yape and wallet QR orders.

``create_app(**options)`` returns the Starlette app (``pasarela sandbox yape``
serves it on port 8802; ``python -m pasarela_yape.sandbox`` too). It is built on
:mod:`pasarela.testing.sandbox`. It takes any ``pk_test_``/``sk_test_`` key
(:data:`DEFAULT_PUBLIC_KEY` and :data:`DEFAULT_SECRET_KEY` are the ones its banner
suggests) unless given exact ones. Culqi's documented Yape test phone
``900000001`` approves with any 6 digits; other phones decline per
:data:`DEFAULT_YAPE_OUTCOMES` (configurable).
"""

from __future__ import annotations

from pasarela_yape.sandbox.app import create_app
from pasarela_yape.sandbox.knobs import DEFAULT_YAPE_OUTCOMES, CulqiKnobs
from pasarela_yape.sandbox.state import DEFAULT_PUBLIC_KEY, DEFAULT_SECRET_KEY, CulqiSandbox


__all__ = [
    "DEFAULT_PUBLIC_KEY",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_YAPE_OUTCOMES",
    "CulqiKnobs",
    "CulqiSandbox",
    "create_app",
]
