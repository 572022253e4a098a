"""``pasarela serve`` and ``pasarela worker``: run pasarela as a service.

Both are plain click commands, added to the ``pasarela`` group by
:mod:`pasarela.cli`. Each takes ``--config`` itself, and otherwise uses the group's
``pasarela --config FILE`` (default ``pasarela.toml``, or ``$PASARELA_CONFIG``).
``python -m pasarela.cli.serve serve|worker`` runs them without the group.

- ``serve`` runs :func:`pasarela.web.app.create_app` over an
  :class:`~pasarela.api.AsyncPasarela` under uvicorn (one process; scale out with
  more processes behind a proxy). SIGTERM and SIGINT stop it gracefully: requests
  in flight finish, then the store is closed.
- ``worker`` runs :func:`pasarela.engine.worker.run_worker`: expiry sweep, resolver,
  outbox dispatcher, late-payment policy. With ``[outbox] dispatch = "worker"`` the
  server leaves lifecycle events to it.

``pasarela --merchant NAME serve`` serves merchant *NAME* only
(:func:`~pasarela.web.app.create_app`'s ``merchant``): its accounts' webhooks, its
payments' customer pages, its console and branding; anything of another merchant is
404. The worker's jobs run over every merchant's payments, each merchant taking a share
of every pass, so ``worker`` takes no ``--merchant`` (it says so, exit 2).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from typing import Any, cast

import click

from pasarela.cli.output import ExitCode, configure_logging, fail, merchant_name, unscoped
from pasarela.errors import PasarelaError
from pasarela.extras import MissingExtraError, require


__all__ = ["serve", "worker"]

_CONFIG_HELP = "The configuration file (default: the group's --config, or pasarela.toml)."


def _config_path(ctx: click.Context, given: str | None) -> str:
    if given:
        return given
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("config"):
        return str(obj["config"])
    return os.environ.get("PASARELA_CONFIG", "pasarela.toml")


def _configure_logs(ctx: click.Context, level: str, *, also: tuple[str, ...] = ()) -> None:
    """pasarela's events (and *also* those loggers') at *level* on standard error,
    keeping the group's ``--json-logs`` choice."""
    json_logs = bool(ctx.find_root().params.get("json_logs", False))
    configure_logging(json=json_logs, level=logging.getLevelNamesMapping()[level.upper()],
                      also=also)


@click.command()
@click.option("--config", "config_path", default=None, help=_CONFIG_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--max-body", default=65536, show_default=True, type=click.IntRange(1),
              help="Largest webhook body accepted, in bytes (larger: 413).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="Log level of pasarela's events and of uvicorn.")
@click.pass_context
def serve(ctx: click.Context, config_path: str | None, host: str, port: int, max_body: int,
          log_level: str) -> None:
    """Serve provider webhooks, /healthz and /metrics (uvicorn); with --merchant NAME,
    that merchant's webhooks, pages and console only."""
    from pasarela.api import AsyncPasarela  # noqa: PLC0415

    try:
        require("server", "pasarela serve", "uvicorn", "starlette", "prometheus_client", "jinja2")
    except MissingExtraError as exc:
        fail(exc)

    # uvicorn's own lines (an unhandled error in the app, say) go through the same
    # formatter: masked, JSON with --json-logs, and never a traceback's local variables.
    _configure_logs(ctx, log_level, also=("uvicorn",))
    path = _config_path(ctx, config_path)
    merchant = merchant_name(ctx) or None
    try:
        pasarela = AsyncPasarela.from_config(path)
    except PasarelaError as exc:
        fail(exc)
    if merchant is not None:
        try:
            pasarela.merchants.service(merchant)  # an unknown merchant: not found
        except PasarelaError as exc:
            asyncio.run(pasarela.aclose())
            fail(exc)
    asyncio.run(_serve(pasarela, host=host, port=port, max_body=max_body, log_level=log_level,
                       merchant=merchant))


async def _serve(pasarela: Any, *, host: str, port: int, max_body: int, log_level: str,
                 merchant: str | None) -> None:
    import uvicorn  # noqa: PLC0415

    from pasarela.web.app import create_app  # noqa: PLC0415

    app = create_app(pasarela, max_body=max_body, merchant=merchant)
    # What is built by now (modules, the app, the store's engine) lives as long as the
    # process: set aside from the cyclic collector, whose full collections then walk
    # only what requests allocate (a webhook delivery spent ~15 us in them otherwise).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host=host, port=port,
                            log_level=log_level, access_log=False, lifespan="off",
                            log_config=None)
    server = uvicorn.Server(config)
    try:
        await server.serve()
    finally:
        await pasarela.aclose()


@click.command()
@click.option("--config", "config_path", default=None, help=_CONFIG_HELP)
@click.option("--once", is_flag=True, help="One pass of every job until nothing is due, "
              "then exit (1 if a job failed).")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Seconds between passes.")
@click.option("--late-payment", type=click.Choice(["flag", "refund"]), default=None,
              help="Late-payment policy (default: [worker] late_payment, else flag).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="Log level of pasarela's events.")
@click.pass_context
def worker(ctx: click.Context, config_path: str | None, once: bool, interval: float,
           late_payment: str | None, log_level: str) -> None:
    """Run the background jobs: expiry, resolver, outbox dispatch, late refunds (for
    every merchant, each taking a share of each pass; it takes no --merchant)."""
    from pasarela.api import Pasarela  # noqa: PLC0415
    from pasarela.engine.worker import LatePaymentPolicy, run_worker  # noqa: PLC0415

    unscoped(ctx, "its jobs run over every merchant's payments, fair across merchants")

    _configure_logs(ctx, log_level)
    path = _config_path(ctx, config_path)
    try:
        pasarela = Pasarela.from_config(path)
    except PasarelaError as exc:
        fail(exc)
    with pasarela:
        try:
            stats = run_worker(pasarela, once=once, interval=interval,
                               late_payment=cast("LatePaymentPolicy | None", late_payment))
        except PasarelaError as exc:
            fail(exc)
    click.echo(f"worker: {stats.ticks} pass(es), {stats.expired} expired, {stats.resolved} "
               f"resolved, {stats.dispatched} events dispatched, {stats.refunded} refunded, "
               f"{stats.errors} error(s)", err=True)
    if once and stats.errors:
        sys.exit(ExitCode.FAILED)


@click.group()
def _standalone() -> None:
    """pasarela's service commands (normally `pasarela serve` / `pasarela worker`)."""


_standalone.add_command(serve)
_standalone.add_command(worker)


if __name__ == "__main__":
    _standalone()
