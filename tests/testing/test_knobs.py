"""Knobs: one unit scheme, conversion from the command line, refusals naming the knob."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from pasarela.errors import ValidationError
from pasarela.testing.sandbox import Knobs, count, knob


def test_defaults_follow_the_scheme() -> None:
    knobs = Knobs()
    units = {name: unit for name, unit, _ in Knobs.documented()}
    assert units["latency"] == units["delay_webhooks"] == units["webhook_retry_delay"] == "seconds"
    assert units["fail_rate"] == units["lose_webhooks"] == "share"
    assert units["duplicate_webhooks"] == units["fail_next"] == "count"
    assert units["reorder_webhooks"] == units["hold_webhooks"] == "flag"
    assert all(doc for _, _, doc in Knobs.documented())
    assert (knobs.latency, knobs.webhook_url, knobs.webhook_retries) == (0.0, None, 2)


def test_text_from_the_command_line_is_converted() -> None:
    knobs = Knobs.of({"latency": "0.25", "fail_next": "2", "reorder_webhooks": "true",
                      "hold_webhooks": "off", "webhook_url": ""})
    assert knobs.latency == 0.25
    assert knobs.fail_next == 2
    assert knobs.reorder_webhooks is True
    assert knobs.hold_webhooks is False
    assert knobs.webhook_url is None


@pytest.mark.parametrize(("changes", "field", "reason"), [
    ({"latency": -1}, "latency", "at least 0 seconds"),
    ({"latency": "soon"}, "latency", "must be a number"),
    ({"latency": True}, "latency", "must be a number"),
    ({"fail_rate": 1.5}, "fail_rate", "share from 0 to 1"),
    ({"duplicate_webhooks": 1.5}, "duplicate_webhooks", "whole number"),
    ({"reorder_webhooks": "maybe"}, "reorder_webhooks", "true or false"),
    ({"webhook_url": 8000}, "webhook_url", "text or null"),
    ({"lattency": 1}, "lattency", "no such knob (did you mean latency?)"),
])
def test_refusals_name_the_knob(changes: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Knobs.of(changes)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert reason in str(caught.value)


def test_update_is_all_or_nothing() -> None:
    knobs = Knobs()
    with pytest.raises(ValidationError, match="fail_rate"):
        knobs.update({"latency": 0.5, "fail_rate": 2})
    assert knobs.latency == 0.0
    knobs.update({"latency": 0.5, "fail_rate": 0.1})
    assert (knobs.latency, knobs.fail_rate) == (0.5, 0.1)
    with pytest.raises(ValidationError, match="latency"):
        knobs.latency = -3  # a plain assignment is checked too
    assert knobs.latency == 0.5


@attrs.define(kw_only=True)
class LimitKnobs(Knobs):
    webhook_retries: int = count(1, "one retry, as the provider documents")
    limits: dict[str, Decimal] = knob(  # noqa: RUF009 - an attrs field (factory)
        lambda value, name: {str(k): Decimal(str(v)) for k, v in dict(value).items()},
        "per-currency limits", factory=dict, unit="amounts")

    def merge(self, name: str, value: object) -> object:
        if name == "limits":
            return {**self.limits, **dict(value)}  # type: ignore[call-overload]
        return value


def test_a_sandbox_extends_the_knobs() -> None:
    knobs = LimitKnobs.of({"limits": {"PEN": "100"}})
    assert knobs.webhook_retries == 1  # the redeclared default
    knobs.update({"limits": {"USD": 5}})
    assert knobs.limits == {"PEN": Decimal("100"), "USD": Decimal("5")}  # merged
    assert knobs.describe()["limits"] == {"PEN": "100", "USD": "5"}  # JSON-able
    assert [name for name, _, _ in LimitKnobs.documented()][-1] == "limits"
