"""Loading: reading ``pasarela.toml`` (or a parsed mapping) into a :class:`Config`,
collecting every error outside the provider tables, and :func:`check_config`."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from pasarela.config.env import EnvResolver, scrub
from pasarela.config.errors import InvalidConfigError, flatten
from pasarela.config.relays import RelayConfig
from pasarela.config.sections import (
    AlertsConfig,
    AuditConfig,
    CheckoutConfig,
    Config,
    EventsConfig,
    MerchantConfig,
    PagesConfig,
    PluginsConfig,
    PrivacyConfig,
    RouteConfig,
    StoreConfig,
    WorkerConfig,
    branding_problems,
    key_problem,
    resolve_store_url,
)
from pasarela.config.structure import CONVERTER
from pasarela.provider import ProviderSettings
from pasarela.registry import MERCHANT_NAME


_PROVIDER_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")


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
    if config is None:
        return errors
    if isinstance(config.merchants, MerchantTables):  # every merchant, eagerly
        for name in config.merchants:
            errors = errors + config.merchants.problems(name)
    if settings_classes is None:
        return errors
    try:
        config.all_provider_settings(settings_classes)
    except InvalidConfigError as exc:
        errors = errors + exc.errors
    return errors


def read_config(source: str | os.PathLike[str] | Mapping[str, Any], *,
                env: Mapping[str, str] | None = None) -> tuple[Config | None, list[str]]:
    """The configuration as far as it reads, and every problem found outside the
    provider and merchant tables (:func:`load_config` raises them instead). None when
    the file cannot be read or parsed; with problems, a section that failed keeps
    its defaults. For ``pasarela config check``, which goes on to check the rest."""
    return _load(source, env)


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
    resolver = EnvResolver(os.environ if env is None else env)
    errors: list[tuple[str, str]] = []
    sections: dict[str, Any] = {}
    known = [*_SECTIONS, "routes", "merchants"]
    for key, value in raw.items():
        if key in ("routes", "merchants"):
            continue
        section_type = _SECTIONS.get(key)
        if key in _RENAMED:
            errors.append((key, f"renamed to [{_RENAMED[key]}]"))
            continue
        if section_type is None:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
            errors.append((key, f"unknown section{hint}"))
            continue
        # Provider tables are resolved when they are structured (structure_settings).
        resolved = value if key == "providers" else resolver.resolve(value, key)
        try:
            sections[key] = CONVERTER().structure(resolved, section_type)
        except Exception as exc:
            errors += flatten(exc, key)
    routes: dict[int, RouteConfig] = {}
    raw_routes = resolver.resolve(raw.get("routes", []), "routes")
    if isinstance(raw_routes, list):
        for i, item in enumerate(raw_routes):
            try:
                routes[i] = CONVERTER().structure(item, RouteConfig)
            except Exception as exc:
                errors += flatten(exc, f"routes[{i}]")
        errors += _check_routes(routes)
        if len(routes) != len(raw_routes):
            routes = {}
    else:
        errors.append(("routes", "expected an array of tables ([[routes]])"))
    privacy = sections.get("privacy")
    if privacy is not None:
        errors += [(f"privacy.keys[{i}]", problem) for i, key in enumerate(privacy.keys)
                   if (problem := key_problem(key)) is not None]
    raw_providers = raw.get("providers", {})
    if isinstance(raw_providers, Mapping):
        errors += _check_providers(raw_providers)
    merchants, merchant_errors = _load_merchants(raw.get("merchants", {}), env, name)
    errors += merchant_errors
    if merchants:
        sections["merchants"] = merchants
    errors = resolver.errors + [e for e in errors if not resolver.failed(e[0])]
    messages = [scrub(f"{p}: {m}", resolver.secrets) for p, m in errors]
    if name is not None:
        store = sections.get("store", StoreConfig())
        sections["store"] = attrs.evolve(
            store, url=resolve_store_url(store.url, Path(name).resolve().parent))
    config = Config(**sections, routes=tuple(routes.values()), source=name, env=env)
    return config, messages


#: Sections that have a new name (the old name is refused with the new one).
_RENAMED: Final[Mapping[str, str]] = {"outbox": "events"}

_SECTIONS: Final[Mapping[str, Any]] = {
    "store": StoreConfig,
    "plugins": PluginsConfig,
    "checkout": CheckoutConfig,
    "events": EventsConfig,
    "worker": WorkerConfig,
    "pages": PagesConfig,
    "alerts": AlertsConfig,
    "audit": AuditConfig,
    "privacy": PrivacyConfig,
    "relays": tuple[RelayConfig, ...],
    "providers": Mapping[str, Mapping[str, Any]],
}


def _load_merchants(raw: Any, env: Mapping[str, str] | None, source: str | None
                    ) -> tuple[MerchantTables | None, list[tuple[str, str]]]:
    """The ``[merchants.NAME]`` tables, kept raw (:class:`MerchantTables` structures
    each one when it is first read), and the errors found without structuring them:
    a name that is not a merchant's, a value that is not a table."""
    if not isinstance(raw, Mapping):
        return None, [("merchants", "expected a table of merchants ([merchants.NAME])")]
    tables: dict[str, Mapping[str, Any]] = {}
    errors: list[tuple[str, str]] = []
    for name, table in raw.items():
        path = f"merchants.{name}"
        if not MERCHANT_NAME.match(name):
            errors.append((path, f"merchant names match {MERCHANT_NAME.pattern}"))
        elif not isinstance(table, Mapping):
            errors.append((path, "expected a table"))
        else:
            tables[name] = table
    return (MerchantTables(tables, env=env, source=source) if tables else None), errors


