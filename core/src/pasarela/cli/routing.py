"""``pasarela route``: explain one routing decision, or simulate many.

- ``pasarela route explain ORDER.json [--method M] [--at TIME] [--json]`` prints the
  trace of the decision for each method (or only *M*): every rule tried and why it
  did or did not match, every candidate skipped and why, the choice and its fee.
  ``pasarela route ORDER.json --explain`` is the same command.
- ``pasarela route simulate ORDERS.jsonl [--config OTHER.toml] [--method M]`` routes
  every line (an order, with ``"method"`` and optionally ``"at"``, or a stored
  decision from the ``routing_decisions`` table, which is replayed from its inputs)
  and prints the split by method and provider with the expected fees; with
  ``--config``, the same under the other configuration and the difference.

With ``pasarela --merchant NAME route ...`` both work on merchant *NAME*'s accounts
and routes (``simulate --config OTHER.toml`` compares with the same merchant in the
other file): its decisions never name another merchant's account.

``--json`` prints the result as one JSON document on standard output (money as
``{"minor": ..., "currency": ...}``, as a stored decision has it); errors and the
progress bar go to standard error.

The configuration is the ``pasarela --config`` one (``PASARELA_CONFIG``, default
``pasarela.toml``). The circuit breaker starts closed here; ``healthiest`` rules read
success rates from the configured store.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from pasarela.cli.output import err_console, fail, merchant_name, money_json, out_console
from pasarela.errors import PasarelaError
from pasarela.model import Method, Order
from pasarela.money import Money
from pasarela.routing import Decision, Router


__all__ = ["route"]

#: Files with at least this many lines get a progress bar.
PROGRESS_FROM: Final = 1000



def _out() -> Console:
    """The console for results, made per command so it sees the current terminal."""
    return out_console()


def _err() -> Console:
    return err_console()


def _fail(message: str, details: list[str] | None = None) -> NoReturn:
    fail(message, details or ())


class _RouteGroup(click.Group):
    """A group whose first argument may be an order file: ``route ORDER.json
    --explain`` runs ``route explain ORDER.json``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["explain", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_RouteGroup)
def route() -> None:
    """Explain a routing decision, or simulate routing over many orders."""


def _config_path(ctx: click.Context) -> str:
    root = ctx.find_root().obj
    if isinstance(root, Mapping) and root.get("config"):
        return str(root["config"])
    return os.environ.get("PASARELA_CONFIG", "pasarela.toml")


def load_router(path: str, stack: ExitStack, merchant: str = "") -> Router:
    """The router of the configuration at *path* (with *merchant*, that merchant's:
    its own accounts and routes, as its payments are routed); errors end the
    command."""
    if merchant:
        return _merchant_router(path, stack, merchant)
    from pasarela.config import load_config  # noqa: PLC0415
    from pasarela.plugins import get_plugin_manager  # noqa: PLC0415
    from pasarela.provider import Provider  # noqa: PLC0415

    try:
        config = load_config(path)
        manager = get_plugin_manager()
        for module in config.plugins.modules:
            manager.load_module(module)
        registry = manager.providers()
        providers: dict[str, Provider] = {}
        for name in config.providers:
            cls = registry.get(config.provider_type(name))
            providers[name] = cls(config.provider_settings(name, cls.settings_class))
            providers[name].bind_account(name)
        health = None
        if any(getattr(r, "strategy", None) == "healthiest" for r in config.routes):
            from pasarela.routing import StoreHealth  # noqa: PLC0415
            from pasarela.store import Store  # noqa: PLC0415

            store = Store(config.store.url)
            stack.callback(store.close)
            health = StoreHealth(store)
        return Router.from_config(config.routes, providers, health=health,
                                  preference=config.checkout.preference)
    except PasarelaError as exc:
        _fail(f"{path}: {exc}" if not getattr(exc, "errors", None) else f"{path}:",
              getattr(exc, "errors", None))


def _merchant_router(path: str, stack: ExitStack, merchant: str) -> Router:
    """Merchant *merchant*'s router in the deployment of *path* (a merchant of the
    file, or one kept in its store); an unknown merchant ends the command."""
    from pasarela.api import Pasarela  # noqa: PLC0415

    try:
        pasarela = Pasarela.from_config(path)
        stack.callback(pasarela.close)
        router: Router = pasarela.merchants.service(merchant).router
    except PasarelaError as exc:
        _fail(f"{path}: {exc}" if not getattr(exc, "errors", None) else f"{path}:",
              getattr(exc, "errors", None))
    return router


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"{path}: cannot read JSON: {exc}")


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO time like 2026-03-04T15:00:00-05:00, "
                                 f"got {value!r}") from None
    if at.tzinfo is None:
        raise click.BadParameter("give a time zone (…-05:00 for Lima, or Z)")
    return at


