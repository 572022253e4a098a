"""The demo's two-merchant act: one pasarela server for two shops of a platform.

Bodega Rosa and Librería Inca each have their own PagoEfectivo account (their own
service id and secret, served here by two PagoEfectivo sandboxes), their own store of
payments and their own console. Each customer pays a CIP; each notification reaches
``/webhooks/MERCHANT.pagoefectivo`` and is verified with that merchant's secret; each
merchant's console lists its own payment and not the other's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from pasarela_pagoefectivo.sandbox import create_app as pagoefectivo_sandbox
from pasarela_pagoefectivo.sandbox.state import DEFAULT_ACCESS_KEY
from rich.console import Console
from rich.table import Table

from pasarela import Customer, Money, Order, Pasarela, Status
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app as webhook_server
from pasarela.web.pay_page import PageSettings


#: name -> (display name, PagoEfectivo service id, secret key, console token, first CIP)
SHOPS = {
    "bodega_rosa": ("Bodega Rosa", 1028, "bodega-rosa-pe-secret", "bodega-rosa-console",
                    30010001),
    "libreria_inca": ("Librería Inca", 2045, "libreria-inca-pe-secret",
                      "libreria-inca-console", 40020001),
}
PLATFORM_TOKEN = "platform-console-token"


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def two_merchants(console: Console, out: Path, port: Callable[[], int]) -> bool:
    """Play the act; True when each merchant was paid and sees only its own payment."""
    console.rule("[bold]7. Two merchants on one server, each its own PagoEfectivo account")
    server_port = port()
    hooks = f"http://127.0.0.1:{server_port}/webhooks"
    ports = {name: port() for name in SHOPS}
    config = {
        "store": {"url": f"sqlite:///{out / 'merchants.db'}"},
        "merchants": {name: {
            "display_name": title, "admin_token": token,
            "providers": {"pagoefectivo": {
                "base_url": f"http://127.0.0.1:{ports[name]}", "access_key": DEFAULT_ACCESS_KEY,
                "secret_key": secret, "service_id": service, "expiry": "48h"}},
        } for name, (title, service, secret, token, _) in SHOPS.items()},
    }
    ok = True
    with Pasarela(config) as platform, \
            serve_app(webhook_server(platform, pages=PageSettings(admin_token=PLATFORM_TOKEN)),
                      port=server_port) as server_url, \
            httpx.Client(timeout=10) as client:
        sandboxes = {}
        for name, (_, service, secret, _, first) in SHOPS.items():
            app = pagoefectivo_sandbox(webhook_url=f"{hooks}/{name}.pagoefectivo",
                                       service_id=service, secret_key=secret, first_cip=first)
            sandboxes[name] = app
        with serve_app(sandboxes["bodega_rosa"], port=ports["bodega_rosa"]) as rosa_url, \
                serve_app(sandboxes["libreria_inca"], port=ports["libreria_inca"]) as inca_url:
            urls = {"bodega_rosa": rosa_url, "libreria_inca": inca_url}
            buyer = Customer(first_name="Carmen", last_name="Ccori", email="carmen@example.pe",
                             phone="+51 911 222 333", document=("DNI", "47812345"))
            paid = {}
            for name, amount in (("bodega_rosa", "35.50"), ("libreria_inca", "120.00")):
                shop = platform.merchants[name]
                payment = shop.pay(Order(reference="pedido-1", amount=Money.of(amount, "PEN"),
                                         description="Compra", customer=buyer),
                                   method="cash", idempotency_key="pedido-1")
                client.post(f"{urls[name]}/_control/cips/{payment.provider_reference}/pay"
                            ).raise_for_status()
                paid[name] = payment
            table = Table("merchant", "account", "CIP", "status", "console lists",
                          "console hides")
            for name, payment in paid.items():
                shop = platform.merchants[name]
                _wait_for(lambda s=shop, p=payment: s.get(p.id).status is Status.SUCCEEDED,
                          f"{name}'s notification")
                token = SHOPS[name][3]
                page = client.get(f"{server_url}/m/{name}/admin",
                                  headers={"Authorization": f"Bearer {token}"}).text
                others = [p for n, p in paid.items() if n != name]
                # The dashboard counts the merchant's payments by account.
                lists = payment.provider in page
                hides = not any(o.id in page or o.provider in page for o in others)
                theirs = client.get(f"{server_url}/m/{name}/admin/payments/{others[0].id}",
                                    headers={"Authorization": f"Bearer {token}"})
                hides = hides and theirs.status_code == 404
                ok = ok and lists and hides and shop.get(payment.id).status is Status.SUCCEEDED
                table.add_row(SHOPS[name][0], payment.provider, payment.provider_reference or "-",
                              str(shop.get(payment.id).status),
                              "its own payments" if lists else "[red]nothing",
                              "the other's" if hides else "[red]shows the other's")
            console.print(table)
            console.print("  both shops used the idempotency key pedido-1: each got its own "
                          "payment")
    return ok

