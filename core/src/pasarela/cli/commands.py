"""The ``pasarela`` command: providers, config check, payments, database, sandboxes.

The conventions every command keeps (exit codes, ``--json``, ``-``, pipes, ``NO_COLOR``)
are in :mod:`pasarela.cli.output`; ``python -m pasarela`` runs this same group.
"""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from pasarela.cli.output import (
    CommandGroup,
    configure_logging,
    fail,
    merchant_name,
    merchant_scope,
    money_json,
    out_console,
    unscoped,
    usage,
)
from pasarela.errors import NotFoundError, PasarelaError


__all__ = ["main", "version_lines"]


def version_lines() -> list[str]:
    """``pasarela X.Y.Z``, then ``NAME: DISTRIBUTION VERSION`` for each installed
    provider (from the ``pasarela`` entry points), then the Python that runs them."""
    try:
        lines = [f"pasarela {metadata.version('pasarela')}"]
    except metadata.PackageNotFoundError:
        lines = ["pasarela (not installed as a distribution)"]
    from pasarela.plugins import get_plugin_manager  # noqa: PLC0415

    try:
        registry = get_plugin_manager().providers()
    except PasarelaError as exc:
        lines.append(f"providers: not listed ({exc})")
    else:
        for name in sorted(registry):
            origin = registry.origin(name)
            lines.append(f"{name}: {origin.distribution or '-'} {origin.version or '-'}")
    lines.append(f"Python {platform.python_version()}")
    return lines


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo("\n".join(version_lines()))
    ctx.exit()


@click.group(cls=CommandGroup)
@click.option("--config", "config_path", envvar="PASARELA_CONFIG", default="pasarela.toml",
              show_default=True, help="The configuration file.")
@click.option("--merchant", envvar="PASARELA_MERCHANT", default=None, metavar="NAME",
              help="Work on merchant NAME's payments, accounts and routes only (every "
                   "command that reads or writes a merchant's data; a command that works on "
                   "the whole deployment refuses it); default: the implicit merchant's.")
@click.option("--json-logs", is_flag=True, help="Log as JSON lines instead of for people.")
@click.option("--debug", is_flag=True, envvar="PASARELA_DEBUG",
              help="Print the traceback of an unexpected error.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version,
              help="Print the version, the installed providers' distributions, and exit.")
@click.pass_context
def main(ctx: click.Context, config_path: str, merchant: str | None, json_logs: bool,
         debug: bool) -> None:
    """pasarela: payments in Peru through one API."""
    configure_logging(json=json_logs)
    ctx.obj = {"config": config_path, "debug": debug, "merchant": merchant}


def _open(ctx: click.Context) -> Any:
    from pasarela.api import Pasarela  # noqa: PLC0415

    try:
        return Pasarela.from_config(ctx.obj["config"])
    except PasarelaError as exc:
        fail(exc)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the providers as JSON.")
@click.pass_context
def providers(ctx: click.Context, as_json: bool) -> None:
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
    rows: list[dict[str, Any]] = []
    for name, cls in registry.items():
        origin = registry.origin(name)
        rows.append({"name": name, "display_name": cls.display_name,
                     "methods": sorted(m.value for m in cls.methods),
                     "currencies": sorted(cls.currencies),
                     "operations": sorted(o.value for o in cls.operations),
                     "distribution": origin.distribution, "version": origin.version})
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title="Installed providers")
    for column in ("name", "display name", "methods", "currencies", "operations",
                   "distribution", "version"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["display_name"], ", ".join(row["methods"]),
                      ", ".join(row["currencies"]), ", ".join(row["operations"]),
                      row["distribution"] or "-", row["version"] or "-")
    out_console().print(table)


