"""What the ``pasarela`` command prints, and how it ends.

One exit-code policy for every command:

``0`` (:data:`ExitCode.OK`)
    done, nothing to report;
``1`` (:data:`ExitCode.FAILED`)
    the command ran and what it reports needs attention: a configuration that does
    not validate, a provider or store error, unresolved differences, a failed job;
``2`` (:data:`ExitCode.USAGE`)
    the command was called wrong: an option's value, a file it cannot read (click's
    own usage errors end with 2 as well).

:func:`fail` is the one way a command stops with an error: every line goes to
standard error as ``error: ...``, printed as text (never as console markup, so a
message such as ``must match ^[0-9]+$`` keeps its brackets). The CLI's log output
(for people, or JSON lines, on standard error) is set up by :func:`configure_logging`.

The conventions every command keeps (:class:`CommandGroup`, :func:`out_console`,
:func:`output`):

- a usage error is one ``error: ...`` line on standard error, exit 2; any other
  failure exit 1; an unexpected exception prints ``error: <type>: <message>``
  (masked) and its traceback only with ``pasarela --debug``;
- results go to standard output, everything else (progress, summaries beside a
  machine-readable result) to standard error; ``--json`` output is one JSON document,
  money in it ``{"minor": 14990, "currency": "PEN"}`` (:func:`money_json`);
- ``-`` as a file to write means standard output;
- output that is not a terminal is never cut or wrapped to a width, and carries no
  escape codes; ``NO_COLOR`` (any value) removes every style, on a terminal too.
"""

from __future__ import annotations

import errno
import json as jsonlib
import logging
import os
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import IntEnum
from typing import IO, Any, Final, NoReturn

import click
from rich.console import Console
from rich.text import Text

from pasarela.logs import ROOT, describe_exception, mask_text
from pasarela.money import Money


__all__ = ["STDOUT", "CommandGroup", "ExitCode", "configure_logging", "err_console", "fail",
           "merchant_name", "merchant_scope", "money_json", "no_color", "out_console", "output",
           "stdout_taken", "unscoped", "usage"]

#: The file name that means standard output.
STDOUT: Final = "-"

#: The width of a console that is not a terminal: wide enough that rich never cuts,
#: wraps or elides a table cell written to a pipe or a file.
PIPE_WIDTH: Final = 1 << 20


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2


def no_color() -> bool:
    """``NO_COLOR`` is set (to anything but the empty string): no styles at all."""
    return os.environ.get("NO_COLOR", "") != ""


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True,
                      color_system=None if no_color() else "auto")
    if not console.is_terminal:
        console.width = PIPE_WIDTH
    return console


def out_console() -> Console:
    """The console for results, made per command so that it sees the current terminal
    (and the environment): not a terminal, it never cuts a line; ``NO_COLOR``, no
    styles."""
    return _console(stderr=False)


def err_console() -> Console:
    """The console for everything that is not a result (errors, progress, summaries
    beside a ``--json -``), on standard error, with :func:`out_console`'s rules."""
    return _console(stderr=True)


def money_json(amount: Money | int, currency: str | None = None) -> dict[str, Any]:
    """Money in the command's JSON: ``{"minor": 14990, "currency": "PEN"}`` (exact
    minor units, as the routing decisions store it), from a :class:`Money` or from
    minor units and a currency."""
    if isinstance(amount, Money):
        return {"minor": amount.minor, "currency": amount.currency}
    if currency is None:
        raise TypeError("money_json needs a currency with minor units")
    return {"minor": int(amount), "currency": currency}


def stdout_taken(*paths: str | None) -> bool:
    """Whether one of the files a command will write is standard output (``-``);
    more than one is a usage error."""
    dashes = [p for p in paths if p == STDOUT]
    if len(dashes) > 1:
        usage("only one output can be standard output ('-')")
    return bool(dashes)


@contextmanager
def output(path: str, *, newline: str | None = None) -> Iterator[IO[str]]:
    """A text file to write at *path*, or standard output when *path* is ``-``
    (flushed, never closed)."""
    if path == STDOUT:
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline=newline) as fh:
        yield fh


def _lines(error: BaseException | str, details: Iterable[str]) -> list[str]:
    if isinstance(error, BaseException):
        listed = [str(line) for line in getattr(error, "errors", None) or []]
        lines = listed or [str(error)]
    else:
        lines = [error]
    return [*lines, *details]


def fail(error: BaseException | str, details: Iterable[str] = (), *,
         code: ExitCode = ExitCode.FAILED) -> NoReturn:
    """Print *error* (an exception's message, or each of its ``errors``) and *details*
    as ``error:`` lines on standard error, then exit with *code*."""
    console = err_console()
    for line in _lines(error, details):
        console.print(Text("error: ", style="bold red") + Text(line))
    sys.exit(int(code))


def usage(message: str) -> NoReturn:
    """The command was called wrong: one ``error:`` line, exit 2."""
    fail(" ".join(message.split()), code=ExitCode.USAGE)


