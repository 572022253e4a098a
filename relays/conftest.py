"""The relays' tests share the repository's relay test helpers (tests/relays: the fault
test, the documented consumers, the brokers' addresses)."""

from __future__ import annotations

import sys
from pathlib import Path


ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.conftest import postgres_schema_url, postgres_schema_urls  # noqa: E402  (the store tests' fixtures)


__all__ = ["postgres_schema_url", "postgres_schema_urls"]
