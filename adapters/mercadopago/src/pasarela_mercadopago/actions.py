"""The next actions a Mercado Pago payment shows the customer, in Spanish and English."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pasarela import next_action
from pasarela.money import Money


if TYPE_CHECKING:
    from pasarela.next_action import ApproveInWallet, ShowCashCode


__all__ = ["LIMA", "approve_in_yape", "pay_pagoefectivo"]

#: Peru keeps UTC-5 all year.
LIMA = timezone(timedelta(hours=-5), "PET")


def pay_pagoefectivo(*, code: str, amount: Money, expires_at: datetime | None,
                     url: str | None) -> ShowCashCode:
    """Pay the PagoEfectivo code Mercado Pago issued (``pagoefectivo_atm``)."""
    shown = amount.format("es_PE")
    until_es = until_en = ""
    if expires_at is not None:
        local = expires_at.astimezone(LIMA)
        until_es = f" antes del {local.strftime('%d/%m/%Y %H:%M')} (hora de Lima)"
        until_en = f" before {local.strftime('%Y-%m-%d %H:%M')} (Lima time)"
    return next_action.ShowCashCode(
        code=code, amount=amount, expires_at=expires_at, url=url, qr_data=url or code,
        instructions={
            "es": (
                f"Código PagoEfectivo {code}, cobrado por Mercado Pago.",
                f"Págalo{until_es} en tu banca por internet o móvil (opción PagoEfectivo), "
                "en agentes o bodegas.",
                f"Monto a pagar: {shown}.",
            ),
            "en": (
                f"PagoEfectivo code {code}, collected by Mercado Pago.",
                f"Pay it{until_en} in online or mobile banking (PagoEfectivo option), "
                "at agents or corner shops.",
                f"Amount to pay: {shown}.",
            ),
        },
    )


def approve_in_yape(amount: Money) -> ApproveInWallet:
    """Ask for the phone and the 6-digit approval code from the Yape app
    (``confirm(phone=, otp=)``)."""
    shown = amount.format("es_PE")
    return next_action.ApproveInWallet(
        wallet="yape",
        instructions={
            "es": ("Abre Yape y entra a «Código de aprobación».",
                   f"Ingresa aquí tu celular y el código de 6 dígitos para pagar {shown} "
                   "con Mercado Pago."),
            "en": ("Open Yape and go to «Código de aprobación» (approval code).",
                   f"Enter your phone and the 6-digit code here to pay {shown} "
                   "through Mercado Pago."),
        },
    )
