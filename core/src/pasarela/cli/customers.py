"""``pasarela customers``: the keys that seal customers' personal data, and erasure
on request (``docs/privacy.md``)."""

from __future__ import annotations

import json
from typing import Any

import click

from pasarela.cli.output import fail, merchant_name, out_console, unscoped
from pasarela.errors import PasarelaError


__all__ = ["customers"]


def _store(ctx: click.Context) -> Any:
    """The pasarela of ``--config`` (its store opened with the configured keys)."""
    from pasarela.api import Pasarela  # noqa: PLC0415

    config = (ctx.find_root().obj or {}).get("config", "pasarela.toml")
    try:
        return Pasarela.from_config(config)
    except PasarelaError as exc:
        fail(exc)


@click.group()
def customers() -> None:
    """Customers' personal data: seal it again under a new key, erase it on request."""


@customers.command("new-key")
def new_key_command() -> None:
    """Print a new random key for ``[privacy] keys`` (keep it in a secret store)."""
    from pasarela.store.sealing import new_key  # noqa: PLC0415

    click.echo(new_key())


@customers.command("rotate-key")
@click.option("--batch", "batch_size", default=200, show_default=True,
              type=click.IntRange(1, 10_000), help="Payments per transaction.")
@click.option("--after", default="", help="Start after this payment id (resume a run).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def rotate_key(ctx: click.Context, batch_size: int, after: str, as_json: bool) -> None:
    """Seal every payment's personal data under the newest key (the first of
    ``[privacy] keys``): those sealed under an older key, and those stored in clear.
    Batched, one transaction each; stopped, it can run again (or resume with
    --after): a payment under the newest key is left alone. The keys are the
    deployment's, so it takes no --merchant."""
    unscoped(ctx, "the [privacy] keys seal every merchant's payments")
    totals = {"examined": 0, "sealed": 0, "rotated": 0}
    with _store(ctx) as pasarela:
        cursor = after
        try:
            while True:
                done = pasarela.store.reseal_personal(after=cursor, limit=batch_size)
                for name in totals:
                    totals[name] += getattr(done, name)
                if done.examined:
                    cursor = done.last_id
                if done.examined < batch_size:
                    break
        except PasarelaError as exc:
            fail(exc, [f"resume with --after {cursor}"] if cursor else [])
    if as_json:
        click.echo(json.dumps({**totals, "last_id": cursor}, indent=2))
        return
    out_console().print(f"[green]ok[/] {totals['examined']} payment(s) looked at: "
                        f"{totals['rotated']} sealed again under the newest key, "
                        f"{totals['sealed']} sealed that were in clear")


@customers.command("forget")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def forget(ctx: click.Context, reference: str, as_json: bool) -> None:
    """Erase the personal data of the payments of order REFERENCE (Ley 29733):
    customer, description, metadata, refund reasons and the customer's values in the
    recorded provider exchanges. Ids, amounts, statuses, timestamps and the history
    stay for the books; one audit line is added. Running it again changes nothing.
    Order references are each merchant's own: the payments of the implicit merchant,
    or with --merchant NAME of that merchant, and no other's."""
    merchant = merchant_name(ctx)
    with _store(ctx) as pasarela:
        try:
            if merchant:
                pasarela.merchants.service(merchant)  # an unknown merchant: not found
            done = pasarela.store.forget_customer(reference, merchant=merchant)
        except PasarelaError as exc:
            fail(exc)
        where = repr(pasarela.store)
    if not done:
        whose = f" of merchant {merchant!r}" if merchant else ""
        fail(f"no payment{whose} with order reference {reference!r} in {where}")
    erased = [e.payment_id for e in done if e.erased]
    before = [e.payment_id for e in done if not e.erased]
    if as_json:
        click.echo(json.dumps({"reference": reference, "erased": erased,
                               "already_erased": before}, indent=2))
        return
    out_console().print(f"[green]ok[/] order {reference}: personal data erased from "
                        f"{len(erased)} payment(s)"
                        + (f"; {len(before)} erased before" if before else ""))
