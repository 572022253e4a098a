"""The provider registry: the installed provider classes, by name, and where each came from.

Plugins fill a :class:`ProviderRegistry` from their ``pasarela_register_providers``
hook (``register.add(PlinProvider)``); the rest of pasarela reads it. Registration
is strict, because a payments system must not silently lose a provider:

- a class that is not a :class:`~pasarela.provider.Provider` subclass, or lacks
  ``name``, ``display_name``, ``methods`` or ``currencies``, or whose name is not
  ``^[a-z][a-z0-9_]*$``, raises :class:`~pasarela.errors.PluginLoadError` naming the
  plugin (:func:`provider_class_problem` says why);
- two classes under one name raise :class:`~pasarela.errors.DuplicateProviderError`
  naming both plugins and their distributions.

This is part of the contract an adapter sees; plugin discovery and the hook calls
live in :mod:`pasarela.plugins`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final, NamedTuple

from pasarela.errors import DuplicateProviderError, PluginLoadError, ProviderNotFoundError
from pasarela.model import Method
from pasarela.provider import Provider


__all__ = [
    "DISABLE_ENV",
    "MERCHANT_NAME",
    "MERCHANT_SEPARATOR",
    "PROVIDER_NAME",
    "DistributionResolver",
    "ProviderOrigin",
    "ProviderRegistry",
    "merchant_of",
    "provider_class_problem",
    "qualified",
]

#: The environment variable naming plugins (entry point names) never to load; the
#: duplicate-name error points to it, and :mod:`pasarela.plugins` reads it.
DISABLE_ENV: Final = "PASARELA_DISABLE_PLUGINS"

#: What a provider's ``name`` must match.
PROVIDER_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")

#: What a merchant's name must match (``[merchants.NAME]``, ``merchants.create``).
MERCHANT_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

#: Between a merchant's name and its account's in the account's full name.
MERCHANT_SEPARATOR: Final = "."


def qualified(merchant: str, account: str) -> str:
    """The full name of *merchant*'s *account* (``bodega.pagoefectivo``), as payments,
    deliveries, exchanges and ``/webhooks/{account}`` name it; the implicit merchant's
    (``""``) accounts keep their own names."""
    return f"{merchant}{MERCHANT_SEPARATOR}{account}" if merchant else account


def merchant_of(account: str) -> str:
    """The merchant an account's full name belongs to (``""``: the implicit one)."""
    merchant, separator, _ = account.partition(MERCHANT_SEPARATOR)
    return merchant if separator else ""


#: ``plugin name -> (distribution, version)``, each None where unknown.
DistributionResolver = Callable[[str], tuple[str | None, str | None]]


class ProviderOrigin(NamedTuple):
    """Where a provider came from: ``(plugin, distribution, version)``.

    Each part is None where unknown (a class added directly, or a plugin object
    that belongs to no installed distribution).
    """

    plugin: str | None
    distribution: str | None
    version: str | None


def _no_distribution(plugin: str) -> tuple[str | None, str | None]:
    return None, None


