"""``pasarela reconcile`` and ``pasarela costs``.

- ``pasarela reconcile --provider X --from D --to D [--file F (--mapping M.toml |
  --map field=column ...)] [--csv OUT] [--json OUT] [--fee-tolerance N] [--no-heal]``
  matches the provider's settlement lines (its API, or a CSV file) against our
  payments, heals payments the provider says are paid (cause ``reconcile``), and
  prints a summary. Exit status 1 when unresolved differences or bad lines remain.
- ``pasarela costs [report] --from D --to D [--what-if [LABEL=]OTHER.toml ...]
  [--rates R.csv] [--currency PEN] [--as-of D] [--warn-days N] [--lang L]
  [--json OUT] [--csv OUT] [--html OUT]`` prints the total cost of acceptance per
  provider, method, network and month (docs/costs.md), expected against actual fees,
  the contract warnings, and what other configurations' routings would have cost,
  side by side with the current one on the same orders;
  ``pasarela costs optimize`` the cheapest provider per method (or routing file) and
  ``pasarela costs profile`` the figures a provider asks for before quoting.

With the root ``--merchant NAME``, the costs commands work on that merchant's accounts
and payments only (without it, the deployment's own).

Dates are ISO 8601 (``2026-11-01`` or with a time and offset); a date without an
offset is UTC; ``--to`` is exclusive.

``--json``, ``--csv`` and ``--html`` take a file, or ``-`` (the default when the option
is given alone) for standard output; then the summary for people goes to standard
error, so that standard output holds only the document. In the JSON, money is
``{"minor": ..., "currency": ...}``; a difference's ``expected`` and ``actual`` are the
text the comparison made (a status, or an amount such as ``PEN 100.00``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

import click
import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from pasarela.cli.output import (
    STDOUT,
    ExitCode,
    err_console,
    fail,
    merchant_scope,
    money_json,
    out_console,
    output,
    stdout_taken,
    usage,
)
from pasarela.errors import PasarelaError
from pasarela.registry import merchant_of, qualified


__all__ = ["costs", "reconcile"]


def _usage(message: str) -> NoReturn:
    usage(message)


def _date(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _usage(f"{name}: {value!r} is not an ISO 8601 date")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _open(ctx: click.Context, stack: ExitStack) -> Any:
    from pasarela.api import Pasarela  # noqa: PLC0415

    try:
        pasarela = Pasarela.from_config(ctx.find_root().obj["config"])
    except PasarelaError as exc:  # a configuration that does not start: a failure (1)
        fail(exc)
    stack.callback(pasarela.close)
    return pasarela


def _fee_schedules(providers: Any) -> dict[tuple[str, str], Any]:
    from pasarela.fees import FeeSchedule  # noqa: PLC0415

    out: dict[tuple[str, str], Any] = {}
    for name, adapter in providers.items():
        if not adapter.settings.fees:
            continue
        for method in adapter.methods:
            out[(name, method.value)] = FeeSchedule.from_mapping(
                adapter.settings.fees, path=f"providers.{name}.fees", method=method.value)
    return out


@click.command()
@click.option("--provider", required=True, help="The provider to reconcile.")
@click.option("--from", "since", required=True, help="Start of the window (inclusive).")
@click.option("--to", "until", required=True, help="End of the window (exclusive).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False),
              help="A CSV settlement file (else the provider's API).")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False),
              help="A TOML column mapping for --file.")
@click.option("--map", "maps", multiple=True, metavar="FIELD=COLUMN",
              help="Map a field to a CSV column (repeatable; overrides --mapping).")
@click.option("--csv-option", "csv_options", multiple=True, metavar="OPTION=VALUE",
              help="A CSV option (repeatable): currency, timezone, decimal, thousands, "
                   "date_format, encoding, delimiter, status.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, allow_dash=True),
              is_flag=False, flag_value=STDOUT, metavar="[FILE|-]",
              help="Write the differences as CSV (alone or -: standard output).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True),
              is_flag=False, flag_value=STDOUT, metavar="[FILE|-]",
              help="Write the summary and differences as JSON (alone or -: standard "
                   "output).")
@click.option("--fee-tolerance", default=1, show_default=True, type=int,
              help="Minor units a fee may differ from the expected one.")
@click.option("--no-heal", is_flag=True, help="Flag payments to heal; do not move them.")
@click.pass_context
def reconcile(ctx: click.Context, provider: str, since: str, until: str, file: str | None,
              mapping: str | None, maps: tuple[str, ...], csv_options: tuple[str, ...],
              csv_out: str | None,
              json_out: str | None, fee_tolerance: int, no_heal: bool) -> None:
    """Match a provider's settlement lines against our payments."""
    from pasarela import reconcile as rec  # noqa: PLC0415
    from pasarela.reconcile.csv_import import ColumnMap, CsvReport, file_digest, read_csv  # noqa: PLC0415
    from pasarela.reconcile.sources import provider_lines  # noqa: PLC0415

    start, end = _date(since, "--from"), _date(until, "--to")
    if end <= start:
        _usage("--to must be after --from")
    piped = stdout_taken(csv_out, json_out)
    report = CsvReport()
    with ExitStack() as stack:
        pasarela = _open(ctx, stack)
        merchant, _, service = merchant_scope(ctx, pasarela)
        # With --merchant, the merchant's own accounts only (named short or in full).
        configured = service.providers if merchant else pasarela.providers
        if merchant and merchant_of(provider) != merchant:
            provider = qualified(merchant, provider)
        if provider not in configured:
            _usage(f"--provider: {provider!r} is not configured "
                  f"(configured: {', '.join(sorted(configured)) or 'none'})")
        try:
            if file is not None:
                columns = ColumnMap.load(mapping, maps, csv_options)
                key = rec.run_key(provider, start, end, file_digest(file))
                lines: Any = read_csv(file, columns, provider=provider, report=report)
            else:
                if mapping or maps or csv_options:
                    _usage("--mapping, --map and --csv-option need --file")
                key = rec.run_key(provider, start, end)
                client = stack.enter_context(httpx.Client())
                lines = provider_lines(service, client, provider, start, end)
            progress = stack.enter_context(Progress(
                SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
                BarColumn(), MofNCompleteColumn(), console=err_console(),
                transient=True))
            task = progress.add_task(f"reconciling {provider}",
                                     total=_count_lines(file) if file else None)
            with rec.batch_gc():  # this process's one job (see batch_gc)
                rec.reconcile(service.store, lines, provider=provider, since=start,
                              until=end, key=key, service=None if no_heal else service,
                              fee_schedules=_fee_schedules(
                                  {provider: configured[provider]}),
                              fee_tolerance=fee_tolerance,
                              progress=lambda n: progress.advance(task, n))
            progress.stop()
            summary = rec.run_totals(service.store, key)
            summary.provider = provider
            _print_summary(summary, report, rec.differences(service.store, key),
                           err_console() if piped else out_console())
            if csv_out:
                _write_csv(csv_out, rec.differences(service.store, key), report)
            if json_out:
                _write_json(json_out, summary, report, rec.differences(service.store, key))
        except PasarelaError as exc:
            fail(exc)
    if summary.unresolved or report.bad:
        sys.exit(ExitCode.FAILED)


