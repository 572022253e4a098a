"""Every web route of :func:`pasarela.web.app.create_app`, tried with merchant A's
credentials (its console token, its payments' page links, its webhook account) against
merchant B's objects: 404 ("not found"), or, for what belongs to the whole
deployment, nothing of B's in the answer; and nothing of B's changes. The same with
the app of one merchant (``create_app(merchant="a")``, ``pasarela --merchant a
serve``), where B's pages, console, branding and accounts are not served at all.

The app's routes are enumerated: a route with no entry in :data:`ENTRIES` fails
:func:`test_every_route_has_an_isolation_entry`, naming it. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from pasarela.api import AsyncPasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings, page_token


ROOT = "root-admin-token-0123456789abcdef"
TOKENS = {"a": "merchant-a-token-0123456789abcdef", "b": "merchant-b-token-0123456789abcd"}
SECRET = "page-secret-0123456789abcdef0123"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class World:
    app: AsyncPasarela
    client: httpx.AsyncClient  # the deployment's app
    only_a: httpx.AsyncClient  # merchant A's app (create_app(merchant="a"))
    gateway: FakeGateway
    clock: ManualClock
    paid: dict[str, Payment]
    routes: list[str]

    def link(self, key: str, payment_id: str | None = None) -> str:
        """The page of *payment_id* (default: *key*'s) with the token of *key*'s."""
        token = page_token(self.paid[key].id, SECRET, self.clock() + timedelta(days=1))
        return f"/pay/{payment_id or self.paid[key].id}?t={token}"

    async def state(self, key: str) -> tuple[Any, ...]:
        payment = await self.app.get(self.paid[key].id) if key == "root" else (
            await self.app.merchants[key[0]].get(self.paid[key].id))
        return payment.status, payment.version


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _order(ref: str) -> Order:
    return Order(reference=ref, amount=Money.of("20.00", "PEN"), country="PE",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


def route_paths(app: Starlette) -> list[str]:
    """The app's routes as their path patterns (a mount as ``PATH/...``)."""
    return sorted({f"{r.path}/..." if isinstance(r, Mount) else str(getattr(r, "path", r))
                   for r in app.routes})


@pytest.fixture
async def world(store_url: str, tmp_path: Path) -> AsyncIterator[World]:
    clock = ManualClock()
    gateway = FakeGateway(clock=clock)
    (tmp_path / "logo-b.png").write_bytes(PNG)
    config = {
        "store": {"url": store_url},
        "providers": {"fake": {"max_retries": 0}},
        "events": {"dispatch": "worker"},
        "merchants": {
            "a": {"display_name": "Bodega A", "colour": "#1a7f5a", "admin_token": TOKENS["a"],
                  "providers": {"fake": {"max_retries": 0}}},
            "b": {"display_name": "Bodega B", "colour": "#aa3300", "accent": "#003366",
                  "logo_file": str(tmp_path / "logo-b.png"), "admin_token": TOKENS["b"],
                  "providers": {"cards": {"type": "fake", "max_retries": 0}}},
        },
    }
    app = AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                        transport=gateway.transport(), clock=clock,
                        store=Store(store_url, upgrade=True))
    settings = PageSettings(page_secret=SECRET, admin_token=ROOT,
                            stale_after=timedelta(seconds=1))
    whole = create_app(app, pages=settings)
    one = create_app(app, pages=settings, merchant="a")
    paid = {"root": await app.pay(_order("o-1"), method="cash", idempotency_key="k-root"),
            "a": await app.merchants["a"].pay(_order("o-1"), method="cash",
                                              idempotency_key="k-a"),
            "b": await app.merchants["b"].pay(_order("o-1"), method="cash",
                                              idempotency_key="k-b")}
    clock.now += timedelta(minutes=5)
    async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=whole),
                                  base_url="http://testserver") as client,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=one),
                                  base_url="http://testserver") as only_a):
        yield World(app=app, client=client, only_a=only_a, gateway=gateway, clock=clock,
                    paid=paid, routes=route_paths(whole))
    await app.aclose()


def _ids_absent(w: World, text: str, *keys: str) -> None:
    for key in keys or ("b", "root"):
        assert w.paid[key].id not in text, key


