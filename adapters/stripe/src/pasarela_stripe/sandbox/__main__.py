"""``python -m pasarela_stripe.sandbox [--port 8812] [--webhook-url URL] [--option
KNOB=VALUE ...]``: serve the Stripe sandbox on loopback (as ``pasarela sandbox
stripe``), after printing its keys and control routes."""

from __future__ import annotations

from pasarela.testing.sandbox.runner import main
from pasarela_stripe.sandbox.app import create_app


if __name__ == "__main__":
    main(create_app, prog="python -m pasarela_stripe.sandbox")
