"""The ``pasarela`` command: providers, config check, payments, database, sandboxes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pasarela.cli.output import configure_logging, fail
from pasarela.errors import NotFoundError, PasarelaError


__all__ = ["main"]

console = Console(soft_wrap=True)


@click.group()
@click.option("--config", "config_path", envvar="PASARELA_CONFIG", default="pasarela.toml",
              show_default=True, help="The configuration file.")
@click.option("--json-logs", is_flag=True, help="Log as JSON lines instead of for people.")
@click.pass_context
def main(ctx: click.Context, config_path: str, json_logs: bool) -> None:
    """pasarela: payments in Peru through one API."""
    configure_logging(json=json_logs)
    ctx.obj = {"config": config_path}


def _open(ctx: click.Context) -> Any:
    from pasarela.api import Pasarela  # noqa: PLC0415

    try:
        return Pasarela.from_config(ctx.obj["config"])
    except PasarelaError as exc:
        fail(exc)


@main.command()
@click.pass_context
def providers(ctx: click.Context) -> None:
    """List the installed providers, with the distribution each came from."""
    from pasarela.plugins import get_plugin_manager  # noqa: PLC0415

    try:
        manager = get_plugin_manager()
        path = Path(ctx.obj["config"])
        if path.exists():
            from pasarela.config import load_config  # noqa: PLC0415

            for module in load_config(path).plugins.modules:
                manager.load_module(module)
        registry = manager.providers()
    except PasarelaError as exc:
        fail(exc)
    table = Table(title="Installed providers")
    for column in ("name", "display name", "methods", "currencies", "operations",
                   "distribution", "version"):
        table.add_column(column)
    for name, cls in registry.items():
        origin = registry.origin(name)
        table.add_row(name, cls.display_name, ", ".join(sorted(m.value for m in cls.methods)),
                      ", ".join(sorted(cls.currencies)),
                      ", ".join(sorted(o.value for o in cls.operations)),
                      origin.distribution or "-", origin.version or "-")
    console.print(table)


@main.group()
def config() -> None:
    """Check configuration files."""


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.pass_context
def config_check(ctx: click.Context, file: str | None) -> None:
    """Check FILE (default: --config) exactly as ``Pasarela.from_config`` would start it:
    syntax, secrets, every provider's settings, provider references, routes."""
    from pasarela.api import validate  # noqa: PLC0415
    from pasarela.config import load_config  # noqa: PLC0415

    path = file or ctx.obj["config"]
    problems = validate(path)
    if problems:
        fail(problems[0], problems[1:])
    cfg = load_config(path)
    console.print(f"[green]ok[/] {path}: {len(cfg.providers)} provider(s), "
                  f"{len(cfg.routes)} route(s)")


@main.group()
def payments() -> None:
    """Inspect payments."""


@payments.command("show")
@click.argument("payment_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def payments_show(ctx: click.Context, payment_id: str, as_json: bool) -> None:
    """Show a payment, its history and its (redacted) provider exchanges."""
    with _open(ctx) as pasarela:
        try:
            payment = pasarela.get(payment_id)
        except NotFoundError as exc:  # say which store: a relative path read elsewhere
            fail(f"{exc.message} in {pasarela.store!r}")
        except PasarelaError as exc:
            fail(exc)
        exchanges = pasarela.store.exchanges_for(payment_id)
    if as_json:
        click.echo(json.dumps({
            "id": payment.id, "status": payment.status.value, "provider": payment.provider,
            "amount": str(payment.amount), "version": payment.version,
            "history": [{"from": t.source.value, "to": t.target.value, "cause": t.cause.value,
                         "applied": t.applied, "reason": t.reason, "at": t.at.isoformat()}
                        for t in payment.history],
            "exchanges": exchanges,
        }, default=str, indent=2))
        return
    print_payment(payment, exchanges)


def print_payment(payment: Any, exchanges: list[dict[str, Any]] | None = None) -> None:
    console.print(f"[bold]{payment.id}[/]  {payment.order_reference}  {payment.provider}/"
                  f"{payment.method.value}  {payment.amount.format()}  [bold]{payment.status}[/]"
                  f"  v{payment.version}")
    table = Table(show_header=True, header_style="bold")
    for column in ("at (UTC)", "from", "to", "cause", "applied", "reason"):
        table.add_column(column)
    for t in payment.history:
        table.add_row(t.at.strftime("%Y-%m-%d %H:%M:%S"), t.source.value, t.target.value,
                      t.cause.value, "yes" if t.applied else "ignored", t.reason[:60])
    console.print(table)
    if exchanges:
        ex_table = Table(title="provider exchanges (redacted)")
        for column in ("operation", "request", "status", "ms", "error"):
            ex_table.add_column(column)
        for ex in exchanges:
            ex_table.add_row(str(ex["operation"]), f"{ex['method']} {ex['url']}",
                             str(ex["status_code"] or "-"), f"{ex['duration_ms']:.1f}",
                             str(ex["error"] or ""))
        console.print(ex_table)


@main.group()
def db() -> None:
    """Manage the store."""


@db.command("upgrade")
@click.option("--url", help="The store URL (default: from the configuration).")
@click.pass_context
def db_upgrade(ctx: click.Context, url: str | None) -> None:
    """Run the database migrations to the newest version."""
    from pasarela.config import load_config  # noqa: PLC0415
    from pasarela.store import Store  # noqa: PLC0415

    try:
        target = url or load_config(ctx.obj["config"]).store.url
        store = Store(target, upgrade=True)
        store.close()
    except PasarelaError as exc:
        fail(exc)
    console.print("[green]database is at the newest version[/]")


@main.command()
@click.argument("name")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="Default: the sandbox's own (pagoefectivo 8801, yape 8802, stripe 8812).")
@click.option("--webhook-url", default=None, help="Where the sandbox POSTs its webhooks.")
@click.option("--option", "options", multiple=True, metavar="KNOB=VALUE",
              help="A sandbox option (repeatable), e.g. --option latency=0.2")
def sandbox(name: str, host: str, port: int | None, webhook_url: str | None,
            options: tuple[str, ...]) -> None:
    """Serve provider NAME's local sandbox (a simulator of its HTTP API); it prints its
    URL, credentials, control routes and the pasarela.toml snippet to use it."""
    from pasarela.testing.sandbox.runner import parse_options, run  # noqa: PLC0415

    try:
        run(name, host=host, port=port, webhook_url=webhook_url,
            options=parse_options(options))
    except (PasarelaError, ValueError, TypeError, OSError) as exc:
        fail(exc)


def _register_commands() -> None:
    from pasarela.cli.doctor import doctor  # noqa: PLC0415
    from pasarela.cli.reconcile import costs, reconcile  # noqa: PLC0415
    from pasarela.cli.routing import route  # noqa: PLC0415
    from pasarela.cli.serve import serve, worker  # noqa: PLC0415

    main.add_command(reconcile)
    main.add_command(costs)
    main.add_command(route)
    main.add_command(serve)
    main.add_command(worker)
    main.add_command(doctor)


_register_commands()
