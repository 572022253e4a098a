"""The dLocal sandbox: a local, stateful simulator of the Payins API (2.1).

``pasarela sandbox dlocal`` serves :func:`create_app` on port 8815 (so does
``python -m pasarela_dlocal.sandbox``), on :mod:`pasarela.testing.sandbox`.
"""

from __future__ import annotations

from pasarela_dlocal.sandbox.app import create_app
from pasarela_dlocal.sandbox.simulator import (
    DEFAULT_SECRET_KEY,
    DEFAULT_X_LOGIN,
    DEFAULT_X_TRANS_KEY,
    DOCUMENTED,
    NOTIFICATION_SCHEDULE,
    DlocalKnobs,
    DlocalSandbox,
)


__all__ = [
    "DEFAULT_SECRET_KEY",
    "DEFAULT_X_LOGIN",
    "DEFAULT_X_TRANS_KEY",
    "DOCUMENTED",
    "NOTIFICATION_SCHEDULE",
    "DlocalKnobs",
    "DlocalSandbox",
    "create_app",
]
