"""``python -m pasarela_pagoefectivo.sandbox [--port 8801] [--webhook-url URL]
[--option KNOB=VALUE ...]``: serve the sandbox on loopback (as ``pasarela sandbox
pagoefectivo``), after printing its credentials and control routes."""

from __future__ import annotations

from pasarela.testing.sandbox.runner import main
from pasarela_pagoefectivo.sandbox.app import create_app


if __name__ == "__main__":
    main(create_app, prog="python -m pasarela_pagoefectivo.sandbox")
