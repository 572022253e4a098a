"""pasarela's pytest plugin: registered for every project, its fixtures at work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from importlib.metadata import entry_points

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.testing.helpers import ManualClock, Served
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox


def test_the_plugin_is_registered_with_pytest() -> None:
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "pasarela"]
    assert plugin.value == "pasarela.testing.pytest_plugin"


def test_the_manual_clock_stands_still(pasarela_clock: ManualClock) -> None:
    first = pasarela_clock()
    assert pasarela_clock() == first
    pasarela_clock.now += timedelta(hours=2)
    assert pasarela_clock() - first == timedelta(hours=2)


def test_serve_puts_an_app_on_loopback(pasarela_serve: Callable[..., Served]) -> None:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hola")

    served = pasarela_serve(Starlette(routes=[Route("/", hello)]))
    assert served.url.startswith("http://127.0.0.1:")
    assert httpx.get(served.url).text == "hola"


def test_the_receiver_records_and_answers(pasarela_receiver: WebhookReceiver) -> None:
    pasarela_receiver.statuses.append(503)
    first = httpx.post(f"{pasarela_receiver.url}/pagoefectivo", content=b"{}",
                       headers={"X-Sig": "abc"})
    pasarela_receiver.handler = lambda headers, body: 202 if body == b"two" else 400
    second = httpx.post(pasarela_receiver.url, content=b"two")
    assert (first.status_code, second.status_code) == (503, 202)
    received = pasarela_receiver.wait(2)
    assert received[0].headers["x-sig"] == "abc"
    assert pasarela_receiver.bodies == [b"{}", b"two"]


def test_the_receiver_starts_empty(pasarela_receiver: WebhookReceiver) -> None:
    assert pasarela_receiver.deliveries == []
    assert pasarela_receiver.status == 200
    assert pasarela_receiver.handler is None


def test_a_sandbox_by_provider_name_is_reset_each_time(
    pasarela_sandbox: Callable[..., ServedSandbox]
) -> None:
    served = pasarela_sandbox("yape", seed=11)
    served.config(latency=0.01)
    served.post("/clock", advance=60)
    again = pasarela_sandbox("yape", seed=11)
    assert again is served  # one server per session for the same options
    assert again.control("GET", "/config").json()["latency"] == 0.0
    assert again.control("GET", "/clock").json()["offset"] == 0
    assert pasarela_sandbox("yape", seed=12) is not served


def test_a_newcomers_first_payment_with_the_banner_settings(
    pasarela_sandbox: Callable[..., ServedSandbox],
    pasarela_factory: Callable[..., Pasarela],
) -> None:
    """The values the banner prints are the ones that work: no 401 on the first try."""
    served = pasarela_sandbox("pagoefectivo")
    pasarela = pasarela_factory(served)
    order = Order(reference="pedido-1", amount=Money.of("149.90", "PEN"),
                  description="Audífonos",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe", phone="+51 987 654 321",
                                    document=("DNI", "45678912")))
    payment = pasarela.pay(order, method="cash", idempotency_key="pedido-1")
    assert payment.status is Status.PENDING
    assert served.sandbox.calls["authorization"] == 1
    served.post(f"/cips/{payment.provider_reference}/pay", notify=False)
    assert pasarela.sync(payment.id).status is Status.SUCCEEDED
