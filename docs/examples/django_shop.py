"""A Django shop taking cash, wallet and card payments through pasarela: the views and
the URLs of one app (``shop/views.py`` and ``shop/urls.py`` in a real project).

The quickstart (docs/quickstart-django.md) explains it; a test runs it against the
three sandboxes (tests/test_quickstarts.py). Settings: ``PASARELA_CONFIG`` names the
configuration file; run ``pasarela worker --config pasarela.toml`` beside the site.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from pasarela import Customer, Money, Order, Pasarela, PasarelaError, hookimpl
from pasarela.web.django import webhook_view


#: Your models. The order is saved *before* pay(), so that an observer called during
#: pay() (a card that succeeds at once) finds it by reference.
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
        if order is not None and event.type in ("payment.succeeded",
                                                "payment.late_succeeded"):
            order["paid"] = True


# One Pasarela per process (Django serves sync views from threads; it is thread-safe).
pasarela = Pasarela.from_config(os.environ.get("PASARELA_CONFIG", "pasarela.toml"),
                                plugins=[Shop()])


@csrf_exempt  # an API for your own front end; protect it as the rest of your site
@require_POST
def checkout(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    ORDERS.setdefault(body["reference"], {"paid": False})  # saved before pay()
    try:
        order = Order(reference=body["reference"], amount=Money.of(body["amount"], "PEN"),
                      customer=Customer(first_name=body["first_name"],
                                        last_name=body["last_name"], email=body["email"],
                                        phone=body.get("phone")))
        payment = pasarela.pay(order, method=body["method"],
                               idempotency_key=body["reference"], **body.get("params", {}))
    except PasarelaError as exc:
        return JsonResponse({"code": str(exc.code), "message": exc.customer_message("es"),
                             "field": getattr(exc, "field", None)},
                            status=503 if exc.retryable else 422)
    action = payment.next_action
    return JsonResponse({"payment_id": payment.id, "status": payment.status.value,
                         "next_action": action.to_dict() if action else None})


@require_GET
def order_status(request: HttpRequest, reference: str) -> JsonResponse:
    return JsonResponse(ORDERS.get(reference, {}), status=200 if reference in ORDERS else 404)


urlpatterns = [
    # Providers deliver webhooks to https://your-shop/pasarela/webhooks/<provider>/
    path("pasarela/webhooks/<str:provider>/", webhook_view(pasarela)),
    path("checkout/", checkout),
    path("orders/<str:reference>/", order_status),
]
