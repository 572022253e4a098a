"""Plugin discovery, the plugin manager and hook tracing.

A plugin is a module named by an entry point in the ``pasarela`` group, or any
object handed to :meth:`PasarelaPlugins.register`. The providers plugins announce
land in a :class:`~pasarela.registry.ProviderRegistry` (:meth:`PasarelaPlugins.providers`).
Discovery is strict, because a payments system must not silently lose a provider:

- a module that fails to import raises :class:`~pasarela.errors.PluginLoadError`
  naming the entry point and its distribution, ``from`` the original error;
- a hook implementation that matches no specification (a misspelled
  ``pasarela_register_provider``) fails :meth:`pluggy.PluginManager.check_pending`
  and is reported the same way;
- two plugins registering one provider name raise
  :class:`~pasarela.errors.DuplicateProviderError` naming both.

Environment controls (entry point names, comma-separated):

- ``PASARELA_LOAD_PLUGINS``: load only these entry points (empty: none);
- ``PASARELA_DISABLE_PLUGINS``: never load these (``pm.set_blocked``);
- ``PASARELA_TRACE_PLUGINS=1``: log every hook call at debug level.

Nothing is discovered at import time; call :func:`get_plugin_manager`.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache, reduce
from typing import TYPE_CHECKING, Any, Final, Protocol

import pluggy

from pasarela import hookspecs, relays
from pasarela.errors import PasarelaError, PluginError, PluginLoadError
from pasarela.registry import DISABLE_ENV, ProviderRegistry


if TYPE_CHECKING:
    from importlib import metadata

    from pasarela.events import LifecycleEvent
    from pasarela.logs import EventLogger
    from pasarela.model import Method, Order


__all__ = [
    "ENTRY_POINT_GROUP",
    "LOAD_ENV",
    "TRACE_ENV",
    "PasarelaPlugins",
    "get_plugin_manager",
]



@cache
def _log() -> EventLogger:
    """The module's logger; pasarela.logs (and logging) are imported when it first logs."""
    from pasarela.logs import get_logger  # noqa: PLC0415

    return get_logger("pasarela.plugins")


#: The entry point group that provider distributions declare.
ENTRY_POINT_GROUP: Final = hookspecs.PROJECT_NAME
#: Load only these entry points (comma-separated; empty: none).
LOAD_ENV: Final = "PASARELA_LOAD_PLUGINS"
#: Log every hook call at debug level when ``1``.
TRACE_ENV: Final = "PASARELA_TRACE_PLUGINS"


# --- the plugin manager facade ---------------------------------------------------


