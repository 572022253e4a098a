"""``python -m pasarela_dlocal.sandbox [--port 8815] [--webhook-url URL] [--option
KNOB=VALUE ...]``: serve the dLocal sandbox on loopback (as ``pasarela sandbox dlocal``)."""

from __future__ import annotations

from pasarela.testing.sandbox.runner import main
from pasarela_dlocal.sandbox.app import create_app


if __name__ == "__main__":
    main(create_app, prog="python -m pasarela_dlocal.sandbox")
