"""The next actions a Yape payment shows the customer, in Spanish and English."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from pasarela import next_action
from pasarela.money import Money


if TYPE_CHECKING:
    from pasarela.next_action import ApproveInWallet, OpenCheckout


__all__ = ["LIMA", "approve_in_yape", "open_culqi_checkout"]

#: Peru keeps UTC-5 all year (no daylight saving time).
LIMA = timezone(timedelta(hours=-5), "PET")


def _when(moment: datetime) -> tuple[str, str]:
    local = moment.astimezone(LIMA)
    return local.strftime("%d/%m/%Y %H:%M"), local.strftime("%Y-%m-%d %H:%M")


def approve_in_yape(amount: Money) -> ApproveInWallet:
    """Ask for the 6-digit approval code from the Yape app (``confirm(phone=, code=)``)."""
    es_amount = en_amount = amount.format("es_PE")
    return next_action.ApproveInWallet(
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


def open_culqi_checkout(
    *, script_url: str, public_key: str, order_id: str, amount: Money, title: str,
    expires_at: datetime | None, cash_code: str | None = None,
) -> OpenCheckout:
    """Open Culqi's checkout for the order *order_id*: Culqi draws the QR that Yape,
    Plin and other wallets scan (Culqi "Billeteras móviles"). *cash_code* is the
    order's ``payment_code``: a PagoEfectivo CIP, offered as such, never as a QR."""
    es_amount = en_amount = amount.format("es_PE")
    es_until, en_until = _when(expires_at) if expires_at else ("", "")
    es_deadline = f" antes del {es_until} (hora de Lima)" if expires_at else ""
    en_deadline = f" before {en_until} (Lima time)" if expires_at else ""
    es = [
        "Paga desde Yape, Plin u otra billetera móvil.",
        "Abre el checkout de Culqi con el botón de esta página y elige «Billeteras móviles».",
        f"Escanea con tu app el QR que muestra Culqi y confirma el pago de {es_amount}"
        f"{es_deadline}.",
        "Después de esa hora la orden ya no se puede pagar.",
    ]
    en = [
        "Pay from Yape, Plin or another mobile wallet.",
        "Open Culqi's checkout with this page's button and choose «Billeteras móviles» "
        "(mobile wallets).",
        f"Scan the QR Culqi shows with your app and confirm the payment of {en_amount}"
        f"{en_deadline}.",
        "After that time the order can no longer be paid.",
    ]
    if cash_code:
        es.append(f"Culqi también emitió para esta orden el código CIP {cash_code} de "
                  "PagoEfectivo: puedes pagarlo en tu banca por internet, en agentes o bodegas.")
        en.append(f"Culqi also issued PagoEfectivo CIP code {cash_code} for this order: "
                  "you can pay it in online banking, at agents or corner shops.")
    return next_action.OpenCheckout(
        provider="culqi",
        script_url=script_url,
        settings={"public_key": public_key, "order": order_id, "amount": amount.minor,
                  "currency": amount.currency, "title": title},
        expires_at=expires_at,
        cash_code=cash_code or None,
        instructions={"es": tuple(es), "en": tuple(en)},
    )