class PasarelaPlugins:
    """A typed facade over :class:`pluggy.PluginManager`.

    Build it with :func:`get_plugin_manager`. Every hook call goes through a method
    here, with keyword arguments.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        #: entry point name -> (distribution, version), or the entry point to read them
        #: from on first use, for plugins from entry points.
        self._distributions: dict[str, tuple[str | None, str | None] | _EntryPoint] = {}

    @property
    def hook(self) -> pluggy.HookRelay:
        """The raw hook relay (``pm.hook``)."""
        return self.pm.hook

    # --- registration -------------------------------------------------------------

    def register(self, obj: object, name: str | None = None) -> str | None:
        """Register a plugin object (a module, a class or an instance).

        Returns the name it was registered under, or None if that name is blocked.

        :raises PluginLoadError: its hook implementations do not match the
            specifications (unknown hook, unknown argument), it implements no
            pasarela hook at all, or the name is taken.
        """
        registered = self._register(obj, name, distribution=None)
        self._check_pending()
        return registered

    def load_module(self, module: str) -> str | None:
        """Import the module *module* (dotted name) and register it.

        For the ``[plugins] modules`` list of the configuration.
        """
        if self.pm.is_blocked(module):
            return None
        try:
            obj = importlib.import_module(module)
        except Exception as exc:
            raise PluginLoadError(
                f"cannot import module {module!r}: {type(exc).__name__}: {exc}", plugin=module
            ) from exc
        if self.pm.is_registered(obj):
            return self.pm.get_name(obj)
        return self.register(obj, name=module)

    def load_entry_points(self, env: Mapping[str, str] | None = None) -> None:
        """Import and register every entry point of the ``pasarela`` group.

        Honours ``PASARELA_LOAD_PLUGINS`` (only these) from *env* (default
        ``os.environ``); names blocked (``PASARELA_DISABLE_PLUGINS``, read when the
        manager was built) are skipped without being imported.

        :raises PluginLoadError: an entry point failed to import or to validate, two
            distributions declare one name, or a name listed in
            ``PASARELA_LOAD_PLUGINS`` is not installed.
        """
        env = os.environ if env is None else env
        allow = _names(env.get(LOAD_ENV))
        entry_points = sorted(_entry_points(ENTRY_POINT_GROUP), key=lambda e: e.name)
        seen: dict[str, _EntryPoint] = {}
        for ep in entry_points:
            if allow is not None and ep.name not in allow:
                continue
            if self.pm.is_blocked(ep.name):
                _log().debug("plugin_disabled", plugin=ep.name)
                continue
            if ep.name in seen:
                raise PluginLoadError(
                    f"entry point name is declared by two distributions: "
                    f"{_of(seen[ep.name])[0]} and {_of(ep)[0]}",
                    plugin=ep.name,
                    distribution=_of(ep)[0],
                )
            seen[ep.name] = ep
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"cannot import {ep.value!r}: {type(exc).__name__}: {exc}",
                    plugin=ep.name,
                    distribution=_of(ep)[0],
                ) from exc
            # The distribution's name and version are read when asked for (errors,
            # origins): reading every plugin's metadata was a tenth of discovery.
            self._register(obj, ep.name, distribution=ep)
        if allow:
            for missing in sorted(allow - set(seen)):
                if not self.pm.is_blocked(missing):
                    raise PluginLoadError(
                        f"listed in {LOAD_ENV} but no entry point of that name is installed "
                        f"in the {ENTRY_POINT_GROUP!r} group",
                        plugin=missing,
                    )
        self._check_pending()

    def unregister(self, name: str) -> None:
        """Remove the plugin registered as *name*."""
        self.pm.unregister(name=name)
        self._distributions.pop(name, None)

    def plugin_names(self) -> list[str]:
        """Names of the registered plugins, sorted."""
        return sorted(name for name, plugin in self.pm.list_name_plugin() if plugin is not None)

    def distribution(self, plugin: str) -> tuple[str | None, str | None]:
        """``(distribution, version)`` that *plugin* came from, where known."""
        known = self._distributions.get(plugin)
        if known is not None and not isinstance(known, tuple):
            known = self._distributions[plugin] = _of(known)
        if known is not None:
            return known
        obj = self.pm.get_plugin(plugin)
        if obj is None:
            return None, None
        module = obj.__name__ if isinstance(obj, types.ModuleType) else type(obj).__module__
        if isinstance(obj, type):
            module = obj.__module__
        return _distribution_of_module(module)

    # --- hooks --------------------------------------------------------------------

    def providers(self) -> ProviderRegistry:
        """A new registry filled by every ``pasarela_register_providers`` impl.

        :raises PluginLoadError: an implementation raised, naming the plugin.
        :raises DuplicateProviderError: two plugins registered the same name.
        """
        registry = ProviderRegistry(resolve_distribution=self.distribution)
        caller = self.pm.hook.pasarela_register_providers
        for impl in _call_order(caller):
            plugin = self._name_of(impl.plugin)
            try:
                with registry.on_behalf_of(plugin):
                    _call_impl(impl, {"register": registry})
            except PasarelaError:
                raise
            except Exception as exc:
                distribution, _ = self.distribution(plugin)
                raise PluginLoadError(
                    f"pasarela_register_providers failed: {type(exc).__name__}: {exc}",
                    plugin=plugin,
                    distribution=distribution,
                ) from exc
        return registry

    def select_provider(
        self, *, order: Order, method: Method, candidates: Sequence[str]
    ) -> str | None:
        """The routing override's choice among *candidates*, or None to follow the rules.

        :raises PluginError: an implementation chose a name not among *candidates*.
        """
        chosen: object = self.pm.hook.pasarela_select_provider(
            order=order, method=method, candidates=tuple(candidates)
        )
        if chosen is None:
            return None
        if not isinstance(chosen, str) or chosen not in candidates:
            raise PluginError(
                f"pasarela_select_provider returned {chosen!r}, which is not one of the "
                f"candidates {list(candidates)}"
            )
        return chosen

    def payment_event(self, event: LifecycleEvent) -> list[str]:
        """Deliver *event* to every observer, each on its own.

        An observer that raises is logged (``observer_failed``) and the others still
        run. Returns the names of the plugins that raised.
        """
        return self._notify(
            "pasarela_payment_event",
            {"event": event},
            event_id=event.id,
            event_type=event.type,
            payment_id=event.payment_id,
        )

    def routing_decision(self, decision: Mapping[str, Any]) -> list[str]:
        """Deliver a routing *decision* to every observer, each on its own."""
        return self._notify("pasarela_routing_decision", {"decision": decision})

    def alert(self, alert: Mapping[str, Any]) -> list[str]:
        """Deliver an *alert* document (opened or resolved) to every observer of
        ``pasarela_alert``, each on its own."""
        return self._notify("pasarela_alert", {"alert": alert}, alert_id=alert.get("id"))

    # --- internals ----------------------------------------------------------------

    def _notify(self, hook_name: str, kwargs: Mapping[str, Any], **context: Any) -> list[str]:
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        failed: list[str] = []
        for impl in _call_order(caller):
            try:
                _call_impl(impl, kwargs)
            except Exception:
                plugin = self._name_of(impl.plugin)
                failed.append(plugin)
                _log().exception("observer_failed", plugin=plugin, hook=hook_name, **context)
        return failed

    def _register(
        self, obj: object, name: str | None, *,
        distribution: tuple[str | None, str | None] | _EntryPoint | None
    ) -> str | None:
        label = name or _label(obj)
        if name is not None and self.pm.is_blocked(name):
            return None
        try:
            registered = self.pm.register(obj, name=name)
        except pluggy.PluginValidationError as exc:
            message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise PluginLoadError(message, plugin=label,
                                  distribution=_dist_name(distribution)) from exc
        except ValueError as exc:
            raise PluginLoadError(
                f"cannot register: {exc}".splitlines()[0], plugin=label,
                distribution=_dist_name(distribution),
            ) from exc
        if registered is None:
            return None
        if not self.pm.get_hookcallers(obj):
            label = self._name_of(obj)
            self.pm.unregister(obj)
            raise PluginLoadError(
                "implements no pasarela hook (is each hook decorated with "
                "pasarela.hookspecs.hookimpl?)",
                plugin=label,
                distribution=_dist_name(distribution),
            )
        if distribution is not None:
            self._distributions[registered] = distribution
        return registered

    def _check_pending(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin = self._name_of(exc.plugin)
            distribution, _ = self.distribution(plugin)
            unknown = sorted(
                name
                for name, caller in vars(self.pm.hook).items()
                if not name.startswith("_")
                and not caller.has_spec()
                and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
            )
            self.pm.unregister(exc.plugin)
            hints = "; ".join(f"{name!r}{_hook_hint(name)}" for name in unknown)
            raise PluginLoadError(
                f"implements unknown hook {hints}", plugin=plugin, distribution=distribution
            ) from exc

    def _name_of(self, obj: object) -> str:
        """The plugin's registered name, or its module/class path when pluggy gave it
        a generated (numeric) name."""
        name = self.pm.get_name(obj)
        return name if name and not name.isdigit() else _label(obj)


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    plugins: Iterable[object] = (),
    env: Mapping[str, str] | None = None,
) -> PasarelaPlugins:
    """Build a plugin manager: hookspecs added, entry points and *plugins* registered.

    :param load_entrypoints: discover the ``pasarela`` entry point group (honouring
        ``PASARELA_LOAD_PLUGINS`` and ``PASARELA_DISABLE_PLUGINS``).
    :param plugins: further plugin objects to register (a host's observers).
    :param env: the environment to read the controls from (default ``os.environ``).
    :raises PluginLoadError: a plugin failed to import or to validate.
    """
    env = os.environ if env is None else env
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.add_hookspecs(relays)  # pasarela_register_relays (pasarela.relays)
    for name in sorted(_names(env.get(DISABLE_ENV)) or ()):
        pm.set_blocked(name)
    if env.get(TRACE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        pm.add_hookcall_monitoring(_trace_before, _trace_after)
    facade = PasarelaPlugins(pm)
    if load_entrypoints:
        facade.load_entry_points(env)
    for obj in plugins:
        facade.register(obj)
    return facade


# --- the entry point scan ---------------------------------------------------------


class _EntryPoint(Protocol):
    """What discovery reads of an entry point: :class:`importlib.metadata.EntryPoint`
    has it, and so has :class:`_ScannedEntryPoint`."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def dist(self) -> metadata.Distribution | None: ...
    def load(self) -> Any: ...


#: ``importlib.metadata.EntryPoint.pattern``: ``module``, ``module:attr.attr``, extras.
_ENTRY_POINT_VALUE: Final = re.compile(
    r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
)


class _ScannedEntryPoint:
    """An entry point found by :func:`_scan_entry_points`; its distribution (name and
    version, from the metadata folder it was read from) is read when asked for."""

    __slots__ = ("_path", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, path: str) -> None:
        self.name, self.value, self.group, self._path = name, value, group, path

    @property
    def dist(self) -> metadata.Distribution | None:
        import pathlib  # noqa: PLC0415 - for errors and origins only
        from importlib import metadata  # noqa: PLC0415

        return metadata.PathDistribution(pathlib.Path(self._path))

    def load(self) -> Any:
        """What ``importlib.metadata.EntryPoint.load`` gives: the module, or the named
        object in it."""
        match = _ENTRY_POINT_VALUE.match(self.value)
        if match is None:
            raise ValueError(f"not an entry point value: {self.value!r}")
        module = importlib.import_module(match.group("module"))
        return reduce(getattr, filter(None, (match.group("attr") or "").split(".")), module)


class _Unusual(Exception):
    """The scan met what only :mod:`importlib.metadata` reads right (a zip, an egg)."""


def _entry_points(group: str) -> Iterable[_EntryPoint]:
    """The installed entry points of *group*: what ``importlib.metadata.entry_points(
    group=group)`` gives, read without importing :mod:`importlib.metadata` (a fifth of
    discovery, with the email, zipfile and pathlib modules it imports) where the
    installation is the usual one: metadata folders in plain directories of
    ``sys.path``, no other finder of distributions. Anything else (zipped paths, eggs,
    an import hook that finds distributions) is read by :mod:`importlib.metadata`."""
    try:
        return list(_scan_entry_points(group))
    except _Unusual:
        from importlib import metadata  # noqa: PLC0415

        return list(metadata.entry_points(group=group))


def _scan_entry_points(group: str) -> Iterator[_ScannedEntryPoint]:
    """The entry points of *group*, distribution by distribution as
    ``importlib.metadata`` finds them: ``sys.path`` in order, each directory's
    ``*.dist-info`` and ``*.egg-info`` folders in listing order, the first of each
    normalized name only; ``entry_points.txt`` parsed as its ``Sectioned`` parser does.

    :raises _Unusual: at anything this scan does not read as importlib.metadata does.
    """
    from importlib.machinery import PathFinder  # noqa: PLC0415 - frozen, already imported

    if any(getattr(finder, "find_distributions", None) is not None and finder is not PathFinder
           for finder in sys.meta_path):
        raise _Unusual
    seen: set[str] = set()
    for root in sys.path:
        if os.path.basename(root).lower().endswith(".egg"):
            raise _Unusual
        try:
            children = os.listdir(root or ".")
        except OSError:
            if os.path.exists(root or "."):
                raise _Unusual from None  # a zip file, say
            continue
        for child in children:
            low = child.lower()
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            stem, _, ext = child.rpartition(".")
            if ext not in {"dist-info", "egg-info"}:
                raise _Unusual  # importlib names this one from its METADATA
            name = _normalize(stem.partition("-")[0])
            if name in seen:
                continue
            seen.add(name)
            path = os.path.join(root, child)
            try:
                with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
                continue
            if f"[{group}]" in text:
                yield from _section(text, group, path)


def _normalize(name: str) -> str:
    """``importlib.metadata.Prepared.normalize`` (a name with no ``-``, ``.`` or ``__``,
    as installers write them, is only lower-cased by it)."""
    if "-" not in name and "." not in name and "__" not in name:
        return name.lower()
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _section(text: str, group: str, path: str) -> Iterator[_ScannedEntryPoint]:
    section: str | None = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section != group:
            continue
        name, equals, value = line.partition("=")
        if not equals:
            raise _Unusual  # importlib.metadata refuses it; let it say so
        yield _ScannedEntryPoint(name.strip(), value.strip(), group, path)


# --- helpers ----------------------------------------------------------------------


def _names(value: str | None) -> set[str] | None:
    """Parse a comma-separated list; None when the variable is unset."""
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _of(ep: _EntryPoint) -> tuple[str | None, str | None]:
    """(distribution, version) that declares *ep*, where known."""
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else (None, None)


def _dist_name(
    distribution: tuple[str | None, str | None] | _EntryPoint | None,
) -> str | None:
    if distribution is None:
        return None
    if not isinstance(distribution, tuple):
        return _of(distribution)[0]
    return distribution[0]


def _label(obj: object) -> str:
    if isinstance(obj, types.ModuleType | type):
        return obj.__name__
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _hook_hint(name: str) -> str:
    """Suggest the closest specified hook for an unknown hook *name*."""
    known = [n for n in dir(hookspecs) if n.startswith("pasarela_")]
    import difflib  # noqa: PLC0415 - for this error only

    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known hooks: {', '.join(known)})"


