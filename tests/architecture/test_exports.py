"""``pasarela``'s public names: ``__all__``, the lazy export table and the type-checking
imports say the same thing, and every name resolves."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pasarela


INIT = Path(pasarela.__file__)


def _type_checking_names() -> set[str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names |= {alias.asname or alias.name for alias in stmt.names}
    return names


def test_all_is_sorted_and_matches_the_lazy_table() -> None:
    assert list(pasarela.__all__) == sorted(pasarela.__all__)
    assert set(pasarela.__all__) == set(pasarela._EXPORTS)


def test_type_checking_imports_match_the_lazy_table() -> None:
    assert _type_checking_names() == set(pasarela._EXPORTS)


def test_every_export_resolves_to_its_home() -> None:
    for name, module in pasarela._EXPORTS.items():
        value = getattr(importlib.import_module(module), name)
        assert getattr(pasarela, name) is value
        assert name in dir(pasarela)
