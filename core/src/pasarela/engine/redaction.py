"""Redaction of recorded exchanges: what the store keeps of a provider call.

:func:`redact_exchange` masks, before anything is written, the headers a provider
declares secret (``secret_headers``), the values of the body fields it declares
secret (``secret_fields``, any case, at any depth, in JSON and form-encoded
bodies) and every secret value of its settings wherever it appears.

A JSON body is kept as sorted-key JSON, each number exactly as it was written:
``149.90`` stays ``149.90`` and ``1234567890123456.78`` keeps its last digit (read as
floats, the first lost its trailing zero and the second became ``...456.8``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from pasarela import jsontext
from pasarela.provider import Provider


__all__ = ["redact_exchange"]

# What a masked value is replaced with.
_MASK = "[redacted]"


def _masking(keys: frozenset[str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json.loads`` object hook that masks the value of every key in *keys*
    (any case, at any depth) as it parses."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {k: (_MASK if k.lower() in keys else v) for k, v in pairs}
    return hook


def _redact_text(text: str, keys: frozenset[str], secrets: Iterable[str]) -> str:
    if not text:
        return text
    lowered = text.lower()
    # Mask while parsing only if a key to mask can be in it (a search answer can be
    # long); an escaped key name is not looked for, so any escape means "can be".
    masking = "\\u" in text or any(f'"{key}"' in lowered for key in keys)
    try:
        out = jsontext.resorted(text, object_pairs_hook=_masking(keys) if masking else None)
    except ValueError:
        out = text
        for key in keys:  # form-encoded bodies: key=value
            out = re.sub(
                rf"(?i)(^|&)({re.escape(key)}(?:%5B[^=&]*%5D|\[[^=&]*\])*)=[^&]*",
                rf"\1\2={_MASK}",
                out,
            )
    for secret in secrets:
        if secret:
            out = out.replace(secret, _MASK)
    return out


def redact_exchange(
    provider: Provider,
    request: httpx.Request,
    response: httpx.Response | None,
) -> tuple[dict[str, str], str, dict[str, str], str]:
    """Redacted request headers and body, response headers and body."""
    secrets = provider.settings.secret_values()
    keys = frozenset(k.lower() for k in provider.secret_fields)
    headers = frozenset(h.lower() for h in provider.secret_headers)

    def clean_headers(items: httpx.Headers) -> dict[str, str]:
        return {k: (_MASK if k.lower() in headers else v) for k, v in items.items()}

    req_body = _redact_text(request.content.decode("utf-8", "replace"), keys, secrets)
    if response is None:
        return clean_headers(request.headers), req_body, {}, ""
    resp_body = _redact_text(response.content.decode("utf-8", "replace"), keys, secrets)
    return clean_headers(request.headers), req_body, clean_headers(response.headers), resp_body
