"""Rows and values: how payments, changes, exchanges and deliveries become table rows and
back, with the datetime rules (aware UTC in, aware UTC out), and the statements the
:class:`~pasarela.store.Store` builds once and reuses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs
import sqlalchemy as sa

from pasarela.errors import ValidationError
from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.model import NextAction, Order, Payment, Transition, next_action_from_dict
from pasarela.money import Money
from pasarela.store.schema import (
    outbox,
    payments,
    routing_decisions,
    transitions,
    webhook_deliveries,
)


if TYPE_CHECKING:
    from pasarela.store.repository import Delivery


_Row: TypeAlias = sa.Row[*tuple[Any, ...]]

_DATETIME_COLUMNS: Final = frozenset({"expires_at", "next_check_at"})
_STATUSES: Final = {status.value: status for status in Status}


# --- statements built once --------------------------------------------------------


_INSERT_TRANSITION: Final = sa.insert(transitions)
_INSERT_OUTBOX: Final = sa.insert(outbox)
_INSERT_DECISION: Final = sa.insert(routing_decisions)
_INSERT_DELIVERY: Final = sa.insert(webhook_deliveries)
_NEXT_SEQ: Final = sa.select(sa.func.coalesce(sa.func.max(transitions.c.seq), 0) + 1).where(
    transitions.c.payment_id == sa.bindparam("_id")
)
_LOCK_PAYMENT: Final = sa.select(payments.c.status, payments.c.version).where(
    payments.c.id == sa.bindparam("_id")
)
_LOCK_PAYMENT_FOR_UPDATE: Final = _LOCK_PAYMENT.with_for_update()
_GET_PAYMENT: Final = sa.select(payments).where(payments.c.id == sa.bindparam("_id"))


# --- datetimes and JSON ----------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _to_db(value: datetime, field: str) -> datetime:
    """An aware datetime converted to UTC (SQLite keeps no offset: store UTC)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("must be a timezone-aware datetime", field=field)
    return value.astimezone(UTC)


def _opt_to_db(value: datetime | None, field: str) -> datetime | None:
    return None if value is None else _to_db(value, field)


