"""Serving a sandbox by hand: ``pasarela sandbox NAME`` and ``python -m
pasarela_x.sandbox`` both come here.

``[--host H] [--port N] [--webhook-url URL] [--option KNOB=VALUE ...]``: the port
defaults to the sandbox's own (``--port 0`` picks a free one), ``--webhook-url``
sets the ``webhook_url`` knob, and each ``--option`` is passed to the provider's
``create_app`` (a JSON value, else text: ``--option latency=0.2``,
``--option max_amount="PEN 5000"``). The start-up banner (:func:`~pasarela.testing.
sandbox.banner.banner`) is printed once the port is bound.
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from pasarela.errors import ConfigurationError, PasarelaError
from pasarela.testing.sandbox.banner import banner


__all__ = ["load_factory", "main", "make_app", "parse_options", "run", "serve"]

Factory = Callable[..., Any]


def parse_options(items: Iterable[str]) -> dict[str, Any]:
    """``["latency=0.2", "strict=false"]`` as ``{"latency": 0.2, "strict": False}``:
    each value JSON if it reads as JSON, else text; ``-`` in names becomes ``_``."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"expected KNOB=VALUE, not {item!r}", path="--option")
        try:
            options[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            options[key.strip().replace("-", "_")] = value
    return options


def load_factory(name: str) -> Factory:
    """The ``create_app`` of provider *name*'s sandbox (its ``sandbox_factory``)."""
    from pasarela.plugins import get_plugin_manager  # noqa: PLC0415 - discovery on demand

    cls = get_plugin_manager().providers().get(name)
    if not cls.sandbox_factory:
        raise ConfigurationError(f"the provider {name!r} ships no sandbox")
    module_name, _, attribute = cls.sandbox_factory.partition(":")
    factory: Factory = getattr(importlib.import_module(module_name), attribute)
    return factory


def make_app(factory: Factory, *, webhook_url: str | None = None,
             options: dict[str, Any] | None = None) -> Any:
    """``factory(**options)``, with ``webhook_url`` among the options when given."""
    values = dict(options or {})
    if webhook_url:
        values["webhook_url"] = webhook_url
    return factory(**values)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # uvicorn sets TCP_NODELAY only on sockets it binds itself: without it a
    # keep-alive answer can wait ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    return sock


def serve(app: Any, *, host: str = "127.0.0.1", port: int | None = None,
          out: TextIO | None = None) -> None:
    """Serve a sandbox's *app* until interrupted, after printing its banner to *out*
    (standard output by default). *port* None: the sandbox's default port."""
    import uvicorn  # noqa: PLC0415

    sandbox = app.state.sandbox
    sock = _bind(host, sandbox.default_port if port is None else port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    sandbox.url = url
    print(banner(sandbox, url, tuple(getattr(app.state, "control", ()))),
          file=out or sys.stdout, flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


def run(name: str, *, host: str = "127.0.0.1", port: int | None = None,
        webhook_url: str | None = None, options: dict[str, Any] | None = None,
        out: TextIO | None = None) -> None:
    """``pasarela sandbox NAME``: provider *name*'s sandbox, served until interrupted."""
    app = make_app(load_factory(name), webhook_url=webhook_url, options=options)
    serve(app, host=host, port=port, out=out)


def main(factory: Factory, argv: Sequence[str] | None = None, *,
         prog: str | None = None) -> None:
    """``python -m pasarela_x.sandbox``: the same options as ``pasarela sandbox``."""
    parser = argparse.ArgumentParser(prog=prog, description="Serve a provider's sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None,
                        help="default: the sandbox's own; 0 picks a free port")
    parser.add_argument("--webhook-url", default=None, help="where webhooks are POSTed")
    parser.add_argument("--option", dest="options", action="append", default=[],
                        metavar="KNOB=VALUE", help="a sandbox option (repeatable)")
    args = parser.parse_args(argv)
    try:  # a bad --option is a usage error (2), in one line, never a traceback ...
        app = make_app(factory, webhook_url=args.webhook_url,
                       options=parse_options(args.options))
    except (PasarelaError, ValueError, TypeError) as exc:
        parser.exit(2, f"error: {' '.join(str(exc).split())}\n")
    try:  # ... and a port that cannot be bound a failure (1)
        serve(app, host=args.host, port=args.port)
    except OSError as exc:
        where = args.port if args.port is not None else "its default port"
        parser.exit(1, f"error: cannot serve on {args.host}:{where}: {exc.strerror or exc}\n")
