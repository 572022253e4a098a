"""Structuring: the cattrs converter that turns TOML values into typed settings (strict
about types, with the few string conversions the file allows), and
:func:`structure_settings` for one ``[providers.NAME]`` table."""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable, Mapping, MutableSequence, Sequence, Set
from datetime import timedelta
from functools import cache
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from pasarela.config.env import EnvResolver, EnvStr, scrub, secret_values
from pasarela.config.errors import Invalid, InvalidConfigError, flatten
from pasarela.errors import ValidationError
from pasarela.money import Money
from pasarela.provider import ProviderSettings
from pasarela.secret import seal


S = TypeVar("S", bound=ProviderSettings)

ENVIRONMENTS: Final = ("sandbox", "production")
_DURATION: Final = re.compile(
    r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$"
)


def structure_settings(
    name: str,
    table: Mapping[str, Any],
    settings_class: type[S],
    *,
    env: Mapping[str, str] | None = None,
) -> S:
    """Structure the ``[providers.NAME]`` *table* into *settings_class*.

    :param name: the provider's name (errors are reported under ``providers.NAME``).
    :param table: the raw table, ``env:`` references unresolved.
    :param settings_class: the provider's :class:`ProviderSettings` subclass.
    :param env: the environment for ``env:`` references (default ``os.environ``).
    :raises InvalidConfigError: listing every problem in the table.
    """
    path = f"providers.{name}"
    if not isinstance(table, Mapping):
        raise InvalidConfigError([f"{path}: expected a table"])
    resolver = EnvResolver(os.environ if env is None else env)
    resolved = resolver.resolve(table, path)
    secrets = resolver.secrets + secret_values(resolved, settings_class)
    errors: list[tuple[str, str]] = []
    settings: S | None = None
    try:
        settings = CONVERTER().structure(resolved, settings_class)
    except Exception as exc:
        errors += flatten(exc, path)
    environment = resolved.get("environment")
    if isinstance(environment, str) and environment not in ENVIRONMENTS:
        errors.append((f"{path}.environment", "expected 'sandbox' or 'production'"))
    if settings is not None:
        errors += _check_common(settings, path)
    errors = resolver.errors + [e for e in errors if not resolver.failed(e[0])]
    if errors or settings is None:
        raise InvalidConfigError([scrub(f"{p}: {m}", secrets) for p, m in errors])
    return sealed(settings)


def sealed(settings: S) -> S:
    """*settings* with every field marked secret a :class:`~pasarela.secret.Secret`
    (masked in any ``repr``, such as a traceback's local variables)."""
    changes = {
        field.alias or field.name: seal(getattr(settings, field.name))
        for field in attrs.fields(type(settings))
        if field.metadata.get("secret") and field.init
    }
    return attrs.evolve(settings, **changes) if changes else settings


def parse_duration(text: str) -> timedelta:
    """Parse ``"48h"``, ``"30m"``, ``"2d"``, ``"90s"`` or a combination (``"1h30m"``).

    :raises ValueError: anything else.
    """
    match = _DURATION.match(text.strip().replace(" ", "")) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError("expected a duration like '48h', '30m', '2d' or '90s'")
    parts = {unit: int(value) for unit, value in match.groupdict().items() if value}
    return timedelta(
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def _check_common(settings: ProviderSettings, path: str) -> list[tuple[str, str]]:
    """Rules on the settings every provider has."""
    errors: list[tuple[str, str]] = []
    if settings.timeout <= 0:
        errors.append((f"{path}.timeout", "must be more than 0 seconds"))
    if settings.max_retries < 0:
        errors.append((f"{path}.max_retries", "must not be negative"))
    if settings.expiry is not None and settings.expiry <= timedelta(0):
        errors.append((f"{path}.expiry", "must be longer than 0"))
    low, high = settings.min_amount, settings.max_amount
    if low is not None and high is not None:
        if low.currency != high.currency:
            errors.append((f"{path}.max_amount", "must be in the same currency as min_amount"))
        elif low.minor > high.minor:
            errors.append((f"{path}.max_amount", "must not be less than min_amount"))
    return errors


# --- the converter ------------------------------------------------------------------


def _kind(value: object) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _expected(what: str, value: object) -> Invalid:
    if isinstance(value, EnvStr):
        return Invalid(f"expected {what} (from environment variable {value.var})")
    return Invalid(f"expected {what}, got {_kind(value)}")


def _structure_str(value: object, t: type) -> str:
    if t is not str and _is_enum(t):  # a StrEnum dispatches here as a str subclass
        return _structure_enum(value, t)  # type: ignore[return-value]
    if isinstance(value, str):
        return str(value)
    raise _expected("a string", value)


def _structure_int(value: object, t: type) -> int:
    if t is not int and _is_enum(t):  # an IntEnum dispatches here as an int subclass
        return _structure_enum(value, t)  # type: ignore[return-value]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, EnvStr) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise _expected("an integer", value)


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, EnvStr):
        try:
            return float(value)
        except ValueError:
            pass
    raise _expected("a number", value)


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _structure_bool(value: object, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, EnvStr) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _expected("true or false", value)


