"""The outbox dispatcher: committed lifecycle events reach the observer hooks.

Events are written with the transition that caused them, in the same database
transaction. The dispatcher claims due events, calls every
``pasarela_payment_event`` observer (each isolated: an observer's exception is
logged and does not undo the payment), then marks them dispatched. A crash between
the two delivers the event again: observers see each event at least once, with a
stable ``event.id`` to deduplicate on.

:func:`announce` writes an event that no status change causes (the
:data:`~pasarela.events.ANNOUNCEMENTS`, ``payment.link_resent``) to the same outbox,
so it reaches the observers and relays the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pasarela.engine.context import Service
from pasarela.errors import ValidationError
from pasarela.events import ANNOUNCEMENTS, LifecycleEvent
from pasarela.logs import get_logger
from pasarela.money import Money
from pasarela.plugins import PasarelaPlugins
from pasarela.retry import Backoff
from pasarela.store import OutboxEvent


__all__ = ["MARK_EVERY", "REDELIVERY", "announce", "dispatch_outbox", "to_lifecycle_event"]

log = get_logger("pasarela")


def to_lifecycle_event(row: OutboxEvent) -> LifecycleEvent:
    payload = dict(row.payload)
    amount = payload.get("amount") or {}
    return LifecycleEvent(
        id=row.id,
        type=row.type,
        payment_id=row.payment_id,
        order_reference=str(payload.get("order_reference", "")),
        provider=str(payload.get("provider", "")),
        status=str(payload.get("status", "")),
        amount=Money(int(amount.get("minor", 0)), str(amount.get("currency", "PEN"))),
        occurred_at=row.created_at,
        payload=payload,
    )


def announce(service: Service, payment_id: str, event_type: str,
             payload: Mapping[str, Any] | None = None) -> str:
    """Write *event_type* (one of :data:`~pasarela.events.ANNOUNCEMENTS`) about
    *payment_id* to the outbox with *payload*; the event's id. The dispatcher delivers
    it as it does every event (``dispatch_outbox``, inline or by the worker)."""
    if event_type not in ANNOUNCEMENTS:
        raise ValidationError(f"{event_type!r} is not an announcement (one of "
                              f"{', '.join(sorted(ANNOUNCEMENTS))}); a status change's "
                              "event is written with its transition", field="event_type")
    event_id = service.store.announce(payment_id, event_type, payload)
    log.info("payment_announced", payment_id=payment_id, event_type=event_type)
    return event_id


#: Events marked delivered together: a worker killed mid-batch delivers at most this
#: many events again when it restarts, and every restart makes progress.
MARK_EVERY: Final = 10
#: How long a failed event waits before it is tried again, by attempt.
REDELIVERY: Final = Backoff(base=5.0, factor=2.0, cap=3600.0, jitter=0.0)


def dispatch_outbox(service: Service, plugins: PasarelaPlugins, *, limit: int = 200) -> int:
    """Dispatch due events; returns how many were delivered.

    Delivered events are marked in groups of :data:`MARK_EVERY` as their observers
    return, so a crash redelivers at most that many (observers dedupe on ``event.id``).
    Claims use wall-clock time, like the store's own timestamps (the service clock
    is business time: expiry, webhook tolerance).
    """
    delivered = 0
    while True:
        now = datetime.now(UTC)
        rows = service.store.claim_outbox(now=now, limit=limit)
        if not rows:
            return delivered
        done: list[str] = []
        for row in rows:
            try:
                event = to_lifecycle_event(row)
                plugins.payment_event(event)
            except Exception as exc:  # a malformed row must not block the others
                log.exception("outbox_dispatch_failed", event_id=row.id)
                retry_at = now + REDELIVERY.delay(row.attempts + 1)
                service.store.mark_failed(row.id, error=repr(exc)[:500], retry_at=retry_at)
                continue
            done.append(row.id)
            if len(done) >= MARK_EVERY:
                service.store.mark_dispatched(done, now=datetime.now(UTC))
                delivered += len(done)
                done = []
        if done:
            service.store.mark_dispatched(done, now=datetime.now(UTC))
            delivered += len(done)
        if len(rows) < limit:
            return delivered
