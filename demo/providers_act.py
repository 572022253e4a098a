"""The demo's second-provider acts.

dLocal: Rosa's sister pays by bank transfer at BCP (the account and reference to quote,
the amount and the deadline), and a buyer abroad is charged a PEN price in US dollars
at dLocal's rate; each is paid through the sandbox's control path and succeeds when
dLocal's signed notification reaches the webhook server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pasarela_dlocal.sandbox import DEFAULT_SECRET_KEY as DLOCAL_SECRET
from pasarela_dlocal.sandbox import DEFAULT_X_LOGIN, DEFAULT_X_TRANS_KEY
from pasarela_dlocal.sandbox import create_app as dlocal_sandbox
from rich.console import Console
from rich.panel import Panel

from pasarela import Customer, Money, Order, Pasarela, Status
from pasarela.next_action import BankTransfer, ShowCashCode
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app as webhook_server


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _settled_by(pasarela: Pasarela, payment_id: str) -> str:
    """The payment's status and the cause of the transition that reached it."""
    payment = pasarela.get(payment_id)
    last = [t for t in payment.history if t.applied and t.target is payment.status]
    return f"{payment.status} (by {last[-1].cause})" if last else str(payment.status)


def dlocal_act(console: Console, out: Path, port: Callable[[], int]) -> bool:
    """Play the dLocal act; True when both payments ended succeeded by notification."""
    console.rule("[bold]8. dLocal: a bank transfer at BCP, and a PEN price charged in USD")
    server_port, sandbox_port = port(), port()
    hooks = f"http://127.0.0.1:{server_port}/webhooks"
    config = {
        "store": {"url": f"sqlite:///{out / 'dlocal.db'}"},
        "providers": {"dlocal": {
            "base_url": f"http://127.0.0.1:{sandbox_port}", "x_login": DEFAULT_X_LOGIN,
            "x_trans_key": DEFAULT_X_TRANS_KEY, "secret_key": DLOCAL_SECRET, "bank": "BC",
            "expiry": "48h", "notification_url": f"{hooks}/dlocal"}},
    }
    buyer = Customer(first_name="Elena", last_name="Quispe", email="elena@example.pe",
                     phone="+51 944 555 666", document=("DNI", "48123456"))
    with Pasarela(config) as pasarela, \
            serve_app(webhook_server(pasarela), port=server_port), \
            serve_app(dlocal_sandbox(webhook_url=f"{hooks}/dlocal", webhook_retry_delay=0.2),
                      port=sandbox_port) as sandbox_url, \
            httpx.Client(timeout=10) as control:
        transfer = pasarela.pay(Order(reference="pedido-2001", amount=Money.of("250.00", "PEN"),
                                      description="Silla de escritorio", customer=buyer),
                                method="bank_transfer", idempotency_key="pedido-2001")
        action = transfer.next_action
        assert isinstance(action, BankTransfer)
        due = action.expires_at or transfer.expires_at  # dLocal's, else the configured expiry
        deadline = f"{due:%Y-%m-%d %H:%M} UTC" if due else "-"
        console.print(Panel(
            f"bank: {action.bank}\n{action.account_label or 'account'}: {action.account or '-'}"
            f"\nholder: {action.holder or '-'}\nreference: {action.reference or '-'}"
            f"\namount: {action.amount.format()}\ndeadline: {deadline}",
            title=f"BankTransfer · {transfer.status}", subtitle=action.url or ""))
        control.post(f"{sandbox_url}/_control/payments/{transfer.provider_reference}/pay"
                     ).raise_for_status()
        console.print("  Elena transfers from her bank app; dLocal's signed notification "
                      "arrives")
        _wait_for(lambda: pasarela.get(transfer.id).status is Status.SUCCEEDED,
                  "the transfer's notification")
        console.print(f"  payment {transfer.id}: {_settled_by(pasarela, transfer.id)}")

        usd = pasarela.pay(Order(reference="pedido-2002", amount=Money.of("149.90", "PEN"),
                                 description="Audífonos inalámbricos", customer=buyer),
                           method="cash", idempotency_key="pedido-2002",
                           currency_to_charge="USD")
        ticket = usd.next_action
        assert isinstance(ticket, ShowCashCode)
        console.print(f"  cash ticket {ticket.code}: price {usd.amount.format()}, "
                      f"charged {usd.charged.format() if usd.charged else '-'} "
                      f"(fx_rate {usd.fx_rate}: 1 PEN = {usd.fx_rate} USD)")
        control.post(f"{sandbox_url}/_control/payments/{usd.provider_reference}/pay"
                     ).raise_for_status()
        _wait_for(lambda: pasarela.get(usd.id).status is Status.SUCCEEDED,
                  "the ticket's notification")
        final = pasarela.get(usd.id)
        console.print(f"  payment {usd.id}: {_settled_by(pasarela, usd.id)}; charged "
                      f"{final.charged.format() if final.charged else '-'}, fx_rate "
                      f"{final.fx_rate}")
        return usd.charged is not None and usd.fx_rate is not None and all(
            "webhook" in _settled_by(pasarela, p) for p in (transfer.id, usd.id))
