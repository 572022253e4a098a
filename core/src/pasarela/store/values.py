"""The store's own values: what a caller hands it (:class:`Delivery`) and what it
hands back besides payments and refunds (:class:`OutboxEvent`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


__all__ = ["Delivery", "OutboxEvent"]


@attrs.frozen(kw_only=True)
class Delivery:
    """A webhook delivery to record (``event_id`` None for a rejected one)."""

    provider: str
    event_id: str | None
    event_type: str | None
    outcome: str  # applied · ignored · unknown_payment · rejected · duplicate
    detail: str = ""
    payment_id: str | None = None


@attrs.frozen(kw_only=True)
class OutboxEvent:
    """A committed lifecycle event waiting to reach the observer hooks."""

    id: str
    payment_id: str
    type: str
    payload: Mapping[str, Any]
    created_at: datetime
    attempts: int
