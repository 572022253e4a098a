"""Group commit for webhook deliveries: :class:`WebhookBatcher`, which the webhook
route of :func:`pasarela.web.app.create_app` submits each delivery to."""

from __future__ import annotations

import anyio
import anyio.to_thread
import attrs

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.engine.webhooks import Incoming
from pasarela.provider import WebhookReply


__all__ = ["WebhookBatcher"]


class WebhookBatcher:
    """Group commit for webhook deliveries.

    Each request queues its delivery and waits. When no batch is running, one
    waiting request leads: after a few turns of the event loop (deliveries already
    on the wire join in), it takes every delivery queued so far (at most *limit*)
    and hands them to ``handle_webhooks`` in one call (one transaction where no
    provider call is needed; its store work on the event loop for SQLite, in one
    worker thread hop otherwise); while that runs, new requests
    queue up for the next batch. When it ends, every waiting request wakes at once:
    those it carried answer, and one of the others leads the next batch. A lone
    delivery is a batch of one, so nothing waits for company. Every request is
    answered only after the batch that holds it has committed. The batch runs
    shielded from cancellation: a provider that hangs up does not abort the
    deliveries of the others it carries.
    """

    def __init__(self, pasarela: AsyncPasarela | Pasarela, *, limit: int = 256,
                 inline: bool | None = None) -> None:
        self._pasarela = pasarela
        self._limit = limit
        # On the loop for an embedded SQLite store under AsyncPasarela (see create_app).
        self._inline = (isinstance(pasarela, AsyncPasarela)
                        and (pasarela.store.dialect == "sqlite" if inline is None else inline))
        self._queue: list[_Pending] = []
        self._running: anyio.Event | None = None  # set when the running batch ends
        self._last = 0  # how many the last batch carried

    async def submit(self, delivery: Incoming) -> WebhookReply:
        """The reply for *delivery*; raises what applying it raised."""
        mine = _Pending(delivery)
        self._queue.append(mine)
        while not mine.answered():
            if self._running is not None:
                await self._running.wait()
                continue
            self._running = done = anyio.Event()
            try:
                await self._lead()
            finally:
                self._running = None
                done.set()
        if isinstance(mine.result, Exception):
            raise mine.result
        assert mine.result is not None
        return mine.result

    async def _lead(self) -> None:
        # Let deliveries already on the wire in: a few turns of the event loop, and
        # a few more while fewer are queued than the last batch carried (the
        # providers whose deliveries it answered are sending their next ones).
        for turn in range(32):
            queued = len(self._queue)
            if queued >= self._limit or (turn >= 4 and queued >= self._last):
                break
            await anyio.sleep(0)
            if turn >= 4 and len(self._queue) == queued and queued >= self._last // 2:
                break
        batch = self._queue[:self._limit]
        self._last = len(batch)
        del self._queue[:self._limit]
        with anyio.CancelScope(shield=True):
            try:
                results = await self._run([p.delivery for p in batch])
            except Exception as exc:  # each request answers it
                results = [exc] * len(batch)
        for pending, result in zip(batch, results, strict=True):
            pending.result = result

    async def _run(self, deliveries: list[Incoming]) -> list[WebhookReply | Exception]:
        if isinstance(self._pasarela, AsyncPasarela):
            return await self._pasarela.handle_webhooks(deliveries, inline=self._inline)
        return await anyio.to_thread.run_sync(self._pasarela.handle_webhooks, deliveries)


@attrs.define
class _Pending:
    delivery: Incoming
    result: WebhookReply | Exception | None = None

    def answered(self) -> bool:
        return self.result is not None
