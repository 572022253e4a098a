"""A local simulator of Culqi's API for Yape and wallet QR orders.

``create_app(**options)`` returns the Starlette app (``pasarela sandbox yape``
serves it; ``python -m pasarela_yape.sandbox --port 8802`` too). Culqi's documented
Yape test phone ``900000001`` approves with any 6 digits; other phones decline per
:data:`~pasarela_yape.sandbox.knobs.DEFAULT_YAPE_OUTCOMES` (configurable).
"""

from __future__ import annotations

from pasarela_yape.sandbox.app import create_app
from pasarela_yape.sandbox.knobs import DEFAULT_YAPE_OUTCOMES, Knobs


__all__ = ["DEFAULT_YAPE_OUTCOMES", "Knobs", "create_app"]
