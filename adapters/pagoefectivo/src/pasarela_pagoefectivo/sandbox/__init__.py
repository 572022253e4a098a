"""A local simulator of PagoEfectivo's CIP API, for the demo, the tests and benchmarks.

``create_app(**options)`` returns the Starlette app (``pasarela sandbox
pagoefectivo`` serves it on port 8801; so does ``python -m
pasarela_pagoefectivo.sandbox``). It is built on :mod:`pasarela.testing.sandbox`:
see :mod:`.app` for the endpoints and :class:`.knobs.PagoEfectivoKnobs` for the
faults it can play. It accepts :data:`DEFAULT_ACCESS_KEY`,
:data:`DEFAULT_SECRET_KEY` and :data:`DEFAULT_SERVICE_ID` unless told otherwise.
"""

from __future__ import annotations

from pasarela_pagoefectivo.sandbox.app import create_app
from pasarela_pagoefectivo.sandbox.knobs import PagoEfectivoKnobs
from pasarela_pagoefectivo.sandbox.state import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
    PagoEfectivoSandbox,
)


__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_SERVICE_ID",
    "PagoEfectivoKnobs",
    "PagoEfectivoSandbox",
    "create_app",
]
