"""Plugin discovery, the provider registry and the plugin manager facade.

The discovery tests build real distributions from ``tests/plugin_fixtures/`` (once
per session), install each into its own ``pip install --target`` folder, and run
discovery in a subprocess whose ``PYTHONPATH`` holds the folders a test needs.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import pasarela.plugins
from pasarela.errors import (
    DuplicateProviderError,
    ErrorCode,
    PluginError,
    PluginLoadError,
    ProviderNotFoundError,
    ProviderValidationError,
    RateLimitedError,
    SignatureInvalidError,
)
from pasarela.events import LifecycleEvent
from pasarela.hookspecs import hookimpl
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.next_action import ScanQr
from pasarela.plugins import get_plugin_manager
from pasarela.provider import CreateRequest, Ineligibility, Provider, WebhookHeaders
from pasarela.registry import DISABLE_ENV, ProviderOrigin, ProviderRegistry
from pasarela.testing.helpers import capture_events


FIXTURES = Path(__file__).parent / "plugin_fixtures"
DISTRIBUTIONS = ("throwaway", "broken", "misspelled", "copycat")


# --- provider classes used in-process ---------------------------------------------


class Cash(Provider):
    name = "cash_co"
    display_name = "Cash Co"
    methods = frozenset({Method.CASH})
    currencies = frozenset({"PEN"})


class Cards(Provider):
    name = "cards_co"
    display_name = "Cards Co"
    methods = frozenset({Method.CARD})
    currencies = frozenset({"PEN", "USD"})


def _provider(**attrs: Any) -> type[Provider]:
    base = {
        "name": "made_up",
        "display_name": "Made Up",
        "methods": frozenset({Method.WALLET}),
        "currencies": frozenset({"PEN"}),
    }
    base.update(attrs)
    namespace = {key: value for key, value in base.items() if value is not ...}
    return type("MadeUp", (Provider,), namespace)


class Registers:
    def __init__(self, *classes: type[Provider]) -> None:
        self.classes = classes

    @hookimpl
    def pasarela_register_providers(self, register: ProviderRegistry) -> None:
        for cls in self.classes:
            register.add(cls)


def _event() -> LifecycleEvent:
    return LifecycleEvent(
        id="evt_01",
        type="payment.succeeded",
        payment_id="pay_01",
        order_reference="pedido-1042",
        provider="cash_co",
        status="succeeded",
        amount=Money.parse("PEN 149.90"),
        occurred_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
    )


# --- ProviderRegistry ----------------------------------------------------------------


def test_registry_add_get_names_items() -> None:
    registry = ProviderRegistry()
    assert registry.add(Cards) is Cards
    registry.add(Cash, plugin="cash_plugin")
    assert registry.names() == ["cards_co", "cash_co"]
    assert registry.items() == [("cards_co", Cards), ("cash_co", Cash)]
    assert registry.get("cash_co") is Cash
    assert "cash_co" in registry
    assert "nope" not in registry
    assert len(registry) == 2
    assert list(registry) == ["cards_co", "cash_co"]


def test_registry_origin() -> None:
    registry = ProviderRegistry(resolve_distribution=lambda plugin: ("pasarela-cash", "1.2.0"))
    registry.add(Cash, plugin="cash_plugin")
    registry.add(Cards)
    assert registry.origin("cash_co") == ProviderOrigin("cash_plugin", "pasarela-cash", "1.2.0")
    assert registry.origin("cards_co") == (None, None, None)
    with pytest.raises(ProviderNotFoundError):
        registry.origin("nope")


def test_registry_get_unknown_lists_installed_and_suggests() -> None:
    registry = ProviderRegistry()
    registry.add(Cash)
    registry.add(Cards)
    with pytest.raises(ProviderNotFoundError) as info:
        registry.get("cash_c")
    message = str(info.value)
    assert "'cash_c'" in message
    assert "installed: cards_co, cash_co" in message
    assert "did you mean 'cash_co'?" in message
    assert isinstance(info.value, LookupError)


def test_registry_get_when_empty() -> None:
    with pytest.raises(ProviderNotFoundError, match="installed: none"):
        ProviderRegistry().get("stripe")


def test_duplicate_name_names_both_plugins() -> None:
    registry = ProviderRegistry()
    registry.add(Cash, plugin="first_plugin")
    impostor = _provider(name="cash_co", display_name="Impostor")
    with pytest.raises(DuplicateProviderError) as info:
        registry.add(impostor, plugin="second_plugin")
    message = str(info.value)
    assert "'cash_co'" in message
    assert "first_plugin" in message
    assert "second_plugin" in message
    assert registry.get("cash_co") is Cash


@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (object, "not a subclass"),
        (Provider, "missing class variable(s) name, display_name, methods, currencies"),
        (_provider(display_name=...), "missing class variable(s) display_name"),
        (_provider(currencies=...), "missing class variable(s) currencies"),
        (_provider(methods=...), "missing class variable(s) methods"),
        (_provider(name="Stripe"), "must match"),
        (_provider(name="2checkout"), "must match"),
        (_provider(name="pago-efectivo"), "must match"),
        (_provider(display_name=""), "display_name must be a non-empty string"),
        (_provider(methods=frozenset()), "methods must be a non-empty set"),
        (_provider(methods="cash"), "methods must be a non-empty set"),
        (_provider(methods=frozenset({"crypto"})),
         "'crypto' is not one of cash, wallet, card, bank_transfer"),
        (_provider(currencies=frozenset({"pen"})), "'pen' is not an upper-case ISO 4217 code"),
        (_provider(currencies=frozenset()), "currencies must be a non-empty set"),
    ],
)
def test_add_validates_the_class(cls: Any, reason: str) -> None:
    registry = ProviderRegistry()
    with pytest.raises(PluginLoadError) as info:
        registry.add(cls, plugin="bad_plugin")
    assert reason in str(info.value)
    assert info.value.plugin == "bad_plugin"
    assert len(registry) == 0


def test_add_accepts_method_values_as_strings() -> None:
    registry = ProviderRegistry()
    registry.add(_provider(methods=frozenset({"cash", Method.CARD})))
    assert registry.names() == ["made_up"]


def test_on_behalf_of_names_the_plugin_and_restores_the_previous_one() -> None:
    registry = ProviderRegistry()

    def failing_hook() -> None:
        with registry.on_behalf_of("inner_plugin"):
            registry.add(Cards)
            raise RuntimeError("the hook failed")

    with registry.on_behalf_of("outer_plugin"):
        registry.add(Cash)
        with pytest.raises(RuntimeError):
            failing_hook()
        registry.add(_provider(name="after_inner"))
    registry.add(_provider(name="outside"))
    assert registry.origin("cash_co").plugin == "outer_plugin"
    assert registry.origin("cards_co").plugin == "inner_plugin"
    assert registry.origin("after_inner").plugin == "outer_plugin"
    assert registry.origin("outside").plugin is None


def test_duplicate_name_says_how_to_disable_one() -> None:
    assert pasarela.plugins.DISABLE_ENV == DISABLE_ENV == "PASARELA_DISABLE_PLUGINS"
    reg = ProviderRegistry()
    reg.add(Cash)
    with pytest.raises(DuplicateProviderError, match="disable one with PASARELA_DISABLE_PLUGINS"):
        reg.add(_provider(name="cash_co"))


def test_adapters_import_the_contract_not_the_plugin_manager() -> None:
    """Importing an adapter loads the values and the contract, never the plugin
    manager, the engine, the store or the web and CLI layers."""
    code = (
        "import json, sys\n"
        "import pasarela_pagoefectivo, pasarela_stripe, pasarela_yape\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('pasarela.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    modules = set(json.loads(loaded))
    assert "pasarela.plugins" not in modules
    for layer in ("pasarela.api", "pasarela.engine", "pasarela.store", "pasarela.web",
                  "pasarela.cli", "pasarela.config", "pasarela.routing", "pasarela.testing"):
        assert not {m for m in modules if m == layer or m.startswith(layer + ".")}, layer
    assert {"pasarela.provider", "pasarela.next_action", "pasarela.errors"} <= modules


#: What an adapter may import of pasarela: the values and the contract.
CONTRACT = frozenset({
    "pasarela.errors", "pasarela.events", "pasarela.exchange", "pasarela.fees",
    "pasarela.hookspecs", "pasarela.lifecycle", "pasarela.model", "pasarela.money",
    "pasarela.next_action", "pasarela.provider", "pasarela.registry", "pasarela.retry",
    "pasarela.secret", "pasarela.jsontext",
})


def test_adapter_sources_import_only_the_values_and_the_contract() -> None:
    """Every import an adapter's code makes of pasarela (type-checking ones too)."""
    root = Path(__file__).parents[1] / "adapters"
    sources = [path for path in root.glob("*/src/pasarela_*/**/*.py")
               if "sandbox" not in path.relative_to(root).parts]
    assert len(sources) > 20
    outside: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if isinstance(node, ast.ImportFrom) and node.module == "pasarela":
                names = [f"pasarela.{a.name}" for a in node.names]  # from pasarela import x
            outside.update(f"{path.relative_to(root)}: {name}" for name in names
                           if name.split(".")[0] == "pasarela" and name not in CONTRACT)
    assert not outside


