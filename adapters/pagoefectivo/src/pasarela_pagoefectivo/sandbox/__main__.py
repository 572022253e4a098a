"""``python -m pasarela_pagoefectivo.sandbox --port 8801``: serve the sandbox on loopback."""

from __future__ import annotations

import argparse

import uvicorn

from pasarela_pagoefectivo.sandbox.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PagoEfectivo sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--notification-url", default=None)
    parser.add_argument("--max-amount", default=None, help="per-merchant limit, e.g. 'PEN 5000'")
    parser.add_argument("--lenient", action="store_true", help="accept what the demo sandbox did")
    args = parser.parse_args(argv)
    options: dict[str, object] = {"notification_url": args.notification_url,
                                  "strict": not args.lenient}
    if args.max_amount:
        options["max_amount"] = args.max_amount
    uvicorn.run(create_app(**options), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
