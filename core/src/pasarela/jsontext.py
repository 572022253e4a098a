"""JSON text with exact decimal numbers, for providers whose amounts are JSON numbers.

PagoEfectivo's amounts are JSON numbers with two decimals (``"amount": 1.00`` in its
spec's request example, ``22.05`` in the notification); dLocal's are too. The standard
library can only write a number from a float, which loses the trailing zero and, past
15 significant digits, the value; so Decimals are written here as their own text, and
JSON is read with ``parse_float=Decimal`` so no amount ever becomes a float.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any


__all__ = ["dumps", "loads", "resorted"]

#: A number's marker (:func:`_marker`) as ``json.dumps`` writes it.
_MARKER = re.compile(r'"\\u0000([0-9a-f]{16}):([0-9]+)\\u0000"')


def _marker(nonce: str, numbers: list[str], number: str) -> str:
    """A string standing for *number* (its text) in a document about to be written:
    it names *nonce*, a call's own (user text can never spell it)."""
    numbers.append(number)
    return f"\x00{nonce}:{len(numbers) - 1}\x00"


def _numbers_written(text: str, nonce: str, numbers: list[str]) -> str:
    """*text* with each of this call's markers replaced by its number's text."""
    if not numbers:
        return text
    return _MARKER.sub(
        lambda found: numbers[int(found[2])] if found[1] == nonce else found[0], text)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (no indentation: what a signature over the body expects), with
    every :class:`~decimal.Decimal` written as a number exactly as ``str()`` gives it
    (``100.00`` stays ``100.00``)."""
    numbers: list[str] = []
    nonce = secrets.token_hex(8)  # user text can never spell the marker

    def mark(item: Any) -> Any:
        if isinstance(item, Decimal):
            if not item.is_finite():
                raise ValueError(f"not a JSON number: {item}")
            return _marker(nonce, numbers, str(item))
        if isinstance(item, dict):
            return {key: mark(sub) for key, sub in item.items()}
        if isinstance(item, list | tuple):
            return [mark(sub) for sub in item]
        return item

    text = json.dumps(mark(value), ensure_ascii=False, separators=(",", ":"))
    return _numbers_written(text, nonce, numbers).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON with decimals kept exact. Raises ``ValueError`` on bad input."""
    return json.loads(data, parse_float=Decimal)


def resorted(text: str, *,
             object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> str:
    """*text*, a JSON document, parsed (through *object_pairs_hook*, if given) and
    written again with sorted keys and ``json.dumps``' default separators, each number
    exactly as *text* wrote it (``149.90`` stays ``149.90``, ``1e5`` stays ``1e5``).
    Raises ``ValueError`` when *text* is not JSON.

    A number with a fraction or an exponent is parsed into a marker that names a nonce
    of this call (no text can spell it) and is written back in its place."""
    numbers: list[str] = []
    nonce = secrets.token_hex(8)
    data = json.loads(text, object_pairs_hook=object_pairs_hook,
                      parse_float=lambda number: _marker(nonce, numbers, number))
    return _numbers_written(json.dumps(data, ensure_ascii=False, sort_keys=True),
                            nonce, numbers)