def _count_lines(path: str) -> int:
    """Data lines in *path* (for the progress bar's total): newlines, less the header."""
    with open(path, "rb") as fh:
        return max(sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
                   - 1, 0)


def _print_summary(summary: Any, report: Any, diffs: Any, out: Console) -> None:
    from pasarela.reconcile import Category  # noqa: PLC0415

    table = Table(title=f"Reconciliation {summary.provider} (run {summary.run_key[:12]})")
    table.add_column("category")
    table.add_column("count", justify="right")
    for category in Category:
        table.add_row(category.value, str(summary.counts.get(category.value, 0)))
    table.add_row("bad lines", str(report.bad))
    out.print(table)
    out.print(f"lines {summary.lines} · healed {summary.healed} · "
              f"unresolved {summary.unresolved}")
    shown = 0
    for diff in diffs:
        if diff.resolved:
            continue
        if shown == 20:
            out.print("… (see --csv or --json for all)")
            break
        shown += 1
        where = f"line {diff.line_no}" if diff.line_no else (diff.payment_id or "")
        out.print(f"  {diff.category.value}: {where} {diff.provider_reference or ''} "
                  f"expected {diff.expected or '-'} actual {diff.actual or '-'} {diff.detail}")
    for line_no, message in report.errors[:20]:
        out.print(f"  bad line {line_no}: {message}")


