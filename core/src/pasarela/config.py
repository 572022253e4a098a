"""Reading ``pasarela.toml``.

The file is read with :mod:`tomllib` and structured with cattrs into frozen attrs
classes. TOML is typed, so values are not coerced: ``service_id = "1028"`` is an
error where an integer is expected. A few strings are converted:

- ``"env:NAME"`` anywhere: the value of the environment variable ``NAME`` (then
  coerced to the field's type, so ``"env:SERVICE_ID"`` can fill an integer);
- durations ``"48h"``, ``"30m"``, ``"2d"``, ``"90s"`` (or ``"1h30m"``) for
  :class:`~datetime.timedelta` fields;
- amounts ``"PEN 0.50"`` for :class:`~pasarela.money.Money` fields;
- a lone string where a list of strings is expected (``webhook_secrets``).

Every error names its dotted path (``providers.pagoefectivo.service_id: expected an
integer``), all errors are collected into one :class:`InvalidConfigError`, and no
message or ``repr`` carries a secret.

Provider tables stay raw in :attr:`Config.providers` until the provider class is
known; :func:`structure_settings` (or :meth:`Config.provider_settings`) turns one
into the provider's :class:`~pasarela.provider.ProviderSettings` subclass.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import tomllib
from collections.abc import Callable, Mapping, MutableSequence, Sequence, Set
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from pasarela.errors import ConfigurationError, PasarelaError, ValidationError
from pasarela.money import Money
from pasarela.provider import ProviderSettings


__all__ = [
    "DEFAULT_STORE_URL",
    "CheckoutConfig",
    "Config",
    "InvalidConfigError",
    "OutboxConfig",
    "PluginsConfig",
    "RouteConfig",
    "StoreConfig",
    "check_config",
    "load_config",
    "parse_duration",
    "structure_settings",
]

S = TypeVar("S", bound=ProviderSettings)

DEFAULT_STORE_URL: Final = "sqlite:///pasarela.db"
ENVIRONMENTS: Final = ("sandbox", "production")
_PROVIDER_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION: Final = re.compile(
    r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$"
)
#: Secrets shorter than this are not scrubbed from messages (they would mangle
#: them, and no credential is that short).
_MIN_SCRUB: Final = 4


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


# --- the shape of the file -------------------------------------------------------


def _mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return repr(url)
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{user}:***@{host}{port}"
        return repr(urlunsplit(parts._replace(netloc=netloc)))
    except ValueError:
        return "'***'"


@attrs.frozen(kw_only=True)
class StoreConfig:
    """``[store]``: where payments are kept."""

    url: str = attrs.field(default=DEFAULT_STORE_URL, repr=_mask_url)


@attrs.frozen(kw_only=True)
class PluginsConfig:
    """``[plugins]``: plugin modules to import and register besides entry points."""

    modules: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CheckoutConfig:
    """``[checkout]``: provider preference order (until routing rules apply)."""

    preference: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OutboxConfig:
    """``[outbox]``: deliver lifecycle events ``inline`` (after each operation) or
    from a ``worker`` process."""

    dispatch: Literal["inline", "worker"] = "inline"


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """``[worker]``: what ``pasarela worker`` does about a payment that arrives after
    its code expired: ``flag`` it (the ``payment.late_succeeded`` event) or also
    ``refund`` it automatically where the provider can."""

    late_payment: Literal["flag", "refund"] = "flag"


@attrs.frozen(kw_only=True)
class RouteConfig:
    """One ``[[routes]]`` entry. ``when`` is kept raw; routing compiles it."""

    name: str
    #: Provider names, or ``{provider = "x", weight = 70}`` tables for ``weighted``.
    use: tuple[Any, ...]
    when: Mapping[str, Any] = attrs.field(factory=dict)
    strategy: str = "ordered"
    weights: Mapping[str, int] = attrs.field(factory=dict)
    min_sample: int | None = None
    exploration: str | None = None

    def provider_names(self) -> list[str]:
        return [str(item.get("provider", "")) if isinstance(item, Mapping) else str(item)
                for item in self.use]


@attrs.frozen(kw_only=True)
class Config:
    """The structured configuration.

    Attributes:
        store, plugins, checkout, outbox: the sections of the same names.
        providers: ``[providers.NAME]`` tables, raw (``env:`` not yet resolved);
            structure one with :meth:`provider_settings`.
        routes: the ``[[routes]]`` entries, in file order.
        source: the file it was read from, or None.
    """

    store: StoreConfig = attrs.field(factory=StoreConfig)
    plugins: PluginsConfig = attrs.field(factory=PluginsConfig)
    checkout: CheckoutConfig = attrs.field(factory=CheckoutConfig)
    outbox: OutboxConfig = attrs.field(factory=OutboxConfig)
    worker: WorkerConfig = attrs.field(factory=WorkerConfig)
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    routes: tuple[RouteConfig, ...] = ()
    source: str | None = None
    env: Mapping[str, str] | None = attrs.field(default=None, repr=False, eq=False)

    def provider_settings(self, name: str, settings_class: type[S]) -> S:
        """Structure ``[providers.NAME]`` (empty when absent) into *settings_class*.

        :raises InvalidConfigError: listing every problem in the table.
        """
        return structure_settings(
            name, self.providers.get(name, {}), settings_class, env=self.env
        )

    def all_provider_settings(
        self, settings_classes: Mapping[str, type[ProviderSettings]]
    ) -> dict[str, ProviderSettings]:
        """Structure every ``[providers.*]`` table and check every provider reference.

        *settings_classes* maps each installed provider's name to its settings
        class. A table or a ``checkout.preference`` / ``routes[].use`` entry naming
        no installed provider is an error.

        :returns: the settings of every configured provider.
        :raises InvalidConfigError: listing every problem found.
        """
        errors: list[str] = []
        out: dict[str, ProviderSettings] = {}
        installed = sorted(settings_classes)
        for name, table in self.providers.items():
            settings_class = settings_classes.get(name)
            if settings_class is None:
                errors.append(f"providers.{name}: {_not_installed(name, installed)}")
                continue
            try:
                out[name] = structure_settings(name, table, settings_class, env=self.env)
            except InvalidConfigError as exc:
                errors.extend(exc.errors)
        references = [
            (f"checkout.preference[{i}]", name) for i, name in enumerate(self.checkout.preference)
        ]
        for r, route in enumerate(self.routes):
            references += [(f"routes[{r}].use[{i}]", name)
                           for i, name in enumerate(route.provider_names())]
        for path, name in references:
            if name not in settings_classes:
                errors.append(f"{path}: {_not_installed(name, installed)}")
        if errors:
            raise InvalidConfigError(errors, source=self.source)
        return out


def _not_installed(name: str, installed: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, installed, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    listed = ", ".join(installed) or "none"
    return f"no provider named {name!r} is installed (installed: {listed}){hint}"


# --- public functions -------------------------------------------------------------


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any], *, env: Mapping[str, str] | None = None
) -> Config:
    """Read and structure a configuration.

    :param source: the path of a TOML file, or an already parsed mapping.
    :param env: the environment for ``env:`` references (default ``os.environ``,
        read when a reference is resolved).
    :raises InvalidConfigError: listing every problem found (a TOML syntax error
        names the file and line).
    """
    config, errors = _load(source, env)
    if errors or config is None:
        raise InvalidConfigError(errors, source=_source_name(source))
    return config


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
    resolver = _EnvResolver(os.environ if env is None else env)
    resolved = resolver.resolve(table, path)
    secrets = resolver.secrets + _secret_values(resolved, settings_class)
    errors: list[tuple[str, str]] = []
    settings: S | None = None
    try:
        settings = _converter().structure(resolved, settings_class)
    except Exception as exc:
        errors += _flatten(exc, path)
    environment = resolved.get("environment")
    if isinstance(environment, str) and environment not in ENVIRONMENTS:
        errors.append((f"{path}.environment", "expected 'sandbox' or 'production'"))
    if settings is not None:
        errors += _check_common(settings, path)
    errors = resolver.errors + [e for e in errors if not resolver.failed(e[0])]
    if errors or settings is None:
        raise InvalidConfigError([_scrub(f"{p}: {m}", secrets) for p, m in errors])
    return settings


def check_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    settings_classes: Mapping[str, type[ProviderSettings]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Every problem in a configuration, for ``pasarela config check``.

    Unlike :func:`load_config` this also structures the provider tables when
    *settings_classes* (installed provider name to settings class) is given, even
    if other sections have errors. An empty list means the file is good.
    """
    config, errors = _load(source, env)
    if config is None or settings_classes is None:
        return errors
    try:
        config.all_provider_settings(settings_classes)
    except InvalidConfigError as exc:
        errors = errors + exc.errors
    return errors


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


