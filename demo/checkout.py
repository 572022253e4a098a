"""``make demo``: a whole Peruvian checkout against the local sandboxes, in SQLite.

Starts the PagoEfectivo, Yape (Culqi) and Stripe sandboxes and pasarela's own webhook
server on loopback, then plays seven customers:

1. Rosa pays by cash code (a PagoEfectivo CIP) at an agent; the signed notification
   reaches the webhook server and the payment succeeds.
2. Jorge pays with Yape, typing his approval code: it succeeds at once.
3. Lucía opens Culqi's checkout and scans its QR with Plin; Culqi's unsigned webhook is
   verified by fetching the order.
4. Ana pays by card (Stripe, test card) and gets part of it refunded.
5. Marco's Yape answer is lost on the way back: the payment is ``unknown`` (never
   failed, never charged twice) until the resolver asks Culqi and settles it.
6. Pedro never pays his CIP: PagoEfectivo expires it and the sweep expires it here,
   so the host releases the stock. Sofía's code expires here too, but she pays it at
   an agent afterwards: a late payment, announced as its own event.

Each payment is printed with its history and its redacted provider exchanges. Then
the acts beside this script: two merchants on one server (``merchants_act.py``), a
second provider, dLocal and Mercado Pago (``providers_act.py``), and what the
checkout's cash would have cost through PagoEfectivo directly, through dLocal and
through Mercado Pago (``costs_act.py``, ``pasarela costs --what-if``). Last, the
audit trail (``evidence_act.py``): the cash codes reconciled with PagoEfectivo while
its sandbox runs, every store's chains verified (``pasarela audit verify --all``) and
each checkout payment's evidence bundle written (``pasarela payments evidence``).
"""

from __future__ import annotations

import logging
import shutil
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pasarela_pagoefectivo.sandbox import create_app as pagoefectivo_sandbox
from pasarela_pagoefectivo.sandbox.state import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
)
from pasarela_stripe.sandbox import create_app as stripe_sandbox
from pasarela_yape.sandbox import create_app as yape_sandbox
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from pasarela import Customer, Money, Order, Pasarela, Status, hookimpl
from pasarela.cli.commands import print_payment
from pasarela.cli.output import configure_logging as configure
from pasarela.events import LifecycleEvent
from pasarela.next_action import OpenCheckout, ShowCashCode
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app as webhook_server
from pasarela.web.pay_page import PageSettings, pay_link


sys.path.insert(0, str(Path(__file__).resolve().parent))
from costs_act import costs_act, window_around  # the three cash routes compared
from evidence_act import evidence_act, reconcile_cash, write_config  # the audit trail
from merchants_act import two_merchants  # the act beside this script
from providers_act import dlocal_act, mercadopago_act  # the second-provider acts


console = Console()
OUT = Path("demo-out")
STRIPE_KEY = "sk_test_pasarela_demo"
STRIPE_WEBHOOK_SECRET = "whsec_pasarela_demo"
CULQI_PUBLIC = "pk_test_pasarela_demo"
CULQI_SECRET = "sk_test_pasarela_demo"
PAGE_SECRET = "pasarela-demo-page-secret"