# --- the manager facade, in process -------------------------------------------------


def _manager(*plugins: object, **env: str) -> Any:
    return get_plugin_manager(load_entrypoints=False, plugins=plugins, env=env)


def test_providers_from_registered_plugins_record_the_plugin() -> None:
    plugins = _manager()
    plugins.register(Registers(Cash), name="cash_plugin")
    plugins.register(Registers(Cards), name="cards_plugin")
    registry = plugins.providers()
    assert registry.names() == ["cards_co", "cash_co"]
    assert registry.origin("cash_co").plugin == "cash_plugin"
    assert registry.origin("cards_co").plugin == "cards_plugin"
    assert plugins.plugin_names() == ["cards_plugin", "cash_plugin"]


def test_providers_duplicate_across_plugins() -> None:
    plugins = _manager()
    plugins.register(Registers(Cash), name="one")
    plugins.register(Registers(_provider(name="cash_co")), name="two")
    with pytest.raises(DuplicateProviderError) as info:
        plugins.providers()
    assert "'one'" in str(info.value)
    assert "'two'" in str(info.value)


def test_register_hook_that_raises_names_the_plugin() -> None:
    class Exploding:
        @hookimpl
        def pasarela_register_providers(self, register: ProviderRegistry) -> None:
            raise KeyError("settings")

    plugins = _manager()
    plugins.register(Exploding(), name="exploding")
    with pytest.raises(PluginLoadError) as info:
        plugins.providers()
    assert info.value.plugin == "exploding"
    assert isinstance(info.value.__cause__, KeyError)


