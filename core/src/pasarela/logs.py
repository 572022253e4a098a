"""The library's logs: standard :mod:`logging`, silent by default, masked at the source.

pasarela logs through the ``pasarela`` logger tree of the standard library, like httpx
and SQLAlchemy: a :class:`logging.NullHandler` on ``pasarela`` keeps a host that
configures nothing silent (not even Python's last-resort handler prints), and a host
that configures logging (``logging.basicConfig(level=logging.INFO)``, a level on
``pasarela``, dictConfig, structlog's ``ProcessorFormatter``) gets pasarela's events
there.

Every event is a name and key-value fields (``payment_transition payment_id=... ``)::

    log = get_logger("pasarela")
    log.info("payment_transition", payment_id=payment.id, provider="stripe")

Masking happens **here, before a record exists**, so no handler, filter or formatter a
host installs can see an unmasked value: secrets (keys naming a secret, password,
token, signature, ...) are removed; phone numbers, identity documents and email
addresses are masked; an email address inside any text is masked too. The record's
message is the rendered event (``event key=value ...``); its ``pasarela`` attribute
holds the masked fields as a dict, with the event under ``"event"``, for structured
handlers (structlog's ``ExtraAdder`` picks it up).

Exceptions are logged as text, never as a traceback object: :meth:`EventLogger.exception`
adds ``error`` (the exception's type and masked message) and ``stack`` (file, line and
function of each frame, no source and no local variables), so no formatter can print a
frame's locals, and a failed delivery costs a few microseconds to log.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any, Final


__all__ = ["EventLogger", "get_logger", "mask_email", "mask_fields", "mask_phone",
           "mask_text", "render"]

ROOT: Final = "pasarela"
logging.getLogger(ROOT).addHandler(logging.NullHandler())

_SECRET_KEYS: Final = re.compile(
    r"(?i)(secret|password|passwd|token|api_key|apikey|access_key|authorization|otp|"
    r"client_secret|signature|hash_string|hashstring|cvv|card_number)"
)
_EMAIL_KEYS: Final = re.compile(r"(?i)e-?mail")
_PHONE_KEYS: Final = re.compile(r"(?i)(phone|celular|mobile)")
_DOCUMENT_KEYS: Final = re.compile(r"(?i)(document|dni|ruc|passport)")
_EMAIL_RE: Final = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
_MASK: Final = "[redacted]"
#: The most frames :meth:`EventLogger.exception` keeps (the innermost).
STACK_DEPTH: Final = 12


def mask_email(value: str) -> str:
    """Every email address in *value* as ``r***@example.pe``."""
    if "@" not in value:
        return value
    return _EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-3:]}" if digits else "***"


def _mask_document(value: Any) -> str:
    text = str(value)
    return f"****{text[-3:]}" if len(text) > 3 else "****"


def mask_text(text: str) -> str:
    """Free text (an event name, an error message): email addresses masked."""
    return mask_email(text)


def _clean(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset) and not _DOCUMENT_KEYS.search(key):
        return [_clean(key, v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return None if value is None else (
            _MASK if _SECRET_KEYS.search(key) else value)
    if _SECRET_KEYS.search(key):
        return _MASK
    if _EMAIL_KEYS.search(key):
        return mask_email(str(value))
    if _PHONE_KEYS.search(key):
        return mask_phone(str(value))
    if _DOCUMENT_KEYS.search(key):
        return _mask_document(value if not isinstance(value, list | tuple) else value[-1])
    return mask_text(value if isinstance(value, str) else str(value))


def mask_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """*fields* with secrets removed and personal data masked (see the module docs).

    Values come back as JSON-friendly types: strings, numbers, booleans, None, lists
    and dicts of those.
    """
    return {key: _clean(key, value) for key, value in fields.items()}


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(
        value, bool | int | float) or value is None else str(value)
    if isinstance(value, str) and (not text or any(c in text for c in " \t\n\"'=")):
        return repr(text)
    return text


def render(event: str, fields: Mapping[str, Any]) -> str:
    """``event key=value key=value``, the record's message (values already masked)."""
    if not fields:
        return event
    return event + " " + " ".join(f"{key}={_text(value)}" for key, value in fields.items())


def describe_exception(exc: BaseException) -> tuple[str, list[str]]:
    """The exception as masked text, and its stack as ``file:line in function``
    (never local variables): what a log line may carry of an error."""
    error = f"{type(exc).__name__}: {mask_text(str(exc))}".rstrip(": ")
    frames = traceback.extract_tb(exc.__traceback__)[-STACK_DEPTH:]
    stack = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames]
    return error, stack


class EventLogger:
    """Key-value events on a standard :class:`logging.Logger` (see the module docs)."""

    __slots__ = ("logger",)

    def __init__(self, name: str = ROOT) -> None:
        self.logger = logging.getLogger(name)

    def debug(self, event: str, **fields: Any) -> None:
        self.log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self.log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the exception being handled, as masked text (no locals)."""
        exc = sys.exc_info()[1]
        if exc is not None and self.logger.isEnabledFor(logging.ERROR):
            fields["error"], fields["stack"] = describe_exception(exc)
        self.log(logging.ERROR, event, fields)

    def log(self, level: int, event: str, fields: Mapping[str, Any]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        masked = mask_fields(fields)
        name = mask_text(event)
        logger.log(level, render(name, masked), extra={"pasarela": {"event": name, **masked}},
                   stacklevel=3)


def get_logger(name: str = ROOT) -> EventLogger:
    """The event logger named *name* (under ``pasarela``)."""
    return EventLogger(name)
