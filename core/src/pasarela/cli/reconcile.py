"""``pasarela reconcile`` and ``pasarela costs``.

- ``pasarela reconcile --provider X --from D --to D [--file F (--mapping M.toml |
  --map field=column ...)] [--csv OUT] [--json OUT] [--fee-tolerance N] [--no-heal]``
  matches the provider's settlement lines (its API, or a CSV file) against our
  payments, heals payments the provider says are paid (cause ``reconcile``), and
  prints a summary. Exit status 1 when unresolved differences or bad lines remain.
- ``pasarela costs --from D --to D [--what-if OTHER.toml] [--json OUT] [--html OUT]``
  prints the effective rate per provider, method and month (fees, IGV included,
  over volume), expected against actual fees, and what another configuration's
  routing would have cost.

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
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, NoReturn

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
    money_json,
    out_console,
    output,
    stdout_taken,
    usage,
)
from pasarela.errors import PasarelaError


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


def _fee_schedules(pasarela: Any) -> dict[tuple[str, str], Any]:
    from pasarela.fees import FeeSchedule  # noqa: PLC0415

    out: dict[tuple[str, str], Any] = {}
    for name, adapter in pasarela.providers.items():
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
        service = pasarela.service
        if provider not in pasarela.providers:
            _usage(f"--provider: {provider!r} is not configured "
                  f"(configured: {', '.join(sorted(pasarela.providers)) or 'none'})")
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
                              fee_schedules=_fee_schedules(pasarela),
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


@click.command()
@click.option("--from", "since", required=True, help="Start of the window (inclusive).")
@click.option("--to", "until", required=True, help="End of the window (exclusive).")
@click.option("--what-if", "other", type=click.Path(exists=True, dir_okay=False),
              help="Another configuration: what its routing would have cost.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True),
              is_flag=False, flag_value=STDOUT, metavar="[FILE|-]",
              help="Write JSON (alone or -: standard output).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, allow_dash=True),
              is_flag=False, flag_value=STDOUT, metavar="[FILE|-]",
              help="Write a self-contained HTML report with charts (alone or -: standard "
                   "output).")
@click.pass_context
def costs(ctx: click.Context, since: str, until: str, other: str | None,
          json_out: str | None, html_out: str | None) -> None:
    """Effective cost per provider, method and month; expected against actual fees."""
    from pasarela.reconcile import costs as rc  # noqa: PLC0415

    start, end = _date(since, "--from"), _date(until, "--to")
    piped = stdout_taken(json_out, html_out)
    with ExitStack() as stack:
        pasarela = _open(ctx, stack)
        rows = rc.costs(pasarela.store, start, end)
        alternative = None
        if other is not None:
            from pasarela.cli.routing import load_router  # noqa: PLC0415

            router = load_router(other, stack)
            alternative = rc.what_if(pasarela.store, start, end, router)
    out = err_console() if piped else out_console()
    table = Table(title=f"Costs {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    for column in ("provider", "method", "month", "attempts", "success", "volume",
                   "expected fee", "actual fee", "effective rate"):
        table.add_column(column, justify="left" if column in ("provider", "method") else "right")
    for row in rows:
        d = row.to_dict()
        table.add_row(row.provider, row.method, row.month, str(row.attempts),
                      d["success_rate"], d["volume"], d["expected_fee"],
                      d["actual_fee"] or "-", d["effective_rate"])
    out.print(table)
    extra = ""
    if alternative is not None:
        data = alternative.to_dict()
        out.print(f"what-if {other}: {data['orders']} order(s), {data['unroutable']} unroutable")
        for currency in sorted(set(data["current"]) | set(data["other"])):
            out.print(f"  {currency}: as routed {data['current'].get(currency, '-')}, "
                      f"with {other} {data['other'].get(currency, '-')}")
        extra = ("<h2>What if</h2><pre>"
                 + json.dumps(data, indent=2).replace("&", "&amp;").replace("<", "&lt;")
                 + "</pre>")
    if json_out:
        with output(json_out) as fh:
            fh.write(json.dumps({
                "rows": [_cost_json(r) for r in rows],
                "what_if": _what_if_json(alternative) if alternative is not None else None,
            }, indent=2, ensure_ascii=False) + "\n")
    if html_out:
        with output(html_out) as fh:
            fh.write(rc.html_report(
                rows, title=f"pasarela costs {start:%Y-%m-%d} to {end:%Y-%m-%d}",
                extra=extra))


def _cost_json(row: Any) -> dict[str, Any]:
    """A cost row in ``--json``: the row's fields, its money as minor units."""
    return {**row.to_dict(), "volume": money_json(row.volume, row.currency),
            "expected_fee": money_json(row.expected_fee, row.currency),
            "actual_fee": money_json(row.actual_fee, row.currency) if row.with_actual
            else None}


def _what_if_json(alternative: Any) -> dict[str, Any]:
    return {**alternative.to_dict(),
            "current": {c: money_json(v, c) for c, v in sorted(alternative.current.items())},
            "other": {c: money_json(v, c) for c, v in sorted(alternative.other.items())}}
