"""Stripe's form encoding: ``application/x-www-form-urlencoded`` in bracket notation.

Stripe's v1 API takes nested parameters as ``metadata[order]=x``, lists as
``payment_method_types[]=card`` (or with indexes, ``items[0][price]=p``) and
booleans as ``true``/``false``. :func:`encode` writes that notation from plain
Python values; :func:`decode` reads it back into nested dicts and lists (the
sandbox parses requests with it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode


__all__ = ["FormError", "decode", "encode", "pairs", "split_key"]

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A form body or key that is not valid bracket notation."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"cannot form-encode {type(value).__name__}")


def pairs(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Flatten *params* into ``(key, value)`` pairs in bracket notation.

    ``None`` values are left out; lists of scalars use ``key[]``, lists of
    mappings ``key[0][field]``.
    """
    for name, value in params.items():
        key = f"{prefix}[{name}]" if prefix else str(name)
        if value is None:
            continue
        if isinstance(value, Mapping):
            yield from pairs(value, key)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from pairs(item, f"{key}[{index}]")
                else:
                    yield f"{key}[]", _scalar(item)
        else:
            yield key, _scalar(value)


def encode(params: Mapping[str, Any]) -> str:
    """Encode *params* as a Stripe form body (keys keep their order)."""
    return urlencode(list(pairs(params)))


def split_key(key: str) -> tuple[str, list[str]]:
    """``"a[b][]"`` -> ``("a", ["b", ""])``. Raises :class:`FormError` when malformed."""
    start = key.find("[")
    if start < 0:
        if "]" in key:
            raise FormError(f"Invalid parameter name: {key}", param=key)
        return key, []
    base, rest = key[:start], key[start:]
    segments = _SEGMENT.findall(rest)
    if not base or "".join(f"[{s}]" for s in segments) != rest:
        raise FormError(f"Invalid parameter name: {key}", param=key)
    return base, segments


_LIST = "\x00list"


def _insert(node: dict[Any, Any], segments: list[str], value: str, key: str) -> None:
    head, rest = segments[0], segments[1:]
    if head == "" or head.isdigit():
        if node and node.get(_LIST) is not True:
            raise FormError(f"Invalid array: {key}", param=key)
        node[_LIST] = True
        if head == "":
            if rest:
                raise FormError(f"Invalid array: {key}", param=key)
            index = sum(1 for k in node if isinstance(k, int))
        else:
            index = int(head)
    else:
        if node.get(_LIST) is True:
            raise FormError(f"Invalid hash: {key}", param=key)
        index = head  # type: ignore[assignment]
    if not rest:
        if index in node:
            raise FormError(f"Duplicate parameter: {key}", param=key)
        node[index] = value
        return
    child = node.setdefault(index, {})
    if not isinstance(child, dict):
        raise FormError(f"Invalid hash: {key}", param=key)
    _insert(child, rest, value, key)


def _finish(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node.pop(_LIST, False):
        return [_finish(node[i]) for i in sorted(k for k in node if isinstance(k, int))]
    return {k: _finish(v) for k, v in node.items()}


def decode(body: bytes | str) -> dict[str, Any]:
    """Decode a Stripe form body into nested dicts and lists of strings.

    A repeated scalar key or a key that mixes list and hash notation raises
    :class:`FormError` (Stripe answers such requests with a 400).
    """
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    root: dict[Any, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False):
        base, segments = split_key(key)
        if not segments:
            if base in root:
                raise FormError(f"Duplicate parameter: {key}", param=key)
            root[base] = value
            continue
        child = root.setdefault(base, {})
        if not isinstance(child, dict):
            raise FormError(f"Invalid hash: {key}", param=key)
        _insert(child, segments, value, key)
    result = _finish(root)
    assert isinstance(result, dict)
    return result
