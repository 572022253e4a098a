"""The variants of a payment's next action, defined when :mod:`pasarela.next_action`
first hands one out (see its docstring); import them from there."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from pasarela.errors import ValidationError
from pasarela.money import Money
from pasarela.next_action import NextAction, qr_svg


__all__ = [
    "ApproveInWallet",
    "BankTransfer",
    "ConfirmCard",
    "OpenCheckout",
    "OpenUrl",
    "ScanQr",
    "ShowCashCode",
]


@attrs.frozen(kw_only=True)
class ShowCashCode(NextAction):
    """Pay a cash code (a PagoEfectivo CIP) at a bank, agent or banking app."""

    type: ClassVar[str] = "show_cash_code"
    code: str
    amount: Money
    expires_at: datetime | None
    url: str | None = None
    #: What the QR encodes (the provider's page for the code, or the code itself).
    qr_data: str | None = attrs.field(default=None, repr=False)
    instructions: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, repr=False)

    @property
    def qr_svg(self) -> str | None:
        """The QR as an inline SVG element, rendered on first use."""
        return qr_svg(self.qr_data) if self.qr_data else None


@attrs.frozen(kw_only=True)
class ScanQr(NextAction):
    """Scan a QR from a wallet app (Yape or Plin) before it expires."""

    type: ClassVar[str] = "scan_qr"
    qr_data: str = attrs.field(repr=False)
    expires_at: datetime | None
    wallets: tuple[str, ...] = ("yape", "plin")
    instructions: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, repr=False)

    @property
    def qr_svg(self) -> str:
        """The QR as an inline SVG element, rendered on first use."""
        return qr_svg(self.qr_data)


@attrs.frozen(kw_only=True)
class ApproveInWallet(NextAction):
    """Give the approval code from the wallet app (``confirm(phone=, code=)``)."""

    type: ClassVar[str] = "approve_in_wallet"
    wallet: str
    instructions: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class ConfirmCard(NextAction):
    """Confirm the card with the provider's client SDK, using ``client_secret``."""

    type: ClassVar[str] = "confirm_card"
    client_secret: str = attrs.field(repr=False)
    step: str = "confirm"  # "confirm" or "authenticate" (3-D Secure)
    url: str | None = None


@attrs.frozen(kw_only=True)
class OpenUrl(NextAction):
    """Send the customer to a page."""

    type: ClassVar[str] = "open_url"
    url: str


#: Setting names an :class:`OpenCheckout` refuses: its settings are shown to the browser.
_SECRET_NAMES: tuple[str, ...] = ("secret", "password", "private")


def _public_settings(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Mapping):
        raise ValidationError("must map setting names to text or whole numbers",
                              field="settings")
    for key, item in value.items():
        if not isinstance(key, str) or any(word in key.lower() for word in _SECRET_NAMES):
            raise ValidationError(f"{key!r} is not a public setting", field="settings")
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ValidationError(f"{key}: must be text or a whole number", field="settings")
        if isinstance(item, str) and item.startswith(("sk_", "sk-")):
            raise ValidationError(f"{key}: looks like a secret key", field="settings")


@attrs.frozen(kw_only=True)
class OpenCheckout(NextAction):
    """Open the provider's own checkout in the browser for this payment (Culqi's
    Custom Checkout for a wallet QR order: the provider draws the QR itself).

    ``script_url`` is the provider's checkout script; ``settings`` the public,
    non-secret values the page hands to it (a public key, the provider's order id,
    the amount in minor units, the currency, a title); ``url`` a page the customer
    can open instead, when the provider has one; ``cash_code`` a cash code (a
    PagoEfectivo CIP) the provider issued for the same payment, if any. Never a secret:
    setting names with ``secret``/``password``/``private`` and ``sk_`` values are refused.
    """

    type: ClassVar[str] = "open_checkout"
    provider: str
    script_url: str
    settings: Mapping[str, str | int] = attrs.field(factory=dict, validator=_public_settings)
    expires_at: datetime | None = None
    url: str | None = None
    cash_code: str | None = None
    instructions: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, repr=False)


def _transfer_target(instance: BankTransfer, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (instance.account or instance.reference):
        raise ValidationError("a bank transfer needs the account or the reference to quote",
                              field="next_action.account")


@attrs.frozen(kw_only=True)
class BankTransfer(NextAction):
    """Transfer ``amount`` from the customer's bank (its app or online banking) to the
    account given, quoting the reference, before ``expires_at`` (the deadline).

    ``bank`` is the bank to pay at (``BCP``); ``account`` the account number or CCI
    (``account_label`` says which, as the provider labels it); ``holder`` the account's
    holder; ``reference`` the code the customer writes in the transfer, when the
    provider matches transfers by one; ``url`` the provider's page with the same
    details. At least ``account`` or ``reference`` is given.
    """

    type: ClassVar[str] = "bank_transfer"
    bank: str
    amount: Money
    expires_at: datetime | None
    account: str | None = None
    account_label: str | None = None
    holder: str | None = None
    reference: str | None = attrs.field(default=None, validator=_transfer_target)
    url: str | None = None
    instructions: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, repr=False)


# Their home is pasarela.next_action: the names people import, repr and pickle see.
for _kind in (ShowCashCode, ScanQr, ApproveInWallet, ConfirmCard, OpenUrl, OpenCheckout,
              BankTransfer):
    _kind.__module__ = "pasarela.next_action"
del _kind
