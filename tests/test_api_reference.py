"""docs/api-reference.md stays complete: every Payment, Option and LifecycleEvent field,
every next action and every error code is on the page."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from pasarela import next_action
from pasarela.engine.payments import Option
from pasarela.errors import ErrorCode
from pasarela.events import LifecycleEvent
from pasarela.model import Payment


PAGE = (Path(__file__).resolve().parents[1] / "docs" / "api-reference.md").read_text(
    encoding="utf-8")


def _section(title: str) -> str:
    start = PAGE.index(f"## {title}")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:end if end != -1 else None]


@pytest.mark.parametrize(("cls", "title"), [(Payment, "`Payment`"), (Option, "`Option`"),
                                            (LifecycleEvent, "`LifecycleEvent`")])
def test_every_field_is_documented(cls: type, title: str) -> None:
    section = _section(title)
    missing = [f.name for f in attrs.fields(cls) if f"`{f.name}`" not in section]
    assert not missing, f"{title}: document {missing}"


def test_every_next_action_and_its_fields_are_documented() -> None:
    section = _section("Next actions")
    classes = [getattr(next_action, name) for name in next_action.__all__]
    variants = [c for c in classes if isinstance(c, type) and issubclass(c, next_action.NextAction)
                and c is not next_action.NextAction]
    assert variants
    for cls in variants:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{cls.__name__}`"))
        assert f"`{cls.type}`" in row
        missing = [f.name for f in attrs.fields(cls) if f"`{f.name}`" not in row]
        assert not missing, f"{cls.__name__}: document {missing}"


def test_every_error_code_is_documented() -> None:
    section = _section("Errors and their codes")
    missing = [code.value for code in ErrorCode if f"| `{code.value}` |" not in section]
    assert not missing, f"document the codes {missing}"
