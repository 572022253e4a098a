"""``python -m pasarela_yape.sandbox [--host H] [--port N] [--webhook-url URL]``."""

from __future__ import annotations

import argparse

import uvicorn

from pasarela_yape.sandbox.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pasarela_yape.sandbox",
                                     description="Culqi (Yape / wallet QR) sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8802)
    parser.add_argument("--webhook-url", default=None,
                        help="where order.status.changed events are POSTed")
    args = parser.parse_args(argv)
    app = create_app(webhook_url=args.webhook_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
