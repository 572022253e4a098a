"""Logging: structlog events with bound context, and the redaction processor.

The library never configures structlog; it only calls ``structlog.get_logger``.
Hosts add :func:`redact` to their processor chain; the CLI does so in
:func:`configure` (console or JSON output). Secrets are removed; phone numbers,
identity documents and email addresses are masked.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog


__all__ = ["configure", "mask_email", "mask_phone", "redact"]

_SECRET_KEYS: Final = re.compile(
    r"(?i)(secret|password|passwd|token|api_key|apikey|access_key|authorization|otp|"
    r"client_secret|signature|hash_string|hashstring|cvv|card_number)"
)
_EMAIL_KEYS: Final = re.compile(r"(?i)e-?mail")
_PHONE_KEYS: Final = re.compile(r"(?i)(phone|celular|mobile)")
_DOCUMENT_KEYS: Final = re.compile(r"(?i)(document|dni|ruc|passport)")
_EMAIL_RE: Final = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
_PHONE_RE: Final = re.compile(r"\+?\d[\d ]{7,14}\d")


def mask_email(value: str) -> str:
    return _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-3:]}" if digits else "***"


def _mask_document(value: Any) -> str:
    text = str(value)
    return f"****{text[-3:]}" if len(text) > 3 else "****"


def _clean(key: str, value: Any) -> Any:
    if isinstance(value, MutableMapping):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not _DOCUMENT_KEYS.search(key):
        return [_clean(key, v) for v in value]
    if value is None:
        return None
    if _SECRET_KEYS.search(key):
        return "[redacted]"
    if _EMAIL_KEYS.search(key):
        return mask_email(str(value))
    if _PHONE_KEYS.search(key):
        return mask_phone(str(value))
    if _DOCUMENT_KEYS.search(key):
        return _mask_document(value if not isinstance(value, list | tuple) else value[-1])
    if isinstance(value, str):
        return mask_email(value)
    return value


def redact(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: remove secrets, mask phone, document and email."""
    for key in list(event_dict):
        if key == "event":
            event_dict[key] = mask_email(str(event_dict[key]))
            continue
        event_dict[key] = _clean(key, event_dict[key])
    return event_dict


def configure(*, json: bool = False, level: int = logging.INFO) -> None:
    """Configure structlog for the CLI (never called by the library itself)."""
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