# --- the entries -------------------------------------------------------------------------


async def webhooks(w: World) -> None:
    before = await w.state("b")
    headers, body = w.gateway.settle(str(w.paid["b"].provider_reference))
    # B's payment's notification at A's account: no payment of A's, nothing moves.
    reply = await w.client.post("/webhooks/a.fake", headers=headers, content=body)
    assert reply.status_code < 500
    assert await w.state("b") == before
    # A's app does not serve B's account (nor the implicit merchant's).
    for account in ("b.cards", "fake"):
        refused = await w.only_a.post(f"/webhooks/{account}", headers=headers, content=body)
        assert refused.status_code == 404
    assert await w.state("b") == before
    # At B's own account, on the deployment's app, it applies (the check can fail).
    assert (await w.client.post("/webhooks/b.cards", headers=headers,
                                content=body)).status_code == 200
    assert (await w.state("b"))[0] is Status.SUCCEEDED


async def healthz(w: World) -> None:
    for client in (w.client, w.only_a):
        reply = await client.get("/healthz")
        assert reply.status_code == 200
        _ids_absent(w, reply.text, "a", "b", "root")


async def metrics(w: World) -> None:
    # The deployment's figures (per-merchant labels: see docs/merchants.md); never a
    # payment of anyone's.
    for client in (w.client, w.only_a):
        reply = await client.get("/metrics")
        assert reply.status_code == 200
        _ids_absent(w, reply.text, "a", "b", "root")


async def static(w: World) -> None:
    # The pages' own files: the same for every merchant, naming none.
    for client in (w.client, w.only_a):
        reply = await client.get("/pasarela-static/pasarela.css")
        assert reply.status_code == 200
        assert "Bodega" not in reply.text
        assert "#aa3300" not in reply.text


async def brand_style(w: World) -> None:
    theirs = await w.client.get("/pasarela-brand/b/style.css")
    assert theirs.status_code == 200
    assert "--brand: #aa3300;" in theirs.text
    assert "--brand-accent: #003366;" in theirs.text
    mine = await w.only_a.get("/pasarela-brand/a/style.css")
    assert mine.status_code == 200
    assert "#1a7f5a" in mine.text
    assert "#aa3300" not in mine.text
    assert (await w.only_a.get("/pasarela-brand/b/style.css")).status_code == 404
    assert (await w.client.get("/pasarela-brand/zz/style.css")).status_code == 404


async def brand_logo(w: World) -> None:
    theirs = await w.client.get("/pasarela-brand/b/logo")
    assert theirs.status_code == 200
    assert theirs.headers["content-type"] == "image/png"
    assert theirs.content == PNG
    assert (await w.only_a.get("/pasarela-brand/b/logo")).status_code == 404
    assert (await w.client.get("/pasarela-brand/a/logo")).status_code == 404  # none


async def pay_page(w: World) -> None:
    mine = await w.only_a.get(w.link("a"))
    assert mine.status_code == 200
    assert "Bodega A" in mine.text
    assert "Bodega B" not in mine.text
    # A's link's token on B's payment: not found, as on a payment that does not exist.
    forged = await w.client.get(w.link("a", w.paid["b"].id))
    assert forged.status_code == 404
    _ids_absent(w, forged.text)
    # B's own link on A's app: not found there.
    other = await w.only_a.get(w.link("b"))
    assert other.status_code == 404
    _ids_absent(w, other.text)
    assert (await w.only_a.get(w.link("root"))).status_code == 404
    assert (await w.client.get(w.link("b"))).status_code == 200  # B's, on the whole app


async def pay_status(w: World) -> None:
    assert (await w.only_a.get(w.link("a").replace("?", "/status?"))).status_code == 200
    forged = await w.client.get(w.link("a", w.paid["b"].id).replace("?", "/status?"))
    assert forged.status_code == 404
    other = await w.only_a.get(w.link("b").replace("?", "/status?"))
    assert other.status_code == 404
    assert w.paid["b"].id not in other.text


async def _csrf(client: httpx.AsyncClient, mount: str, token: str) -> str:
    page = await client.get(mount, headers=bearer(token))
    assert page.status_code == 200, page.text
    return page.text.split('name="csrf" value="')[1].split('"')[0]