def _call_order(caller: pluggy.HookCaller) -> list[pluggy.HookImpl]:
    """The implementations in the order pluggy calls them (LIFO, tryfirst first)."""
    return [
        impl
        for impl in reversed(caller.get_hookimpls())
        if not (impl.hookwrapper or impl.wrapper)
    ]


def _call_impl(impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> object:
    return impl.function(*[kwargs[arg] for arg in impl.argnames])


@cache
def _packages() -> Mapping[str, list[str]]:
    from importlib import metadata  # noqa: PLC0415 - only for a plugin object's origin

    return metadata.packages_distributions()


def _distribution_of_module(module: str) -> tuple[str | None, str | None]:
    """The distribution that provides *module*: from installed file lists, or else
    the distribution named like its top-level package (``pasarela_plin`` is
    ``pasarela-plin``), which also finds editable installs."""
    from importlib import metadata  # noqa: PLC0415 - only for a plugin object's origin

    top = module.partition(".")[0]
    for name in [*_packages().get(top, []), top]:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        return dist.name, dist.version
    return None, None


def _trace_before(
    hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
) -> None:
    _log().debug("hook_call", hook=hook_name, plugins=[impl.plugin_name for impl in hook_impls])


def _trace_after(
    outcome: pluggy.Result[object],
    hook_name: str,
    hook_impls: Sequence[pluggy.HookImpl],
    kwargs: Mapping[str, object],
) -> None:
    _log().debug("hook_done", hook=hook_name, failed=outcome.exception is not None)
