"""The architecture's rules, checked on the source (docs/architecture.md draws them).

- Imports run downward only: each core module belongs to a layer, and imports
  nothing from a higher one. Values import nothing of pasarela but other values.
- Adapters import only the values, the contract and the sandbox toolkit (never the
  store, the engine, routing, config, reconciliation, the facade, web or cli).
- Nothing imports ``web/`` or ``cli/`` but themselves (and host apps, entry points).
- No private name crosses a module boundary: ``from pasarela.x import _y`` is refused
  in the libraries and in the tests alike.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core" / "src" / "pasarela"
ADAPTERS = sorted((ROOT / "adapters").glob("*/src/pasarela_*"))

#: Layer of each top-level part of the core (a module or a package), lowest first.
LAYERS: dict[str, int] = {
    # values: pure, no I/O
    "errors": 0, "money": 0, "lifecycle": 0, "retry": 0, "exchange": 0, "logs": 0,
    "timezones": 0, "secret": 0, "jsontext": 0, "extras": 0,
    "model": 1, "next_action": 1, "events": 1, "fees": 1,
    # the contract an adapter sees
    "provider": 2, "registry": 2, "hookspecs": 2, "relays": 2, "plugins": 3,
    # configuration, routing and the store
    "config": 4, "routing": 5, "store": 5,
    # the engine and what runs on it
    "engine": 6, "reconcile": 7,
    # the facade
    "api": 8,
    # what serves, commands and tests it
    "web": 9, "testing": 9, "cli": 10,
    # `python -m pasarela`: the console script's twin
    "__main__": 11,
}
VALUES = {name for name, layer in LAYERS.items() if layer <= 1}
ADAPTER_MAY_IMPORT = VALUES | {"provider", "registry", "hookspecs", "plugins", "testing"}


def _modules(base: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(base.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(tree: ast.Module) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every absolute import, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [alias.name for alias in node.names]


def _part(module: str, names: list[str]) -> list[str]:
    """The core parts an import reaches: ``from pasarela import web`` reaches ``web``."""
    pieces = module.split(".")
    if pieces[0] != "pasarela":
        return []
    if len(pieces) > 1:
        return [pieces[1]]
    return [n for n in names if n in LAYERS]


def _own_part(path: Path) -> str:
    relative = path.relative_to(CORE)
    return relative.parts[0].removesuffix(".py")


def test_every_core_part_has_a_layer() -> None:
    parts = {_own_part(p) for p, _ in _modules(CORE)} - {"__init__"}
    assert parts <= set(LAYERS), f"give these a layer here and in the docs: {parts - set(LAYERS)}"


def test_core_imports_run_downward() -> None:
    wrong = []
    for path, tree in _modules(CORE):
        own = _own_part(path)
        if own == "__init__":
            continue
        for line, module, names in _imports(tree):
            for part in _part(module, names):
                if part != own and LAYERS[part] > LAYERS[own]:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {own} (layer {LAYERS[own]}) "
                                 f"imports {module} (layer {LAYERS[part]})")
    assert not wrong, "\n".join(wrong)


def test_values_import_only_values() -> None:
    wrong = []
    for path, tree in _modules(CORE):
        own = _own_part(path)
        if own not in VALUES:
            continue
        for line, module, names in _imports(tree):
            wrong += [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                      for part in _part(module, names) if part not in VALUES]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ADAPTERS, ids=lambda p: p.name)
def test_adapters_import_only_values_the_contract_and_the_sandbox_toolkit(package: Path) -> None:
    wrong = []
    for path, tree in _modules(package):
        for line, module, names in _imports(tree):
            if module == "pasarela.testing" or module.startswith("pasarela.testing."):
                inside = path.relative_to(package).parts
                if inside[0] != "sandbox" and module != "pasarela.testing.sandbox":
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} outside sandbox/")
                continue
            wrong += [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                      for part in _part(module, names) if part not in ADAPTER_MAY_IMPORT]
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_web_or_cli_but_themselves() -> None:
    wrong = []
    for path, tree in _modules(CORE):
        own = _own_part(path)
        for line, module, names in _imports(tree):
            for part in _part(module, names):
                if part in {"web", "cli"} and own not in (part, "cli", "__main__"):
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    for package in ADAPTERS:
        for path, tree in _modules(package):
            for line, module, names in _imports(tree):
                wrong += [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                          for part in _part(module, names) if part in {"web", "cli"}]
    assert not wrong, "\n".join(wrong)


def _private_imports(base: Path) -> Iterator[str]:
    for path, tree in _modules(base):
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if not node.module.split(".")[0].startswith("pasarela"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}"


@pytest.mark.parametrize("base", [CORE, *ADAPTERS, ROOT / "tests",
                                  *sorted((ROOT / "adapters").glob("*/tests"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_across_modules(base: Path) -> None:
    found = list(_private_imports(base))
    assert not found, "import a public name instead:\n" + "\n".join(found)
