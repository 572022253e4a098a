"""What the customer must do next: the variants of a payment's ``next_action``.

Frozen attrs values, one class per variant, told apart by ``type``
(``show_cash_code``, ``scan_qr``, ``approve_in_wallet``, ``confirm_card``,
``open_url``, ``open_checkout``, ``bank_transfer``). :meth:`NextAction.to_dict` and
:func:`next_action_from_dict` round-trip them through JSON-compatible data (the store
keeps them so); a QR is stored as the data it encodes and rendered by :func:`qr_svg`
when a page asks for it. Secrets (a card ``client_secret``) are kept out of ``repr``;
an :class:`OpenCheckout` refuses settings that look secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

import attrs

from pasarela.errors import ValidationError
from pasarela.money import Money


__all__ = [
    "ApproveInWallet",
    "BankTransfer",
    "ConfirmCard",
    "NextAction",
    "OpenCheckout",
    "OpenUrl",
    "ScanQr",
    "ShowCashCode",
    "next_action_from_dict",
    "qr_svg",
]


@lru_cache(maxsize=512)
def qr_svg(data: str) -> str:
    """*data* as a QR code (error correction M), an inline SVG element.

    Rendered when a page asks for it, not when the payment is created: encoding a QR
    costs milliseconds, and the stored next action keeps only what it encodes.
    """
    import segno  # noqa: PLC0415 - only pages and demos render QR codes

    return str(segno.make(data, error="m").svg_inline(scale=4, border=2))


_NEXT_ACTIONS: dict[str, type[NextAction]] = {}


@attrs.frozen(kw_only=True)
class NextAction:
    """What the customer must do next. ``type`` tells the variant."""

    type: ClassVar[str] = "none"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _NEXT_ACTIONS[cls.type] = cls

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, value_serializer=_serialize)
        data["type"] = self.type
        return data


def _serialize(instance: object, field: attrs.Attribute[Any] | None, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Money):
        return {"minor": value.minor, "currency": value.currency}
    return value


def next_action_from_dict(data: Mapping[str, Any] | None) -> NextAction | None:
    """The next action that :meth:`NextAction.to_dict` gave *data* (None for none).

    :raises KeyError: *data* names no known ``type``.
    """
    if not data:
        return None
    cls = _NEXT_ACTIONS[data["type"]]
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name not in data:
            continue
        value = data[field.name]
        if field.type in ("datetime | None", "datetime") and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif field.type in ("Money", "Money | None") and isinstance(value, Mapping):
            value = Money(value["minor"], value["currency"])
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        kwargs[field.name] = value
    return cls(**kwargs)


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
