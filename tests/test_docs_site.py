"""The documentation site (mkdocs.yml, `make docs`) builds with --strict, renders the API
reference from the docstrings, and fails on a broken link, anchor or cross-reference."""

from __future__ import annotations

import ast
import html
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest


ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "core" / "src"
BUILD_TIMEOUT = 90  # seconds; a build takes a few here

if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("mkdocs and mkdocstrings are not installed: pip install -e 'core[docs]'")
    pytest.skip("mkdocs is not installed (pip install -e 'core[docs]'); CI runs these",
                allow_module_level=True)


def _build(config: Path, site: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # Never --quiet: it drops the warnings that --strict turns into a failure.
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
    )


def _text(page: Path) -> str:
    """A built page's text: tags removed, entities decoded, whitespace collapsed."""
    raw = re.sub(r"</?(?:a|code|em|span|strong)\b[^>]*>", "", page.read_text(encoding="utf-8"))
    raw = re.sub(r"<[^>]+>", " ", raw)
    return " ".join(html.unescape(raw).split())


def _first_line(docstring: str) -> str:
    """A docstring's first line as the page shows it (no ``code``, *emphasis* or roles)."""
    line = docstring.strip().splitlines()[0]
    line = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: m.group(1).rsplit(".", 1)[-1], line)
    return " ".join(line.replace("``", "").replace("*", "").split())


def _public_names(module: str) -> list[str]:
    """A module's ``__all__``, read from its source (no import: django needs no settings)."""
    path = SRC.joinpath(*module.split(".")).with_suffix(".py")
    if not path.exists():  # a package
        path = SRC.joinpath(*module.split("."), "__init__.py")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{module} has no __all__")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    return out


REFERENCE = {
    "api": ["pasarela.api"],
    "model": ["pasarela.model"],
    "money": ["pasarela.money"],
    "errors": ["pasarela.errors"],
    "next_action": ["pasarela.next_action"],
    "events": ["pasarela.events"],
    "provider": ["pasarela.provider"],
    "hookspecs": ["pasarela.hookspecs"],
    "testing": ["pasarela.testing.conformance", "pasarela.testing.fake",
                "pasarela.testing.helpers"],
    "web": ["pasarela.web.app", "pasarela.web.pay_page", "pasarela.web.django"],
}


@pytest.mark.parametrize("page", sorted(REFERENCE))
def test_each_public_name_has_its_entry_on_the_reference_page(site: Path, page: str) -> None:
    built = (site / "reference" / f"{page}.html").read_text(encoding="utf-8")
    missing = [f"{module}.{name}" for module in REFERENCE[page]
               for name in _public_names(module) if f'id="{module}.{name}"' not in built]
    assert not missing, f"reference/{page}: no entry for {missing}"


def test_the_reference_shows_the_docstrings(site: Path) -> None:
    from pasarela.api import AsyncPasarela, Pasarela
    from pasarela.money import Money
    from pasarela.provider import Provider
    from pasarela.testing.conformance import ProviderConformance
    from pasarela.web.app import create_app
    from pasarela.web.pay_page import pay_link

    shown = {
        "api": [Pasarela.pay, Pasarela.handle_webhook, AsyncPasarela],
        "money": [Money.of],
        "provider": [Provider],
        "testing": [ProviderConformance],
        "web": [create_app, pay_link],
    }
    for page, objects in shown.items():
        text = _text(site / "reference" / f"{page}.html")
        for obj in objects:
            assert obj.__doc__, obj
            assert _first_line(obj.__doc__) in text, f"reference/{page}: {obj.__qualname__}"


def test_sphinx_roles_become_links_between_reference_pages(site: Path) -> None:
    api = (site / "reference" / "api.html").read_text(encoding="utf-8")
    assert ":class:" not in api
    assert ":meth:" not in api
    # pasarela.api's module docstring names Pasarela with :class:.
    assert 'href="#pasarela.api.Pasarela"' in api
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="reference/errors.html#pasarela.errors.ValidationError"' in index


def test_the_guide_pages_are_on_the_site(site: Path) -> None:
    for page in ["index", "quickstart-fastapi", "quickstart-django", "configuration",
                 "sandboxes", "plugin-author-guide", "plugin-hooks", "architecture",
                 "lifecycle", "api-reference"]:
        assert (site / f"{page}.html").is_file(), page
    assert "make docs" in _text(site / "index.html")
    # Self-contained: no script or stylesheet from another host.
    external = [f"{page.name}: {ref}" for page in sorted(site.rglob("*.html"))
                for ref in re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?:[^"]+)"',
                                      page.read_text(encoding="utf-8"))]
    assert not external, external


def test_a_broken_link_anchor_or_reference_fails_the_build(tmp_path: Path) -> None:
    # The project's own configuration over a copy of docs/ with three mistakes added.
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "core").symlink_to(ROOT / "core", target_is_directory=True)
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "index.md").open("a", encoding="utf-8") as page:
        page.write("\n[gone](no-such-page.md), [there](architecture.md#no-such-heading),"
                   " [`Gone`][pasarela.api.NoSuchThing]\n")
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site", cwd=tmp_path)
    assert result.returncode != 0
    warnings = "\n".join(line for line in result.stderr.splitlines()
                         if line.startswith("WARNING"))
    for mistake in ["no-such-page.md", "no-such-heading", "pasarela.api.NoSuchThing"]:
        assert mistake in warnings, f"{mistake} does not fail the build:\n{result.stderr}"


def _roles_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sphinx_roles",
                                                  ROOT / "docs" / "_ext" / "sphinx_roles.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roles_link_what_the_reference_renders_and_keep_dangling_ones() -> None:
    import griffe

    roles = _roles_extension()
    loader = griffe.GriffeLoader(search_paths=[str(SRC)])
    package = loader.load("pasarela")
    assert isinstance(package, griffe.Module)
    extension = roles.SphinxRoles()
    assert {"pasarela.api", "pasarela.money", "pasarela.web.app"} <= extension.modules
    api = package["api"]
    convert = extension.convert
    # Relative names resolve in the object's scope, through imports.
    assert convert(api, ":class:`Pasarela`", loader) == "[`Pasarela`][pasarela.api.Pasarela]"
    assert (convert(api, ":class:`~pasarela.money.Money`", loader)
            == "[`Money`][pasarela.money.Money]")
    assert (convert(api, ":meth:`Pasarela.pay`", loader)
            == "[`Pasarela.pay()`][pasarela.api.Pasarela.pay]")
    # What the reference does not render is plain code: other libraries, internal modules,
    # private names.
    assert convert(api, ":class:`httpx.Client`", loader) == "`httpx.Client`"
    assert (convert(api, ":class:`~pasarela.engine.context.Service`", loader)
            == "`Service`")
    assert convert(api, ":func:`_assemble`", loader) == "`_assemble()`"
    # A rendered module's object that does not exist stays a link, which --strict fails on.
    assert (convert(api, ":class:`~pasarela.errors.NoSuchError`", loader)
            == "[`NoSuchError`][pasarela.errors.NoSuchError]")
