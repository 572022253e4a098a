"""Rows and values: how payments, changes, transitions, refunds, exchanges and
deliveries become table rows and back, with the datetime rules (aware UTC in, aware
UTC out), which columns a change may set, and the statements the store builds once
and reuses. Private to the store (shared by :class:`~pasarela.store.Store`'s
modules and :class:`~pasarela.store.WriteBatch`); its names are public so that
no private name crosses a module."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs
import sqlalchemy as sa

from pasarela.errors import ValidationError
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Order, Payment, Refund, RefundStatus, Transition
from pasarela.money import MAX_MINOR, Money
from pasarela.next_action import NextAction, next_action_from_dict
from pasarela.registry import merchant_of
from pasarela.store.schema import (
    outbox,
    payments,
    routing_decisions,
    transitions,
    webhook_deliveries,
)
from pasarela.store.sealing import Sealer, customer_digests, opened_order, split_order


if TYPE_CHECKING:
    from pasarela.store.values import Delivery


__all__ = [
    "CHECKED",
    "GET_PAYMENT",
    "INSERT_DECISION",
    "INSERT_DELIVERY",
    "INSERT_OUTBOX",
    "INSERT_TRANSITION",
    "LOCK_PAYMENT",
    "LOCK_PAYMENT_FOR_UPDATE",
    "NEXT_SEQ",
    "PAYMENTS_BY_ID",
    "PAYMENTS_BY_REFERENCE",
    "SEEN_DELIVERIES",
    "STATUSES",
    "STORED_CURRENCIES",
    "TRANSITION_CHANGES",
    "UPDATABLE",
    "VERSIONS_BY_ID",
    "Row",
    "as_stored",
    "change_values",
    "default_payload",
    "delivery_values",
    "exchange_values",
    "from_db",
    "opt_from_db",
    "opt_to_db",
    "payment_from_row",
    "payment_values",
    "payments_update",
    "refund_from_row",
    "refund_values",
    "stored_money",
    "to_db",
    "transition_from_row",
    "utc_now",
]

Row: TypeAlias = sa.Row[*tuple[Any, ...]]

_DATETIME_COLUMNS: Final = frozenset({"expires_at", "next_check_at"})
STATUSES: Final = {status.value: status for status in Status}
#: The statuses the resolver asks providers about (``due_for_check``).
CHECKED: Final = (Status.UNKNOWN.value, Status.PENDING.value, Status.CREATED.value)

#: Columns ``update_payment`` may change.
UPDATABLE: Final = frozenset(
    {
        "provider",  # failover: the next candidate takes the same payment
        "provider_reference",
        "next_action",
        "expires_at",
        "routing",
        "next_check_at",
        "check_attempts",
        "error_code",
        "error_message",
        "network",  # the network the provider's answer names (a card's brand)
        "charged_minor",
        "charged_currency",
        "fx_rate",
    }
)
#: Columns the ``changes`` of ``transition`` may set.
#: (A create refused before the provider executed it frees its idempotency key.)
TRANSITION_CHANGES: Final = UPDATABLE | {"refunded_minor", "idempotency_key"}


# --- statements built once --------------------------------------------------------


INSERT_TRANSITION: Final = sa.insert(transitions)
INSERT_OUTBOX: Final = sa.insert(outbox)
INSERT_DECISION: Final = sa.insert(routing_decisions)
INSERT_DELIVERY: Final = sa.insert(webhook_deliveries)
NEXT_SEQ: Final = sa.select(sa.func.coalesce(sa.func.max(transitions.c.seq), 0) + 1).where(
    transitions.c.payment_id == sa.bindparam("_id")
)
LOCK_PAYMENT: Final = sa.select(payments.c.status, payments.c.version, payments.c.chain_seq,
                                 payments.c.chain_hash).where(
    payments.c.id == sa.bindparam("_id")
)
LOCK_PAYMENT_FOR_UPDATE: Final = LOCK_PAYMENT.with_for_update()
GET_PAYMENT: Final = sa.select(payments).where(payments.c.id == sa.bindparam("_id"))

# The write batch's: payments with the number of their last transition (``_seq``), by
# provider reference or by id, their versions, the deliveries seen among many.
_LAST_SEQ: Final = (sa.select(sa.func.coalesce(sa.func.max(transitions.c.seq), 0))
                    .where(transitions.c.payment_id == payments.c.id)
                    .scalar_subquery().label("_seq"))
PAYMENTS_BY_REFERENCE: Final = sa.select(payments, _LAST_SEQ).where(
    payments.c.provider == sa.bindparam("_provider"),
    payments.c.provider_reference.in_(sa.bindparam("_refs", expanding=True)))
PAYMENTS_BY_ID: Final = sa.select(payments, _LAST_SEQ).where(
    payments.c.id.in_(sa.bindparam("_ids", expanding=True)))
VERSIONS_BY_ID: Final = sa.select(payments.c.id, payments.c.version, _LAST_SEQ,
                                   payments.c.chain_seq, payments.c.chain_hash).where(
    payments.c.id.in_(sa.bindparam("_ids", expanding=True)))
SEEN_DELIVERIES: Final = sa.select(webhook_deliveries.c.event_id,
                                   webhook_deliveries.c.payment_key).where(
    webhook_deliveries.c.provider == sa.bindparam("_provider"),
    webhook_deliveries.c.event_id.in_(sa.bindparam("_ids", expanding=True)))
#: The batch's UPDATE statements by the set of columns they change, built once each.
_UPDATES: dict[tuple[str, ...], sa.Update] = {}


def _bind_type(column: str) -> sa.types.TypeEngine[Any]:
    """The column's type, with JSON's None written as SQL NULL (as the store does)."""
    kind = payments.c[column].type
    return sa.JSON(none_as_null=True) if isinstance(kind, sa.JSON) else kind


def payments_update(names: tuple[str, ...]) -> sa.Update:
    """``UPDATE payments SET version, updated_at, *names* WHERE id = :_id AND version
    = :_base`` (parameters ``_id``, ``_base``, ``_version``, ``_now`` and *names*),
    for ``executemany``: built once per set of columns."""
    update = _UPDATES.get(names)
    if update is None:
        update = _UPDATES[names] = (
            sa.update(payments)
            .where(payments.c.id == sa.bindparam("_id"),
                   payments.c.version == sa.bindparam("_base"))
            .values(version=sa.bindparam("_version"), updated_at=sa.bindparam("_now"),
                    **{n: sa.bindparam(n, type_=_bind_type(n)) for n in names}))
    return update


# --- datetimes and JSON ----------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_db(value: datetime, field: str) -> datetime:
    """An aware datetime converted to UTC (SQLite keeps no offset: store UTC)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError("must be a timezone-aware datetime", field=field)
    return value.astimezone(UTC)


