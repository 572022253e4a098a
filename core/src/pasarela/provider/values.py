"""The values a provider's flows answer with (and the request they get), defined when
:mod:`pasarela.provider` first hands one out; import them from there."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.errors import ValidationError, WebhookError
from pasarela.lifecycle import Status
from pasarela.model import Method, RefundStatus, check_storable_text
from pasarela.money import Money
from pasarela.next_action import NextAction


if TYPE_CHECKING:
    from pasarela.model import Order


__all__ = [
    "CreateRequest",
    "ProviderPayment",
    "ProviderRefund",
    "SettlementLine",
    "WebhookEvent",
    "WebhookHint",
]

_NETWORK_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")


def _network(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not _NETWORK_RE.match(value)):
        raise ValidationError("must be a network name: 1 to 32 of a-z, 0-9 and _",
                              field=attribute.name)


def _fx_rate(instance: object, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise ValidationError("must be a positive, finite Decimal (never a float)",
                              field=attribute.name)


@attrs.frozen(kw_only=True)
class CreateRequest:
    """What the core asks a provider to create.

    ``params`` carries method-specific inputs from ``pay(..., **params)``, such as a
    wallet phone and approval code, or a card PaymentMethod id.
    """

    payment_id: str
    idempotency_key: str
    order: Order
    method: Method
    amount: Money
    expires_at: datetime | None
    params: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    #: The network the payment runs on: the one the caller asked for, else the
    #: provider's declared one for the method (None for a card).
    network: str | None = None


@attrs.frozen(kw_only=True)
class ProviderPayment:
    """What a provider says about a payment, in lifecycle terms."""

    status: Status
    reference: str | None = None
    raw_status: str = ""
    next_action: NextAction | None = None
    amount: Money | None = None
    expires_at: datetime | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    #: The network the payment ran on, when the answer says (a card's brand); the
    #: payment otherwise keeps the one its provider declares for the method.
    network: str | None = attrs.field(default=None, validator=_network)
    #: What the customer was charged when it differs from the price (a PEN price
    #: charged in USD), and the rate applied: units of ``charged.currency`` per unit
    #: of the price's currency, as the provider reports it.
    charged: Money | None = None
    fx_rate: Decimal | None = attrs.field(default=None, validator=_fx_rate)


@attrs.frozen(kw_only=True)
class ProviderRefund:
    status: RefundStatus
    reference: str | None = None
    amount: Money | None = None
    payment_reference: str | None = None
    refund_id: str | None = None


def _event_text(field: str, value: object, longest: int, *, optional: bool = False) -> None:
    """What a signed body gives an event's ids must be text a store can keep: a body
    that fails this is malformed (a 400 for that delivery alone), however it was signed."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise WebhookError(f"malformed event: {field} must be a non-empty string")
    if len(value) > longest:
        raise WebhookError(f"malformed event: {field} is longer than {longest} characters")
    try:
        check_storable_text(value, field)
    except ValidationError as exc:
        raise WebhookError(f"malformed event: {field} {exc.reason}") from None


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified delivery, parsed into neutral terms.

    Attributes:
        event_id: stable id for deduplication (unique per provider).
        type: the provider's event type (``cip.paid``).
        provider_reference: the provider's id of the payment it concerns.
        status: the status it reports, or None when it reports none to apply.
        verify_by_fetch: True when the provider signs nothing: the core fetches the
            payment from the provider and applies that instead of the body.
        refund: a refund outcome the event carries.
        payment_id: our payment id, where the provider echoes it (PagoEfectivo's
            ``transactionCode``): it finds a payment whose create answer was lost
            and so has no provider reference yet.
    """

    event_id: str = attrs.field(validator=lambda _, a, v: _event_text(a.name, v, 255))
    type: str = attrs.field(validator=lambda _, a, v: _event_text(a.name, v, 64))
    provider_reference: str | None = attrs.field(
        validator=lambda _, a, v: _event_text(a.name, v, 128, optional=True))
    payment_id: str | None = attrs.field(
        default=None, validator=lambda _, a, v: _event_text(a.name, v, 64, optional=True))
    status: Status | None = None
    amount: Money | None = None
    verify_by_fetch: bool = False
    refund: ProviderRefund | None = None
    occurred_at: datetime | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class WebhookHint:
    """What an unverified delivery says it is about, read by
    :meth:`~pasarela.provider.Provider.webhook_hint` before any signature is checked: our payment id
    and/or the provider's reference. The core only uses it to find the payment, and so
    the account whose secrets then verify the delivery; nothing in it is trusted."""

    payment_id: str | None = None
    provider_reference: str | None = None


@attrs.frozen(kw_only=True)
class SettlementLine:
    """One line of a provider's statement of what it collected."""

    provider: str
    provider_reference: str | None
    order_reference: str | None
    amount: Money
    fee: Money | None
    status: str
    occurred_at: datetime
    line_no: int = 0
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False)


# Their home is pasarela.provider: the names people import, repr and pickle see.
for _value in (CreateRequest, ProviderPayment, ProviderRefund, WebhookEvent, WebhookHint,
               SettlementLine):
    _value.__module__ = "pasarela.provider"
del _value