class Clock:
    """pasarela's clock; the demo moves it forward to reach an expiry."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Stock:
    """The host shop: ships or releases stock on lifecycle events."""

    @hookimpl
    def pasarela_payment_event(self, event: LifecycleEvent) -> None:
        action = {"payment.succeeded": "ship", "payment.expired": "release the stock of",
                  "payment.late_succeeded": "review the late payment of",
                  "payment.partially_refunded": "note the refund of"}.get(event.type)
        if action:
            console.print(f"  [magenta]shop[/] {event.type}: {action} {event.order_reference}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def customer(first: str, last: str, email: str, phone: str, dni: str) -> Customer:
    return Customer(first_name=first, last_name=last, email=email, phone=phone,
                    document=("DNI", dni))


def main() -> int:
    configure(level=logging.WARNING)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    clock = Clock()
    started = clock()
    ports = {name: free_port() for name in ("pagoefectivo", "yape", "stripe", "pasarela")}
    hooks = f"http://127.0.0.1:{ports['pasarela']}/webhooks"
    config = {
        "store": {"url": f"sqlite:///{OUT / 'pasarela.db'}"},
        "checkout": {"preference": ["pagoefectivo", "yape", "stripe"]},
        "providers": {
            "pagoefectivo": {
                "base_url": f"http://127.0.0.1:{ports['pagoefectivo']}",
                "access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY,
                "service_id": DEFAULT_SERVICE_ID, "expiry": "48h",
                "fees": {"percent": "3.5", "fixed": "PEN 0.50", "igv": True},
            },
            "yape": {
                "base_url": f"http://127.0.0.1:{ports['yape']}",
                "public_key": CULQI_PUBLIC, "secret_key": CULQI_SECRET, "timeout": 1.0,
                "fees": {"percent": "2.95", "igv": True},
            },
            "stripe": {
                "base_url": f"http://127.0.0.1:{ports['stripe']}",
                "api_key": STRIPE_KEY, "webhook_secrets": [STRIPE_WEBHOOK_SECRET],
                "fees": {"percent": "3.6", "fixed": "PEN 1.00"},
            },
        },
    }
    with Pasarela(config, plugins=[Stock()], clock=clock) as pasarela, \
            serve_app(webhook_server(pasarela, pages=PageSettings(page_secret=PAGE_SECRET)),
                      port=ports["pasarela"]) as server_url, \
            serve_app(pagoefectivo_sandbox(webhook_url=f"{hooks}/pagoefectivo"),
                      port=ports["pagoefectivo"]) as pe_url, \
            serve_app(yape_sandbox(webhook_url=f"{hooks}/yape", public_key=CULQI_PUBLIC,
                                   secret_key=CULQI_SECRET), port=ports["yape"]) as yape_url, \
            serve_app(stripe_sandbox(api_key=STRIPE_KEY, webhook_url=f"{hooks}/stripe",
                                     webhook_secret=STRIPE_WEBHOOK_SECRET),
                      port=ports["stripe"]) as stripe_url, \
            httpx.Client(timeout=10) as control:
        shown: list[str] = []

        console.rule("[bold]What can Rosa use to pay S/ 149.90?")
        rosa = customer("Rosa", "Quispe", "rosa@example.pe", "+51 987 654 321", "45678912")
        order = Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"),
                      description="Audífonos inalámbricos", customer=rosa)
        table = Table("method", "provider", "merchant fee", "expires (UTC)", "why")
        for option in pasarela.options(order):
            table.add_row(option.method.value, option.provider or "-",
                          option.fee.format() if option.fee else "-",
                          f"{option.expires_at:%Y-%m-%d %H:%M}" if option.expires_at else "-",
                          option.reason)
        console.print(table)

        console.rule("[bold]1. Rosa pays by cash code (PagoEfectivo CIP)")
        cash = pasarela.pay(order, method="cash", idempotency_key="pedido-1042")
        action = cash.next_action
        assert isinstance(action, ShowCashCode)
        (OUT / "cip-qr.svg").write_text(action.qr_svg or "", encoding="utf-8")
        link = pay_link(cash.id, PAGE_SECRET, base_url=server_url)
        page = control.get(link)
        page.raise_for_status()
        assert action.code in page.text
        console.print("  the customer's page (code, QR, where to pay, countdown):")
        console.print(f"  {link}", soft_wrap=True)
        console.print(Panel("\n".join(action.instructions["es"]),
                            title=f"CIP {action.code} · {action.amount.format()} · {cash.status}",
                            subtitle=f"QR: {OUT / 'cip-qr.svg'}  ·  {action.url}"))
        control.post(f"{pe_url}/_control/cips/{action.code}/pay").raise_for_status()
        console.print("  Rosa pays at an agent; PagoEfectivo notifies the webhook server")
        wait_for(lambda: pasarela.get(cash.id).status is Status.SUCCEEDED, "the CIP payment")
        shown.append(cash.id)

        console.rule("[bold]2. Jorge pays with Yape and his approval code")
        jorge = customer("Jorge", "Mamani", "jorge@example.pe", "+51 900 000 001", "41234567")
        yape = pasarela.pay(Order(reference="pedido-1043", amount=Money.of("35.00", "PEN"),
                                  description="Funda", customer=jorge),
                            method="wallet", idempotency_key="pedido-1043",
                            phone="900000001", code="425251")
        console.print(f"  payment {yape.id}: {yape.status}")
        shown.append(yape.id)

        console.rule("[bold]3. Lucía scans the QR of Culqi's checkout and pays with Plin")
        lucia = customer("Lucía", "Flores", "lucia@example.pe", "+51 912 345 678", "46789123")
        qr = pasarela.pay(Order(reference="pedido-1044", amount=Money.of("59.90", "PEN"),
                                description="Cargador rápido", customer=lucia),
                          method="wallet", idempotency_key="pedido-1044", flow="qr")
        assert isinstance(qr.next_action, OpenCheckout)
        console.print(Panel("\n".join(qr.next_action.instructions["es"]),
                            title=f"Culqi checkout for {qr.amount.format()} · {qr.status}",
                            subtitle=f"{qr.next_action.script_url} · order "
                                     f"{qr.next_action.settings['order']}"))
        # Culqi's checkout draws the QR; Lucía scans it with Plin (the sandbox's control
        # path, which its stand-in checkout calls too).
        control.post(f"{yape_url}/_control/orders/{qr.provider_reference}/pay",
                     json={"wallet": "plin"}).raise_for_status()
        wait_for(lambda: pasarela.get(qr.id).status is Status.SUCCEEDED, "the QR payment")
        console.print("  Culqi's webhook was checked by fetching the order before applying it")
        shown.append(qr.id)

        console.rule("[bold]4. Ana pays by card (Stripe) and returns one item")
        ana = customer("Ana", "Torres", "ana@example.pe", "+51 934 567 890", "47891234")
        card = pasarela.pay(Order(reference="pedido-1045", amount=Money.of("320.00", "PEN"),
                                  description="Parlante", customer=ana),
                            method="card", idempotency_key="pedido-1045",
                            payment_method="pm_card_visa")
        refund = pasarela.refund(card.id, Money.of("120.00", "PEN"), reason="requested_by_customer")
        console.print(f"  payment {card.id}: {card.status}; refund {refund.amount.format()} "
                      f"{refund.status}")
        control.post(f"{stripe_url}/_control/webhooks/flush").raise_for_status()
        console.print("  Stripe's signed events arrive too; they repeat what is known and "
                      "change nothing")
        shown.append(card.id)

        console.rule("[bold]5. Marco pays with Yape, and the answer is lost")
        marco = customer("Marco", "Rojas", "marco@example.pe", "+51 900 000 001", "43456789")
        control.post(f"{yape_url}/_control/faults", json={
            "operation": "POST /v2/charges", "kind": "hang_after", "times": 1}).raise_for_status()
        lost = pasarela.pay(Order(reference="pedido-1047", amount=Money.of("42.00", "PEN"),
                                  description="Audífonos de cable", customer=marco),
                            method="wallet", idempotency_key="pedido-1047",
                            phone="900000001", code="425251")
        console.print(f"  payment {lost.id}: {lost.status} (Culqi charged; the answer timed out)")
        clock.offset = timedelta(minutes=1)
        settled = pasarela.resolve_due()
        console.print(f"  a minute later the resolver settles {settled} payment(s): "
                      f"{pasarela.get(lost.id).status}")
        clock.offset = timedelta()
        shown.append(lost.id)

        console.rule("[bold]6. Two CIPs run out of time")
        pedro = customer("Pedro", "Huamán", "pedro@example.pe", "+51 956 789 012", "42345678")
        unpaid = pasarela.pay(Order(reference="pedido-1046", amount=Money.of("89.00", "PEN"),
                                    description="Teclado", customer=pedro),
                              method="cash", idempotency_key="pedido-1046")
        sofia = customer("Sofía", "Vargas", "sofia@example.pe", "+51 967 890 123", "44567891")
        late = pasarela.pay(Order(reference="pedido-1048", amount=Money.of("65.00", "PEN"),
                                  description="Mouse", customer=sofia),
                            method="cash", idempotency_key="pedido-1048")
        control.post(f"{pe_url}/_control/cips/{unpaid.provider_reference}/expire")
        clock.offset = timedelta(hours=49)  # here and at PagoEfectivo (its clock is checked)
        control.post(f"{pe_url}/_control/clock", json={"advance": 49 * 3600})
        console.print(f"  49 hours later the sweep expires {pasarela.expire_due()} payment(s)")
        clock.offset = timedelta()
        control.post(f"{pe_url}/_control/clock", json={"advance": -49 * 3600})
        console.print("  Sofía pays her code at a bodega anyway")
        control.post(f"{pe_url}/_control/cips/{late.provider_reference}/pay").raise_for_status()
        wait_for(lambda: pasarela.get(late.id).status is Status.SUCCEEDED, "the late payment")
        shown.extend([unpaid.id, late.id])

        shop = write_config(OUT, config)  # the checkout's accounts, for the command line
        reconciled = reconcile_cash(console, shop, *window_around(started))

        console.rule("[bold]Metrics (GET /metrics)")
        metrics = control.get(f"{hooks.removesuffix('/webhooks')}/metrics").text
        summary = Table("series", "value")
        for line in metrics.splitlines():
            if line.startswith(("pasarela_payments_open{", "pasarela_payment_transitions_total{",
                                "pasarela_outbox_lag_events", "pasarela_alerts_firing")):
                series, _, value = line.rpartition(" ")
                summary.add_row(series.removeprefix("pasarela_").replace('"', ""), value)
        console.print(summary)

        console.rule("[bold]Histories")
        for payment_id in shown:
            print_payment(pasarela.get(payment_id), pasarela.store.exchanges_for(payment_id))
        statuses = [pasarela.get(p).status for p in shown]
    console.print(f"\nstore: {OUT / 'pasarela.db'}  ·  `pasarela --config ... payments show ID`")
    merchants_ok = two_merchants(console, OUT, free_port)
    dlocal_ok = dlocal_act(console, OUT, free_port)
    mercadopago_ok = mercadopago_act(console, OUT, free_port)
    costs_ok = costs_act(console, OUT, *window_around(started))
    evidence_ok = evidence_act(console, OUT, shop, shown)
    expected = [Status.SUCCEEDED, Status.SUCCEEDED, Status.SUCCEEDED,
                Status.PARTIALLY_REFUNDED, Status.SUCCEEDED, Status.EXPIRED, Status.SUCCEEDED]
    if statuses != expected:
        console.print(f"[red]unexpected final states: {statuses}")
        return 1
    if not merchants_ok:
        console.print("[red]the two-merchant act did not end as expected")
        return 1
    if not dlocal_ok:
        console.print("[red]the dLocal act did not end as expected")
        return 1
    if not mercadopago_ok:
        console.print("[red]the Mercado Pago act did not end as expected")
        return 1
    if not costs_ok:
        console.print("[red]the costs act did not compare the three cash routes")
        return 1
    if not reconciled:
        console.print("[red]the cash codes did not reconcile with PagoEfectivo")
        return 1
    if not evidence_ok:
        console.print("[red]the audit trail did not verify, or a bundle was not written")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
