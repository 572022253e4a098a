"""The next actions a Yape payment shows the customer, in Spanish and English."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pasarela.money import Money
from pasarela.next_action import ApproveInWallet, ScanQr


__all__ = ["LIMA", "approve_in_yape", "scan_qr"]

#: Peru keeps UTC-5 all year (no daylight saving time).
LIMA = timezone(timedelta(hours=-5), "PET")


def _when(moment: datetime) -> tuple[str, str]:
    local = moment.astimezone(LIMA)
    return local.strftime("%d/%m/%Y %H:%M"), local.strftime("%Y-%m-%d %H:%M")


def approve_in_yape(amount: Money) -> ApproveInWallet:
    """Ask for the 6-digit approval code from the Yape app (``confirm(phone=, code=)``)."""
    es_amount = en_amount = amount.format("es_PE")
    return ApproveInWallet(
        wallet="yape",
        instructions={
            "es": (
                "Abre Yape en tu celular.",
                "En el menú, entra a «Código de aprobación».",
                "Ingresa aquí tu número de celular y el código de 6 dígitos "
                f"para pagar {es_amount}.",
                "El código vence en pocos minutos; si venció, genera uno nuevo.",
            ),
            "en": (
                "Open Yape on your phone.",
                "From the menu, open «Código de aprobación» (approval code).",
                f"Enter your phone number and the 6-digit code here to pay {en_amount}.",
                "The code expires within minutes; if it has, generate a new one.",
            ),
        },
    )


def scan_qr(qr_data: str, amount: Money, expires_at: datetime | None) -> ScanQr:
    """Scan the QR from Yape or Plin (interoperable since April 2023) before it expires."""
    es_amount = en_amount = amount.format("es_PE")
    es_until, en_until = _when(expires_at) if expires_at else ("", "")
    es_deadline = f" antes del {es_until} (hora de Lima)" if expires_at else ""
    en_deadline = f" before {en_until} (Lima time)" if expires_at else ""
    return ScanQr(
        qr_data=qr_data,
        expires_at=expires_at,
        wallets=("yape", "plin"),
        instructions={
            "es": (
                "Paga desde Yape o Plin.",
                "Abre tu app y elige «Escanear QR».",
                f"Escanea este código y confirma el pago de {es_amount}{es_deadline}.",
                "Después de esa hora el código ya no se puede pagar.",
            ),
            "en": (
                "Pay from Yape or Plin.",
                "Open your app and choose «Escanear QR» (scan QR).",
                f"Scan this code and confirm the payment of {en_amount}{en_deadline}.",
                "After that time the code can no longer be paid.",
            ),
        },
    )