def test_register_a_plugin_without_hooks_fails() -> None:
    class Forgot:
        def pasarela_register_providers(self, register: ProviderRegistry) -> None:
            register.add(Cash)  # pragma: no cover - never called: no @hookimpl

    plugins = _manager()
    with pytest.raises(PluginLoadError, match=r"no pasarela hook .*hookimpl"):
        plugins.register(Forgot(), name="forgot")
    assert plugins.plugin_names() == []


def test_plugins_argument_is_validated_too() -> None:
    class Forgot:
        pass

    with pytest.raises(PluginLoadError, match="no pasarela hook"):
        get_plugin_manager(load_entrypoints=False, plugins=[Forgot()])


def test_misspelled_hook_fails_check_pending_with_a_hint() -> None:
    class Typo:
        @hookimpl
        def pasarela_register_provider(self, register: ProviderRegistry) -> None:
            register.add(Cash)  # pragma: no cover

    plugins = _manager()
    with pytest.raises(PluginLoadError) as info:
        plugins.register(Typo(), name="typo")
    message = str(info.value)
    assert info.value.plugin == "typo"
    assert "'pasarela_register_provider'" in message
    assert "did you mean pasarela_register_providers?" in message
    # The faulty plugin was removed: the manager stays usable.
    assert plugins.plugin_names() == []
    assert plugins.providers().names() == []


def test_hookimpl_with_an_unknown_argument_fails() -> None:
    class WrongArgs:
        @hookimpl
        def pasarela_select_provider(self, order: Any, customer: Any) -> None:
            return None  # pragma: no cover

    with pytest.raises(PluginLoadError) as info:
        _manager().register(WrongArgs(), name="wrong_args")
    assert info.value.plugin == "wrong_args"
    assert "customer" in str(info.value)
    assert info.value.__cause__ is not None