def _structure_timedelta(value: object, _: type) -> timedelta:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            if not isinstance(value, EnvStr):
                raise Invalid(str(exc)) from None
    raise _expected("a duration like '48h', '30m', '2d' or '90s'", value)


def _structure_money(value: object, _: type) -> Money:
    if isinstance(value, str):
        try:
            return Money.parse(value)
        except ValidationError as exc:
            if isinstance(value, EnvStr):
                raise _expected("an amount like 'PEN 0.50'", value) from None
            raise Invalid(f"expected an amount like 'PEN 0.50': {exc.reason}") from None
    raise _expected("an amount like 'PEN 0.50'", value)


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _structure_literal(value: object, t: Any) -> object:
    choices = get_args(t)
    plain = str(value) if isinstance(value, str) else value
    if not isinstance(plain, bool) and plain in choices:
        return plain
    listed = " or ".join(repr(choice) for choice in choices)
    if isinstance(value, EnvStr):
        raise _expected(listed, value)
    raise Invalid(f"expected {listed}")


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _structure_enum(value: object, t: type[enum.Enum]) -> enum.Enum:
    try:
        return t(value)
    except ValueError:
        listed = ", ".join(repr(member.value) for member in t)
        if isinstance(value, EnvStr):
            raise _expected(f"one of {listed}", value) from None
        raise Invalid(f"expected one of {listed}") from None


_SEQUENCES: Final = {tuple, list, Sequence, MutableSequence, frozenset, set, Set}


def _is_sequence(t: Any) -> bool:
    origin = get_origin(t)
    if origin not in _SEQUENCES:
        return False
    args = get_args(t)
    return origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)


def _is_mapping(t: Any) -> bool:
    return t in (dict, Mapping) or get_origin(t) in (dict, Mapping)


@cache
def CONVERTER() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def structure_sequence(value: object, t: Any) -> Any:
        origin = get_origin(t)
        item_type = get_args(t)[0] if get_args(t) else Any
        if isinstance(value, str) and item_type is str:
            items: list[Any] = [value]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise _expected("an array", value)
        out: list[Any] = []
        errors: list[Exception] = []
        for i, item in enumerate(items):
            try:
                out.append(converter.structure(item, item_type))
            except Exception as exc:
                exc.__notes__ = [*getattr(exc, "__notes__", []), IterableValidationNote(
                    f"Structuring {t} @ index {i}", i, item_type
                )]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {t}", errors, t)
        if origin in (frozenset, Set):
            return frozenset(out)
        if origin is set:
            return set(out)
        if origin in (list, MutableSequence):
            return out
        return tuple(out)

    def structure_mapping(value: object, t: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _expected("a table", value)
        args = get_args(t)
        value_type = args[1] if len(args) == 2 else Any
        if value_type is Any:
            return dict(value)
        out: dict[str, Any] = {}
        errors: list[Exception] = []
        for key, item in value.items():
            try:
                out[key] = converter.structure(item, value_type)
            except Exception as exc:
                exc.__notes__ = [*getattr(exc, "__notes__", []), IterableValidationNote(
                    f"Structuring {t} @ key {key!r}", key, value_type
                )]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {t}", errors, t)
        return out

    def attrs_factory(cl: Any) -> Callable[[Any, Any], Any]:
        structure = make_dict_structure_fn(cl, converter)

        def hook(value: object, t: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _expected("a table", value)
            return structure(value, t)

        return hook

    converter.register_structure_hook_factory(attrs.has, attrs_factory)
    converter.register_structure_hook_func(_is_enum, _structure_enum)
    converter.register_structure_hook_func(_is_literal, _structure_literal)
    converter.register_structure_hook_func(_is_sequence, structure_sequence)
    converter.register_structure_hook_func(_is_mapping, structure_mapping)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(timedelta, _structure_timedelta)
    converter.register_structure_hook(Money, _structure_money)
    return converter
