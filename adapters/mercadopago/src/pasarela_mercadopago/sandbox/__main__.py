"""``python -m pasarela_mercadopago.sandbox [--port 8814] [--webhook-url URL] [--option
KNOB=VALUE ...]``: serve the Mercado Pago sandbox on loopback (as ``pasarela sandbox
mercadopago``), after printing its credentials and control routes."""

from __future__ import annotations

from pasarela.testing.sandbox.runner import main
from pasarela_mercadopago.sandbox.app import create_app


if __name__ == "__main__":
    main(create_app, prog="python -m pasarela_mercadopago.sandbox")
