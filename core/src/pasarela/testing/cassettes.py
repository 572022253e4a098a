"""The base cassette configuration (pytest-recording over vcrpy) that scrubs secrets.

An adapter's ``conftest.py``::

    from pasarela.testing.cassettes import base_vcr_config

    @pytest.fixture(scope="module")
    def vcr_config():
        return base_vcr_config(secret_fields={"otp"}, secret_values=[SANDBOX_KEY])

Recording is a deliberate local action (``--record-mode=once``); the default mode
(``none``) replays, and CI adds ``--block-network``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pasarela.logs import mask_email


__all__ = ["SECRET_HEADERS", "base_vcr_config", "scrub_body"]

SECRET_HEADERS = (
    "authorization", "proxy-authorization", "cookie", "set-cookie", "pe-signature",
    "stripe-signature", "x-api-key", "idempotency-key",
)
_MASK = "[redacted]"


def scrub_body(body: bytes | str | None, secret_fields: Iterable[str],
               secret_values: Iterable[str]) -> bytes | str | None:
    """Mask secret JSON fields and secret values, and mask email addresses."""
    if body is None:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    fields = {f.lower() for f in secret_fields}
    # Only the secret values are rewritten, in place: every other byte stays as sent
    # (149.90 must not become 149.9), so cassettes pin the exact wire format.
    out = text
    for field in fields:
        out = re.sub(
            rf'("{re.escape(field)}"\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)',
            rf'\1"{_MASK}"', out, flags=re.IGNORECASE,
        )
    for secret in secret_values:
        if secret:
            out = out.replace(secret, _MASK)
    out = mask_email(out)
    return out.encode() if isinstance(body, bytes) else out


def base_vcr_config(*, secret_fields: Iterable[str] = (), secret_values: Iterable[str] = (),
                    extra_headers: Iterable[str] = ()) -> dict[str, Any]:
    fields = tuple(secret_fields)
    values = tuple(secret_values)

    def before_record_request(request: Any) -> Any:
        request.body = scrub_body(request.body, fields, values)
        return request

    def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {})
        if isinstance(body, dict) and "string" in body:
            body["string"] = scrub_body(body["string"], fields, values)
        for header in list(response.get("headers", {})):
            if header.lower() in SECRET_HEADERS:
                response["headers"][header] = [_MASK]
        return response

    hooks: dict[str, Callable[..., Any]] = {
        "before_record_request": before_record_request,
        "before_record_response": before_record_response,
    }
    return {
        "filter_headers": [(h, _MASK) for h in (*SECRET_HEADERS, *extra_headers)],
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "decode_compressed_response": True,
        **hooks,
    }
