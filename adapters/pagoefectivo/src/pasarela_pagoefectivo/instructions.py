"""What the customer is told: how to pay a CIP, in Spanish and English, with a QR.

A CIP is paid with the code itself, at any of PagoEfectivo's channels: the bank's
app or web banking (in "pago de servicios", PagoEfectivo), an agent or bodega, or
a bank branch. The QR carries the ``cipUrl`` page (so a customer on a computer can
open the code on the phone), or the bare code when there is no URL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from pasarela import next_action
from pasarela.money import Money
from pasarela_pagoefectivo.fields import LIMA


if TYPE_CHECKING:
    from pasarela.next_action import ShowCashCode


__all__ = ["cash_code_action", "instructions"]


def _deadline(expires_at: datetime, locale: str) -> str:
    """When the CIP expires, in words, to the minute in Lima (the text shows no seconds).

    The text is made once a minute and language (:func:`_deadline_text`): every CIP
    created within a minute with the same expiry shows the same words, and Babel's
    formatting is most of what writing the instructions costs.
    """
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)  # as Babel reads a naive time
    minute = expires_at.astimezone(LIMA).replace(second=0, microsecond=0)
    return _deadline_text(minute, locale.startswith("es"))


@lru_cache(maxsize=256)
def _deadline_text(minute: datetime, spanish: bool) -> str:
    from babel.dates import format_datetime  # noqa: PLC0415 - on first use, not on discovery

    if spanish:
        text = format_datetime(
            minute, "EEEE d 'de' MMMM 'de' y 'a las' HH:mm", tzinfo=LIMA, locale="es_PE"
        )
        return f"{text} (hora de Lima)"
    text = format_datetime(minute, "EEEE, MMMM d, y 'at' h:mm a", tzinfo=LIMA, locale="en_US")
    return f"{text} (Lima time)"


def instructions(
    code: str, amount: Money, expires_at: datetime | None
) -> dict[str, tuple[str, ...]]:
    """Steps to pay CIP *code*, by language (``es``, ``en``)."""
    shown = amount.format("es_PE")  # the customer's currency format in both languages
    es_when = f" antes del {_deadline(expires_at, 'es')}" if expires_at else ""
    en_when = f" before {_deadline(expires_at, 'en')}" if expires_at else ""
    return {
        "es": (
            f"Tu código de pago CIP es {code}. Paga {shown}{es_when}.",
            "Banca por internet o app de tu banco: entra a «Pago de servicios», elige "
            f"«PagoEfectivo» y escribe el código CIP {code}.",
            "Agentes y bodegas: di que vas a pagar a PagoEfectivo, da el código CIP "
            f"{code} y paga {shown} en efectivo.",
            f"Agencias bancarias: acércate a ventanilla con el código CIP {code}.",
            "Tu pedido se confirma cuando recibimos el aviso de pago. Pasado el plazo, "
            "el código vence y ya no se puede pagar.",
        ),
        "en": (
            f"Your CIP payment code is {code}. Pay {shown}{en_when}.",
            "Your bank's app or web banking: open \"Pay services\" (Pago de servicios), "
            f"choose \"PagoEfectivo\" and enter CIP code {code}.",
            "Agents and corner shops (bodegas): say you are paying PagoEfectivo, give CIP "
            f"code {code} and pay {shown} in cash.",
            f"Bank branches: go to a teller with CIP code {code}.",
            "Your order is confirmed when we receive the payment notice. After the "
            "deadline the code expires and can no longer be paid.",
        ),
    }


def cash_code_action(
    code: str, amount: Money, expires_at: datetime | None, url: str | None
) -> ShowCashCode:
    """The ``show_cash_code`` next action for a new CIP."""
    return next_action.ShowCashCode(
        code=code,
        amount=amount,
        expires_at=expires_at,
        url=url,
        qr_data=url or code,
        instructions=instructions(code, amount, expires_at),
    )