def test_register_same_name_twice_fails() -> None:
    plugins = _manager()
    plugins.register(Registers(Cash), name="dup")
    with pytest.raises(PluginLoadError, match="already registered"):
        plugins.register(Registers(Cards), name="dup")


def test_blocked_name_is_not_registered() -> None:
    plugins = _manager(PASARELA_DISABLE_PLUGINS="cash_plugin, other")
    assert plugins.register(Registers(Cash), name="cash_plugin") is None
    assert plugins.providers().names() == []


def test_unregister() -> None:
    plugins = _manager()
    plugins.register(Registers(Cash), name="cash_plugin")
    plugins.unregister("cash_plugin")
    assert plugins.providers().names() == []


def test_select_provider_defers_without_impls() -> None:
    assert _manager().select_provider(order=None, method=Method.CASH, candidates=["a"]) is None


def test_select_provider_first_result_wins() -> None:
    calls: list[str] = []

    class Defers:
        @hookimpl(tryfirst=True)
        def pasarela_select_provider(self, candidates: Any) -> None:
            calls.append("defers")

    class PicksLast:
        @hookimpl
        def pasarela_select_provider(self, order: Any, method: Any, candidates: Any) -> str:
            calls.append("picks")
            return str(candidates[-1])

    class NeverAsked:
        @hookimpl(trylast=True)
        def pasarela_select_provider(self, candidates: Any) -> str:
            calls.append("never")  # pragma: no cover
            return "a"  # pragma: no cover

    plugins = _manager(Defers(), PicksLast(), NeverAsked())
    chosen = plugins.select_provider(order=None, method=Method.CARD, candidates=["a", "b"])
    assert chosen == "b"
    assert calls == ["defers", "picks"]


def test_select_provider_must_choose_a_candidate() -> None:
    class Rogue:
        @hookimpl
        def pasarela_select_provider(self, candidates: Any) -> str:
            return "elsewhere"

    with pytest.raises(PluginError, match="'elsewhere', which is not one of the candidates"):
        _manager(Rogue()).select_provider(order=None, method=Method.CARD, candidates=["a"])


def test_payment_event_isolates_a_failing_observer() -> None:
    seen: list[tuple[str, str]] = []

    class Good:
        @hookimpl
        def pasarela_payment_event(self, event: LifecycleEvent) -> None:
            seen.append(("good", event.id))

    class Bad:
        @hookimpl
        def pasarela_payment_event(self, event: LifecycleEvent) -> None:
            raise RuntimeError("stock service down")

    class AlsoGood:
        @hookimpl
        def pasarela_payment_event(self, event: LifecycleEvent) -> None:
            seen.append(("also_good", event.type))

    plugins = _manager()
    plugins.register(Good(), name="good")
    plugins.register(Bad(), name="bad")
    plugins.register(AlsoGood(), name="also_good")
    with capture_events() as logs:
        failed = plugins.payment_event(_event())
    assert failed == ["bad"]
    assert sorted(seen) == [("also_good", "payment.succeeded"), ("good", "evt_01")]
    [entry] = [e for e in logs if e["event"] == "observer_failed"]
    assert entry["plugin"] == "bad"
    assert entry["hook"] == "pasarela_payment_event"
    assert entry["event_id"] == "evt_01"
    assert entry["log_level"] == "error"
    assert entry["error"] == "RuntimeError: stock service down"  # as text, no frames


def test_routing_decision_isolates_a_failing_observer() -> None:
    seen: list[Any] = []

    class Metrics:
        @hookimpl
        def pasarela_routing_decision(self, decision: Any) -> None:
            seen.append(decision["rule"])

    class Broken:
        @hookimpl
        def pasarela_routing_decision(self, decision: Any) -> None:
            raise ValueError("nope")

    plugins = _manager()
    plugins.register(Broken(), name="broken_metrics")
    plugins.register(Metrics(), name="metrics")
    with capture_events() as logs:
        failed = plugins.routing_decision({"rule": "cards", "candidates": ["stripe"]})
    assert failed == ["broken_metrics"]
    assert seen == ["cards"]
    assert [e["plugin"] for e in logs if e["event"] == "observer_failed"] == ["broken_metrics"]


