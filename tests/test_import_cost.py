"""What ``import pasarela.api`` costs: heavy libraries a deployment may never need are
imported on first use, not with the library (the import budget lives in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys


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
