"""Knobs: what a sandbox does beyond the happy path, set at start and at run time.

One scheme for every sandbox, so a knob means the same thing in each:

- **times are seconds**, as floats: ``latency``, ``delay_webhooks``,
  ``webhook_retry_delay``, a provider's ``token_ttl``;
- **shares are floats from 0 to 1**: ``fail_rate``, ``lose_webhooks``;
- **counts are whole numbers from 0**: ``fail_next``, ``duplicate_webhooks``,
  ``lose_next_webhooks``, ``webhook_retries``;
- **flags are booleans**: ``reorder_webhooks``, ``hold_webhooks``.

A fault of the API is named for what it does to a call (``latency``, ``fail_rate``,
``fail_next``); a fault of the webhooks is ``<verb>_webhooks``. :class:`Knobs` holds
the ones every sandbox has; a sandbox subclasses it to add its own (declared with
:func:`seconds`, :func:`share`, :func:`count`, :func:`flag`, :func:`text`,
:func:`choice` or, for a kind of its own, :func:`knob`, so they convert and validate
alike), and may redeclare a field to
change its default. Every refusal is a :class:`~pasarela.errors.ValidationError`
naming the knob (``latency: must be at least 0 seconds, not -1``).
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from pasarela.errors import ValidationError


__all__ = [
    "Knobs",
    "choice",
    "count",
    "flag",
    "jsonable",
    "knob",
    "seconds",
    "share",
    "text",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ValidationError(f"must be a number, not {value!r}", field=name)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(f"must be a number, not {value!r}", field=name) from None
    if not isinstance(value, int | float | Decimal):
        raise ValidationError(f"must be a number, not {value!r}", field=name)
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"must be a finite number, not {value!r}", field=name)
    return number


def _converter(convert: Callable[[Any, str], Any]) -> attrs.Converter:  # type: ignore[type-arg]
    def run(value: Any, field: attrs.Attribute[Any]) -> Any:
        return convert(value, field.name)

    return attrs.Converter(run, takes_field=True)


def _seconds(value: Any, name: str) -> float:
    number = _number(value, name)
    if number < 0:
        raise ValidationError(f"must be at least 0 seconds, not {value!r}", field=name)
    return number


def _optional_seconds(value: Any, name: str) -> float | None:
    return None if value is None else _seconds(value, name)


def _share(value: Any, name: str) -> float:
    number = _number(value, name)
    if not 0.0 <= number <= 1.0:
        raise ValidationError(f"must be a share from 0 to 1, not {value!r}", field=name)
    return number


def _count(value: Any, name: str) -> int:
    number = _number(value, name)
    if number < 0 or number != int(number):
        raise ValidationError(f"must be a whole number from 0, not {value!r}", field=name)
    return int(number)


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValidationError(f"must be true or false, not {value!r}", field=name)


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"must be text or null, not {value!r}", field=name)
    return value


def knob(convert: Callable[[Any, str], Any], doc: str, *, default: Any = attrs.NOTHING,
         factory: Callable[[], Any] | None = None, unit: str = "") -> Any:
    """A knob of a sandbox's own kind: ``convert(value, name)`` returns the value to
    keep or raises a :class:`~pasarela.errors.ValidationError` naming *name*."""
    return attrs.field(default=default, factory=factory, converter=_converter(convert),
                       metadata={"doc": doc, "unit": unit})


def seconds(default: float | None, doc: str, *, optional: bool = False) -> Any:
    """A time in seconds (``optional``: or None, meaning "not applied")."""
    convert = _optional_seconds if optional else _seconds
    return attrs.field(default=default, converter=_converter(convert),
                       metadata={"doc": doc, "unit": "seconds"})


def share(default: float, doc: str) -> Any:
    """A share of calls or webhooks, from 0 (none) to 1 (all)."""
    return attrs.field(default=default, converter=_converter(_share),
                       metadata={"doc": doc, "unit": "share"})


def count(default: int, doc: str) -> Any:
    """A whole number from 0."""
    return attrs.field(default=default, converter=_converter(_count),
                       metadata={"doc": doc, "unit": "count"})


def flag(default: bool, doc: str) -> Any:
    """True or false (``"true"``/``"false"`` from the command line too)."""
    return attrs.field(default=default, converter=_converter(_flag),
                       metadata={"doc": doc, "unit": "flag"})


def text(default: str | None, doc: str) -> Any:
    """Text, or None (an empty string is None)."""
    return attrs.field(default=default, converter=_converter(_text),
                       metadata={"doc": doc, "unit": "text"})


def choice(default: str, options: tuple[str, ...], doc: str) -> Any:
    """One of *options*."""
    def convert(value: Any, name: str) -> str:
        if value not in options:
            raise ValidationError(f"must be one of {', '.join(options)}, not {value!r}",
                                  field=name)
        return str(value)

    return attrs.field(default=default, converter=_converter(convert),
                       metadata={"doc": doc, "unit": "choice"})


def jsonable(value: Any) -> Any:
    """*value* as JSON can carry it: decimals and times as text, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@attrs.define(kw_only=True)
