"""One-shot faults: what the next calls of an operation suffer, queued by control.

A sandbox names its operations (``create``, ``POST /v2/charges``) and the kinds of
fault it can play; :class:`Faults` keeps the queue and hands each call the fault due
to it. The usual kinds: ``500`` (answer the provider's 5xx, do nothing),
``500_after`` (do it, then answer 5xx), ``hang`` (hold the answer, do nothing) and
``hang_after`` / ``timeout`` (do it, then hold the answer: the client sees a timeout
after the work was done). :func:`hold` plays a hang.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Final

import attrs
from starlette.requests import Request

from pasarela.errors import ValidationError


__all__ = ["ANY", "Fault", "Faults", "hold"]

#: The operation a fault for every operation names.
ANY: Final = "any"


@attrs.frozen(kw_only=True)
class Fault:
    """*kind* played on the next *times* calls of *operation*; a hang lasts *seconds*."""

    operation: str
    kind: str
    times: int = 1
    seconds: float = 30.0

    def describe(self) -> dict[str, Any]:
        return {"operation": self.operation, "kind": self.kind, "times": self.times,
                "seconds": self.seconds}


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError(f"must be a whole number, not {value!r}", field=name)
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"must be a whole number, not {value!r}", field=name) from None


class Faults:
    """The queue of one-shot faults, safe to use from several threads."""

    def __init__(self, operations: tuple[str, ...], kinds: tuple[str, ...]) -> None:
        self.operations = operations
        self.kinds = kinds
        self._lock = threading.Lock()
        self._queue: list[list[Any]] = []  # [fault, calls left]

    def parse(self, body: dict[str, Any]) -> Fault:
        """A fault from a control body ``{"operation", "kind", "times", "seconds"}``,
        refused with a :class:`~pasarela.errors.ValidationError` naming the field."""
        operation = body.get("operation", ANY)
        if operation != ANY and operation not in self.operations:
            raise ValidationError(
                f"unknown operation {operation!r}; operations: {', '.join(self.operations)}"
                f" (or {ANY!r})", field="operation")
        kind = body.get("kind")
        if kind not in self.kinds:
            raise ValidationError(f"must be one of {', '.join(self.kinds)}, not {kind!r}",
                                  field="kind")
        times = _int(body.get("times", 1), "times")
        if times < 1:
            raise ValidationError(f"must be at least 1, not {times}", field="times")
        raw_seconds = body.get("seconds", 30.0)
        if isinstance(raw_seconds, bool) or not isinstance(raw_seconds, int | float) or (
                raw_seconds < 0):
            raise ValidationError(f"must be a number of seconds from 0, not {raw_seconds!r}",
                                  field="seconds")
        return Fault(operation=str(operation), kind=str(kind), times=times,
                     seconds=float(raw_seconds))

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append([fault, fault.times])

    def take(self, operation: str) -> Fault | None:
        """The first queued fault for *operation* (or for any), used once."""
        with self._lock:
            for entry in self._queue:
                fault, left = entry
                if fault.operation in (operation, ANY):
                    if left <= 1:
                        self._queue.remove(entry)
                    else:
                        entry[1] = left - 1
                    return fault  # type: ignore[no-any-return]
        return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def describe(self) -> list[dict[str, Any]]:
        """The queued faults, with the calls each has left."""
        with self._lock:
            return [{**fault.describe(), "times": left} for fault, left in self._queue]

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)


async def hold(request: Request, seconds: float) -> None:
    """Keep the answer to *request* back for *seconds*, or until the client leaves."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.02)
