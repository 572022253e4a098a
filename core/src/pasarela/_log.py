"""A lazy structlog logger: structlog (and rich, which it pulls in) is imported on
the first log call, not at ``import pasarela``. The library never configures it."""

from __future__ import annotations

from typing import Any


class LazyLogger:
    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._logger is None:
            import structlog  # noqa: PLC0415

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)


def get_logger(name: str = "pasarela") -> Any:
    return LazyLogger(name)