class MerchantTables(Mapping[str, MerchantConfig]):
    """The ``[merchants.NAME]`` tables of a configuration, each structured (``env:``
    references resolved, routes and branding checked) when it is first read, then kept.

    A platform may declare thousands of merchants; structuring them all would cost the
    start what only their first payments need. Reading a broken merchant raises
    :class:`InvalidConfigError` listing its problems under ``merchants.NAME`` (each
    time: it is never kept half made); :meth:`problems` lists them without raising
    (``pasarela config check`` asks every merchant). Names, ``len`` and ``in`` never
    structure anything. Structuring is pure, so two threads reading one merchant at
    once at worst both structure it and keep equal results.
    """

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], *,
                 env: Mapping[str, str] | None = None, source: str | None = None) -> None:
        self._raw = dict(tables)
        self._env = env
        self._source = source
        self._done: dict[str, MerchantConfig] = {}

    def raw(self, name: str) -> Mapping[str, Any]:
        """Merchant *name*'s table as written (``env:`` not resolved)."""
        return self._raw[name]

    def _structure(self, name: str) -> tuple[MerchantConfig | None, list[str]]:
        resolver = EnvResolver(os.environ if self._env is None else self._env)
        merchant, errors = merchant_from_table(self._raw[name], resolver, f"merchants.{name}")
        errors = resolver.errors + [e for e in errors if not resolver.failed(e[0])]
        return merchant, [scrub(f"{p}: {m}", resolver.secrets) for p, m in errors]

    def problems(self, name: str) -> list[str]:
        """Every problem of merchant *name*'s table (empty: it structures)."""
        if name in self._done:
            return []
        merchant, problems = self._structure(name)
        if merchant is not None and not problems:
            self._done[name] = merchant
        return problems

    def __getitem__(self, name: str) -> MerchantConfig:
        done = self._done.get(name)
        if done is not None:
            return done
        if name not in self._raw:
            raise KeyError(name)
        merchant, problems = self._structure(name)
        if problems or merchant is None:
            raise InvalidConfigError(problems, source=self._source)
        self._done[name] = merchant
        return merchant

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MerchantTables):
            return self._raw == other._raw
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<MerchantTables: {len(self._raw)} merchants>"


def merchant_from_table(table: Any, resolver: EnvResolver, path: str
                        ) -> tuple[MerchantConfig | None, list[tuple[str, str]]]:
    """One merchant's table structured (``[merchants.NAME]`` or
    ``merchants.create``'s arguments), with every error under *path*."""
    if not isinstance(table, Mapping):
        return None, [(path, "expected a table")]
    errors: list[tuple[str, str]] = []
    providers = table.get("providers", {})
    if not isinstance(providers, Mapping):
        errors.append((f"{path}.providers", "expected a table of accounts"))
        providers = {}
    errors += [(f"{path}.{p}", m) for p, m in _check_providers(providers)]
    routes: list[RouteConfig] = []
    raw_routes = resolver.resolve(table.get("routes", []), f"{path}.routes")
    if isinstance(raw_routes, list):
        valid: dict[int, RouteConfig] = {}
        for i, item in enumerate(raw_routes):
            try:
                valid[i] = CONVERTER().structure(item, RouteConfig)
            except Exception as exc:
                errors += flatten(exc, f"{path}.routes[{i}]")
        errors += [(f"{path}.{p}", m) for p, m in _check_routes(valid)]
        routes = list(valid.values())
    else:
        errors.append((f"{path}.routes", "expected an array of tables"))
    rest = resolver.resolve({k: v for k, v in table.items() if k not in ("providers", "routes")},
                            path)
    if isinstance(rest, Mapping):
        bad = branding_problems(rest)
        errors += [(f"{path}.{name}", message) for name, message in bad]
        rest = {k: v for k, v in rest.items() if k not in {name for name, _ in bad}}
    try:
        merchant = CONVERTER().structure(rest, MerchantConfig)
    except Exception as exc:
        errors += flatten(exc, path)
        return None, errors
    return attrs.evolve(merchant, providers=dict(providers), routes=tuple(routes)), errors


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