def _write_json(path: str, summary: Any, report: Any, diffs: Iterable[Any]) -> None:
    """The summary, the bad lines and the differences (streamed, one at a time)."""
    with output(path) as fh:
        head = {"summary": summary.to_dict(),
                "bad_lines": [{"line": n, "error": m} for n, m in report.errors],
                "bad_line_count": report.bad}
        fh.write(json.dumps(head, indent=2, ensure_ascii=False)[:-2])
        fh.write(',\n  "differences": [')
        for n, diff in enumerate(diffs):
            fh.write(("," if n else "") + "\n    " + json.dumps(diff.to_dict(), ensure_ascii=False))
        fh.write("\n  ]\n}\n")


def _write_csv(path: str, diffs: Iterable[Any], report: Any) -> None:
    fields = ("category", "provider", "item_key", "line_no", "payment_id",
              "provider_reference", "order_reference", "expected", "actual", "detail",
              "resolved", "healed")
    with output(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for diff in diffs:
            writer.writerow(diff.to_dict())
        for line_no, message in report.errors:
            writer.writerow({"category": "bad_line", "line_no": line_no, "detail": message})


class _CostsGroup(click.Group):
    """``pasarela costs --from ...`` is ``pasarela costs report --from ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["report", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_CostsGroup)
def costs() -> None:
    """What each way of getting paid costs: report, optimize, profile."""


def _window(since: str, until: str) -> tuple[datetime, datetime]:
    start, end = _date(since, "--from"), _date(until, "--to")
    if end <= start:
        _usage("--to must be after --from")
    return start, end


def _setup(providers: Any) -> Any:
    from pasarela.reconcile.cost_model import CostSetup  # noqa: PLC0415

    try:
        return CostSetup.from_providers(providers)
    except PasarelaError as exc:
        fail(exc)


def _scope(ctx: click.Context, pasarela: Any) -> tuple[Any, Callable[[str], bool] | None]:
    """The root ``--merchant``'s engine context (else the deployment's own) and which
    accounts' payments are that merchant's (None: every account's, a deployment
    without merchants)."""
    merchant, _, service = merchant_scope(ctx, pasarela)
    if not merchant and not len(pasarela.merchants):
        return service, None
    mine: dict[str, bool] = {}  # few accounts, many rows: each name decided once

    def accounts(account: str) -> bool:
        found = mine.get(account)
        if found is None:
            found = mine[account] = merchant_of(account) == merchant
        return found

    return service, accounts


def _what_ifs(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``--what-if`` values as ``(label, path)``: ``PATH`` (labelled by itself) or
    ``LABEL=PATH``."""
    from pathlib import Path  # noqa: PLC0415

    out: list[tuple[str, str]] = []
    for value in values:
        label, sep, path = value.partition("=")
        if not sep or Path(value).is_file():
            label, path = value, value
        label = label.strip()
        if not label:
            _usage(f"--what-if: {value!r} has an empty label (write LABEL=FILE)")
        if not Path(path).is_file():
            _usage(f"--what-if: {path!r} is not a file")
        if any(label == seen for seen, _ in out):
            _usage(f"--what-if: the label {label!r} is given twice")
        out.append((label, path))
    return out


def _lang(lang: str | None) -> str:
    from pasarela.reconcile.cost_report import resolve_lang  # noqa: PLC0415

    try:
        return resolve_lang(lang)
    except PasarelaError as exc:
        _usage(str(exc))


_F = TypeVar("_F", bound=Callable[..., Any])

_WINDOW_OPTIONS = (
    click.option("--from", "since", required=True, help="Start of the window (inclusive)."),
    click.option("--to", "until", required=True, help="End of the window (exclusive)."),
)


def _window_options(fn: _F) -> _F:
    for option in reversed(_WINDOW_OPTIONS):
        fn = option(fn)
    return fn