@main.group()
def config() -> None:
    """Check configuration files."""


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.pass_context
def config_check(ctx: click.Context, file: str | None) -> None:
    """Check FILE (default: --config) exactly as ``Pasarela.from_config`` would start it:
    syntax, secrets, every provider's settings, provider references, routes; every
    merchant's too, or with ``--merchant NAME`` that merchant's only."""
    from pasarela.api import validate  # noqa: PLC0415
    from pasarela.config import load_config  # noqa: PLC0415

    path = file or ctx.obj["config"]
    merchant = merchant_name(ctx)
    problems = validate(path, merchant=merchant or None)
    if problems:
        fail(problems[0], problems[1:])
    cfg = load_config(path)
    out = out_console()
    out.print("[green]ok[/] ", end="")
    if merchant:
        table = cfg.merchants[merchant]
        out.print(f"{path}: merchant {merchant}: {len(table.providers)} account(s), "
                  f"{len(table.routes)} route(s)", markup=False)
        return
    out.print(f"{path}: {len(cfg.providers)} provider(s), {len(cfg.routes)} route(s)",
              markup=False)


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
        _, api, _ = merchant_scope(ctx, pasarela)
        try:
            payment = api.get(payment_id)  # another merchant's: not found
        except NotFoundError as exc:  # say which store: a relative path read elsewhere
            fail(f"{exc.message} in {pasarela.store!r}")
        except PasarelaError as exc:
            fail(exc)
        exchanges = pasarela.store.exchanges_for(payment_id)
    if as_json:
        click.echo(json.dumps({
            "id": payment.id, "order_reference": payment.order_reference,
            "status": payment.status.value, "provider": payment.provider,
            "method": payment.method.value, "amount": money_json(payment.amount),
            "network": payment.network,
            "charged": money_json(payment.charged) if payment.charged is not None else None,
            "fx_rate": str(payment.fx_rate) if payment.fx_rate is not None else None,
            "version": payment.version,
            "history": [{"from": t.source.value, "to": t.target.value, "cause": t.cause.value,
                         "applied": t.applied, "reason": t.reason, "at": t.at.isoformat()}
                        for t in payment.history],
            "exchanges": exchanges,
        }, default=str, indent=2))
        return
    print_payment(payment, exchanges)


def print_payment(payment: Any, exchanges: list[dict[str, Any]] | None = None) -> None:
    console = out_console()
    console.print(f"[bold]{payment.id}[/]  {payment.order_reference}  {payment.provider}/"
                  f"{payment.method.value}  {payment.amount.format()}  [bold]{payment.status}[/]"
                  f"  v{payment.version}")
    if getattr(payment, "network", None):
        console.print(f"network {payment.network}")
    if getattr(payment, "charged", None) is not None:
        console.print(f"charged {payment.charged.format()} at {payment.fx_rate} "
                      f"{payment.charged.currency} per {payment.amount.currency}")
    table = Table(show_header=True, header_style="bold")
    for column in ("at (UTC)", "from", "to", "cause", "applied", "reason"):
        table.add_column(column)
    for t in payment.history:
        table.add_row(t.at.strftime("%Y-%m-%d %H:%M:%S"), t.source.value, t.target.value,
                      t.cause.value, "yes" if t.applied else "ignored", t.reason)
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

    unscoped(ctx, "every merchant's payments are in one store")

    try:
        target = url or load_config(ctx.obj["config"]).store.url
        store = Store(target, upgrade=True)
        store.close()
    except PasarelaError as exc:
        fail(exc)
    out_console().print("[green]database is at the newest version[/]")


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
    from pasarela.testing.sandbox.runner import load_factory, make_app, parse_options, serve  # noqa: PLC0415

    try:  # an unknown NAME or a bad --option is a usage error (2) ...
        app = make_app(load_factory(name), webhook_url=webhook_url,
                       options=parse_options(options))
    except (PasarelaError, ValueError, TypeError) as exc:
        usage(str(exc))
    try:  # ... a port that cannot be bound a failure (1)
        serve(app, host=host, port=port)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port if port is not None else 'its default port'}: "
             f"{exc.strerror or exc}")


def _register_commands() -> None:
    from pasarela.cli.audit import audit  # noqa: PLC0415
    from pasarela.cli.customers import customers  # noqa: PLC0415
    from pasarela.cli.doctor import doctor  # noqa: PLC0415
    from pasarela.cli.evidence import evidence  # noqa: PLC0415
    from pasarela.cli.operators import operators  # noqa: PLC0415
    from pasarela.cli.reconcile import costs, reconcile  # noqa: PLC0415
    from pasarela.cli.routing import route  # noqa: PLC0415
    from pasarela.cli.serve import serve, worker  # noqa: PLC0415

    main.add_command(reconcile)
    main.add_command(costs)
    main.add_command(route)
    main.add_command(serve)
    main.add_command(worker)
    main.add_command(doctor)
    main.add_command(customers)
    main.add_command(audit)
    main.add_command(operators)
    payments.add_command(evidence)


_register_commands()
