"""The seam between the Yape provider and the acquirer that carries its payments.

Yape has no public merchant API of its own: merchants reach it through an acquirer
(Culqi, Niubiz, ...). :class:`YapeProvider` validates and shapes the request in
neutral terms (:class:`CodeCharge`, :class:`QrOrder`) and hands it to an
:class:`Acquirer`, chosen by ``settings.acquirer`` from :data:`ACQUIRERS`. Adding
Niubiz means writing a ``NiubizAcquirer`` with these methods and registering it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Protocol

import attrs

from pasarela.errors import ConfigurationError, ErrorCode
from pasarela.model import Payment, Refund
from pasarela.money import Money
from pasarela.provider import (
    Flow,
    ProviderPayment,
    ProviderRefund,
    SettlementLine,
    WebhookEvent,
    WebhookHeaders,
)
from pasarela_yape.settings import YapeSettings


__all__ = ["ACQUIRERS", "Acquirer", "CodeCharge", "QrOrder", "make_acquirer"]


@attrs.frozen(kw_only=True)
class CodeCharge:
    """Charge a Yape account with the approval code its owner generated."""

    payment_id: str
    amount: Money
    phone: str  # 9 digits, a Peruvian mobile (9XXXXXXXX)
    code: str = attrs.field(repr=False)  # the 6-digit approval code (OTP)
    email: str = attrs.field(repr=False)
    description: str
    metadata: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class QrOrder:
    """An order payable from Yape or Plin (the acquirer's checkout draws the QR) until
    it expires."""

    payment_id: str
    order_reference: str
    amount: Money
    expires_at: datetime
    description: str
    first_name: str = attrs.field(repr=False)
    last_name: str = attrs.field(repr=False)
    email: str = attrs.field(repr=False)
    phone: str = attrs.field(repr=False)  # E.164
    metadata: Mapping[str, str] = attrs.field(factory=dict)


class Acquirer(Protocol):
    """What an acquirer offers the Yape provider. Flows only: no I/O."""

    #: The acquirer's limits for a QR order, in minor units of PEN.
    qr_limits: tuple[int, int]
    #: The acquirer's error table (its code -> normalized code).
    error_codes: Mapping[str, ErrorCode]
    #: The metadata keys the acquirer adds to what the order carries (they count
    #: against the acquirer's metadata limit).
    added_metadata: tuple[str, ...]

    def charge_with_code(self, charge: CodeCharge) -> Flow[ProviderPayment]: ...

    def create_qr_order(self, order: QrOrder) -> Flow[ProviderPayment]: ...

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        """The payment's state at the acquirer; finds it when its reference was lost."""
        ...

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]: ...

    def refund(
        self, payment: Payment, amount: Money, *, refund_id: str, reason: str
    ) -> Flow[ProviderRefund]: ...

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        """The refund's state; found by our refund id when its reference was lost;
        pending (never failed) while the acquirer has not said."""
        ...

    def probe(self) -> Flow[None]:
        """One authenticated request that changes nothing (``pasarela doctor``)."""
        ...

    def settlements(self, since: datetime, until: datetime) -> Flow[Iterable[SettlementLine]]:
        """What the acquirer collected for payments made in ``[since, until)``."""
        ...

    def parse_webhook(
        self, headers: WebhookHeaders, body: bytes, *, now: datetime
    ) -> list[WebhookEvent]: ...


AcquirerFactory = Callable[[YapeSettings, Callable[[], datetime]], Acquirer]


def _culqi(settings: YapeSettings, clock: Callable[[], datetime]) -> Acquirer:
    from pasarela_yape.culqi import CulqiAcquirer  # noqa: PLC0415 (keeps the seam one-way)

    return CulqiAcquirer(settings, clock)


#: Acquirers by the name ``settings.acquirer`` gives.
ACQUIRERS: dict[str, AcquirerFactory] = {"culqi": _culqi}


def make_acquirer(settings: YapeSettings, clock: Callable[[], datetime]) -> Acquirer:
    factory = ACQUIRERS.get(settings.acquirer)
    if factory is None:
        raise ConfigurationError(
            f"unknown acquirer {settings.acquirer!r}; one of {', '.join(sorted(ACQUIRERS))}",
            path="providers.yape.acquirer",
        )
    return factory(settings, clock)
