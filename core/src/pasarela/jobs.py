"""Background jobs, as steps: the expiry sweep and the resolver.

- :func:`expire_due`: a pending payment past ``expires_at`` is first checked with
  the provider where it supports status (the customer may have paid at the last
  minute), then expired; the ``payment.expired`` event lets the host release stock.
- :func:`resolve_due`: unknown and stale pending payments are asked about again on
  a backoff schedule (:data:`pasarela.service.RESOLVER_SCHEDULE`); time alone never
  fails an unknown payment.

Several processes may run them at once: the store claims rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL).
"""

from __future__ import annotations

from pasarela._log import get_logger
from pasarela.errors import PasarelaError
from pasarela.flows import Steps
from pasarela.lifecycle import Cause, Status
from pasarela.provider import Operation
from pasarela.service import RESOLVER_SCHEDULE, Service


__all__ = ["expire_due", "resolve_due"]

log = get_logger("pasarela")


def expire_due(service: Service, *, limit: int = 500) -> Steps[int]:
    """Expire pending payments whose time has run out. Returns how many expired."""
    now = service.clock()
    expired = 0
    for payment in service.store.due_for_expiry(now=now, limit=limit):
        adapter = service.providers.get(payment.provider)
        current = payment
        if adapter is not None and adapter.supports(Operation.GET) and payment.provider_reference:
            try:
                current = yield from service.sync(payment.id, cause=Cause.JOB)
            except PasarelaError as exc:
                log.warning("expiry_check_failed", payment_id=payment.id,
                            provider=payment.provider, code=str(exc.code))
                current = service.store.get_payment(payment.id)
        if current.status is Status.PENDING:
            current = service._move(current, Status.EXPIRED, Cause.JOB,
                                    reason="expires_at passed", provider_confirmed=False,
                                    changes={"next_check_at": None})
        if current.status is Status.EXPIRED:
            expired += 1
    return expired


def resolve_due(service: Service, *, limit: int = 500) -> Steps[int]:
    """Ask providers about unknown and stale pending payments. Returns how many settled."""
    now = service.clock()
    settled = 0
    for payment in service.store.due_for_check(now=now, limit=limit):
        try:
            current = yield from service.sync(payment.id, cause=Cause.JOB)
        except PasarelaError as exc:
            log.warning("resolve_failed", payment_id=payment.id, provider=payment.provider,
                        code=str(exc.code))
            current = service.store.get_payment(payment.id)
        if current.status in (Status.UNKNOWN, Status.PENDING, Status.PROCESSING, Status.CREATED):
            tries = current.check_attempts + 1
            wait = RESOLVER_SCHEDULE[min(tries, len(RESOLVER_SCHEDULE) - 1)]
            service.store.update_payment(payment.id, expected_version=current.version,
                                         next_check_at=now + wait, check_attempts=tries)
        else:
            settled += 1
    return settled
