"""Each merchant's console (``/m/NAME/admin``, its own ``admin_token``) shows its own
payments only; another merchant's payment page is 404; another console's token does
not open it; the deployment's ``/admin`` shows the implicit merchant's payments only.
The webhook route takes a merchant's account by its full name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from pasarela.api import AsyncPasarela
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings


ROOT = "root-admin-token-0123456789abcdef"
TOKENS = {"a": "merchant-a-token-0123456789abcdef", "b": "merchant-b-token-0123456789abcd"}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def setup(store_url: str) -> AsyncIterator[tuple[AsyncPasarela, httpx.AsyncClient,
                                                       FakeGateway, ManualClock]]:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    config = {
        "store": {"url": store_url},
        "providers": {"fake": {"max_retries": 0}},
        "events": {"dispatch": "worker"},
        "merchants": {name: {"display_name": f"Bodega {name.upper()}",
                             "admin_token": token,
                             "providers": {"fake": {"max_retries": 0}}}
                      for name, token in TOKENS.items()},
    }
    app = AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                        transport=gateway.transport(), clock=clock,
                        store=Store(store_url, upgrade=True))
    settings = PageSettings(admin_token=ROOT, stale_after=timedelta(seconds=1))
    asgi = create_app(app, pages=settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi),
                                 base_url="http://testserver") as client:
        yield app, client, gateway, clock
    await app.aclose()


def order(ref: str) -> Order:
    return Order(reference=ref, amount=Money.of("20.00", "PEN"), country="PE",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_each_console_lists_its_own_payments_only(setup: Any) -> None:
    app, client, _, clock = setup
    paid = {"root": await app.pay(order("o-root"), method="cash", idempotency_key="k-root")}
    for name in TOKENS:
        paid[name] = await app.merchants[name].pay(order(f"o-{name}"), method="cash",
                                                   idempotency_key=f"k-{name}")
    clock.now += timedelta(minutes=5)  # all pending for longer than stale_after: listed
    pages = {"root": (await client.get("/admin", headers=bearer(ROOT))),
             **{n: (await client.get(f"/m/{n}/admin", headers=bearer(t)))
                for n, t in TOKENS.items()}}
    for who, page in pages.items():
        assert page.status_code == 200
        listed = {other for other, payment in paid.items() if payment.id in page.text}
        assert listed == {who}, who
    assert "Bodega A" in pages["a"].text
    own = await client.get(f"/m/a/admin/payments/{paid['a'].id}", headers=bearer(TOKENS["a"]))
    assert own.status_code == 200
    for other in ("b", "root"):
        theirs = await client.get(f"/m/a/admin/payments/{paid[other].id}",
                                  headers=bearer(TOKENS["a"]))
        assert theirs.status_code == 404
        assert paid[other].id not in theirs.text
    assert (await client.get(f"/admin/payments/{paid['a'].id}",
                             headers=bearer(ROOT))).status_code == 404


async def test_another_consoles_token_does_not_open_it(setup: Any) -> None:
    _, client, _, _ = setup
    for token in (ROOT, TOKENS["b"]):
        assert (await client.get("/m/a/admin", headers=bearer(token))).status_code == 401
    assert (await client.get("/admin", headers=bearer(TOKENS["a"]))).status_code == 401


async def test_sync_now_of_another_merchants_payment_is_404(setup: Any) -> None:
    app, client, _, _ = setup
    theirs = await app.merchants["b"].pay(order("o-b"), method="cash", idempotency_key="k")
    page = await client.get("/m/a/admin", headers=bearer(TOKENS["a"]))
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    reply = await client.post(f"/m/a/admin/payments/{theirs.id}/sync",
                              headers=bearer(TOKENS["a"]), data={"csrf": csrf})
    assert reply.status_code == 404


async def test_webhooks_reach_a_merchants_account_by_its_full_name(setup: Any) -> None:
    app, client, gateway, _ = setup
    payment = await app.merchants["a"].pay(order("o-a"), method="cash", idempotency_key="k")
    headers, body = gateway.settle(str(payment.provider_reference))
    reply = await client.post("/webhooks/a.fake", headers=headers, content=body)
    assert reply.status_code == 200
    assert (await app.merchants["a"].get(payment.id)).status.value == "succeeded"