class Knobs:
    """The knobs every sandbox has. Change them with :meth:`update` (or ``POST
    /_control/config``); a sandbox's own knobs come from its subclass."""

    latency: float = seconds(
        0.0, "seconds added to every API answer, after the work is done (a client that "
             "gives up first leaves the work done: an unknown outcome)")
    fail_rate: float = share(
        0.0, "share of API calls answered with the provider's 5xx before anything is done")
    fail_next: int = count(
        0, "the next N API calls are answered with the provider's 5xx before anything is done")
    webhook_url: str | None = text(
        None, "where webhooks are POSTed (none: they are recorded, not sent)")
    duplicate_webhooks: int = count(0, "extra copies of every webhook (the same event)")
    lose_webhooks: float = share(0.0, "share of webhooks never sent")
    lose_next_webhooks: int = count(0, "the next N webhooks are never sent")
    delay_webhooks: float = seconds(0.0, "seconds every webhook waits before it is sent")
    reorder_webhooks: bool = flag(
        False, "every webhook waits for the next one, which is sent first")
    hold_webhooks: bool = flag(
        False, "keep every webhook until POST /_control/webhooks/flush")
    webhook_retries: int = count(
        2, "further attempts after one the receiver did not accept")
    webhook_retry_delay: float = seconds(
        0.05, "seconds before the first retry of a webhook; each next one waits twice as long")

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Knobs:
        """The defaults changed by *options* (refused as :meth:`update` refuses)."""
        knobs = cls()
        knobs.update(options)
        return knobs

    def update(self, changes: Mapping[str, Any]) -> None:
        """Set the knobs named in *changes*, all or none: an unknown name or a bad value
        raises :class:`~pasarela.errors.ValidationError` naming it, and changes nothing."""
        names = attrs.fields_dict(type(self))
        for name in changes:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValidationError(
                    f"no such knob{hint}; knobs: {', '.join(sorted(names))}", field=name)
        candidate = copy.copy(self)
        for name, value in changes.items():
            setattr(candidate, name, candidate.merge(name, value))
        for name in changes:
            setattr(self, name, getattr(candidate, name))

    def merge(self, name: str, value: Any) -> Any:
        """The value knob *name* takes when *value* is given (default: *value*); a
        subclass overrides it for a knob that merges into its current value."""
        return value

    def describe(self) -> dict[str, Any]:
        """Every knob and its value, as JSON can carry it."""
        return {field.name: jsonable(getattr(self, field.name))
                for field in attrs.fields(type(self))}

    @classmethod
    def documented(cls) -> list[tuple[str, str, str]]:
        """``(name, unit, what it does)`` of every knob, in declaration order."""
        return [(f.name, str(f.metadata.get("unit", "")), str(f.metadata.get("doc", "")))
                for f in attrs.fields(cls)]
