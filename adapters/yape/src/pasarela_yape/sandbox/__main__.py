"""``python -m pasarela_yape.sandbox [--port 8802] [--webhook-url URL] [--option
KNOB=VALUE ...]``: serve the Culqi sandbox on loopback (as ``pasarela sandbox
yape``), after printing its keys and control routes."""

from __future__ import annotations

from pasarela.testing.sandbox.runner import main
from pasarela_yape.sandbox.app import create_app


if __name__ == "__main__":
    main(create_app, prog="python -m pasarela_yape.sandbox")
