"""A griffe extension for the documentation site: pasarela's docstrings are written with
Sphinx roles (``:class:`~pasarela.model.Payment```), which Markdown does not know.

Each role becomes a cross-reference when its target is an object the API reference
renders (a public object of a module named by a ``::: module`` line in
``docs/reference/*.md``), and plain code otherwise (the standard library, httpx, internal
modules). A reference into a rendered module whose target does not exist stays a
cross-reference, so ``mkdocs build --strict`` fails on it. Literal blocks (``text::``)
and ``.. versionadded::`` become their Markdown forms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe


REFERENCE_PAGES = Path(__file__).resolve().parents[1] / "reference"
_DIRECTIVE = re.compile(r"^:::\s+(\S+)", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(class|meth|func|mod|attr|data|exc|obj|const):`([^`]+)`")
_TITLED = re.compile(r"^(.*?)\s*<([^>]+)>$")
_LITERAL = re.compile(r"(\S)::$", re.MULTILINE)
_VERSION = re.compile(r"^(\s*)\.\. version(added|changed):: (\S+)", re.MULTILINE)


def rendered_modules(folder: Path = REFERENCE_PAGES) -> frozenset[str]:
    """The modules the reference pages render (their ``::: name`` lines)."""
    return frozenset(name for page in sorted(folder.glob("*.md"))
                     for name in _DIRECTIVE.findall(page.read_text(encoding="utf-8")))


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring of the loaded package once it is complete."""

    def __init__(self) -> None:
        super().__init__()
        self.modules = rendered_modules()

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader,
                   **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self.convert(obj, obj.docstring.value, loader)

    def convert(self, obj: griffe.Object, text: str, loader: griffe.GriffeLoader) -> str:
        def role(match: re.Match[str]) -> str:
            return self._reference(obj, match.group(1), match.group(2), loader)

        text = _ROLE.sub(role, text)
        text = _LITERAL.sub(r"\1:", text)
        return _VERSION.sub(_version, text)

    def _reference(self, obj: griffe.Object, kind: str, body: str,
                   loader: griffe.GriffeLoader) -> str:
        titled = _TITLED.match(body)
        title, target = (titled.group(1), titled.group(2)) if titled else (None, body)
        short = target.startswith("~")
        target = target.lstrip("~.")
        if title is None:
            title = target.rsplit(".", 1)[-1] if short else target
        if kind in ("func", "meth"):
            title += "()"
        path = self._resolve(obj, target, loader)
        if path is not None and self._renders(path, loader):
            return f"[`{title}`][{path}]"
        return f"`{title}`"

    def _resolve(self, obj: griffe.Object, target: str,
                 loader: griffe.GriffeLoader) -> str | None:
        """The full path of *target*: absolute, or named in *obj*'s scope."""
        if target.split(".", 1)[0] == "pasarela":
            path = target
        else:
            head, _, rest = target.partition(".")
            try:
                path = obj.resolve(head) + (f".{rest}" if rest else "")
            except griffe.NameResolutionError:
                return None
        try:
            found = loader.modules_collection.get_member(path)
        except (KeyError, ValueError):
            return path  # dangling: kept, so that a missing object fails the build
        while isinstance(found, griffe.Alias):
            try:
                found = found.final_target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
        return str(found.path)

    def _renders(self, path: str, loader: griffe.GriffeLoader) -> bool:
        """Whether the reference pages render *path*, or would if it existed."""
        module = next((m for m in self.modules if path == m or path.startswith(m + ".")), None)
        if module is None:
            return False
        try:
            found = loader.modules_collection.get_member(path)
        except (KeyError, ValueError):
            return True
        while found is not None and found.path != module:
            if not found.is_public:
                return False
            found = found.parent
        return True


def _version(match: re.Match[str]) -> str:
    indent, change, version = match.groups()
    return f"{indent}*{'New' if change == 'added' else 'Changed'} in version {version}.*"


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            found += _walk(member)
    return found
