"""A local simulator of PagoEfectivo's CIP API, for the demo, the tests and benchmarks.

``create_app(**options)`` returns the Starlette app (``pasarela sandbox
pagoefectivo --port N`` serves it; so does ``python -m
pasarela_pagoefectivo.sandbox``). See :mod:`.app` for the endpoints and
:class:`.state.Knobs` for the faults it can play.
"""

from __future__ import annotations

from pasarela_pagoefectivo.sandbox.app import create_app
from pasarela_pagoefectivo.sandbox.knobs import Fault, Knobs
from pasarela_pagoefectivo.sandbox.notifier import Delivery, Notifier
from pasarela_pagoefectivo.sandbox.state import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
    Sandbox,
)


__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_SERVICE_ID",
    "Delivery",
    "Fault",
    "Knobs",
    "Notifier",
    "Sandbox",
    "create_app",
]
