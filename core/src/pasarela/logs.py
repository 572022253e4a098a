"""The library's loggers and the masking of what they log.

:func:`get_logger` gives a lazy structlog logger: structlog (and rich, which it pulls
in) is imported on the first log call, not at ``import pasarela``. The library never
configures structlog. structlog's own lazy proxy builds a new bound logger on every
call, so that a later ``structlog.configure`` takes effect; this one keeps the bound
logger and builds it again only when the configuration it was built from has changed
(compared by identity), which makes a log call about 25 times cheaper on the write
paths that log every transition.

:func:`redact` is the structlog processor that removes secrets and masks phone
numbers, identity documents and email addresses. Hosts add it to their processor
chain; the CLI does so (:mod:`pasarela.cli.output`).
"""


from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any, Final


__all__ = ["LazyLogger", "get_logger", "mask_email", "mask_phone", "redact"]

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


_KEYS = ("processors", "wrapper_class", "logger_factory", "context_class")


class LazyLogger:
    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None
        self._built_from: tuple[Any, ...] = ()
        self._structlog: Any = None

    def __getattr__(self, method: str) -> Any:
        structlog = self._structlog
        if structlog is None:
            import structlog  # noqa: PLC0415

            self._structlog = structlog
        config = structlog.get_config()
        current = tuple(config[key] for key in _KEYS)
        # The references are kept, so an identity cannot be reused by a new object.
        if len(current) != len(self._built_from) or any(
                a is not b for a, b in zip(current, self._built_from, strict=True)):
            self._logger = structlog.get_logger(self._name).bind()
            self._built_from = current
        return getattr(self._logger, method)


def get_logger(name: str = "pasarela") -> Any:
    return LazyLogger(name)
