"""``pasarela operators``: the operator console's accounts (``docs/console.md``).

Each account belongs to one merchant: the implicit one, or with the root
``--merchant NAME`` that merchant's. Passwords are read from a prompt (asked twice)
or, with ``--password-stdin``, from the first line of standard input; only their
argon2id hash is stored. Every change is also written to the console's operator
audit log, as done by ``@cli``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, Final

import click

from pasarela.cli.output import fail, merchant_scope, out_console, usage
from pasarela.errors import PasarelaError, ValidationError


__all__ = ["operators"]

ROLES: Final = ("viewer", "operator", "admin")
#: Who the audit log names for a change made with this command.
CLI: Final = "@cli"


def _open(ctx: click.Context) -> Any:
    from pasarela.api import Pasarela  # noqa: PLC0415

    config = (ctx.find_root().obj or {}).get("config", "pasarela.toml")
    try:
        return Pasarela.from_config(config)
    except PasarelaError as exc:
        fail(exc)


def _auth() -> Any:
    try:
        from pasarela.web import console_auth  # noqa: PLC0415
    except ImportError as exc:
        fail(f"operator accounts need the console: pip install 'pasarela[server]' ({exc})")
    return console_auth


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    try:
        _auth().check_password(password)
    except ValidationError as exc:
        usage(str(exc))
    return password


def _name(name: str) -> str:
    try:
        return str(_auth().check_name(name))
    except ValidationError as exc:
        usage(str(exc))


def _audit(pasarela: Any, merchant: str, action: str, name: str,
           detail: dict[str, Any] | None = None) -> None:
    pasarela.store.add_operator_audit(merchant, at=datetime.now(UTC), operator=CLI,
                                      role="admin", action=action, target=name,
                                      address="cli", outcome="done", detail=detail or {})


def _whose(merchant: str) -> str:
    return f"merchant {merchant!r}" if merchant else "the implicit merchant"


def _done(as_json: bool, document: dict[str, Any], message: str) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        out_console().print(f"[green]ok[/] {message}", highlight=False)


password_stdin = click.option("--password-stdin", is_flag=True,
                              help="Read the password from the first line of standard input.")
as_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def operators() -> None:
    """The operator console's accounts: add, list, set-role, passwd, remove,
    sign-out-everywhere, log (the operator audit log)."""


@operators.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer reads; operator also acts on payments; admin also manages.")
@password_stdin
@as_json_option
@click.pass_context
def add(ctx: click.Context, name: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Add operator NAME with ROLE to the merchant's console."""
    auth = _auth()
    name = _name(name)
    password = _password(password_stdin)
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            pasarela.store.add_operator(merchant, name, int(auth.parse_role(role)),
                                        auth.hash_password(password))
            _audit(pasarela, merchant, "operator_add", name, {"role": role})
        except PasarelaError as exc:
            fail(exc)
    _done(as_json, {"merchant": merchant, "name": name, "role": role},
          f"operator {name} ({role}) added to {_whose(merchant)}'s console")


@operators.command("list")
@as_json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the merchant's operators and their roles."""
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            rows = pasarela.store.operator_accounts(merchant)
        except PasarelaError as exc:
            fail(exc)
    listed = [{"name": r["name"], "role": ROLES[r["role"] - 1],
               "created_at": r["created_at"].isoformat(),
               "updated_at": r["updated_at"].isoformat()} for r in rows]
    if as_json:
        click.echo(json.dumps({"merchant": merchant, "operators": listed}, indent=2))
        return
    if not listed:
        out_console().print(f"no operators for {_whose(merchant)} "
                            "(add one: pasarela operators add NAME --role ROLE)",
                            highlight=False)
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table("name", "role", "created (UTC)")
    for row in listed:
        table.add_row(row["name"], row["role"], row["created_at"][:19])
    out_console().print(table)


@operators.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@as_json_option
@click.pass_context
def set_role(ctx: click.Context, name: str, role: str, as_json: bool) -> None:
    """Give operator NAME the ROLE (at once, on every session of theirs)."""
    auth = _auth()
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            pasarela.store.set_operator_role(merchant, name, int(auth.parse_role(role)))
            _audit(pasarela, merchant, "operator_set_role", name, {"role": role})
        except PasarelaError as exc:
            fail(exc)
    _done(as_json, {"merchant": merchant, "name": name, "role": role},
          f"operator {name} is now {role}")


@operators.command("passwd")
@click.argument("name")
@password_stdin
@as_json_option
@click.pass_context
def passwd(ctx: click.Context, name: str, password_stdin: bool, as_json: bool) -> None:
    """Set operator NAME's password; every session of theirs ends."""
    auth = _auth()
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            if pasarela.store.operator_account(merchant, name) is None:
                fail(f"no operator {name!r} for {_whose(merchant)}")
            password = _password(password_stdin)
            pasarela.store.set_operator_password(merchant, name, auth.hash_password(password))
            _audit(pasarela, merchant, "operator_passwd", name)
        except PasarelaError as exc:
            fail(exc)
    _done(as_json, {"merchant": merchant, "name": name, "sessions_ended": True},
          f"operator {name}'s password changed; their sessions are ended")


@operators.command("remove")
@click.argument("name")
@as_json_option
@click.pass_context
def remove(ctx: click.Context, name: str, as_json: bool) -> None:
    """Remove operator NAME (their audit log entries stay)."""
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            pasarela.store.remove_operator(merchant, name)
            _audit(pasarela, merchant, "operator_remove", name)
        except PasarelaError as exc:
            fail(exc)
    _done(as_json, {"merchant": merchant, "name": name, "removed": True},
          f"operator {name} removed from {_whose(merchant)}'s console")


@operators.command("sign-out-everywhere")
@click.argument("name")
@as_json_option
@click.pass_context
def sign_out_everywhere(ctx: click.Context, name: str, as_json: bool) -> None:
    """End every session of operator NAME, in every process."""
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            pasarela.store.end_operator_sessions(merchant, name)
            _audit(pasarela, merchant, "sign_out_everywhere", name)
        except PasarelaError as exc:
            fail(exc)
    _done(as_json, {"merchant": merchant, "name": name, "sessions_ended": True},
          f"every session of operator {name} is ended")


@operators.command("log")
@click.option("--operator", "who", default=None, metavar="NAME",
              help="Only what operator NAME did.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="The newest entries to show.")
@as_json_option
@click.pass_context
def log_command(ctx: click.Context, who: str | None, limit: int, as_json: bool) -> None:
    """The merchant's operator audit log, newest first: who did what, on what, from
    where, with which outcome."""
    with _open(ctx) as pasarela:
        merchant, _, _ = merchant_scope(ctx, pasarela)
        try:
            entries = pasarela.store.operator_audit_log(merchant, operator=who, limit=limit)
        except PasarelaError as exc:
            fail(exc)
    listed = [{**e, "at": e["at"].isoformat()} for e in entries]
    if as_json:
        click.echo(json.dumps({"merchant": merchant, "entries": listed}, indent=2,
                              ensure_ascii=False))
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table("at (UTC)", "operator", "action", "target", "from", "outcome")
    for e in listed:
        reason = e["detail"].get("reason")
        table.add_row(e["at"][:19], e["operator"], e["action"], e["target"], e["address"],
                      e["outcome"] + (f": {reason}" if reason else ""))
    out_console().print(table)
