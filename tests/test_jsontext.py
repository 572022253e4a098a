"""JSON text with exact numbers: `jsontext.resorted` keeps every number as written."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasarela import jsontext


decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | decimals,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _exact(text: str) -> str:
    """*text*'s value with every number's own digits (Decimal equality ignores them),
    keys sorted."""
    return json.dumps(json.loads(text, parse_float=Decimal), sort_keys=True, default=repr)


@given(values)
def test_resorted_keeps_every_number_as_written_and_sorts_the_keys(value: object) -> None:
    text = jsontext.dumps(value).decode("utf-8")
    out = jsontext.resorted(text)
    assert _exact(out) == _exact(text)
    assert json.loads(out) == json.loads(json.dumps(json.loads(text), sort_keys=True))


def test_resorted_examples() -> None:
    assert (jsontext.resorted('{"b":149.90,"a":[1e5,-0.0,2]}')
            == '{"a": [1e5, -0.0, 2], "b": 149.90}')
    # Text that spells a marker stays text: only this call's markers are numbers.
    trap = '{"t":"\\u00000123456789abcdef:0\\u0000","x":1.5}'
    assert jsontext.resorted(trap) == '{"t": "\\u00000123456789abcdef:0\\u0000", "x": 1.5}'
    with pytest.raises(ValueError, match="Expecting"):
        jsontext.resorted("amount=1.50")
