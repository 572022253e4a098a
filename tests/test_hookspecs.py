"""The hook specifications: documented, tested, and behaving as documented.

Two meta-tests (after datasette): every hookspec is documented in
docs/plugin-hooks.md under its exact signature, and every hookspec has a
``test_hook_<name>`` test in this module.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from pasarela import hookspecs
from pasarela.config import load_config
from pasarela.errors import ValidationError
from pasarela.events import LifecycleEvent
from pasarela.hookspecs import PROJECT_NAME, hookimpl
from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.plugins import get_plugin_manager
from pasarela.provider import Provider
from pasarela.registry import ProviderRegistry
from pasarela.testing.helpers import capture_events


DOCS = Path(__file__).resolve().parents[1] / "docs"


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    return {
        name: obj
        for name, obj in vars(hookspecs).items()
        if callable(obj) and hasattr(obj, f"{PROJECT_NAME}_spec")
    }


def signature_of(function: Callable[..., Any]) -> str:
    """The signature as written in the source (annotations are strings there)."""
    sig = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{function.__name__}({params}) -> {sig.return_annotation}"


def test_the_expected_hooks_exist() -> None:
    assert sorted(hookspec_functions()) == [
        "pasarela_alert",
        "pasarela_payment_event",
        "pasarela_register_providers",
        "pasarela_routing_decision",
        "pasarela_select_provider",
    ]
    assert sorted(n for n in hookspecs.__all__ if n.startswith("pasarela_")) == sorted(
        hookspec_functions()
    )
    assert hookspecs.__all__ == sorted(hookspecs.__all__)


def test_markers_use_the_project_name() -> None:
    assert PROJECT_NAME == "pasarela"
    assert hookspecs.hookspec.project_name == "pasarela"
    assert hookimpl.project_name == "pasarela"


def test_only_select_provider_is_firstresult() -> None:
    firstresult = {
        name for name, fn in hookspec_functions().items()
        if fn.pasarela_spec["firstresult"]
    }
    assert firstresult == {"pasarela_select_provider"}


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hookspec_docstring_documents_every_parameter(name: str) -> None:
    function = hookspec_functions()[name]
    doc = inspect.getdoc(function)
    assert doc, f"{name} has no docstring"
    for param in inspect.signature(function).parameters:
        assert f":param {param}:" in doc, f"{name} does not document {param}"
    assert ".. versionadded::" in doc
    # Every parameter and the return value are annotated.
    sig = inspect.signature(function)
    assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
    assert sig.return_annotation is not inspect.Signature.empty


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hookspec_is_documented_with_its_signature(name: str) -> None:
    text = (DOCS / "plugin-hooks.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## `(.+)`$", text, flags=re.MULTILINE)
    assert signature_of(hookspec_functions()[name]) in headings


def test_docs_document_no_hook_that_does_not_exist() -> None:
    text = (DOCS / "plugin-hooks.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## `(.+)`$", text, flags=re.MULTILINE)
    assert sorted(headings) == sorted(signature_of(f) for f in hookspec_functions().values())


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_every_hookspec_has_a_test(name: str) -> None:
    assert callable(globals().get(f"test_hook_{name}")), f"write test_hook_{name}"


# --- one test per hook -------------------------------------------------------------------------


class Plin(Provider):
    name = "plin"
    display_name = "Plin"
    methods = frozenset({Method.WALLET})
    currencies = frozenset({"PEN"})


def _order() -> Order:
    return Order(
        reference="pedido-1042",
        amount=Money.of("149.90", "PEN"),
        country="PE",
        description="Audífonos inalámbricos",
        customer=Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe"),
    )


def _event(**changes: Any) -> LifecycleEvent:
    fields: dict[str, Any] = {
        "id": "evt_01HZX",
        "type": "payment.late_succeeded",
        "payment_id": "pay_01HZX",
        "order_reference": "pedido-1042",
        "provider": "pagoefectivo",
        "status": "succeeded",
        "amount": Money.of("149.90", "PEN"),
        "occurred_at": datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        "payload": {"cip": "2580001"},
    }
    fields.update(changes)
    return LifecycleEvent(**fields)


def test_hook_pasarela_register_providers() -> None:
    received: list[object] = []

    class PlinPlugin:
        @hookimpl
        def pasarela_register_providers(self, register: ProviderRegistry) -> None:
            received.append(register)
            register.add(Plin)

    plugins = get_plugin_manager(load_entrypoints=False, plugins=[PlinPlugin()])
    registry = plugins.providers()
    assert received == [registry]
    assert registry.get("plin") is Plin


def test_hook_pasarela_select_provider() -> None:
    seen: dict[str, Any] = {}

    class PreferWallet:
        @hookimpl
        def pasarela_select_provider(
            self, order: Order, method: Method, candidates: tuple[str, ...]
        ) -> str | None:
            seen.update(order=order, method=method, candidates=candidates)
            return "yape" if method is Method.WALLET and "yape" in candidates else None

    plugins = get_plugin_manager(load_entrypoints=False, plugins=[PreferWallet()])
    order = _order()
    chosen = plugins.select_provider(
        order=order, method=Method.WALLET, candidates=["plin", "yape"]
    )
    assert chosen == "yape"
    assert seen == {"order": order, "method": Method.WALLET, "candidates": ("plin", "yape")}
    assert plugins.select_provider(order=order, method=Method.CARD, candidates=["stripe"]) is None


def test_hook_pasarela_payment_event() -> None:
    released: list[str] = []

    class Stock:
        @hookimpl
        def pasarela_payment_event(self, event: LifecycleEvent) -> None:
            if event.id in released:
                return  # at least once: dedupe on the stable id
            released.append(event.id)

    class Flaky:
        @hookimpl
        def pasarela_payment_event(self, event: LifecycleEvent) -> None:
            raise ConnectionError("warehouse unreachable")

    plugins = get_plugin_manager(load_entrypoints=False, plugins=[Stock()])
    plugins.register(Flaky(), name="flaky")
    event = _event()
    with capture_events() as logs:
        assert plugins.payment_event(event) == ["flaky"]
        assert plugins.payment_event(event) == ["flaky"]  # redelivered
    assert released == ["evt_01HZX"]
    failures = [e for e in logs if e["event"] == "observer_failed"]
    assert [e["plugin"] for e in failures] == ["flaky", "flaky"]
    assert failures[0]["event_type"] == "payment.late_succeeded"


def test_hook_pasarela_routing_decision() -> None:
    decisions: list[Any] = []

    class Audit:
        @hookimpl
        def pasarela_routing_decision(self, decision: Any) -> None:
            decisions.append(dict(decision))

    plugins = get_plugin_manager(load_entrypoints=False, plugins=[Audit()])
    decision = {"rule": "cards", "candidates": ["stripe"], "excluded": {"yape": "no cards"}}
    assert plugins.routing_decision(decision) == []
    assert decisions == [decision]


def test_hook_pasarela_alert() -> None:
    seen: list[Any] = []

    class Pager:
        @hookimpl
        def pasarela_alert(self, alert: Any) -> None:
            seen.append(alert["kind"])

    class Broken:
        @hookimpl
        def pasarela_alert(self, alert: Any) -> None:
            raise RuntimeError("pager down")

    plugins = get_plugin_manager(load_entrypoints=False, plugins=[Pager(), Broken()])
    with capture_events() as logs:
        failed = plugins.alert({"id": 3, "state": "firing", "kind": "outbox_lag"})
    assert seen == ["outbox_lag"]
    assert len(failed) == 1
    assert [e["alert_id"] for e in logs if e["event"] == "observer_failed"] == [3]


# --- LifecycleEvent ----------------------------------------------------------------------------


def test_lifecycle_event_is_frozen_and_keeps_payload_out_of_repr() -> None:
    event = _event(payload={"card_last4": "4242", "raw": "secret-ish"})
    assert "secret-ish" not in repr(event)
    assert "evt_01HZX" in repr(event)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.status = "refunded"  # type: ignore[misc]
    assert event == _event(payload={"card_last4": "4242", "raw": "secret-ish"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"occurred_at": datetime(2025, 3, 1, 12, 30)}, "occurred_at"),  # noqa: DTZ001
        ({"amount": "PEN 149.90"}, "amount"),
        ({"id": ""}, "id"),
        ({"type": ""}, "type"),
    ],
)
def test_lifecycle_event_validates(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _event(**changes)
    assert info.value.field == field


def test_payload_defaults_to_empty() -> None:
    fields = attrs.asdict(_event(), recurse=False)
    del fields["payload"]
    assert LifecycleEvent(**fields).payload == {}


# --- the plugin author guide works as written ---------------------------------------------------


def _code_block_after(text: str, marker: str, language: str) -> str:
    start = text.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None
    return match.group(1)


def test_author_guide_entry_point_snippet() -> None:
    guide = (DOCS / "plugin-author-guide.md").read_text(encoding="utf-8")
    pyproject = tomllib.loads(_code_block_after(guide, "## 2. The entry point", "toml"))
    assert pyproject["project"]["entry-points"]["pasarela"] == {"plin": "pasarela_plin"}


def test_author_guide_provider_and_settings_snippets() -> None:
    guide = (DOCS / "plugin-author-guide.md").read_text(encoding="utf-8")
    namespace: dict[str, Any] = {}
    code = _code_block_after(guide, "## 4. The provider class", "python")
    exec(compile(code, "plugin-author-guide.md", "exec"), namespace)  # noqa: S102
    provider = namespace["PlinProvider"]
    registry = ProviderRegistry()
    registry.add(provider, plugin="plin")
    assert registry.names() == ["plin"]

    table = tomllib.loads(_code_block_after(guide, "## 5. Settings", "toml"))
    config = load_config(table, env={"PLIN_API_KEY": "plin-key-0001"})
    settings = config.provider_settings("plin", provider.settings_class)
    assert settings.api_key == "plin-key-0001"
    assert settings.merchant_id == "M-1029"
    assert "plin-key-0001" not in repr(settings)
