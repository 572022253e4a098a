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
(console or JSON lines on standard error) is set up by :func:`configure_logging`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from enum import IntEnum
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text

from pasarela.logs import redact


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


def configure_logging(*, json: bool = False, level: int = logging.INFO) -> None:
    """Configure structlog for the CLI (the library itself never configures it)."""
    import structlog  # noqa: PLC0415

    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
