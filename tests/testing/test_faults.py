"""One-shot faults: queued per operation, used up in order, refused naming the field."""

from __future__ import annotations

import pytest

from pasarela.errors import ValidationError
from pasarela.testing.sandbox import Fault, Faults


def test_faults_are_taken_in_order_and_used_up() -> None:
    faults = Faults(("create", "search"), ("500", "timeout"))
    faults.add(faults.parse({"operation": "create", "kind": "500", "times": 2}))
    faults.add(faults.parse({"kind": "timeout", "seconds": 3}))  # any operation
    assert faults.describe() == [
        {"operation": "create", "kind": "500", "times": 2, "seconds": 30.0},
        {"operation": "any", "kind": "timeout", "times": 1, "seconds": 3.0}]
    assert faults.take("search") == Fault(operation="any", kind="timeout", seconds=3.0)
    assert faults.take("search") is None
    assert [faults.take("create") for _ in range(3)] == [
        Fault(operation="create", kind="500", times=2)] * 2 + [None]
    assert len(faults) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"operation": "refund", "kind": "500"}, "operation"),
    ({"operation": "create", "kind": "boom"}, "kind"),
    ({"operation": "create", "kind": "500", "times": "x"}, "times"),
    ({"operation": "create", "kind": "500", "times": 0}, "times"),
    ({"operation": "create", "kind": "500", "seconds": -1}, "seconds"),
])
def test_a_bad_fault_is_refused_naming_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Faults(("create",), ("500",)).parse(body)
    assert caught.value.field == field
