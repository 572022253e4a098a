"""Webhook delivery as Culqi does it (unsigned JSON, ``data`` a JSON string), with faults.

Faults come from :class:`~pasarela_yape.sandbox.knobs.Knobs`: extra copies of a
delivery (``duplicates``), lost deliveries (``lose``, ``lose_next``), reordering
(``reorder``: each delivery waits for the next one, which goes first), a delay
(``webhook_delay``, sent in the background) and retries on a non-2xx answer.
Every delivery is logged for ``GET /_control/webhooks``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from pasarela_yape.sandbox.state import Sandbox, public


__all__ = ["Courier"]


class Courier:
    """Sends the sandbox's events to ``knobs.webhook_url`` and logs each delivery."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.log: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A Culqi event around *obj*, its ``data`` a JSON string."""
        now = self.sandbox.now()
        return {
            "object": "event",
            "id": self.sandbox.new_id("evt"),
            "type": kind,
            "creation_date": int(now * 1000),
            "data": json.dumps(public(obj), ensure_ascii=False, separators=(",", ":")),
        }

    async def emit(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Deliver *event* under the current faults; returns the log entries made."""
        knobs = self.sandbox.knobs
        entry: dict[str, Any] = {
            "event_id": event["id"], "type": event["type"],
            "object_id": json.loads(event["data"]).get("id"),
            "body": json.dumps(event, ensure_ascii=False, separators=(",", ":")),
            "status": "queued", "attempts": [],
        }
        self.log.append(entry)
        if not knobs.webhook_url:
            entry["status"] = "no_url"
            return [entry]
        if knobs.lose_next > 0:
            knobs.lose_next -= 1
            entry["status"] = "lost"
            return [entry]
        if knobs.lose > 0 and self.sandbox.random.random() < knobs.lose:
            entry["status"] = "lost"
            return [entry]
        copies = [entry] + [
            {**entry, "status": "queued", "attempts": [], "duplicate": True}
            for _ in range(max(0, knobs.duplicates))
        ]
        self.log.extend(copies[1:])
        if knobs.reorder and not self.held:
            for copy in copies:
                copy["status"] = "held"
            self.held.extend(copies)
            return copies
        batch = copies + list(reversed(self.held)) if knobs.reorder else copies
        self.held.clear()
        if knobs.webhook_delay > 0:
            for item in batch:
                item["status"] = "scheduled"
            task = asyncio.create_task(self._later(batch, knobs.webhook_delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return copies
        for item in batch:
            await self.deliver(item)
        return copies

    async def flush(self) -> list[dict[str, Any]]:
        """Send what ``reorder`` holds, newest first."""
        batch = list(reversed(self.held))
        self.held.clear()
        for item in batch:
            await self.deliver(item)
        return batch

    async def _later(self, batch: list[dict[str, Any]], delay: float) -> None:
        await asyncio.sleep(delay)
        for item in batch:
            await self.deliver(item)

    async def deliver(self, entry: dict[str, Any]) -> None:
        url = self.sandbox.knobs.webhook_url
        if not url:
            entry["status"] = "no_url"
            return
        retries = max(0, self.sandbox.knobs.webhook_retries)
        async with httpx.AsyncClient(timeout=10.0) as client:
            for attempt in range(retries + 1):
                try:
                    response = await client.post(
                        url, content=entry["body"].encode(),
                        headers={"Content-Type": "application/json",
                                 "User-Agent": "Culqi-Webhook (pasarela-yape sandbox)"},
                    )
                except httpx.HTTPError as exc:
                    entry["attempts"].append({"status": None, "error": type(exc).__name__})
                else:
                    entry["attempts"].append({"status": response.status_code, "error": None})
                    if response.is_success:
                        entry["status"] = "delivered"
                        return
                if attempt < retries:
                    await asyncio.sleep(0.05 * 2**attempt)
        entry["status"] = "failed"

    async def drain(self) -> None:
        """Wait for delayed deliveries still in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