def test_trace_env_logs_hook_calls() -> None:
    plugins = _manager(Registers(Cash), PASARELA_TRACE_PLUGINS="1")
    with capture_events() as logs:
        plugins.select_provider(order=None, method=Method.CASH, candidates=["cash_co"])
    assert {"hook_call", "hook_done"} <= {e["event"] for e in logs}


def test_load_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop_hooks.py").write_text(
        textwrap.dedent(
            """
            from pasarela.hookspecs import hookimpl

            @hookimpl
            def pasarela_routing_decision(decision):
                pass
            """
        )
    )
    (tmp_path / "shop_broken.py").write_text("import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = _manager()
    assert plugins.load_module("shop_hooks") == "shop_hooks"
    assert plugins.load_module("shop_hooks") == "shop_hooks"  # idempotent
    assert plugins.plugin_names() == ["shop_hooks"]
    with pytest.raises(PluginLoadError) as info:
        plugins.load_module("shop_broken")
    assert info.value.plugin == "shop_broken"
    assert isinstance(info.value.__cause__, ImportError)
    blocked = _manager(PASARELA_DISABLE_PLUGINS="shop_broken")
    assert blocked.load_module("shop_broken") is None


def test_origin_of_a_module_plugin_names_its_distribution() -> None:
    # A plugin object from an installed distribution (here: pasarela itself).
    import pasarela.hookspecs as module

    plugins = _manager()
    plugins.pm.register(module, name="pasarela.hookspecs")
    assert plugins.distribution("pasarela.hookspecs")[0] == "pasarela"
    assert plugins.distribution("not_registered") == (None, None)


def test_hook_property_is_the_relay() -> None:
    plugins = _manager()
    assert plugins.hook is plugins.pm.hook
    assert hasattr(plugins.hook, "pasarela_register_providers")


def test_observer_log_configures_no_logging() -> None:
    """The library only logs; it never adds handlers or sets levels."""
    import logging

    root, ours = logging.getLogger(), logging.getLogger("pasarela")
    before = (list(root.handlers), root.level, list(ours.handlers), ours.level)
    _manager().payment_event(_event())
    assert (list(root.handlers), root.level, list(ours.handlers), ours.level) == before


# --- discovery with real distributions -----------------------------------------------


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build every fixture distribution and install each into its own folder."""
    root = tmp_path_factory.mktemp("plugin_dists")
    sources = root / "src"
    shutil.copytree(FIXTURES, sources)
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    build = [*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels)]
    if importlib.util.find_spec("hatchling") is not None:
        build.append("--no-build-isolation")  # the backend is here already
    subprocess.run([*build, *(str(sources / d) for d in DISTRIBUTIONS)], check=True)
    out = {}
    for dist in DISTRIBUTIONS:
        [wheel] = wheels.glob(f"pasarela_{dist}-*.whl")
        target = root / "site" / dist
        subprocess.run(
            [*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
            check=True,
        )
        out[dist] = target
    return out


DISCOVER = """
import json
from pasarela.plugins import get_plugin_manager
from pasarela.errors import PluginError
try:
    registry = get_plugin_manager().providers()
except PluginError as exc:
    print(json.dumps({
        "error": type(exc).__name__,
        "message": str(exc),
        "plugin": getattr(exc, "plugin", None),
        "distribution": getattr(exc, "distribution", None),
        "cause": type(exc.__cause__).__name__ if exc.__cause__ else None,
    }))
else:
    print(json.dumps({
        "names": registry.names(),
        "origins": {name: list(registry.origin(name)) for name in registry.names()},
    }))
"""


def _run(code: str, paths: list[Path], **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PASARELA_")}
    environ["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def discover(paths: list[Path], **env: str) -> dict[str, Any]:
    return _run(DISCOVER, paths, **env)


def test_discovers_an_installed_distribution(sites: dict[str, Path]) -> None:
    result = discover([sites["throwaway"]])
    assert "throwaway" in result["names"]
    assert result["origins"]["throwaway"] == ["throwaway", "pasarela-throwaway", "0.3.1"]


def test_not_discovered_when_not_installed(sites: dict[str, Path]) -> None:
    assert "throwaway" not in discover([])["names"]


def test_allowlist(sites: dict[str, Path]) -> None:
    both = [sites["throwaway"], sites["broken"]]
    # The broken plugin is never imported when it is not on the allowlist.
    assert discover(both, PASARELA_LOAD_PLUGINS="throwaway")["names"] == ["throwaway"]
    assert discover(both, PASARELA_LOAD_PLUGINS="")["names"] == []
    assert discover(both, PASARELA_LOAD_PLUGINS=" , ")["names"] == []


def test_allowlist_naming_a_missing_plugin_fails(sites: dict[str, Path]) -> None:
    result = discover([sites["throwaway"]], PASARELA_LOAD_PLUGINS="throwaway,plin")
    assert result["error"] == "PluginLoadError"
    assert result["plugin"] == "plin"
    assert "PASARELA_LOAD_PLUGINS" in result["message"]


def test_blocklist(sites: dict[str, Path]) -> None:
    result = discover([sites["throwaway"]], PASARELA_DISABLE_PLUGINS="throwaway")
    assert "throwaway" not in result["names"]
    # Disabling the broken plugin skips its import; the others still load.
    both = [sites["throwaway"], sites["broken"]]
    result = discover(both, PASARELA_DISABLE_PLUGINS="broken")
    assert "throwaway" in result["names"]
    # The blocklist wins over the allowlist.
    result = discover(both, PASARELA_LOAD_PLUGINS="throwaway", PASARELA_DISABLE_PLUGINS="throwaway")
    assert result["names"] == []


def test_import_failure_names_plugin_and_distribution(sites: dict[str, Path]) -> None:
    result = discover([sites["throwaway"], sites["broken"]])
    assert result["error"] == "PluginLoadError"
    assert result["plugin"] == "broken"
    assert result["distribution"] == "pasarela-broken"
    assert result["cause"] == "RuntimeError"
    assert "libbroken is missing" in result["message"]
    assert "broken (from pasarela-broken)" in result["message"]


def test_misspelled_hook_fails_loudly(sites: dict[str, Path]) -> None:
    result = discover([sites["misspelled"]])
    assert result["error"] == "PluginLoadError"
    assert result["plugin"] == "misspelled"
    assert result["distribution"] == "pasarela-misspelled"
    assert result["cause"] == "PluginValidationError"
    assert "'pasarela_register_provider'" in result["message"]
    assert "did you mean pasarela_register_providers?" in result["message"]


def test_same_provider_name_from_two_distributions(sites: dict[str, Path]) -> None:
    result = discover([sites["throwaway"], sites["copycat"]])
    assert result["error"] == "DuplicateProviderError"
    message = result["message"]
    assert "'throwaway'" in message
    assert "plugin 'copycat' (pasarela-copycat 0.2.0" in message
    assert "plugin 'throwaway' (pasarela-throwaway 0.3.1" in message
    # Either one alone is fine.
    assert "throwaway" in discover([sites["copycat"]])["names"]


def test_nothing_is_discovered_at_import_time(sites: dict[str, Path]) -> None:
    code = (
        "import json, pasarela, pasarela.plugins, pasarela.hookspecs, pasarela.config, "
        "pasarela.events\nprint(json.dumps({'ok': True}))"
    )
    # The broken plugin would raise if anything discovered plugins on import.
    assert _run(code, [sites["broken"]]) == {"ok": True}


def test_unnamed_plugins_are_reported_by_class_path() -> None:
    class Anonymous:
        @hookimpl
        def pasarela_payment_event(self, event: LifecycleEvent) -> None:
            raise RuntimeError("x")

    plugins = _manager(Anonymous(), Registers(Cash))
    with capture_events() as logs:
        [failed] = plugins.payment_event(_event())
    assert failed.endswith("Anonymous")
    assert not failed.isdigit()
    assert logs[0]["plugin"] == failed
    assert plugins.providers().origin("cash_co").plugin == f"{__name__}.Registers"


# --- the plugin author guide's code runs ---------------------------------------------------

GUIDE = Path(__file__).parents[1] / "docs" / "plugin-author-guide.md"


def _guide_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)


def _guide_block(first_line: str) -> str:
    [block] = [b for b in _guide_blocks() if b.startswith(first_line)]
    return block


@pytest.fixture
def plin(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The guide's ``pasarela_plin`` package, built from its code blocks."""
    package = types.ModuleType("pasarela_plin")
    package.__path__ = []
    module = types.ModuleType("pasarela_plin.provider")
    monkeypatch.setitem(sys.modules, "pasarela_plin", package)
    monkeypatch.setitem(sys.modules, "pasarela_plin.provider", module)
    exec(_guide_block("# src/pasarela_plin/provider.py"), module.__dict__)  # noqa: S102
    exec(_guide_block("# src/pasarela_plin/__init__.py"), package.__dict__)  # noqa: S102
    package.provider = module  # type: ignore[attr-defined]
    return package


def _plin_order(phone: str | None = "+51987654321") -> Order:
    customer = Customer(first_name="Rosa", last_name="Quispe", phone=phone)
    return Order(reference="pedido-1042", amount=Money.parse("PEN 25.00"), customer=customer)


def _plin_request(order: Order) -> CreateRequest:
    return CreateRequest(payment_id="01JPAY", idempotency_key="key-1", order=order,
                         method=Method.WALLET, amount=order.amount, expires_at=None)


def test_guide_provider_registers_through_its_hook(plin: Any) -> None:
    registry = get_plugin_manager(load_entrypoints=False, plugins=[plin]).providers()
    assert registry.get("plin") is plin.provider.PlinProvider
    assert registry.origin("plin").plugin == "pasarela_plin"


def test_guide_provider_checks_requests_and_runs_its_flows(plin: Any) -> None:
    mod = plin.provider
    clock = datetime(2026, 10, 21, 7, 27, tzinfo=UTC)
    settings = mod.PlinSettings(merchant_id="M-1029", api_key="sk_plin",
                                base_url="https://plin.test", webhook_secrets=("whsec",))
    provider = mod.PlinProvider(settings, clock=lambda: clock)
    assert provider.settings.api_key == "sk_plin"

    with pytest.raises(ProviderValidationError) as info:
        provider.check_request(_plin_request(_plin_order(phone=None)))
    assert list(info.value.fields) == ["customer.phone"]
    assert provider.ineligibility(_plin_order(phone=None), Method.WALLET) == Ineligibility(
        ErrorCode.UNSUPPORTED_METHOD, "needs the customer's phone")
    assert provider.ineligibility(_plin_order(), Method.WALLET) is None

    # The section 8 snippet, as written.
    namespace: dict[str, Any] = {"provider": provider, "request": _plin_request(_plin_order()),
                                 "httpx": httpx}
    exec(_guide_block("flow = provider.create(request)"), namespace)  # noqa: S102
    assert namespace["sent"].headers["idempotency-key"] == "key-1"
    payment = namespace["payment"]
    assert payment.status is Status.PENDING
    assert isinstance(payment.next_action, ScanQr)

    flow = provider.create(_plin_request(_plin_order()))
    next(flow)
    with pytest.raises(RateLimitedError) as limited:
        flow.send(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}))
    assert limited.value.retry_after == 60.0

    body = b'{"id": "evt_1", "type": "charge.paid", "charge": "ch_1", "status": "paid"}'
    signature = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    [event] = provider.parse_webhook(WebhookHeaders({"X-Plin-Signature": signature}), body,
                                     now=clock)
    assert (event.event_id, event.status) == ("evt_1", Status.SUCCEEDED)
    with pytest.raises(SignatureInvalidError):
        provider.parse_webhook(WebhookHeaders({"X-Plin-Signature": signature}), body + b" ",
                               now=clock)


def test_guide_retry_after_examples_give_what_they_say() -> None:
    block = _guide_block("from datetime import UTC, datetime")
    lines = block.splitlines()
    namespace: dict[str, Any] = {}
    checked = 0
    for node in ast.parse(block).body:
        code = compile(ast.Module([node], type_ignores=[]), str(GUIDE), "exec")
        if not isinstance(node, ast.Expr):
            exec(code, namespace)  # noqa: S102
            continue
        said = ast.literal_eval(lines[node.end_lineno - 1].split("#")[-1].strip())  # type: ignore[operator]
        assert eval(compile(ast.Expression(node.value), str(GUIDE), "eval"), namespace) == said  # noqa: S307
        checked += 1
    assert checked == 3
