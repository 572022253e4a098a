"""The demo's second-provider acts.

dLocal: Elena pays by bank transfer at BCP (the account and reference to quote, the
amount and the deadline), and a PEN price is charged in US dollars at dLocal's rate;
each is paid through the sandbox's control path and succeeds when dLocal's signed
notification reaches the webhook server.

Mercado Pago beside PagoEfectivo (cash) and Culqi (Yape): a ``cheapest`` route picks
the cheaper provider per method and says why; PagoEfectivo on a closed port refuses the
connection and the payment fails over to Mercado Pago, nothing having reached
PagoEfectivo's sandbox; and under ``healthiest`` Mercado Pago loses the traffic once its
answers start failing (the sandbox's one-shot 500 faults).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pasarela_dlocal.sandbox import DEFAULT_SECRET_KEY as DLOCAL_SECRET
from pasarela_dlocal.sandbox import DEFAULT_X_LOGIN, DEFAULT_X_TRANS_KEY
from pasarela_dlocal.sandbox import create_app as dlocal_sandbox
from pasarela_mercadopago.sandbox import ACCESS_TOKEN as MP_TOKEN
from pasarela_mercadopago.sandbox import PUBLIC_KEY as MP_PUBLIC
from pasarela_mercadopago.sandbox import create_app as mercadopago_sandbox
from pasarela_pagoefectivo.sandbox import create_app as pagoefectivo_sandbox
from pasarela_pagoefectivo.sandbox.state import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
)
from pasarela_yape.sandbox import create_app as yape_sandbox
from rich.console import Console
from rich.panel import Panel

from pasarela import Customer, Money, Order, Pasarela, Status
from pasarela.next_action import BankTransfer, ShowCashCode
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app as webhook_server


CULQI_PUBLIC = "pk_test_pasarela_demo"
CULQI_SECRET = "sk_test_pasarela_demo"


class _Clock:
    """The act's clock; moved forward past the health figures' cache (30 s)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


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
            serve_app(dlocal_sandbox(webhook_url=f"{hooks}/dlocal", webhook_retry_delay=0.2,
                                     notification_schedule="fast"),
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


def _explain(payment_routing: Mapping[str, Any], *starts: str) -> list[str]:
    """The lines of a payment's routing explanation that start with one of *starts*."""
    return [line for line in payment_routing.get("explanation", ())
            if str(line).strip().startswith(starts)]


def _calls(control: httpx.Client, url: str) -> int:
    """How many API calls a sandbox has answered (its ``GET /_control`` count)."""
    calls = control.get(f"{url}/_control").raise_for_status().json().get("calls", {})
    return sum(calls.values()) if isinstance(calls, dict) else int(calls)


def mercadopago_act(console: Console, out: Path, port: Callable[[], int]) -> bool:
    """Play the Mercado Pago act; True when each routing choice went as told."""
    console.rule("[bold]9. Mercado Pago beside PagoEfectivo and Culqi: cheapest, failover, "
                 "healthiest")
    ports = {name: port() for name in ("mercadopago", "pagoefectivo", "yape", "closed")}
    clock = _Clock()
    buyer = Customer(first_name="Julio", last_name="Condori", email="julio@example.pe",
                     phone="+51 955 111 222", document=("DNI", "46543210"))

    def order(ref: str, amount: str = "80.00") -> Order:
        return Order(reference=ref, amount=Money.of(amount, "PEN"), description="Mochila",
                     customer=buyer)

    def providers(pagoefectivo_port: int) -> dict[str, Any]:
        return {
            "mercadopago": {"base_url": f"http://127.0.0.1:{ports['mercadopago']}",
                            "access_token": MP_TOKEN, "public_key": MP_PUBLIC,
                            "max_retries": 0,
                            "fees": {"percent": "2.9", "fixed": "PEN 0.50", "igv": True}},
            "pagoefectivo": {"base_url": f"http://127.0.0.1:{pagoefectivo_port}",
                             "access_key": DEFAULT_ACCESS_KEY, "secret_key": DEFAULT_SECRET_KEY,
                             "service_id": DEFAULT_SERVICE_ID, "expiry": "48h",
                             "fees": {"percent": "3.5", "fixed": "PEN 0.50", "igv": True}},
            "yape": {"base_url": f"http://127.0.0.1:{ports['yape']}",
                     "public_key": CULQI_PUBLIC, "secret_key": CULQI_SECRET,
                     "fees": {"percent": "2.5", "igv": True}},
        }

    def shop(name: str, routes: list[dict[str, Any]], pagoefectivo_port: int) -> Pasarela:
        default = {"name": "default", "use": ["pagoefectivo", "yape", "mercadopago"]}
        return Pasarela({"store": {"url": f"sqlite:///{out / f'{name}.db'}"},
                         "providers": providers(pagoefectivo_port),
                         "routes": [*routes, default]},
                        clock=clock)

    ok = True
    with serve_app(mercadopago_sandbox(), port=ports["mercadopago"]) as mp_url, \
            serve_app(pagoefectivo_sandbox(), port=ports["pagoefectivo"]) as pe_url, \
            serve_app(yape_sandbox(public_key=CULQI_PUBLIC, secret_key=CULQI_SECRET),
                      port=ports["yape"]), \
            httpx.Client(timeout=10) as control:
        console.print("[bold]cheapest[/]: cash between PagoEfectivo and Mercado Pago, wallet "
                      "between Culqi (Yape) and Mercado Pago")
        with shop("cheapest", [
                {"name": "cash, cheapest", "when": {"method": "cash"},
                 "use": ["pagoefectivo", "mercadopago"], "strategy": "cheapest"},
                {"name": "wallet, cheapest", "when": {"method": "wallet"},
                 "use": ["yape", "mercadopago"], "strategy": "cheapest"}],
                ports["pagoefectivo"]) as cheapest:
            cash = cheapest.pay(order("pedido-3001"), method="cash",
                                idempotency_key="pedido-3001")
            wallet = cheapest.pay(order("pedido-3002"), method="wallet",
                                  idempotency_key="pedido-3002", phone="900000001",
                                  code="425251")
            for payment in (cash, wallet):
                console.print(f"  {payment.method} -> {payment.provider} ({payment.status})")
                for line in _explain(payment.routing, "strategy", "chose", "candidates"):
                    console.print(f"    why: {line}")
            ok = ok and cash.provider == "mercadopago" and wallet.provider == "yape"

        console.print("[bold]failover[/]: PagoEfectivo's base_url is a closed port "
                      "(connection refused)")
        before = _calls(control, pe_url)
        with shop("failover", [
                {"name": "cash, PagoEfectivo first", "when": {"method": "cash"},
                 "use": ["pagoefectivo", "mercadopago"], "strategy": "ordered"}],
                ports["closed"]) as failover:
            moved = failover.pay(order("pedido-3003"), method="cash",
                                 idempotency_key="pedido-3003")
            at_pagoefectivo = _calls(control, pe_url) - before
            console.print(f"  cash -> {moved.provider} ({moved.status}), attempt "
                          f"{moved.routing.get('attempt')}; calls that reached the "
                          f"PagoEfectivo sandbox: {at_pagoefectivo}")
            for failed in moved.routing.get("failed_attempts", ()):
                console.print(f"    attempt 1 at {failed['provider']}: {failed['code']} "
                              f"({failed['message']}); nothing created there, so the next "
                              "candidate")
            ok = ok and moved.provider == "mercadopago" and at_pagoefectivo == 0

        console.print("[bold]healthiest[/]: Mercado Pago's answers start failing (the "
                      "sandbox's 500 faults)")
        with shop("healthiest", [
                {"name": "cash, healthiest", "when": {"method": "cash"},
                 "use": ["mercadopago", "pagoefectivo"], "strategy": "healthiest",
                 "min_sample": 3, "exploration": "0"}],
                ports["pagoefectivo"]) as healthiest:
            first = [healthiest.pay(order(f"pedido-31{i:02d}"), method="cash",
                                    idempotency_key=f"pedido-31{i:02d}") for i in range(3)]
            first += [healthiest.pay(order(f"pedido-32{i:02d}"), method="cash",
                                     idempotency_key=f"pedido-32{i:02d}",
                                     provider="pagoefectivo") for i in range(3)]
            clock.offset += timedelta(seconds=31)  # past the health figures' cache
            healthy = healthiest.pay(order("pedido-3300"), method="cash",
                                     idempotency_key="pedido-3300")
            console.print(f"  while both answer: cash -> {healthy.provider}")
            for line in _explain(healthy.routing, "strategy"):
                console.print(f"    why: {line}")
            control.post(f"{mp_url}/_control/faults", json={
                "operation": "create", "kind": "500", "times": 3}).raise_for_status()
            failing = [healthiest.pay(order(f"pedido-34{i:02d}"), method="cash",
                                      idempotency_key=f"pedido-34{i:02d}") for i in range(3)]
            console.print("  three payments through Mercado Pago meet its 500s: "
                          + ", ".join(str(p.status) for p in failing))
            clock.offset += timedelta(seconds=31)
            after = healthiest.pay(order("pedido-3500"), method="cash",
                                   idempotency_key="pedido-3500")
            console.print(f"  after the failures: cash -> {after.provider}")
            for line in _explain(after.routing, "strategy"):
                console.print(f"    why: {line}")
            ok = (ok and all(p.provider == "mercadopago" for p in first[:3])
                  and healthy.provider == "mercadopago" and after.provider == "pagoefectivo")
    return ok
