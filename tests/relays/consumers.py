"""The consumer examples of docs/relays.md, loaded from the page itself (so the tests
run what the documentation shows)."""

from __future__ import annotations

import re
import types
from pathlib import Path


DOC = Path(__file__).resolve().parents[2] / "docs" / "relays.md"


def consumer(kind: str) -> types.ModuleType:
    text = DOC.read_text(encoding="utf-8")
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        if block.startswith(f"# consumer: {kind}\n"):
            module = types.ModuleType(f"relays_doc_{kind}")
            exec(compile(block, f"{DOC.name}:{kind}", "exec"), module.__dict__)  # noqa: S102
            return module
    raise LookupError(f"docs/relays.md has no '# consumer: {kind}' example")
