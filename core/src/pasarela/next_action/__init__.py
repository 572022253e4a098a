"""What the customer must do next: the variants of a payment's ``next_action``.

Frozen attrs values, one class per variant, told apart by ``type``
(``show_cash_code``, ``scan_qr``, ``approve_in_wallet``, ``confirm_card``,
``open_url``, ``open_checkout``, ``bank_transfer``). :meth:`NextAction.to_dict` and
:func:`next_action_from_dict` round-trip them through JSON-compatible data (the store
keeps them so); a QR is stored as the data it encodes and rendered by :func:`qr_svg`
when a page asks for it. Secrets (a card ``client_secret``) are kept out of ``repr``;
an :class:`OpenCheckout` refuses settings that look secret.

The variants are defined on first use (their module, ``pasarela.next_action.kinds``,
is imported when a name of theirs is first read here, or when
:func:`next_action_from_dict` meets a type not defined yet): attrs compiling their
methods was a tenth of discovering the plugins, and an adapter builds them only in its
flows. Each name is then the same class on every read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from pasarela.money import Money


if TYPE_CHECKING:
    from pasarela.next_action.kinds import (
        ApproveInWallet,
        BankTransfer,
        ConfirmCard,
        OpenCheckout,
        OpenUrl,
        ScanQr,
        ShowCashCode,
    )


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
        """The fields as JSON-compatible data, ``type`` last: a datetime as its
        ``isoformat()``, a :class:`~pasarela.money.Money` as ``{minor, currency}``,
        collections as they are (what ``attrs.asdict`` gives with those two
        conversions; written here for its cost, under a third of it)."""
        cls = type(self)
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = tuple(field.name for field in attrs.fields(cls))
        data = {name: _plain(getattr(self, name)) for name in names}
        data["type"] = self.type
        return data


#: Each variant's field names, in order (read once a class).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """*value* as :meth:`NextAction.to_dict` writes it: ``attrs.asdict``'s rules (a
    dict, a collection or an attrs instance inside is written out the same way, a
    collection keeps its type) with a datetime and a Money written out."""
    if value is None or type(value) in (str, int, bool, float):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Money):
        return {"minor": value.minor, "currency": value.currency}
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, tuple) and all(type(item) is str for item in value):
        return value  # lines of text, most often: immutable, taken as they are
    if isinstance(value, tuple | list | set | frozenset):
        return type(value)([_plain(item) for item in value])
    if attrs.has(type(value)):
        return {field.name: _plain(getattr(value, field.name))
                for field in attrs.fields(type(value))}
    return value


def next_action_from_dict(data: Mapping[str, Any] | None) -> NextAction | None:
    """The next action that :meth:`NextAction.to_dict` gave *data* (None for none).

    :raises KeyError: *data* names no known ``type``.
    """
    if not data:
        return None
    if data["type"] not in _NEXT_ACTIONS:
        _define_kinds()
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


#: The variants, defined in ``pasarela.next_action.kinds`` on first use.
_KINDS = frozenset({"ApproveInWallet", "BankTransfer", "ConfirmCard", "OpenCheckout",
                    "OpenUrl", "ScanQr", "ShowCashCode"})


def _define_kinds() -> None:
    """Import the variants' module and put its classes in this module's place."""
    from pasarela.next_action import kinds  # noqa: PLC0415 - defined on first use

    names = globals()
    for name in _KINDS:
        names[name] = getattr(kinds, name)
    # What their annotations name, where typing.get_type_hints looks (their __module__).
    for name, value in vars(kinds).items():
        if not name.startswith("_"):
            names.setdefault(name, value)


def __getattr__(name: str) -> Any:
    if name in _KINDS:
        _define_kinds()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_KINDS})