def _style(line: str) -> str:
    if ": matched (" in line:
        return "bold green"
    if line.startswith("chose "):
        return "bold"
    if line.startswith(("candidate ", "no candidate")):
        return "yellow"
    if ": no match: " in line:
        return "dim"
    return ""


def _print_decision(console: Console, decision: Decision) -> None:
    title = Text(f"{decision.method.value}: ", style="bold")
    if decision.provider is None:
        title += Text("not available", style="bold red")
    else:
        title += Text(decision.provider, style="bold green")
        fee = decision.fee
        if fee is not None:
            title += Text(f"  expected fee {fee}")
    console.print(title)
    for line in decision.explanation:
        console.print(Text("  " + line, style=_style(line)), soft_wrap=True)
    console.print()


@route.command("explain")
@click.argument("order_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", type=click.Choice([m.value for m in Method]),
              help="Only this method (default: the file's \"method\", else every method).")
@click.option("--at", "at_text", metavar="TIME",
              help="Decide as at this ISO time (time windows), e.g. 2026-03-04T21:30-05:00.")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON.")
@click.option("--explain", "_explain", is_flag=True, hidden=True,
              help="Accepted for `pasarela route ORDER.json --explain`.")
@click.pass_context
def explain(ctx: click.Context, order_file: str, method: str | None, at_text: str | None,
            as_json: bool, _explain: bool) -> None:
    """Print why ORDER_FILE (an order as JSON, amount like "PEN 149.90") is routed
    where it is: each rule tried, each candidate skipped, the choice and its fee."""
    at = _parse_at(at_text)
    data = _read_json(order_file)
    if not isinstance(data, Mapping):
        _fail(f"{order_file}: expected a JSON object (an order)")
    try:
        order = Order.from_dict(data)
    except (PasarelaError, KeyError, TypeError, ValueError) as exc:
        _fail(f"{order_file}: not an order: {exc}")
    wanted = method or data.get("method")
    try:
        methods = [Method(wanted)] if wanted else list(Method)
    except ValueError:
        _fail(f"{order_file}: unknown method {wanted!r}; one of "
              f"{', '.join(m.value for m in Method)}")
    with ExitStack() as stack:
        router = load_router(_config_path(ctx), stack, merchant_name(ctx))
        decisions = [router.simulate(order, how, at=at) for how in methods]
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in decisions], indent=2, ensure_ascii=False))
        return
    console = _out()
    for decision in decisions:
        _print_decision(console, decision)


# --- simulate ---------------------------------------------------------------------------


