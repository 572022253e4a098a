"""Configuration errors: :class:`InvalidConfigError`, and cattrs' validation errors
turned into ``dotted.path: what is wrong`` pairs."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import attrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from pasarela.errors import ConfigurationError, PasarelaError, ValidationError


class InvalidConfigError(ConfigurationError):
    """The configuration has one or more errors.

    Attributes:
        errors: every problem found, each ``"dotted.path: what is wrong"``.
        source: the file read, where there was one.
    """

    def __init__(self, errors: Sequence[str], *, source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.errors) == 1:
            message = self.errors[0]
        else:
            lines = "\n".join(f"  {error}" for error in self.errors)
            message = f"{len(self.errors)} configuration errors{where}:\n{lines}"
        super().__init__(message)


class Invalid(ValueError):
    """A value of the wrong shape; the message is for people and holds no value."""


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def flatten(exc: BaseException, path: str) -> list[tuple[str, str]]:
    """``(path, message)`` for every leaf of a cattrs validation error."""
    out: list[tuple[str, str]] = []
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            out += flatten(sub, join_path(path, note.name))
        for sub in without:
            if isinstance(sub, ForbiddenExtraKeysError):
                out += _unknown_keys(sub, path)
            else:
                out += flatten(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_index, without_index = exc.group_exceptions()
        for sub, inote in with_index:
            index = inote.index
            sub_path = (f"{path}[{index}]" if isinstance(index, int)
                        else join_path(path, str(index)))
            out += flatten(sub, sub_path)
        for sub in without_index:
            out += flatten(sub, path)
    else:
        out.append(_leaf(exc, path))
    return out


def _unknown_keys(exc: ForbiddenExtraKeysError, path: str) -> list[tuple[str, str]]:
    known = [field.alias or field.name for field in attrs.fields(exc.cl)]
    what = "unknown setting"
    out = []
    for key in sorted(exc.extra_fields):
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(sorted(known))}"
        out.append((join_path(path, key), f"{what}{hint}"))
    return out


def _leaf(exc: BaseException, path: str) -> tuple[str, str]:
    if isinstance(exc, Invalid):
        return path, str(exc)
    if isinstance(exc, KeyError):
        return path, "missing required setting"
    if isinstance(exc, ValidationError):
        # An attrs validator of a settings class: the error names its field.
        return join_path(path, exc.field), exc.reason
    if isinstance(exc, PasarelaError):
        return path, exc.message
    if isinstance(exc, ValueError | TypeError) and exc.args and isinstance(exc.args[0], str):
        return path, f"invalid value: {exc.args[0]}"
    return path, f"invalid value ({type(exc).__name__})"
