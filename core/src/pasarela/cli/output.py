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
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from pasarela.logs import ROOT, describe_exception, mask_text


__all__ = ["ExitCode", "configure_logging", "err_console", "fail", "out_console"]


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2


def out_console() -> Console:
    """The console for results, made per command so that it sees the current terminal."""
    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


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
