"""Steps and their drivers: one implementation of the logic, a sync and an async driver.

Everything pasarela does with a provider is written once, as a generator of
*steps*: an :class:`httpx.Request` to send, or a :class:`Sleep` for a backoff. The
drivers only perform steps: :func:`drive` with :class:`httpx.Client`,
:func:`adrive` with :class:`httpx.AsyncClient` (running the logic between two
steps in a worker thread, so the store's blocking calls never stall the event
loop). Transport exceptions are thrown back into the generator at the step that
raised them, so retry decisions and error mapping are shared too.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any, TypeVar

import anyio.to_thread
import attrs
import httpx


__all__ = ["Sleep", "Step", "Steps", "adrive", "drive"]

T = TypeVar("T")


@attrs.frozen
class Sleep:
    """A step that waits (a retry backoff)."""

    seconds: float


Step = httpx.Request | Sleep
#: A generator of steps returning T: the shape of every operation.
Steps = Generator[Step, httpx.Response | None, T]


def drive(steps: Steps[T], client: httpx.Client) -> T:
    """Run *steps* to completion with a sync client."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                step = steps.send(None)
                continue
            try:
                response = client.send(step)
                response.read()
            except httpx.HTTPError as exc:
                step = steps.throw(exc)
                continue
            step = steps.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


_DONE = object()


def _advance(steps: Steps[Any], how: str, value: Any) -> tuple[object, Any]:
    # StopIteration cannot cross a thread boundary into a future; turn it into data.
    try:
        if how == "send":
            return None, steps.send(value)
        return None, steps.throw(value)
    except StopIteration as stop:
        return _DONE, stop.value


async def adrive(steps: Steps[T], client: httpx.AsyncClient, *, inline: bool = False) -> T:
    """Run *steps* to completion with an async client.

    The steps between two exchanges (store reads and writes) run in a worker
    thread, so the event loop stays free; with *inline* they run on the loop
    itself, which saves the thread hops when they are short and local (an
    embedded SQLite store's write batch: under the GIL a thread adds no
    parallelism, only handoffs).
    """
    async def advance(how: str, value: Any) -> tuple[object, Any]:
        if inline:
            return _advance(steps, how, value)
        return await anyio.to_thread.run_sync(_advance, steps, how, value)

    marker, step = await advance("send", None)
    while marker is not _DONE:
        if isinstance(step, Sleep):
            await anyio.sleep(step.seconds)
            marker, step = await advance("send", None)
            continue
        try:
            response = await client.send(step)
            await response.aread()
        except httpx.HTTPError as exc:
            marker, step = await advance("throw", exc)
            continue
        marker, step = await advance("send", response)
    return step  # type: ignore[no-any-return]