class ProviderRegistry:
    """The installed provider classes, by name.

    Plugins fill it from ``pasarela_register_providers``; everything else reads it.
    *resolve_distribution* tells which distribution a plugin came from (for
    :meth:`origin` and for error messages); without it, none is known.
    """

    def __init__(self, *, resolve_distribution: DistributionResolver | None = None) -> None:
        self._classes: dict[str, type[Provider]] = {}
        self._plugins: dict[str, str | None] = {}
        self._resolve = resolve_distribution or _no_distribution
        self._current_plugin: str | None = None

    @contextmanager
    def on_behalf_of(self, plugin: str | None) -> Iterator[None]:
        """Within the block, :meth:`add` without ``plugin=`` registers for *plugin*.

        The plugin manager wraps each ``pasarela_register_providers``
        implementation in it, so a plugin's classes are recorded as its own.
        """
        previous, self._current_plugin = self._current_plugin, plugin
        try:
            yield
        finally:
            self._current_plugin = previous

    def add(self, provider_class: type[Provider], *, plugin: str | None = None) -> type[Provider]:
        """Register *provider_class* under its ``name`` and return it.

        :param provider_class: a :class:`~pasarela.provider.Provider` subclass.
        :param plugin: the registering plugin's name; inside the hook it defaults to
            the plugin whose hook is running (:meth:`on_behalf_of`).
        :raises PluginLoadError: the class is not a Provider subclass, or lacks a
            required class variable, or its name is not ``^[a-z][a-z0-9_]*$``.
        :raises DuplicateProviderError: another class has that name already.
        """
        plugin = plugin if plugin is not None else self._current_plugin
        problem = provider_class_problem(provider_class)
        if problem is not None:
            label = getattr(provider_class, "__qualname__", repr(provider_class))
            raise PluginLoadError(
                f"cannot register {label}: {problem}",
                plugin=plugin or str(getattr(provider_class, "__module__", "?")),
                distribution=self._resolve(plugin)[0] if plugin else None,
            )
        name = provider_class.name
        if self._classes.get(name) is provider_class:
            return provider_class  # the same class announced twice (module and object)
        if name in self._classes:
            first = self._describe(self._plugins[name], self._classes[name])
            second = self._describe(plugin, provider_class)
            raise DuplicateProviderError(
                f"provider name {name!r} is registered twice: by {first} and by {second}; "
                f"uninstall one, or disable one with {DISABLE_ENV}"
            )
        self._classes[name] = provider_class
        self._plugins[name] = plugin
        return provider_class

    def get(self, name: str) -> type[Provider]:
        """The provider class called *name*.

        :raises ProviderNotFoundError: naming the installed providers.
        """
        try:
            return self._classes[name]
        except KeyError:
            pass
        installed = ", ".join(self.names()) or "none"
        import difflib  # noqa: PLC0415 - for this error only

        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ProviderNotFoundError(
            f"no provider named {name!r} is installed (installed: {installed}){hint}"
        )

    def names(self) -> list[str]:
        """The registered provider names, sorted."""
        return sorted(self._classes)

    def items(self) -> list[tuple[str, type[Provider]]]:
        """``(name, class)`` pairs sorted by name."""
        return [(name, self._classes[name]) for name in self.names()]

    def origin(self, name: str) -> ProviderOrigin:
        """The plugin, distribution and version that registered *name*."""
        self.get(name)
        plugin = self._plugins[name]
        if plugin is None:
            return ProviderOrigin(None, None, None)
        distribution, version = self._resolve(plugin)
        return ProviderOrigin(plugin, distribution, version)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"<ProviderRegistry {self.names()}>"

    def _describe(self, plugin: str | None, cls: type[Provider]) -> str:
        where = f"{cls.__module__}.{cls.__qualname__}"
        if plugin is None:
            return where
        distribution, version = self._resolve(plugin)
        if distribution:
            dist = f"{distribution} {version}" if version else distribution
            return f"plugin {plugin!r} ({dist}: {where})"
        return f"plugin {plugin!r} ({where})"


def provider_class_problem(cls: object) -> str | None:
    """Why *cls* cannot be registered as a provider, or None when it can."""
    if not isinstance(cls, type) or not issubclass(cls, Provider):
        return "not a subclass of pasarela.provider.Provider"
    missing = [
        attr
        for attr in ("name", "display_name", "methods", "currencies")
        if not hasattr(cls, attr)
    ]
    if missing:
        return f"missing class variable(s) {', '.join(missing)}"
    if not isinstance(cls.name, str) or not PROVIDER_NAME.match(cls.name):
        return f"name {cls.name!r} must match {PROVIDER_NAME.pattern}"
    if not isinstance(cls.display_name, str) or not cls.display_name.strip():
        return "display_name must be a non-empty string"
    methods: object = cls.methods
    if isinstance(methods, str) or not isinstance(methods, Iterable) or not methods:
        return "methods must be a non-empty set of pasarela.model.Method"
    for method in methods:
        try:
            Method(method)
        except ValueError:
            return f"methods: {method!r} is not one of {', '.join(m.value for m in Method)}"
    currencies: object = cls.currencies
    if isinstance(currencies, str) or not isinstance(currencies, Iterable) or not currencies:
        return "currencies must be a non-empty set of ISO 4217 codes"
    for currency in currencies:
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            return f"currencies: {currency!r} is not an upper-case ISO 4217 code"
    return None