def opt_to_db(value: datetime | None, field: str) -> datetime | None:
    return None if value is None else to_db(value, field)


def from_db(value: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite returns it naive, in UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def opt_from_db(value: datetime | None) -> datetime | None:
    return None if value is None else from_db(value)


def _json(value: Mapping[str, Any] | None) -> Any:
    """A JSON column value; None is SQL NULL rather than JSON ``null``."""
    return sa.null() if value is None else dict(value)


# --- rows <-> values ----------------------------------------------------------------


def payment_values(payment: Payment, fingerprint: str, sealer: Sealer | None = None
                   ) -> dict[str, Any]:
    """The ``payments`` row of *payment*; with a *sealer*, the order's personal part
    is sealed (``personal``) before anything is written."""
    full = payment.order.to_dict() if payment.order else None
    order, personal = _stored_order(full, sealer)
    refunded = payment.refunded
    if refunded is not None and refunded.currency != payment.amount.currency:
        raise ValidationError("must be in the payment's currency", field="refunded")
    return {
        "id": payment.id,
        "merchant": merchant_of(payment.provider),
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
        "created_at": to_db(payment.created_at, "created_at"),
        "updated_at": to_db(payment.updated_at, "updated_at"),
        "expires_at": opt_to_db(payment.expires_at, "expires_at"),
        "next_action": _json(payment.next_action.to_dict() if payment.next_action else None),
        "routing": _json(payment.routing),
        "order": _json(order),
        "personal": personal,
        "error_code": payment.error_code,
        "error_message": payment.error_message,
        "next_check_at": opt_to_db(payment.next_check_at, "next_check_at"),
        "check_attempts": payment.check_attempts,
        "network": payment.network,
        **_charged_values(payment.charged, payment.fx_rate),
        **customer_digests(full, sealer),
    }


def _charged_values(charged: Money | None, fx_rate: Decimal | None) -> dict[str, Any]:
    """The charged amount's and the rate's columns (the rate as exact decimal text)."""
    if charged is not None and not isinstance(charged, Money):
        raise ValidationError("must be Money or None", field="charged")
    if fx_rate is not None and (not isinstance(fx_rate, Decimal) or not fx_rate.is_finite()):
        raise ValidationError("must be a finite Decimal or None (never a float)",
                              field="fx_rate")
    return {
        "charged_minor": charged.minor if charged is not None else None,
        "charged_currency": charged.currency if charged is not None else None,
        "fx_rate": str(fx_rate) if fx_rate is not None else None,
    }


def _stored_order(order: dict[str, Any] | None, sealer: Sealer | None
                  ) -> tuple[dict[str, Any] | None, str | None]:
    if order is None or sealer is None:
        return order, None
    clear, personal = split_order(order)
    return clear, sealer.seal(personal)


def as_stored(payment: Payment) -> Payment:
    """*payment* as a read would return it: timestamps in UTC."""
    return attrs.evolve(
        payment,
        created_at=from_db(payment.created_at),
        updated_at=from_db(payment.updated_at),
        expires_at=opt_from_db(payment.expires_at),
        next_check_at=opt_from_db(payment.next_check_at),
    )


def change_values(changes: Mapping[str, Any], *, allowed: frozenset[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("charged", "fx_rate") and "charged_minor" in allowed:
            # Conveniences: the Money charged and the Decimal rate.
            column = _charged_values(value if name == "charged" else None,
                                     value if name == "fx_rate" else None)
            if name == "charged":
                values["charged_minor"] = column["charged_minor"]
                values["charged_currency"] = column["charged_currency"]
            else:
                values["fx_rate"] = column["fx_rate"]
            continue
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
            values[name] = opt_to_db(value, name)
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


#: A phone as ``Customer`` stores it (E.164, what its converter wrote).
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")


def stored_order(data: Mapping[str, Any]) -> Order:
    """An order as the store wrote it (``Order.to_dict`` of one validated when it was
    given), as ``Order.from_dict`` builds it, except that the customer's phone, E.164
    already, is not parsed again (phonenumbers is most of reading a payment back).
    Anything else, or a phone not in E.164, goes through ``Order.from_dict``."""
    customer = data.get("customer")
    if not isinstance(customer, Mapping):
        return Order.from_dict(data)
    phone = customer.get("phone")
    if not isinstance(phone, str) or not _E164.fullmatch(phone):
        return Order.from_dict(data)
    order = Order.from_dict({**data, "customer": {**customer, "phone": None}})
    # the Customer just built, before anything else sees it: frozen to everyone else
    object.__setattr__(order.customer, "phone", phone)
    return order


#: Currencies that ``Money`` accepted for a stored row (its checks hold for good: the
#: ISO 4217 data is read once).
STORED_CURRENCIES: set[str] = set()
_new: Final = object.__new__
_set: Final = object.__setattr__


def stored_money(minor: Any, currency: Any) -> Money:
    """``Money(minor, currency)`` of a row's columns, the same value or the same error:
    the store wrote them from a Money, so once a currency has passed Money's checks
    its amounts are built without them (an int in range is all that is left to check,
    and it is checked; anything else goes through ``Money``). A claim builds hundreds
    of payments, and those checks were a good part of each."""
    if (type(minor) is int and type(currency) is str and currency in STORED_CURRENCIES
            and -MAX_MINOR <= minor <= MAX_MINOR):
        money: Money = _new(Money)
        _set(money, "minor", minor)
        _set(money, "currency", currency)
        return money
    money = Money(minor, currency)
    if type(currency) is str and not attrs.validators.get_disabled():  # it was checked
        STORED_CURRENCIES.add(currency)
    return money


def payment_from_row(row: Row | Mapping[str, Any], *,
                      history: tuple[Transition, ...] = (),
                      sealer: Sealer | None = None,
                      known: tuple[Any, Any, Order | None] | None = None) -> Payment:
    """The payment in a ``payments`` row (a result row or a mapping of its columns),
    its order's personal part opened with *sealer* when it is sealed.

    *known* is ``(order column, personal column, Order)`` of an order the store wrote:
    when the row's two columns equal them, that Order is the payment's (built and
    validated when it was given) rather than one built again from the row."""
    # By key, not by attribute: a Row's attribute lookup costs ~20x its key lookup.
    r: Mapping[Any, Any] = row._mapping if isinstance(row, sa.Row) else row
    currency = r["currency"]
    refunded = r["refunded_minor"]
    if known is not None and known[0] == r["order"] and known[1] == r.get("personal"):
        built: Order | None = known[2]
    else:
        order = opened_order(r["order"], r.get("personal"), sealer, payment_id=r["id"])
        built = stored_order(order) if order else None
    charged_minor, rate = r.get("charged_minor"), r.get("fx_rate")
    return Payment(
        id=r["id"],
        order_reference=r["order_reference"],
        idempotency_key=r["idempotency_key"],
        provider=r["provider"],
        method=r["method"],
        amount=stored_money(r["amount_minor"], currency),
        status=STATUSES[r["status"]],
        version=r["version"],
        created_at=from_db(r["created_at"]),
        updated_at=from_db(r["updated_at"]),
        provider_reference=r["provider_reference"],
        expires_at=opt_from_db(r["expires_at"]),
        next_action=next_action_from_dict(r["next_action"]),
        refunded=stored_money(refunded, currency) if refunded else None,
        error_code=r["error_code"],
        error_message=r["error_message"],
        next_check_at=opt_from_db(r["next_check_at"]),
        check_attempts=r["check_attempts"],
        routing=dict(r["routing"] or {}),
        order=built,
        history=history,
        network=r.get("network"),
        charged=(stored_money(charged_minor, r["charged_currency"])
                 if charged_minor is not None
                 else None),
        fx_rate=Decimal(rate) if rate is not None else None,
    )


def default_payload(payment: Payment) -> dict[str, Any]:
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


def exchange_values(exchange: Exchange, payment_id: str | None) -> dict[str, Any]:
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
        "started_at": to_db(exchange.started_at, "exchange.started_at"),
        "duration_ms": float(exchange.duration_ms),
    }


def delivery_values(delivery: Delivery, payment_id: str | None, now: datetime) -> dict[str, Any]:
    paid = delivery.payment_id or payment_id
    return {
        "provider": delivery.provider,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "payment_id": paid,
        "payment_key": paid or "",
        "outcome": delivery.outcome,
        "detail": delivery.detail,
        "received_at": now,
    }


def refund_values(refund: Refund, now: datetime) -> dict[str, Any]:
    """The ``refunds`` row of *refund*, updated at *now* (its datetime checked)."""
    return {
        "id": refund.id,
        "payment_id": refund.payment_id,
        "amount_minor": refund.amount.minor,
        "currency": refund.amount.currency,
        "status": RefundStatus(refund.status).value,
        "reason": refund.reason,
        "provider_reference": refund.provider_reference,
        "created_at": to_db(refund.created_at, "refund.created_at"),
        "updated_at": now,
    }


def refund_from_row(row: Row) -> Refund:
    return Refund(
        id=row.id,
        payment_id=row.payment_id,
        amount=Money(row.amount_minor, row.currency),
        status=RefundStatus(row.status),
        created_at=from_db(row.created_at),
        reason=row.reason,
        provider_reference=row.provider_reference,
    )


def transition_from_row(row: Row) -> Transition:
    return Transition(
        payment_id=row.payment_id,
        seq=row.seq,
        source=Status(row.source),
        target=Status(row.target),
        cause=Cause(row.cause),
        at=from_db(row.at),
        version=row.version,
        applied=bool(row.applied),
        reason=row.reason,
        event_id=row.event_id,
    )