def _from_db(value: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite returns it naive, in UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _opt_from_db(value: datetime | None) -> datetime | None:
    return None if value is None else _from_db(value)


def _json(value: Mapping[str, Any] | None) -> Any:
    """A JSON column value; None is SQL NULL rather than JSON ``null``."""
    return sa.null() if value is None else dict(value)


# --- rows <-> values ----------------------------------------------------------------


def _payment_values(payment: Payment, fingerprint: str) -> dict[str, Any]:
    refunded = payment.refunded
    if refunded is not None and refunded.currency != payment.amount.currency:
        raise ValidationError("must be in the payment's currency", field="refunded")
    return {
        "id": payment.id,
        "idempotency_key": payment.idempotency_key,
        "fingerprint": fingerprint,
        "order_reference": payment.order_reference,
        "provider": payment.provider,
        "method": payment.method.value,
        "provider_reference": payment.provider_reference,
        "amount_minor": payment.amount.minor,
        "currency": payment.amount.currency,
        "refunded_minor": refunded.minor if refunded is not None else 0,
        "status": Status(payment.status).value,
        "version": payment.version,
        "created_at": _to_db(payment.created_at, "created_at"),
        "updated_at": _to_db(payment.updated_at, "updated_at"),
        "expires_at": _opt_to_db(payment.expires_at, "expires_at"),
        "next_action": _json(payment.next_action.to_dict() if payment.next_action else None),
        "routing": _json(payment.routing),
        "order": _json(payment.order.to_dict() if payment.order else None),
        "error_code": payment.error_code,
        "error_message": payment.error_message,
        "next_check_at": _opt_to_db(payment.next_check_at, "next_check_at"),
        "check_attempts": payment.check_attempts,
    }


def _as_stored(payment: Payment) -> Payment:
    """*payment* as a read would return it: timestamps in UTC."""
    return attrs.evolve(
        payment,
        created_at=_from_db(payment.created_at),
        updated_at=_from_db(payment.updated_at),
        expires_at=_opt_from_db(payment.expires_at),
        next_check_at=_opt_from_db(payment.next_check_at),
    )


def _change_values(changes: Mapping[str, Any], *, allowed: frozenset[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "refunded" and "refunded_minor" in allowed:
            # A convenience: the Money refunded so far.
            if not isinstance(value, Money):
                raise ValidationError("must be Money", field="refunded")
            values["refunded_minor"] = value.minor
            continue
        if name not in allowed:
            raise ValidationError(
                f"cannot be changed here; one of {', '.join(sorted(allowed))}", field=name
            )
        if name in _DATETIME_COLUMNS:
            values[name] = _opt_to_db(value, name)
        elif name == "next_action":
            if value is not None and not isinstance(value, NextAction | Mapping):
                raise ValidationError("must be a NextAction or None", field=name)
            values[name] = _json(value.to_dict() if isinstance(value, NextAction) else value)
        elif name == "routing":
            values[name] = _json(value)
        elif name in ("refunded_minor", "check_attempts"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError("must be a non-negative int", field=name)
            values[name] = value
        else:
            values[name] = value
    return values


def _payment_from_row(row: _Row | Mapping[str, Any], *,
                      history: tuple[Transition, ...] = ()) -> Payment:
    """The payment in a ``payments`` row (a result row or a mapping of its columns)."""
    # By key, not by attribute: a Row's attribute lookup costs ~20x its key lookup.
    r: Mapping[Any, Any] = row._mapping if isinstance(row, sa.Row) else row
    currency = r["currency"]
    refunded = r["refunded_minor"]
    order = r["order"]
    return Payment(
        id=r["id"],
        order_reference=r["order_reference"],
        idempotency_key=r["idempotency_key"],
        provider=r["provider"],
        method=r["method"],
        amount=Money(r["amount_minor"], currency),
        status=_STATUSES[r["status"]],
        version=r["version"],
        created_at=_from_db(r["created_at"]),
        updated_at=_from_db(r["updated_at"]),
        provider_reference=r["provider_reference"],
        expires_at=_opt_from_db(r["expires_at"]),
        next_action=next_action_from_dict(r["next_action"]),
        refunded=Money(refunded, currency) if refunded else None,
        error_code=r["error_code"],
        error_message=r["error_message"],
        next_check_at=_opt_from_db(r["next_check_at"]),
        check_attempts=r["check_attempts"],
        routing=dict(r["routing"] or {}),
        order=Order.from_dict(order) if order else None,
        history=history,
    )


def _default_payload(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.id,
        "order_reference": payment.order_reference,
        "provider": payment.provider,
        "method": payment.method.value,
        "status": payment.status.value,
        "amount": {"minor": payment.amount.minor, "currency": payment.amount.currency},
        "provider_reference": payment.provider_reference,
        "version": payment.version,
    }


def _exchange_values(exchange: Exchange, payment_id: str | None) -> dict[str, Any]:
    return {
        "payment_id": exchange.payment_id or payment_id,
        "provider": exchange.provider,
        "operation": exchange.operation,
        "attempt": exchange.attempt,
        "method": exchange.method,
        "url": exchange.url,
        "request_headers": dict(exchange.request_headers),
        "request_body": exchange.request_body,
        "status_code": exchange.status_code,
        "response_headers": dict(exchange.response_headers),
        "response_body": exchange.response_body,
        "error": exchange.error,
        "started_at": _to_db(exchange.started_at, "exchange.started_at"),
        "duration_ms": float(exchange.duration_ms),
    }


def _delivery_values(delivery: Delivery, payment_id: str | None, now: datetime) -> dict[str, Any]:
    return {
        "provider": delivery.provider,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "payment_id": delivery.payment_id or payment_id,
        "outcome": delivery.outcome,
        "detail": delivery.detail,
        "received_at": now,
    }