def _doc_option(name: str, help_text: str) -> Callable[[_F], _F]:
    return click.option(name, f"{name.lstrip('-')}_out",
                        type=click.Path(dir_okay=False, allow_dash=True), is_flag=False,
                        flag_value=STDOUT, metavar="[FILE|-]", help=help_text)


@costs.command("report")
@_window_options
@click.option("--what-if", "others", multiple=True, metavar="[LABEL=]FILE",
              help="Another configuration: what its routing would have cost, beside "
                   "today's (repeatable; LABEL names its column).")
@click.option("--rates", type=click.Path(exists=True, dir_okay=False),
              help="A CSV rate table (month,base,quote,rate) over the configured fx_rates.")
@click.option("--currency", default="PEN", show_default=True,
              help="The currency of the grand total.")
@click.option("--as-of", "as_of", help="'Today' for contract warnings (default: now).")
@click.option("--warn-days", default=30, show_default=True, type=click.IntRange(min=0),
              help="Warn of notice deadlines and term ends this many days ahead.")
@click.option("--lang", help="en, es_PE or zh_CN (default: the locale).")
@_doc_option("--json", "Write JSON (alone or -: standard output).")
@_doc_option("--csv", "Write the rows as CSV (alone or -: standard output).")
@_doc_option("--html", "Write a self-contained HTML report with charts (alone or -: "
                       "standard output).")
@click.pass_context
def costs_report(ctx: click.Context, since: str, until: str, others: tuple[str, ...],
                 rates: str | None, currency: str, as_of: str | None, warn_days: int,
                 lang: str | None, json_out: str | None, csv_out: str | None,
                 html_out: str | None) -> None:
    """Total cost of acceptance per provider, method, network and month."""
    from pasarela.reconcile import cost_report as cr  # noqa: PLC0415
    from pasarela.reconcile import costs as rc  # noqa: PLC0415
    from pasarela.reconcile.cost_model import RateTable, cost_report  # noqa: PLC0415

    start, end = _window(since, until)
    today = _date(as_of, "--as-of") if as_of else None
    language = _lang(lang)
    _ = cr.translator(language).gettext
    piped = stdout_taken(json_out, csv_out, html_out)
    files = _what_ifs(others)
    with ExitStack() as stack:
        pasarela = _open(ctx, stack)
        service, accounts = _scope(ctx, pasarela)
        setup = _setup(service.providers)
        try:
            table = RateTable.of(setup, rates)
            report = cost_report(service.store, start, end, setup, rates=table,
                                 as_of=today, currency=currency.upper(), warn_days=warn_days,
                                 accounts=accounts)
        except PasarelaError as exc:
            fail(exc)
        alternative = comparison = None
        if files:
            from pasarela.cli.routing import load_router  # noqa: PLC0415

            routers = {label: load_router(path, stack) for label, path in files}
            comparison = rc.compare_routes(service.store, start, end, setup.schedules,
                                           routers, current_name=_("current routing"),
                                           accounts=accounts)
            if len(files) == 1:
                alternative = rc.what_if(service.store, start, end,
                                         next(iter(routers.values())), accounts=accounts)
    out = err_console() if piped else out_console()
    heads = cr.columns(_)
    keys = cr.csv_fields()
    shown = {keys.index(k) for k in ("provider", "method", "network", "month", "count",
                                      "volume", "fee_difference", "total_cost",
                                      "effective_rate")}
    grid = Table(title=_("Costs {since} to {until}").format(
        since=f"{start:%Y-%m-%d}", until=f"{end:%Y-%m-%d}"))
    for i, head in enumerate(heads):
        if i in shown:
            grid.add_column(head, justify="left" if i < 4 else "right")
    for cells in cr.table_rows(report):
        grid.add_row(*(c for i, c in enumerate(cells) if i in shown))
    out.print(grid)
    total = report.to_dict()["total"]
    total_title, warning_title = _("Total cost of acceptance"), _("Warning")
    out.print(f"{total_title}: {cr.money_text(total['total_cost'])} / "
              f"{cr.money_text(total['volume'])} = {total['effective_rate']}")
    if report.unconverted:
        out.print(_("Not converted (no rate): {currencies}").format(
            currencies=", ".join(report.unconverted)))
    for notice in report.notices:
        out.print(f"[yellow]{warning_title}[/]: {cr.notice_text(notice, _)}", markup=True,
                  highlight=False)
    extra = ""
    if alternative is not None:
        other = files[0][0]
        data = alternative.to_dict()
        out.print(f"what-if {other}: {data['orders']} order(s), {data['unroutable']} unroutable")
        for cur in sorted(set(data["current"]) | set(data["other"])):
            out.print(f"  {cur}: as routed {data['current'].get(cur, '-')}, "
                      f"with {other} {data['other'].get(cur, '-')}")
    if comparison is not None:
        _print_comparison(comparison, out, _)
        extra = ("<h2>What if</h2><pre>"
                 + json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False)
                 .replace("&", "&amp;").replace("<", "&lt;") + "</pre>")
    if json_out:
        document = report.to_dict()
        for row in document["rows"]:
            row["succeeded"] = row["count"]
        document["what_if"] = (_what_if_json(alternative) if alternative is not None
                               else None)
        document["comparison"] = comparison.to_dict() if comparison is not None else None
        document["warnings"] = [{**n.to_dict(), "text": cr.notice_text(n, _)}
                                for n in report.notices]
        with output(json_out) as fh:
            fh.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if csv_out:
        with output(csv_out, newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=cr.csv_fields())
            writer.writeheader()
            writer.writerows(cr.csv_rows(report))
    if html_out:
        with output(html_out) as fh:
            fh.write(cr.html_page(report, language, extra=extra))


