"""Lifecycle events: what the outbox dispatcher hands to observers.

A :class:`LifecycleEvent` is written to the outbox in the same database
transaction as the status change it announces, then delivered (at least once) to
every ``pasarela_payment_event`` hook implementation. Its ``id`` is stable across
redeliveries, so an observer deduplicates on it.

Most events announce a status change (``payment.<status>``, from
:func:`pasarela.lifecycle.event_type`). The :data:`ANNOUNCEMENTS` are the event types
that announce something else about a payment, with no status change: they are
written to the same outbox (:func:`pasarela.engine.outbox.announce`) and so reach the
observers and the relays the same way, at least once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from pasarela.errors import ValidationError
from pasarela.money import Money


__all__ = ["ANNOUNCEMENTS", "LINK_RESENT", "LifecycleEvent"]

#: An operator resent the customer's page link (the console's ``resend``): the
#: payload's ``link`` is the fresh link for an observer to send the customer (pasarela
#: sends no email), ``operator`` who asked.
LINK_RESENT: Final = "payment.link_resent"
#: The event types that announce no status change (see the module docs).
ANNOUNCEMENTS: Final = frozenset({LINK_RESENT})


def _non_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("must be a non-empty string", field=attribute.name)


def _aware(instance: object, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError("must be a timezone-aware datetime", field=attribute.name)


def _money(instance: object, attribute: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money):
        raise ValidationError("must be Money", field=attribute.name)


@attrs.frozen(kw_only=True)
class LifecycleEvent:
    """A committed change in a payment's life, announced to observers.

    Attributes:
        id: stable event id (the outbox row's id); the same on every redelivery.
        type: ``payment.<status>`` (``payment.succeeded``, ``payment.expired``,
            ``payment.refunded``), ``payment.late_succeeded`` for money taken
            after the payment had expired or been canceled, or one of the
            :data:`ANNOUNCEMENTS` (``payment.link_resent``), which change no status.
        payment_id: our id of the payment.
        order_reference: the merchant's order reference.
        provider: the provider's name.
        status: the payment's status after the change.
        amount: the payment's amount.
        occurred_at: when the change was committed (timezone-aware).
        payload: further detail for the event type (kept out of ``repr``).
    """

    id: str = attrs.field(validator=_non_empty)
    type: str = attrs.field(validator=_non_empty)
    payment_id: str = attrs.field(validator=_non_empty)
    order_reference: str
    provider: str
    status: str
    amount: Money = attrs.field(validator=_money)
    occurred_at: datetime = attrs.field(validator=_aware)
    payload: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
