"""A FastAPI shop taking cash, wallet and card payments through pasarela.

The quickstart (docs/quickstart-fastapi.md) explains it line by line; a test runs it
against the three sandboxes (tests/test_quickstarts.py). Run it with
``PASARELA_CONFIG=pasarela.toml uvicorn fastapi_shop:app``, and the worker beside it
with ``pasarela worker --config pasarela.toml``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from pasarela import AsyncPasarela, Customer, Money, Order, PasarelaError, hookimpl
from pasarela.web.app import create_app


#: Your database. The order is stored *before* pay(), so that an observer called
#: during pay() (a card that succeeds at once) finds it by reference.
ORDERS: dict[str, dict[str, Any]] = {}


class Shop:
    """Lifecycle events: at least once, after commit; dedupe on event.id."""

    def __init__(self) -> None:
        self.seen: set[str] = set()  # in a real shop: a unique column on event.id

    @hookimpl
    def pasarela_payment_event(self, event: Any) -> None:
        if event.id in self.seen:
            return
        self.seen.add(event.id)
        order = ORDERS.get(event.order_reference)
        if order is None:
            return
        if event.type in ("payment.succeeded", "payment.late_succeeded"):
            order["paid"] = True  # ship it
        elif event.type == "payment.expired":
            order["released"] = True  # put the stock back


pasarela = AsyncPasarela.from_config(os.environ.get("PASARELA_CONFIG", "pasarela.toml"),
                                     plugins=[Shop()])
app = FastAPI()
# Providers deliver webhooks to https://your-shop/pasarela/webhooks/<provider>.
app.mount("/pasarela", create_app(pasarela))


class Checkout(BaseModel):
    reference: str
    amount: str  # "149.90": money is never a float
    method: str  # cash, wallet or card
    first_name: str
    last_name: str
    email: str
    phone: str | None = None  # PagoEfectivo asks for it; stored in E.164
    params: dict[str, str] = {}  # wallet: phone, code; card: payment_method


@app.get("/checkout/{reference}/options")
async def options(reference: str, amount: str) -> list[dict[str, Any]]:
    order = Order(reference=reference, amount=Money.of(amount, "PEN"))
    return [{"method": o.method.value, "available": o.available, "provider": o.provider,
             "fee": o.fee.format() if o.fee else None, "why": o.reason}
            for o in await pasarela.options(order)]


@app.post("/checkout")
async def checkout(body: Checkout) -> dict[str, Any]:
    ORDERS.setdefault(body.reference, {"paid": False})  # stored before pay()
    try:
        order = Order(reference=body.reference, amount=Money.of(body.amount, "PEN"),
                      customer=Customer(first_name=body.first_name, last_name=body.last_name,
                                        email=body.email, phone=body.phone))
        payment = await pasarela.pay(order, method=body.method,
                                     idempotency_key=body.reference, **body.params)
    except PasarelaError as exc:
        # customer_message() is safe to show; the field tells the form what to fix.
        raise HTTPException(503 if exc.retryable else 422,
                            detail={"code": str(exc.code), "message": exc.customer_message("es"),
                                    "field": getattr(exc, "field", None),
                                    "fields": getattr(exc, "fields", None)}) from None
    action = payment.next_action
    return {"payment_id": payment.id, "status": payment.status.value,
            "next_action": action.to_dict() if action else None}


@app.get("/orders/{reference}")
async def order_status(reference: str) -> dict[str, Any]:
    if reference not in ORDERS:
        raise HTTPException(404)
    return ORDERS[reference]
