"""``pasarela audit``: the evidence chain (``docs/audit.md``): verify every payment's
chain, seal and export the store's chain head, check an exported head, make a
signing key."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pasarela.cli.output import (
    fail,
    merchant_scope,
    out_console,
    output,
    stdout_taken,
    unscoped,
    usage,
)
from pasarela.errors import PasarelaError


__all__ = ["audit"]


def _pasarela(ctx: click.Context) -> Any:
    from pasarela.api import Pasarela  # noqa: PLC0415

    config = (ctx.find_root().obj or {}).get("config", "pasarela.toml")
    try:
        return Pasarela.from_config(config)
    except PasarelaError as exc:
        fail(exc)


def _record(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"kind": record.kind, "record_id": record.record_id,
            "payment_id": record.payment_id, "seq": record.seq,
            "at": record.at.isoformat(), "prev_hash": record.prev_hash,
            "hash": record.hash, "ok": record.ok, "problem": record.problem,
            "pruned": record.pruned}


@click.group()
def audit() -> None:
    """The evidence chain: every exchange, transition and webhook delivery hashed and
    chained per payment; verify it, seal and export the store's head."""


@audit.command("verify")
@click.option("--payment", "payment_id", default=None, metavar="ID",
              help="Verify this payment's chain only.")
@click.option("--all", "every", is_flag=True,
              help="Verify every payment's chain and the store's heads (the default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def verify(ctx: click.Context, payment_id: str | None, every: bool, as_json: bool) -> None:
    """Recompute the chains and name the first record that does not match (its kind,
    id and payment, and whether its content or its link differs). With --merchant,
    that merchant's payments only. Exits 1 when anything does not match."""
    if payment_id is not None and every:
        usage("give --payment ID or --all, not both")
    with _pasarela(ctx) as pasarela:
        name, _, _ = merchant_scope(ctx, pasarela)
        store = pasarela.store
        try:
            report = store.verify_chain(payment_id, merchant=name or None)
            heads = (store.verify_heads() if payment_id is None and not name else None)
            unchained = store.unchained() if payment_id is None else 0
        except PasarelaError as exc:
            fail(exc)
    ok = report.ok and (heads is None or heads.ok)
    if as_json:
        click.echo(json.dumps({
            "ok": ok, "checked": report.checked, "payments": report.payments,
            "first_bad": _record(report.first_bad), "reason": report.reason,
            "unchained": unchained,
            "heads": None if heads is None else {
                "ok": heads.ok, "checked": heads.checked, "first_bad": heads.first_bad,
                "reason": heads.reason, "pruned": heads.pruned},
        }, indent=2))
        if not ok:
            raise SystemExit(1)
        return
    if not report.ok:
        bad = report.first_bad
        assert bad is not None
        fail(f"{bad.kind} {bad.record_id} of payment {bad.payment_id or '(none)'} "
             f"(position {bad.seq}) does not match: {report.reason}")
    if heads is not None and not heads.ok:
        fail(f"chain head {heads.first_bad} does not match: {heads.reason}")
    console = out_console()
    console.print(f"[green]ok[/] {report.checked} record(s) of {report.payments} "
                  "payment(s) verified"
                  + (f"; {heads.checked} chain head(s)" if heads is not None else ""))
    if unchained:
        console.print(f"[yellow]note[/] {unchained} record(s) were written with "
                      "[audit] chain = false and are not covered")


@audit.command("seal")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def seal(ctx: click.Context, as_json: bool) -> None:
    """Fold the records written since the last chain head into a new head (signed
    with [audit] signing_key when set); the worker does this every [audit] every."""
    unscoped(ctx, "a chain head covers every merchant's records")
    head = _seal(ctx, sign=False)
    if as_json:
        from pasarela.engine.audit import head_document  # noqa: PLC0415

        click.echo(json.dumps(None if head is None else head_document(head), indent=2))
        return
    if head is None:
        out_console().print("nothing to seal: the store has no records")
        return
    out_console().print(f"[green]ok[/] chain head {head.seq}: {head.hash} "
                        f"({head.count} record(s))")


def _seal(ctx: click.Context, *, sign: bool) -> Any:
    from pasarela.engine.audit import signer  # noqa: PLC0415

    with _pasarela(ctx) as pasarela:
        key = pasarela.config.audit.signing_key
        if sign and not key:
            fail("no [audit] signing_key is configured: nothing to sign with")
        try:
            signing = signer(key)
            head = pasarela.store.seal_chain(sign=signing)
            if head is not None and signing is not None and head.signature is None:
                fail(f"chain head {head.seq} was sealed unsigned and nothing was written "
                     "since; sign the next one")
        except PasarelaError as exc:
            fail(exc)
    return head


@audit.command("head")
@click.option("--sign", is_flag=True,
              help="Require the head to be signed with [audit] signing_key.")
@click.option("--out", "out", default="-", show_default=True, metavar="FILE",
              help="Where to write it ('-': standard output).")
@click.pass_context
def head(ctx: click.Context, sign: bool, out: str) -> None:
    """Seal what was written since the last head and export the newest head as JSON:
    kept (daily, off the machine), it proves later that the records it covers were
    not rewritten (``pasarela audit check FILE``)."""
    from pasarela.engine.audit import head_document  # noqa: PLC0415

    unscoped(ctx, "a chain head covers every merchant's records")
    stdout_taken(out)
    found = _seal(ctx, sign=sign)
    if found is None:
        fail("the store has no records: no head to export")
    with output(out) as fh:
        fh.write(json.dumps(head_document(found), indent=2) + "\n")


@audit.command("check")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--public-key", default=None, metavar="KEY",
              help="The public key you trust (default: the one the head names).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def check(ctx: click.Context, file: str, public_key: str | None, as_json: bool) -> None:
    """Check an exported head: its hash, its signature, and that the store's head of
    the same number is the same one (so the records it covers were not rewritten)."""
    from pasarela.engine.audit import check_document, matches_store  # noqa: PLC0415

    unscoped(ctx, "a chain head covers every merchant's records")
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        document = json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read a chain head from {file}: {exc}")
    problem = check_document(document, public_key)
    if not problem:
        with _pasarela(ctx) as pasarela:
            problem = matches_store(pasarela.store, document)
    if as_json:
        click.echo(json.dumps({"ok": not problem, "seq": document.get("seq"),
                               "problem": problem}, indent=2))
        if problem:
            raise SystemExit(1)
        return
    if problem:
        fail(f"chain head {document.get('seq')}: {problem}")
    out_console().print(f"[green]ok[/] chain head {document.get('seq')} holds"
                        + (" (signed)" if document.get("signature") else ""))


@audit.command("new-key")
def new_key() -> None:
    """Print a new Ed25519 key pair: the private key for [audit] signing_key (keep it
    in a secret store), and the public key to check exported heads with."""
    from pasarela.engine.audit import new_signing_key  # noqa: PLC0415

    private, public = new_signing_key()
    click.echo(f"private: {private}")
    click.echo(f"public:  {public}")
