"""``make demo``: a scripted Peruvian checkout, persisted in SQLite, with histories.

Runs against the fake provider's gateway in process, so it needs nothing but the
core. Two orders: one paid by cash code (pending, then the customer pays and the
signed webhook arrives), one left unpaid until the expiry sweep. Each payment is
printed with its history and its redacted provider exchanges.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from pasarela import hookimpl
from pasarela.api import Pasarela
from pasarela.cli import print_payment
from pasarela.events import LifecycleEvent
from pasarela.logs import configure
from pasarela.model import Customer, Order, ShowCashCode
from pasarela.money import Money
from pasarela.testing.fake import FakeGateway, FakePlugin


console = Console()


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Stock:
    """A host's observer: ships or releases stock on lifecycle events."""

    @hookimpl
    def pasarela_payment_event(self, event: LifecycleEvent) -> None:
        action = {"payment.succeeded": "ship", "payment.expired": "release stock for",
                  "payment.late_succeeded": "review late payment of"}.get(event.type)
        if action:
            console.print(f"  [magenta]host[/] {event.type}: {action} {event.order_reference}")


def main(out: Path = Path("demo-out")) -> None:
    configure(level=logging.WARNING)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    clock = Clock()
    gateway = FakeGateway(clock=clock)
    config = {
        "store": {"url": f"sqlite:///{out / 'pasarela.db'}"},
        "providers": {"fake": {"expiry": "48h", "fees": {"percent": "3.5", "fixed": "PEN 0.50",
                                                         "igv": True}}},
    }
    rosa = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                    phone="+51 987 654 321", document=("DNI", "45678912"))
    with Pasarela(config, plugins=[FakePlugin(), Stock()], load_entrypoints=False,
                  transport=gateway.transport(), clock=clock) as pasarela:
        order = Order(reference="pedido-1042", amount=Money.of("149.90", "PEN"),
                      description="Audífonos inalámbricos", customer=rosa)
        console.rule("[bold]1. What can the customer use?")
        for option in pasarela.options(order):
            console.print(f"  {option.method.value:<7} via {option.provider}  fee "
                          f"{option.fee.format() if option.fee else '-'}  expires "
                          f"{option.expires_at:%Y-%m-%d %H:%M} UTC  ({option.reason})")

        console.rule("[bold]2. Pay by cash code")
        paid = pasarela.pay(order, method="cash", idempotency_key="pedido-1042")
        action = paid.next_action
        assert isinstance(action, ShowCashCode)
        console.print(Panel(f"Código de pago: [bold]{action.code}[/]\nMonto: "
                            f"{action.amount.format()}\n" + "\n".join(action.instructions["es"]),
                            title=f"payment {paid.id} is {paid.status}"))
        console.print("  the customer pays at an agent; the provider sends a signed webhook")
        headers, body = gateway.settle(paid.provider_reference or "")
        reply = pasarela.handle_webhook("fake", headers, body)
        console.print(f"  webhook answered {reply.status_code}; a duplicate delivery:")
        pasarela.handle_webhook("fake", headers, body)

        console.rule("[bold]3. A second order is never paid")
        unpaid = pasarela.pay(
            Order(reference="pedido-1043", amount=Money.of("59.00", "PEN"),
                  description="Cargador", customer=rosa),
            method="cash", idempotency_key="pedido-1043")
        clock.now += timedelta(hours=49)
        console.print(f"  49 hours later the sweep expires {pasarela.expire_due()} payment(s)")

        console.rule("[bold]4. Histories")
        for payment_id in (paid.id, unpaid.id):
            print_payment(pasarela.get(payment_id), pasarela.store.exchanges_for(payment_id))
    console.print(f"\nstore: {out / 'pasarela.db'}")


if __name__ == "__main__":
    main()
