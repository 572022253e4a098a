"""JSON text with exact decimal numbers, for providers whose amounts are JSON numbers.

PagoEfectivo's amounts are JSON numbers with two decimals (``"amount": 1.00`` in its
spec's request example, ``22.05`` in the notification); dLocal's are too. The standard
library can only write a number from a float, which loses the trailing zero and, past
15 significant digits, the value; so Decimals are written here as their own text, and
JSON is read with ``parse_float=Decimal`` so no amount ever becomes a float.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any


__all__ = ["dumps", "loads"]


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
