"""``pasarela payments evidence ID``: a payment's evidence bundle (one zip), or with
``--support`` the text its provider's support asks for (see
:mod:`pasarela.engine.evidence`)."""

from __future__ import annotations

import json
import sys

import click

from pasarela.cli.output import (
    STDOUT,
    err_console,
    fail,
    merchant_scope,
    out_console,
    stdout_taken,
    usage,
)
from pasarela.errors import NotFoundError, PasarelaError


__all__ = ["evidence"]


@click.command("evidence")
@click.argument("payment_id")
@click.option("--out", "out", default=None, metavar="FILE",
              help="The zip to write (default: evidence-ID.zip; '-' for standard output).")
@click.option("--support", is_flag=True,
              help="Print what the provider's support asks for, ready to paste, instead.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the bundle's machine-readable part (evidence.json) instead.")
@click.pass_context
def evidence(ctx: click.Context, payment_id: str, out: str | None, support: bool,
             as_json: bool) -> None:
    """Write the evidence bundle of payment PAYMENT_ID: summaries in English, Spanish
    and Chinese (HTML and text), and every exchange, transition, delivery, routing
    decision, reconciliation line and chain proof as JSON, personal data masked."""
    from pasarela.api import Pasarela  # noqa: PLC0415
    from pasarela.engine import evidence as bundle  # noqa: PLC0415

    if support and out is not None:
        usage("--support prints the ticket text; it writes no --out file")
    if as_json and out is not None:
        stdout_taken(out, STDOUT)  # the JSON goes to standard output: the zip may not
    try:
        pasarela = Pasarela.from_config(ctx.obj["config"])
    except PasarelaError as exc:
        fail(exc)
    with pasarela:
        _, _, service = merchant_scope(ctx, pasarela)
        try:
            doc = bundle.document(bundle.read_facts(service, payment_id))
        except NotFoundError as exc:  # another merchant's too
            fail(f"{exc.message} in {pasarela.store!r}")
        except PasarelaError as exc:
            fail(exc)
    if support:
        if as_json:
            click.echo(json.dumps({
                "provider": doc["payment"]["provider_name"], "account": doc["account"],
                "references": doc["references"], "created_at": doc["payment"]["created_at"],
                "last_exchange": doc["last_exchange"], "last_error": doc["last_provider_error"],
                "text": bundle.support_text(doc)}, indent=2, ensure_ascii=False))
        else:
            click.echo(bundle.support_text(doc), nl=False)
        return
    if as_json and out is None:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
        return
    data = bundle.archive(doc)
    target = out or f"evidence-{payment_id}.zip"
    if target == STDOUT:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()  # never closed: standard output stays the caller's
        return
    try:
        with open(target, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
        err_console().print(f"wrote {target} ({len(data)} bytes)", markup=False)
        return
    out_console().print(f"wrote {target} ({len(data)} bytes)", markup=False)