async def root_console(w: World) -> None:
    # A's token does not open the deployment's console; the deployment's console does
    # not show A's or B's payments.
    assert (await w.client.get("/admin", headers=bearer(TOKENS["a"]))).status_code == 401
    refused = await w.client.get(f"/admin/payments/{w.paid['b'].id}",
                                 headers=bearer(TOKENS["a"]))
    assert refused.status_code == 401
    for key in ("a", "b"):
        page = await w.client.get(f"/admin/payments/{w.paid[key].id}", headers=bearer(ROOT))
        assert page.status_code == 404
    # A's app serves no deployment console at all.
    assert (await w.only_a.get("/admin", headers=bearer(ROOT))).status_code == 404


async def root_console_pages(w: World) -> None:
    await root_console(w)
    before = await w.state("b")
    csrf = await _csrf(w.client, "/admin", ROOT)
    reply = await w.client.post(f"/admin/payments/{w.paid['b'].id}/sync",
                                headers=bearer(ROOT), data={"csrf": csrf})
    assert reply.status_code == 404
    assert await w.state("b") == before


async def merchant_console(w: World) -> None:
    mine = await w.client.get("/m/a/admin", headers=bearer(TOKENS["a"]))
    assert mine.status_code == 200
    _ids_absent(w, mine.text)
    assert (await w.client.get("/m/b/admin", headers=bearer(TOKENS["a"]))).status_code == 401
    # A's app does not serve B's console, even to B's token.
    assert (await w.only_a.get("/m/b/admin", headers=bearer(TOKENS["b"]))).status_code == 404
    assert (await w.only_a.get("/m/a/admin", headers=bearer(TOKENS["a"]))).status_code == 200


async def merchant_console_pages(w: World) -> None:
    before = await w.state("b")
    for client in (w.client, w.only_a):
        page = await client.get(f"/m/a/admin/payments/{w.paid['b'].id}",
                                headers=bearer(TOKENS["a"]))
        assert page.status_code == 404
        _ids_absent(w, page.text)
        csrf = await _csrf(client, "/m/a/admin", TOKENS["a"])
        reply = await client.post(f"/m/a/admin/payments/{w.paid['b'].id}/sync",
                                  headers=bearer(TOKENS["a"]), data={"csrf": csrf})
        assert reply.status_code == 404
    refused = await w.client.get(f"/m/b/admin/payments/{w.paid['b'].id}",
                                 headers=bearer(TOKENS["a"]))
    assert refused.status_code == 401
    assert await w.state("b") == before
    own = await w.client.get(f"/m/a/admin/payments/{w.paid['a'].id}",
                             headers=bearer(TOKENS["a"]))
    assert own.status_code == 200


#: Route path -> its check. Add one for every new route: merchant A's credentials
#: against merchant B's objects answer 404 and change nothing of B's.
ENTRIES: dict[str, Callable[[World], Awaitable[None]]] = {
    "/webhooks/{provider}": webhooks,
    "/healthz": healthz,
    "/metrics": metrics,
    "/pasarela-static/...": static,
    "/pasarela-brand/{merchant}/style.css": brand_style,
    "/pasarela-brand/{merchant}/logo": brand_logo,
    "/pay/{payment_id}": pay_page,
    "/pay/{payment_id}/status": pay_status,
    "/admin": root_console,
    "/admin/{rest:path}": root_console_pages,
    "/m/{merchant}/admin": merchant_console,
    "/m/{merchant}/admin/{rest:path}": merchant_console_pages,
}


async def test_every_route_has_an_isolation_entry(world: World) -> None:
    missing = [path for path in world.routes if path not in ENTRIES]
    assert not missing, (
        f"routes without a cross-merchant isolation entry: {missing}; add each to "
        "ENTRIES in tests/merchants/test_web_isolation.py (merchant A's credentials "
        "against merchant B's objects: 404, nothing of B's changed)")
    assert not [p for p in ENTRIES if p not in world.routes], "entries of removed routes"


@pytest.mark.parametrize("route", sorted(ENTRIES))
async def test_merchant_a_never_reaches_merchant_bs_objects(world: World, route: str) -> None:
    await ENTRIES[route](world)