def _print_comparison(comparison: Any, out: Console, _: Callable[[str], str]) -> None:
    """The routes side by side: a column per route (the current one first), a row
    per figure, money rows per currency."""
    from pasarela.reconcile import cost_report as cr  # noqa: PLC0415

    grid = Table(title=_("What if: {orders} paid orders, routed each way").format(
        orders=comparison.orders))
    grid.add_column("")
    for route in comparison.routes:
        grid.add_column(route.name, justify="right")
    routes = [r.to_dict() for r in comparison.routes]
    grid.add_row(_("orders"), *(str(r["orders"]) for r in routes))
    for cur in comparison.currencies:
        for key, title in (("volume", _("volume")), ("fees", _("fees (commission and IGV)")),
                           ("fx_spread", _("FX spread")),
                           ("cross_border", _("cross-border fee")),
                           ("total", _("total"))):
            grid.add_row(f"{title} ({cur})",
                         *(cr.money_text(r[key][cur]) if cur in r[key] else "-"
                           for r in routes))
        effective = _("effective cost")
        grid.add_row(f"{effective} ({cur})",
                     *(r["effective_rate"].get(cur) or "-" for r in routes))
    grid.add_row(_("unroutable"), *(str(r["unroutable"]) for r in routes))
    out.print(grid)
    for cur, name in comparison.cheapest.items():
        out.print(_("Cheapest in {currency}: {route}").format(currency=cur, route=name))
    for r in routes:
        if r["unpriced"]:
            out.print(_("{route}: {count} orders went to an account without a fee table "
                        "(counted at no cost)").format(route=r["name"], count=r["unpriced"]))


@costs.command("optimize")
@_window_options
@click.option("--min-success", default="0", show_default=True,
              help="The least success rate (percent) a provider needs to be chosen.")