# --- loading ------------------------------------------------------------------------


def _source_name(source: object) -> str | None:
    return None if isinstance(source, Mapping) else os.fspath(source)  # type: ignore[call-overload]


def _load(
    source: str | os.PathLike[str] | Mapping[str, Any], env: Mapping[str, str] | None
) -> tuple[Config | None, list[str]]:
    """The configuration and every error found outside the provider tables.

    The configuration is None only when the file cannot be read or parsed. With
    errors it is partial (a section that failed keeps its defaults; the routes are
    kept only if all of them are valid, so that their indexes stay those of the
    file), which is enough for :func:`check_config` to go on to the providers.
    """
    name = _source_name(source)
    if isinstance(source, Mapping):
        raw: Mapping[str, Any] = source
    else:
        try:
            with Path(source).open("rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            return None, [f"{name}: invalid TOML: {exc}"]
        except OSError as exc:
            return None, [f"{name}: cannot read: {exc.strerror or exc}"]
    resolver = _EnvResolver(os.environ if env is None else env)
    errors: list[tuple[str, str]] = []
    sections: dict[str, Any] = {}
    known = [*_SECTIONS, "routes"]
    for key, value in raw.items():
        if key == "routes":
            continue
        section_type = _SECTIONS.get(key)
        if section_type is None:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
            errors.append((key, f"unknown section{hint}"))
            continue
        # Provider tables are resolved when they are structured (structure_settings).
        resolved = value if key == "providers" else resolver.resolve(value, key)
        try:
            sections[key] = _converter().structure(resolved, section_type)
        except Exception as exc:
            errors += _flatten(exc, key)
    routes: dict[int, RouteConfig] = {}
    raw_routes = resolver.resolve(raw.get("routes", []), "routes")
    if isinstance(raw_routes, list):
        for i, item in enumerate(raw_routes):
            try:
                routes[i] = _converter().structure(item, RouteConfig)
            except Exception as exc:
                errors += _flatten(exc, f"routes[{i}]")
        errors += _check_routes(routes)
        if len(routes) != len(raw_routes):
            routes = {}
    else:
        errors.append(("routes", "expected an array of tables ([[routes]])"))
    raw_providers = raw.get("providers", {})
    if isinstance(raw_providers, Mapping):
        errors += _check_providers(raw_providers)
    errors = resolver.errors + [e for e in errors if not resolver.failed(e[0])]
    messages = [_scrub(f"{p}: {m}", resolver.secrets) for p, m in errors]
    config = Config(**sections, routes=tuple(routes.values()), source=name, env=env)
    return config, messages


_SECTIONS: Final[Mapping[str, Any]] = {
    "store": StoreConfig,
    "plugins": PluginsConfig,
    "checkout": CheckoutConfig,
    "outbox": OutboxConfig,
    "worker": WorkerConfig,
    "providers": Mapping[str, Mapping[str, Any]],
}


def _check_providers(providers: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"providers.{name}", f"provider names match {_PROVIDER_NAME.pattern}")
        for name in providers
        if not _PROVIDER_NAME.match(name)
    ]


