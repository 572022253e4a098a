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

#: A number's marker in :func:`resorted`, as ``json.dumps`` writes it.
_MARKER = re.compile(r'"\\u0000([0-9a-f]{16}):([0-9]+)\\u0000"')


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
            numbers.append(str(item))
            return f"\x00{nonce}:{len(numbers) - 1}\x00"
        if isinstance(item, dict):
            return {key: mark(sub) for key, sub in item.items()}
        if isinstance(item, list | tuple):
            return [mark(sub) for sub in item]
        return item

    text = json.dumps(mark(value), ensure_ascii=False, separators=(",", ":"))
    for index, number in enumerate(numbers):
        text = text.replace(f'"\\u0000{nonce}:{index}\\u0000"', number, 1)
    return text.encode("utf-8")


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
    nonce = ""

    def marked(number: str) -> str:
        nonlocal nonce
        nonce = nonce or secrets.token_hex(8)
        numbers.append(number)
        return f"\x00{nonce}:{len(numbers) - 1}\x00"

    data = json.loads(text, object_pairs_hook=object_pairs_hook, parse_float=marked)
    out = json.dumps(data, ensure_ascii=False, sort_keys=True)
    if not numbers:
        return out
    return _MARKER.sub(
        lambda found: numbers[int(found[2])] if found[1] == nonce else found[0], out)