def _usage_line(exc: click.UsageError) -> str:
    message = " ".join(exc.format_message().split())
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return message


_NO_ARGS_IS_HELP: tuple[type[click.UsageError], ...] = tuple(
    t for t in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if t is not None)


class CommandGroup(click.Group):
    """The ``pasarela`` group, which keeps the exit-code policy for every command below
    it: a usage error (click's own included) is one ``error:`` line on standard error
    and exit 2; another click error exits with its code; an unexpected exception is
    ``error: <type>: <message>`` (masked) and exit 1, its traceback (masked) printed
    first only when the group's ``--debug`` is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader went away: click's own handling
                raise
            _unexpected(exc, debug=bool(ctx.params.get("debug")))
        except Exception as exc:  # the one place that reports them
            _unexpected(exc, debug=bool(ctx.params.get("debug")))

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS_IS_HELP as exc:  # `pasarela` alone: its help, as click prints it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            fail(_usage_line(exc), code=ExitCode.USAGE)
        except click.ClickException as exc:
            err_console().print(Text("error: ", style="bold red") + Text(exc.format_message()))
            sys.exit(exc.exit_code)
        except click.Abort:
            fail("aborted")
        sys.exit(code if isinstance(code, int) else int(ExitCode.OK))


def _unexpected(exc: BaseException, *, debug: bool) -> NoReturn:
    if debug:
        click.echo(mask_text("".join(traceback.format_exception(exc))), err=True, nl=False)
    fail(describe_exception(exc)[0])


class _CliHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler the CLI installs (so that configuring again replaces it)."""


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record's event and masked fields. A record from another library (uvicorn's
    errors, say) is masked here, and its exception reduced to type, message and stack:
    no formatter of ours prints local variables."""
    fields = getattr(record, "pasarela", None)
    if fields is not None:
        return dict(fields)
    out: dict[str, Any] = {"event": mask_text(record.getMessage())}
    if record.exc_info and record.exc_info[1] is not None:
        out["error"], out["stack"] = describe_exception(record.exc_info[1])
    return out


class _Console(logging.Formatter):
    """``2026-12-01T17:00:00Z info     payment_transition payment_id=...`` for people."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        head = f"{when} {record.levelname.lower():<8} "
        if getattr(record, "pasarela", None) is not None:
            return head + record.getMessage()
        fields = _fields(record)
        lines = [head + fields["event"]]
        if "error" in fields:
            lines.append(f"    {fields['error']}")
            lines += [f"      at {frame}" for frame in fields["stack"]]
        return "\n".join(lines)


class _Json(logging.Formatter):
    """One JSON object a line: time, level, logger, event and its (masked) fields."""

    def format(self, record: logging.LogRecord) -> str:
        return jsonlib.dumps({
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(), "logger": record.name, **_fields(record),
        }, default=str, ensure_ascii=False)


def configure_logging(*, json: bool = False, level: int = logging.INFO,
                      also: Iterable[str] = ()) -> None:
    """Show pasarela's events on standard error, for people or as JSON lines.

    The library itself never configures logging; only the ``pasarela`` command does,
    on the ``pasarela`` logger and the loggers named in *also* (``pasarela serve``
    passes ``uvicorn``); calling this again replaces its handlers. The events arrive
    masked (:mod:`pasarela.logs`), other libraries' lines are masked here, and an error
    carries its exception's type and message and a stack of ``file:line in
    function``, never local variables.
    """
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(_Json() if json else _Console())
    for name in (ROOT, *also):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if isinstance(h, _CliHandler)]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        if name != ROOT:
            logger.propagate = False


def merchant_name(ctx: click.Context) -> str:
    """The group's ``--merchant`` (``""`` without it: the implicit merchant)."""
    obj = ctx.find_root().obj
    return str(obj.get("merchant") or "") if isinstance(obj, dict) else ""


def unscoped(ctx: click.Context, why: str) -> None:
    """A command that works on the whole deployment, never on one merchant's part of
    it: given ``--merchant``, it stops with a usage error (2) saying so and *why*,
    rather than acting on every merchant."""
    name = merchant_name(ctx)
    if name:
        usage(f"'{ctx.command_path}' works on the whole deployment ({why}); it takes no "
              f"--merchant (given: {name!r})")


def merchant_scope(ctx: click.Context, pasarela: Any) -> tuple[str, Any, Any]:
    """The group's ``--merchant``: (its name or ``""``, the API the command works
    through, that merchant's engine context). Without it, the deployment's own (the
    implicit merchant's); an unknown or broken merchant is a failure naming it."""
    from pasarela.errors import PasarelaError  # noqa: PLC0415

    name = merchant_name(ctx)
    if not name:
        return "", pasarela, pasarela.service
    try:
        service = pasarela.merchants.service(name)
    except PasarelaError as exc:
        fail(exc)
    return name, pasarela.merchants[name], service