def _check_routes(routes: Mapping[int, RouteConfig]) -> list[tuple[str, str]]:
    """Rules across routes; *routes* maps index in the file to each valid route."""
    errors: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, route in routes.items():
        if not route.name.strip():
            errors.append((f"routes[{i}].name", "must not be empty"))
        elif route.name in seen:
            errors.append(
                (f"routes[{i}].name", f"duplicate route name (also routes[{seen[route.name]}])")
            )
        else:
            seen[route.name] = i
        if not route.use:
            errors.append((f"routes[{i}].use", "name at least one provider"))
    return errors


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


# --- env: references ------------------------------------------------------------------


class _EnvStr(str):
    """A string read from an environment variable: never echoed in messages."""

    var: str


class _EnvResolver:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[tuple[str, str]] = []
        self.secrets: list[str] = []

    def resolve(self, value: Any, path: str) -> Any:
        if isinstance(value, str) and value.startswith("env:"):
            return self._lookup(value, path)
        if isinstance(value, Mapping):
            return {key: self.resolve(item, _join(path, str(key))) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def failed(self, path: str) -> bool:
        """Whether *path* is, or lies under, a reference that could not be resolved."""
        return any(
            path == failed or path.startswith((f"{failed}.", f"{failed}["))
            for failed, _ in self.errors
        )

    def _lookup(self, reference: str, path: str) -> Any:
        var = reference[len("env:") :].strip()
        if not _ENV_NAME.match(var):
            self.errors.append((path, "'env:' must be followed by an environment variable name"))
            return reference
        value = self.env.get(var)
        if value is None:
            self.errors.append((path, f"environment variable {var} is not set"))
            return reference
        if value == "":
            self.errors.append((path, f"environment variable {var} is empty"))
            return reference
        if len(value) >= _MIN_SCRUB:
            self.secrets.append(value)
        out = _EnvStr(value)
        out.var = var
        return out


def _secret_values(table: Mapping[str, Any], settings_class: type[ProviderSettings]) -> list[str]:
    """Strings given for the fields *settings_class* marks secret."""
    out: list[str] = []
    for field in attrs.fields(settings_class):
        if not field.metadata.get("secret"):
            continue
        value = table.get(field.alias or field.name)
        items = value if isinstance(value, list | tuple) else [value]
        out += [v for v in items if isinstance(v, str) and len(v) >= _MIN_SCRUB]
    return out


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


# --- errors -------------------------------------------------------------------------


class _Invalid(ValueError):
    """A value of the wrong shape; the message is for people and holds no value."""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _flatten(exc: BaseException, path: str) -> list[tuple[str, str]]:
    """``(path, message)`` for every leaf of a cattrs validation error."""
    out: list[tuple[str, str]] = []
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            out += _flatten(sub, _join(path, note.name))
        for sub in without:
            if isinstance(sub, ForbiddenExtraKeysError):
                out += _unknown_keys(sub, path)
            else:
                out += _flatten(sub, path)
    elif isinstance(exc, IterableValidationError):
        with_index, without_index = exc.group_exceptions()
        for sub, inote in with_index:
            index = inote.index
            sub_path = f"{path}[{index}]" if isinstance(index, int) else _join(path, str(index))
            out += _flatten(sub, sub_path)
        for sub in without_index:
            out += _flatten(sub, path)
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
        out.append((_join(path, key), f"{what}{hint}"))
    return out


def _leaf(exc: BaseException, path: str) -> tuple[str, str]:
    if isinstance(exc, _Invalid):
        return path, str(exc)
    if isinstance(exc, KeyError):
        return path, "missing required setting"
    if isinstance(exc, ValidationError):
        # An attrs validator of a settings class: the error names its field.
        return _join(path, exc.field), exc.reason
    if isinstance(exc, PasarelaError):
        return path, exc.message
    if isinstance(exc, ValueError | TypeError) and exc.args and isinstance(exc.args[0], str):
        return path, f"invalid value: {exc.args[0]}"
    return path, f"invalid value ({type(exc).__name__})"


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


def _expected(what: str, value: object) -> _Invalid:
    if isinstance(value, _EnvStr):
        return _Invalid(f"expected {what} (from environment variable {value.var})")
    return _Invalid(f"expected {what}, got {_kind(value)}")


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
    if isinstance(value, _EnvStr) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise _expected("an integer", value)


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, _EnvStr):
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
    if isinstance(value, _EnvStr) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _expected("true or false", value)


