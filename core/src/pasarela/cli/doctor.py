"""``pasarela doctor``: what makes payments stall in production, each with its fix.

A line per check, ``pass``/``FAIL``/``skip``, and for a failure what to do:

- the configuration starts as ``Pasarela.from_config`` would start it (syntax,
  ``env:`` secrets, every provider's settings, references, routes);
- the store answers and is migrated;
- each provider accepts its credentials (one harmless authenticated request) and its
  clock agrees with ours (from its answer's ``Date`` header);
- with ``--public-url URL`` (the address providers are given for webhooks), that URL
  reaches ``pasarela serve``: ``GET URL/healthz`` answers, and an unsigned delivery to
  ``URL/webhooks/NAME`` is refused as pasarela refuses it (400) rather than lost (no
  answer), misrouted (404) or accepted (2xx);
- no provider has payments pending past its normal notification delay with no webhook
  received since (a callback URL not configured at the provider);
- no payment is still ``unknown``, and no refund still ``pending``, after the resolver's
  whole schedule ("payments needing an operator", "refunds needing an operator": how
  many, and the oldest ids; ``count`` and ``ids`` in ``--json``).

Exit status 1 when a check failed (:class:`~pasarela.cli.output.ExitCode`); ``--json``
prints the checks as a JSON list.
"""

from __future__ import annotations

import json
from typing import Any

import click
import httpx

from pasarela.cli.output import ExitCode, err_console, merchant_scope, out_console


__all__ = ["doctor"]


def _check(name: str, ok: bool, detail: str, fix: str = "") -> Any:
    from pasarela.engine.doctor import Check  # noqa: PLC0415

    return Check(name=name, ok=ok, detail=detail, fix=fix)


def _public_url_checks(url: str, providers: list[str], client: httpx.Client) -> list[Any]:
    base = url.rstrip("/")
    out: list[Any] = []
    try:
        health = client.get(f"{base}/healthz")
    except httpx.HTTPError as exc:
        return [_check("public URL", False, f"{base}/healthz: {type(exc).__name__}: {exc}",
                       "make the public URL reach `pasarela serve` (DNS, TLS, proxy, "
                       "firewall); providers cannot deliver webhooks to it now")]
    out.append(_check("public URL", health.status_code == 200,
                      f"{base}/healthz answered {health.status_code}",
                      "" if health.status_code == 200 else
                      "point the public URL at `pasarela serve` (or the app it is mounted in)"))
    for name in providers:
        target = f"{base}/webhooks/{name}"
        try:
            reply = client.post(target, content=b"{}",
                                headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            out.append(_check(f"webhook endpoint {name}", False, f"{target}: {exc}",
                              "make the webhook URL reachable from the internet"))
            continue
        code = reply.status_code
        if 400 <= code < 500 and code != 404:
            out.append(_check(f"webhook endpoint {name}", True,
                              f"{target} refused an unsigned delivery ({code}), as it must"))
        elif code == 404:
            out.append(_check(f"webhook endpoint {name}", False, f"{target} answered 404",
                              f"configure providers.{name} in the server's pasarela.toml, "
                              "and mount the app at the public URL's path"))
        else:
            out.append(_check(f"webhook endpoint {name}", False,
                              f"{target} answered {code} to an unsigned delivery",
                              "the URL does not reach pasarela's webhook route (or it does "
                              "not verify signatures): check the proxy's routing"))
    return out


@click.command()
@click.option("--config", "config_path", default=None,
              help="The configuration file (default: the group's --config).")
@click.option("--public-url", envvar="PASARELA_PUBLIC_URL", default=None,
              help="The URL providers send webhooks to (the app's root: URL/webhooks/NAME).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def doctor(ctx: click.Context, config_path: str | None, public_url: str | None,
           as_json: bool) -> None:
    """Check what makes payments stall in production; each failure says how to fix it."""
    from pasarela.api import Pasarela, validate  # noqa: PLC0415
    from pasarela.engine import doctor as checks  # noqa: PLC0415
    from pasarela.engine.steps import drive  # noqa: PLC0415

    path = config_path or (ctx.find_root().obj or {}).get("config", "pasarela.toml")
    results: list[Any] = []
    problems = validate(path)
    results.append(_check("configuration", not problems,
                          f"{path}: " + ("; ".join(problems) if problems else "starts"),
                          "fix each line (`pasarela config check` prints them)" if problems
                          else ""))
    if not problems:
        with Pasarela.from_config(path) as pasarela, httpx.Client(timeout=10) as client:
            _, _, service = merchant_scope(ctx, pasarela)  # --merchant: its accounts
            results += checks.store_checks(service)
            if results[-1].ok:
                results += checks.privacy_checks(service)
                results += drive(checks.provider_checks(service), client)
                results += list(checks.stalled_checks(service))
                results += checks.operator_checks(service)
            if public_url:
                results += _public_url_checks(public_url, sorted(service.providers), client)
    failed = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        out = out_console()
        for r in results:
            mark = ("[yellow]skip[/]" if r.skipped else "[green]pass[/]" if r.ok
                    else "[bold red]FAIL[/]")
            out.print(f"{mark} {r.name}: ", end="")
            out.print(r.detail, markup=False)
            if r.fix:
                out.print("     fix: ", end="")
                out.print(r.fix, markup=False)
        if failed:
            err_console().print(f"{len(failed)} check(s) failed", markup=False)
    ctx.exit(int(ExitCode.FAILED if failed else ExitCode.OK))
