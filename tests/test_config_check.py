"""``pasarela config check`` runs exactly what ``Pasarela.from_config`` runs (minus the
store and the network): whatever one refuses, the other refuses with the same words."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pasarela.api import Pasarela, validate
from pasarela.cli import main
from pasarela.config import InvalidConfigError
from pasarela.errors import PasarelaError


HEAD = """
[store]
url = "sqlite:///{db}"
[plugins]
modules = ["pasarela.testing.fake", "{module}"]
[providers.fake]
"""

BROKEN = {
    "an unknown route condition": (
        '[[routes]]\nname = "cash"\nwhen = { methd = "cash" }\nuse = ["fake"]\n'
        '[[routes]]\nname = "rest"\nuse = ["fake"]\n',
        "routes[0].when.methd: unknown condition"),
    "no default rule": (
        '[[routes]]\nname = "cash"\nwhen = { method = "cash" }\nuse = ["fake"]\n',
        "routes: no default rule"),
    "a route naming an installed provider that is not configured": (
        '[[routes]]\nname = "all"\nuse = ["other"]\n',
        "routes[0].use[0]: provider 'other' is not configured"),
    "a preference naming no installed provider": (
        '[checkout]\npreference = ["fake", "yapee"]\n',
        "checkout.preference[1]: no provider named 'yapee' is installed"),
}


@pytest.fixture
def plugin_module(tmp_path: Path) -> str:
    """A host module beside the config file that installs a second provider, ``other``
    (loaded without PYTHONPATH: the config file's folder is searched)."""
    (tmp_path / "shop_plugins.py").write_text(
        "from pasarela.hookspecs import hookimpl\n"
        "from pasarela.testing.fake import FakeProvider\n"
        "class Other(FakeProvider):\n    name = 'other'\n    display_name = 'Other'\n"
        "@hookimpl\ndef pasarela_register_providers(register):\n    register.add(Other)\n")
    return "shop_plugins"


def _write(tmp_path: Path, module: str, tail: str) -> Path:
    path = tmp_path / "pasarela.toml"
    path.write_text(HEAD.format(db=tmp_path / "p.db", module=module) + tail, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_what_from_config_refuses_config_check_refuses_in_the_same_words(
        case: str, tmp_path: Path, plugin_module: str) -> None:
    tail, expected = BROKEN[case]
    path = _write(tmp_path, plugin_module, tail)
    with pytest.raises(InvalidConfigError) as refused:
        Pasarela.from_config(path)
    assert any(expected in line for line in refused.value.errors), refused.value.errors
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert validate(path) == [str(e) for e in refused.value.errors]


def test_a_preference_naming_installed_unconfigured_providers_starts(
        tmp_path: Path, plugin_module: str) -> None:
    """The README's shape: a preference over more providers than are configured."""
    path = _write(tmp_path, plugin_module, '[checkout]\npreference = ["other", "fake"]\n')
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    with Pasarela.from_config(path) as pasarela:
        assert set(pasarela.providers) == {"fake"}


def test_installed_and_configured_are_told_apart(tmp_path: Path, plugin_module: str) -> None:
    path = _write(tmp_path, plugin_module, "[providers.nope]\n")
    problems = validate(path)
    assert len(problems) == 1
    assert problems[0].startswith("providers.nope: no provider named 'nope' is installed")
    assert "fake" in problems[0]
    assert "other" in problems[0]  # installed, though not configured


def test_a_host_module_beside_the_config_loads_without_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "beside_hooks.py").write_text(
        "from pasarela.hookspecs import hookimpl\n"
        "from pasarela.testing.fake import FakeProvider\n"
        "class Beside(FakeProvider):\n    name = 'beside'\n    display_name = 'Beside'\n"
        "@hookimpl\ndef pasarela_register_providers(register):\n    register.add(Beside)\n")
    path = tmp_path / "pasarela.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "b.db"}"\n'
                    '[plugins]\nmodules = ["beside_hooks"]\n[providers.beside]\n')
    assert validate(path) == []
    with Pasarela.from_config(path) as pasarela:
        assert set(pasarela.providers) == {"beside"}


def test_a_file_with_errors_everywhere_reports_them_all(tmp_path: Path) -> None:
    path = tmp_path / "pasarela.toml"
    path.write_text('[plugins]\nmodules = ["pasarela.testing.fake"]\n'
                    '[providers.fake]\ntimeout = "soon"\n[storee]\n')
    problems = validate(path)
    assert any(p.startswith("storee: unknown section") for p in problems)
    assert any(p.startswith("providers.fake.timeout") for p in problems)
    with pytest.raises(PasarelaError):
        Pasarela.from_config(path)


def test_the_readmes_sample_configuration_starts_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's pasarela.toml, with the sandbox credentials it names in the
    environment, passes config check and starts."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    sample = re.search(r"```toml\n(\[store\].*?)```", readme, re.S)
    assert sample is not None
    path = tmp_path / "pasarela.toml"
    path.write_text(sample.group(1), encoding="utf-8")
    monkeypatch.setenv("PAGOEFECTIVO_ACCESS_KEY", "PESANDBOXACCESSKEY01")
    monkeypatch.setenv("PAGOEFECTIVO_SECRET_KEY", "sandbox-secret-key-do-not-use-in-production")
    assert validate(path) == []
    with Pasarela.from_config(path) as pasarela:
        assert set(pasarela.providers) == {"pagoefectivo"}
        assert pasarela.config.store.url == f"sqlite:///{(tmp_path / 'pasarela.db').resolve()}"