def _structure_timedelta(value: object, _: type) -> timedelta:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            if not isinstance(value, _EnvStr):
                raise _Invalid(str(exc)) from None
    raise _expected("a duration like '48h', '30m', '2d' or '90s'", value)


def _structure_money(value: object, _: type) -> Money:
    if isinstance(value, str):
        try:
            return Money.parse(value)
        except ValidationError as exc:
            if isinstance(value, _EnvStr):
                raise _expected("an amount like 'PEN 0.50'", value) from None
            raise _Invalid(f"expected an amount like 'PEN 0.50': {exc.reason}") from None
    raise _expected("an amount like 'PEN 0.50'", value)


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _structure_literal(value: object, t: Any) -> object:
    choices = get_args(t)
    plain = str(value) if isinstance(value, str) else value
    if not isinstance(plain, bool) and plain in choices:
        return plain
    listed = " or ".join(repr(choice) for choice in choices)
    if isinstance(value, _EnvStr):
        raise _expected(listed, value)
    raise _Invalid(f"expected {listed}")


def _is_enum(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, enum.Enum)


def _structure_enum(value: object, t: type[enum.Enum]) -> enum.Enum:
    try:
        return t(value)
    except ValueError:
        listed = ", ".join(repr(member.value) for member in t)
        if isinstance(value, _EnvStr):
            raise _expected(f"one of {listed}", value) from None
        raise _Invalid(f"expected one of {listed}") from None


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
def _converter() -> cattrs.Converter:
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
