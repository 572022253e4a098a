"""What ``import pasarela.api`` costs: heavy libraries a deployment may never need are
imported on first use, not with the library (the import budget lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


LAZY = ("cryptography", "jinja2", "starlette", "uvicorn", "prometheus_client", "alembic",
        "psycopg", "segno")


def test_the_facade_imports_no_lazy_library() -> None:
    code = ("import json, sys; import pasarela.api; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(LAZY)!r})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) == []


def test_plugin_discovery_imports_no_broker_client() -> None:
    code = ("import json, sys; from pasarela.plugins import get_plugin_manager; "
            "get_plugin_manager().providers(); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'nats', 'aio_pika', 'aiormq', 'redis'})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) == []


def test_plugin_discovery_leaves_out_the_httpx_command_line() -> None:
    """httpx's package imports its command line (click, rich, pygments) with itself;
    pasarela puts a stand-in in its place that imports it on first use."""
    code = ("import json, sys; from pasarela.plugins import get_plugin_manager; "
            "get_plugin_manager().providers(); import httpx; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} "
            "& {'click', 'rich', 'pygments'})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) == []


def test_the_httpx_command_line_still_works_after_pasarela() -> None:
    """The stand-in hands every use over to the real module: ``httpx.main`` runs the
    real command, and the real module's names are there."""
    code = ("import sys, pasarela, httpx, httpx._main as cli; "
            "assert cli.print_help is sys.modules['httpx._main'].print_help; "
            "assert 'rich' in sys.modules; "
            "httpx.main(['--help'])")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage: httpx" in done.stdout


def test_plugin_discovery_imports_no_event_loop() -> None:
    """The relays need asyncio when they publish, not when plugins are discovered."""
    code = ("import json, sys; from pasarela.plugins import get_plugin_manager; "
            "get_plugin_manager().providers(); "
            "print(json.dumps('asyncio' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) is False


def test_plugin_discovery_loads_no_babel() -> None:
    """Babel (its import and its currency data) comes with the first Money built or
    amount formatted, not with discovering the plugins: no adapter builds a Money at
    import (dLocal's card minimum is built on first use)."""
    code = ("import json, sys; from pasarela.plugins import get_plugin_manager; "
            "get_plugin_manager().providers(); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'babel'})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) == []


def test_the_dlocal_card_minimum_is_still_there() -> None:
    from pasarela_dlocal import provider

    from pasarela.money import Money

    assert Money(500, "PEN") == provider.CARD_MINIMUM


def _discovery_loads(modules: set[str]) -> list[str]:
    """Which of *modules* (full names) discovering the installed plugins imports."""
    code = ("import sys; from pasarela.plugins import get_plugin_manager; "
            "get_plugin_manager().providers(); "
            f"loaded = sorted(set(sys.modules) & set({sorted(modules)!r})); "
            "import json; print(json.dumps(loaded))")  # json itself read after the check
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_plugin_discovery_imports_neither_httpx_nor_importlib_metadata() -> None:
    """Registering a provider class imports no HTTP client (flows build requests when a
    provider runs), and the entry points are read without importlib.metadata (it and
    the email package it brings cost a third of discovery)."""
    assert _discovery_loads({"httpx", "importlib.metadata", "email.utils", "zipfile"}) == []


#: Modules only a provider's operations use: imported when one is built or runs one.
OPERATIONS = frozenset({
    "pasarela_stripe.api", "pasarela_stripe.events", "pasarela_pagoefectivo.api",
    "pasarela_mercadopago.api", "pasarela_dlocal.api", "pasarela_yape.acquirer",
    "pasarela_yape.culqi", "pasarela_stripe.webhooks", "pasarela_mercadopago.webhooks",
    "pasarela_pagoefectivo.notifications", "pathlib", "logging", "typing_extensions",
    "hashlib", "hmac", "secrets", "random", "difflib", "json", "pasarela.retry",
})


def test_plugin_discovery_leaves_the_adapters_operations_out() -> None:
    """What only a provider's operations use is imported when one first runs."""
    assert _discovery_loads(set(OPERATIONS)) == []


def test_the_mercado_pago_search_limit_is_the_api_s() -> None:
    from pasarela_mercadopago import api
    from pasarela_mercadopago.provider import MercadoPagoProvider

    assert MercadoPagoProvider.get_many_limit == api.SEARCH_LIMIT


def test_a_provider_imports_its_operations_when_it_runs_one() -> None:
    """In a fresh process: discovery leaves Stripe's API module out, and the first flow
    run imports it (and httpx) and builds its request as before."""
    code = ("import sys; from pasarela.plugins import get_plugin_manager; "
            "from pasarela_stripe.settings import StripeSettings; "
            "cls = get_plugin_manager().providers().get('stripe'); "
            "assert 'pasarela_stripe.api' not in sys.modules; "
            "request = next(cls(StripeSettings(api_key='sk_test_x')).probe()); "
            "import httpx; assert isinstance(request, httpx.Request); "
            "print(request.method, request.url.path)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.split() == ["GET", "/v1/balance_transactions"]


def test_imported_on_use_puts_the_module_in_its_place() -> None:
    from pasarela.provider import imported_on_use

    namespace: dict[str, object] = {}
    namespace["textwrap"] = stand_in = imported_on_use("textwrap", namespace)
    assert namespace["textwrap"] is stand_in
    assert stand_in.dedent("  x") == "x"  # type: ignore[attr-defined]
    import textwrap

    assert namespace["textwrap"] is textwrap
    assert stand_in.indent is textwrap.indent  # type: ignore[attr-defined]


def test_the_entry_point_scan_finds_what_importlib_metadata_finds() -> None:
    from importlib import metadata

    from pasarela import plugins

    for group in ("pasarela", "console_scripts", "pytest11"):
        scanned = sorted((e.name, e.value, e.dist and e.dist.name)
                         for e in plugins._scan_entry_points(group))
        expected = sorted((e.name, e.value, e.dist and e.dist.name)
                          for e in metadata.entry_points(group=group))
        assert scanned == expected, group


def test_a_zipped_distribution_is_read_by_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan reads plain directories only; a zip on the path hands the whole read
    to importlib.metadata, which finds the zipped distribution's entry points."""
    import zipfile

    from pasarela import plugins

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_plugin-1.0.dist-info/METADATA",
                        "Metadata-Version: 2.1\nName: zipped-plugin\nVersion: 1.0\n")
        zipped.writestr("zipped_plugin-1.0.dist-info/entry_points.txt",
                        "[pasarela]\nzipped = zipped_plugin\n")
    monkeypatch.syspath_prepend(str(archive))
    with pytest.raises(plugins._Unusual):
        list(plugins._scan_entry_points("pasarela"))
    found = {e.name: e for e in plugins._entry_points("pasarela")}
    assert found["zipped"].value == "zipped_plugin"
    assert plugins._of(found["zipped"]) == ("zipped-plugin", "1.0")
    assert {"pagoefectivo", "stripe"} <= set(found)


@pytest.mark.parametrize("name", ["pasarela_stripe", "Foo", "a__b", "a.b", "A-B_c", "x___y",
                                  "_a_", "zope.interface", "Ab_Cd", "ruamel.yaml.clib"])
def test_the_scan_normalizes_names_as_importlib_metadata_does(name: str) -> None:
    import re

    from pasarela import plugins

    assert plugins._normalize(name) == re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")
