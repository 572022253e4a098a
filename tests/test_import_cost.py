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