@click.option("--candidate", "candidates", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="A routing configuration to compare (repeatable).")
@click.option("--lang", help="en, es_PE or zh_CN (default: the locale).")
@_doc_option("--json", "Write JSON (alone or -: standard output).")
@click.pass_context
def costs_optimize(ctx: click.Context, since: str, until: str, min_success: str,
                   candidates: tuple[str, ...], lang: str | None,
                   json_out: str | None) -> None:
    """Which provider per method (or which routing file) would have cost least."""
    from decimal import Decimal, InvalidOperation  # noqa: PLC0415

    from pasarela.reconcile import cost_report as cr  # noqa: PLC0415
    from pasarela.reconcile.optimize import optimize  # noqa: PLC0415

    start, end = _window(since, until)
    try:
        least = Decimal(min_success) / 100
    except InvalidOperation:
        _usage(f"--min-success: {min_success!r} is not a number")
    if not 0 <= least <= 1:
        _usage("--min-success: a percentage from 0 to 100")
    _ = cr.translator(_lang(lang)).gettext
    piped = stdout_taken(json_out)
    with ExitStack() as stack:
        pasarela = _open(ctx, stack)
        from pasarela.cli.routing import load_router  # noqa: PLC0415

        service, accounts = _scope(ctx, pasarela)
        others = {path: load_router(path, stack) for path in candidates}
        try:
            result = optimize(service.store, start, end, service.router,
                              min_success=least, candidates=others, accounts=accounts)
        except PasarelaError as exc:
            fail(exc)
    out = err_console() if piped else out_console()
    data = result.to_dict()
    for method in data["methods"]:
        grid = Table(title=_("Method {method}: {orders} paid orders").format(
            method=method["method"], orders=method["orders"]))
        for head in (_("provider"), _("expected fee"), _("orders moved"), _("unroutable"),
                     _("success rate"), _("eligible")):
            grid.add_column(head)
        for cand in method["candidates"]:
            grid.add_row(cand["name"], ", ".join(cr.money_text(v) for v in
                                                 cand["fees"].values()) or "-",
                         str(cand["moved"]), str(cand["unroutable"]),
                         cand["success_rate"] or "-",
                         _("yes") if cand["eligible"] else _("no"))
        out.print(grid)
        current = ", ".join(cr.money_text(v) for v in method["current"].values()) or "-"
        saving = ", ".join(cr.money_text(v) for v in method["saving"].values()) or "-"
        out.print(_("Cheapest: {best}; today {current}; saving {saving}; {moved} orders "
                    "would move").format(best=method["best"] or "-", current=current,
                                         saving=saving, moved=method["moved"]))
    for cand in data["files"]:
        fees = ", ".join(cr.money_text(v) for v in cand["fees"].values()) or "-"
        moved, rate = _("orders moved"), _("success rate")
        out.print(f"{cand['name']}: {fees} · {moved} {cand['moved']} · "
                  f"{rate} {cand['success_rate'] or '-'}")
    if data["files"]:
        out.print(_("Cheapest routing file: {best}").format(best=data["best_file"] or "-"))
    if json_out:
        with output(json_out) as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@costs.command("profile")
@_window_options
@click.option("--lang", help="en, es_PE or zh_CN (default: the locale).")
@_doc_option("--json", "Write JSON (alone or -: standard output).")
@_doc_option("--csv", "Write figure,value CSV (alone or -: standard output).")
@click.pass_context
def costs_profile(ctx: click.Context, since: str, until: str, lang: str | None,
                  json_out: str | None, csv_out: str | None) -> None:
    """The figures a provider asks for before quoting, from the store."""
    from pasarela.reconcile import cost_report as cr  # noqa: PLC0415
    from pasarela.reconcile.profile import as_rows, profile  # noqa: PLC0415

    start, end = _window(since, until)
    _ = cr.translator(_lang(lang)).gettext
    piped = stdout_taken(json_out, csv_out)
    with ExitStack() as stack:
        pasarela = _open(ctx, stack)
        service, accounts = _scope(ctx, pasarela)
        data = profile(service.store, start, end, _setup(service.providers),
                       accounts=accounts).to_dict()
    out = err_console() if piped else out_console()
    grid = Table(title=_("Merchant profile {since} to {until}").format(
        since=f"{start:%Y-%m-%d}", until=f"{end:%Y-%m-%d}"))
    grid.add_column(_("figure"))
    grid.add_column(_("value"), justify="right")
    rows = as_rows(data)
    for name, value in rows:
        grid.add_row(name, value)
    out.print(grid)
    if json_out:
        with output(json_out) as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if csv_out:
        with output(csv_out, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["figure", "value"])
            writer.writerows(rows)


def _what_if_json(alternative: Any) -> dict[str, Any]:
    return {**alternative.to_dict(),
            "current": {c: money_json(v, c) for c, v in sorted(alternative.current.items())},
            "other": {c: money_json(v, c) for c, v in sorted(alternative.other.items())}}