@dataclass
class _Tally:
    """The split of one configuration: orders and fees per method and provider."""

    orders: Counter[tuple[str, str]] = field(default_factory=Counter)
    fees: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    total: int = 0

    def add(self, decision: Decision) -> None:
        provider = decision.provider or "(none)"
        key = (decision.method.value, provider)
        self.orders[key] += 1
        self.total += 1
        fee = decision.fee
        if fee is not None:
            self.fees[(*key, fee.currency)] += fee.minor

    def fee_list(self, key: tuple[str, str]) -> list[dict[str, Any]]:
        return [money_json(minor, currency) for (m, p, currency), minor in
                sorted(self.fees.items()) if (m, p) == key]

    def fee_text(self, key: tuple[str, str]) -> str:
        parts = [str(Money(minor, currency)) for (m, p, currency), minor in
                 sorted(self.fees.items()) if (m, p) == key]
        return ", ".join(parts) or "-"

    def currencies(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (_, _, currency), minor in self.fees.items():
            out[currency] += minor
        return out


def _lines(path: str) -> Iterator[tuple[int, str]]:
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


def _decide(router: Router, data: Mapping[str, Any], method: str | None) -> Decision:
    """Route one line: replay a stored decision, or decide for an order."""
    if "inputs" in data and "order_reference" in data:
        return router.replay(data)
    how = data.get("method") or method
    if not how:
        raise ValueError('no method: give "method" in the line or --method')
    order = Order.from_dict(data)
    at = data.get("at")
    return router.simulate(order, Method(how), at=datetime.fromisoformat(at) if at else None)


@route.command("simulate")
@click.argument("orders_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--config", "other_config", type=click.Path(exists=True, dir_okay=False),
              help="Also route with this configuration and show the difference.")
@click.option("--method", type=click.Choice([m.value for m in Method]),
              help="The method for lines that do not give one.")
@click.option("--json", "as_json", is_flag=True, help="Print the split as JSON.")
@click.pass_context
def simulate(ctx: click.Context, orders_file: str, other_config: str | None,
             method: str | None, as_json: bool) -> None:
    """Route every line of ORDERS_FILE (JSON lines: orders with "method", or stored
    decisions) and print the split by method and provider with expected fees."""
    with ExitStack() as stack:
        merchant = merchant_name(ctx)
        current = load_router(_config_path(ctx), stack, merchant)
        other = load_router(other_config, stack, merchant) if other_config else None
        count = sum(1 for _ in _lines(orders_file))
        tallies = (_Tally(), _Tally())
        moved = 0
        errors: list[str] = []
        progress = Progress("routing", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=_err(), transient=True,
                            disable=count < PROGRESS_FROM)
        with progress:
            task = progress.add_task("routing", total=count)
            for number, line in _lines(orders_file):
                progress.advance(task)
                try:
                    data = json.loads(line)
                    if not isinstance(data, Mapping):
                        raise ValueError("expected a JSON object")
                    decision = _decide(current, data, method)
                    tallies[0].add(decision)
                    if other is not None:
                        alternative = _decide(other, data, method)
                        tallies[1].add(alternative)
                        moved += alternative.provider != decision.provider
                except (PasarelaError, KeyError, TypeError, ValueError) as exc:
                    errors.append(f"{orders_file}:{number}: {exc}")
    if as_json:
        click.echo(json.dumps(_split_json(tallies[0], tallies[1] if other is not None
                                          else None, moved, errors),
                              indent=2, ensure_ascii=False))
    else:
        _print_split(tallies[0], tallies[1] if other is not None else None, moved)
    if errors:
        shown = errors[:10]
        more = [f"... and {len(errors) - 10} more"] if len(errors) > 10 else []
        _fail(f"{len(errors)} line(s) could not be routed", shown + more)


def _split_json(current: _Tally, other: _Tally | None, moved: int,
                errors: list[str]) -> dict[str, Any]:
    """``--json``: the split, the expected fees and (with ``--config``) the other
    configuration's, and every line that could not be routed."""
    per_method = Counter[str]()
    for (how, _), n in current.orders.items():
        per_method[how] += n
    split = []
    for key in sorted(set(current.orders) | set(other.orders if other else ())):
        n = current.orders.get(key, 0)
        row: dict[str, Any] = {"method": key[0], "provider": key[1], "orders": n,
                               "share": n / per_method[key[0]] if per_method[key[0]] else None,
                               "expected_fees": current.fee_list(key)}
        if other is not None:
            row["other"] = {"orders": other.orders.get(key, 0),
                            "expected_fees": other.fee_list(key)}
        split.append(row)
    out: dict[str, Any] = {
        "orders": current.total, "split": split,
        "expected_fees": [money_json(minor, c) for c, minor in
                          sorted(current.currencies().items())],
        "errors": errors}
    if other is not None:
        out["other"] = {"expected_fees": [money_json(minor, c) for c, minor in
                                          sorted(other.currencies().items())],
                        "moved": moved}
    return out


def _print_split(current: _Tally, other: _Tally | None, moved: int) -> None:
    table = Table(title=f"routing of {current.total} order(s)", show_lines=False)
    for column in ("method", "provider", "orders", "share", "expected fees"):
        table.add_column(column, justify="right" if column in ("orders", "share") else "left")
    if other is not None:
        for column in ("other: orders", "change", "other: fees"):
            table.add_column(column, justify="right" if column != "other: fees" else "left")
    keys = sorted(set(current.orders) | set(other.orders if other else ()))
    per_method = Counter[str]()
    for (how, _), n in current.orders.items():
        per_method[how] += n
    for key in keys:
        n = current.orders.get(key, 0)
        share = f"{n / per_method[key[0]]:.1%}" if per_method[key[0]] else "-"
        row = [key[0], key[1], str(n), share, current.fee_text(key)]
        if other is not None:
            m = other.orders.get(key, 0)
            row += [str(m), f"{m - n:+d}", other.fee_text(key)]
        table.add_row(*row)
    console = _out()
    console.print(table)
    totals = current.currencies()
    console.print("expected fees: " + (", ".join(
        str(Money(minor, currency)) for currency, minor in sorted(totals.items())) or "none"))
    if other is not None:
        others = other.currencies()
        deltas = [str(Money(others[c] - totals[c], c)) for c in
                  sorted(set(totals) | set(others))]
        console.print("with the other configuration: " + (", ".join(
            str(Money(minor, currency)) for currency, minor in sorted(others.items()))
            or "none") + f" (change {', '.join(deltas) or 'none'})")
        part = moved / current.total if current.total else 0.0
        console.print(f"{moved} of {current.total} order(s) ({part:.1%}) would go to a "
                      "different provider")
