"""No table outside ``store/``: every module of the core outside ``pasarela.store``
reaches the database through the store's public API only.

Parsed (ast), every module under ``core/src/pasarela`` outside ``store/`` must not:

- import SQLAlchemy (tables, statements and connections are the store's);
- import a store module other than the public ones (:data:`PUBLIC`): not
  ``pasarela.store.schema``, ``reconcile_schema``, ``driver``, ``engine``, the
  private ``_modules``...;
- import a ``_``-prefixed name from the store;
- touch a ``_``-prefixed attribute of a store, batch or writer object
  (``store._begin``, ``self.store._insert``, ``batch._store``), or call one of the
  store's private methods on anything but ``self``;
- use a store's SQLAlchemy ``engine`` (its connections bypass the store's write
  lock and error mapping).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import pasarela


ROOT = Path(pasarela.__file__).parent
STORE = ROOT / "store"
#: The store modules the rest of pasarela may import.
PUBLIC = frozenset({
    "pasarela.store",
    "pasarela.store.batch",
    "pasarela.store.monitoring",
    "pasarela.store.queries",
    "pasarela.store.sealing",
    "pasarela.store.settlements",
    "pasarela.store.values",
    "pasarela.store.writer",
})
#: Names that say an expression is a store, a write batch or a writer.
HOLDERS = ("store", "batch", "writer")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def store_private_methods() -> frozenset[str]:
    """The ``_``-prefixed methods defined on the store's classes."""
    names: set[str] = set()
    for path in STORE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                names.update(item.name for item in node.body
                             if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                             and _private(item.name))
    return frozenset(names)


def _tail(node: ast.expr) -> str | None:
    """The last name of ``a.b.c`` (``c``), or the name itself."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def violations(source: str, *, private_methods: frozenset[str]) -> Iterator[str]:
    """What *source*, a module outside the store, does that only the store may do."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                sqlalchemy = alias.name.split(".")[0] == "sqlalchemy"
                inner = alias.name.startswith("pasarela.store.") and alias.name not in PUBLIC
                if sqlalchemy or inner:
                    yield f"line {node.lineno}: imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module == "sqlalchemy" or module.startswith("sqlalchemy."):
                yield f"line {node.lineno}: imports from {module}"
                continue
            if module != "pasarela.store" and not module.startswith("pasarela.store."):
                continue
            if module not in PUBLIC:
                yield f"line {node.lineno}: imports from {module}"
            for alias in node.names:
                if module == "pasarela.store" and f"{module}.{alias.name}" not in PUBLIC \
                        and alias.name[:1].islower():
                    yield f"line {node.lineno}: imports pasarela.store.{alias.name}"
                if _private(alias.name):
                    yield f"line {node.lineno}: imports {alias.name} from {module}"
        elif isinstance(node, ast.Attribute) and node.attr == "engine":
            holder = _tail(node.value)
            if holder is not None and "store" in holder.lower():
                yield f"line {node.lineno}: uses {holder}.engine"
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            holder = _tail(node.value)
            if holder is not None and any(word in holder.lower() for word in HOLDERS):
                yield f"line {node.lineno}: touches {holder}.{node.attr}"
            elif node.attr in private_methods and holder not in ("self", "cls"):
                yield f"line {node.lineno}: calls the store's {node.attr} on {holder}"


def outside_modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if STORE not in p.parents)


def test_the_checker_sees_every_kind_of_leak() -> None:
    """The checks themselves: each snippet is one way to reach past the store."""
    private = store_private_methods()
    assert {"_begin", "_claim"} <= private
    leaks = {
        "import sqlalchemy as sa": "sqlalchemy",
        "from sqlalchemy import select": "sqlalchemy",
        "from pasarela.store.schema import payments": "pasarela.store.schema",
        "from pasarela.store import schema": "pasarela.store.schema",
        "from pasarela.store import reconcile_schema as r": "reconcile_schema",
        "import pasarela.store.reconcile_schema": "reconcile_schema",
        "from pasarela.store.engine import WRITE": "pasarela.store.engine",
        "from pasarela.store._rows import to_db": "pasarela.store._rows",
        "from pasarela.store.batch import _update": "_update",
        "with store._begin() as conn: pass": "store._begin",
        "self.store._insert(t)": "store._insert",
        "x = service.store._sqlite": "store._sqlite",
        "batch._store._upsert_refund(c, r)": "_store",
        "pasarela.store._engine.connect()": "store._engine",
        "run.lines._begin()": "_begin",
        "with pasarela.store.engine.connect() as conn: pass": "store.engine",
        "self.store.engine.begin()": "store.engine",
    }
    for source, what in leaks.items():
        found = list(violations(source, private_methods=private))
        assert found, source
        assert any(what in v for v in found), (source, found)
    fine = ("from pasarela.store import Delivery, Store, queries\n"
            "from pasarela.store.batch import WriteBatch\n"
            "self._store = store\n"  # an attribute of one's own, not the store's
            "self._begin()\n"
            "row._replace(a=1)\n"
            "queries.dashboard(store, since=now, stale_before=now)\n")
    assert list(violations(fine, private_methods=private)) == []


@pytest.mark.parametrize("path", outside_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outside_the_store_reaches_into_it(path: Path) -> None:
    found = list(violations(path.read_text(encoding="utf-8"),
                            private_methods=store_private_methods()))
    assert found == [], (
        f"{path.relative_to(ROOT)} reaches into the store: {found}; use the Store's "
        "methods, pasarela.store.queries or pasarela.store.settlements"
    )
