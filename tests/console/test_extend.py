"""Extending a CIP from the console, against the PagoEfectivo sandbox on loopback:
the new expiry reaches PagoEfectivo (``PATCH /v1/cips/{cip}``) and the payment; an
expired CIP is revived (expired → pending on PagoEfectivo's word); and a time in the
past is refused naming the field, with nothing sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pasarela_pagoefectivo
import pytest
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, create_app

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.store import Store
from pasarela.testing.sandbox import ServedSandbox
from pasarela.timezones import LIMA
from pasarela.web.app import create_app as web_app
from pasarela.web.pay_page import PageSettings

from .console_fixtures import ADMIN, BEARER, SECRET, csrf_of, order


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(pasarela_sandbox: Callable[..., ServedSandbox]) -> Iterator[ServedSandbox]:
    served = pasarela_sandbox(create_app, seed=7, webhook_retry_delay=0.05)
    yield served
    served.sandbox.courier.drain(timeout=10)


@pytest.fixture
def shop(served: ServedSandbox, tmp_path: Path) -> Iterator[Pasarela]:
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config: dict[str, Any] = {
        "store": {"url": url},
        "providers": {"pagoefectivo": {
            "environment": "sandbox", "base_url": served.url,
            "access_key": "env:PE_ACCESS_KEY", "secret_key": "env:PE_SECRET_KEY",
            "service_id": 1028, "expiry": "48h", "timeout": 2.0, "max_retries": 0}},
    }
    env = {"PE_ACCESS_KEY": DEFAULT_ACCESS_KEY, "PE_SECRET_KEY": DEFAULT_SECRET_KEY}
    p = Pasarela(config, plugins=[pasarela_pagoefectivo], load_entrypoints=False, env=env,
                 store=Store(url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    p.close()


@pytest.fixture
async def client(shop: Pasarela) -> AsyncIterator[httpx.AsyncClient]:
    app = web_app(shop, pages=PageSettings(page_secret=SECRET, admin_token=ADMIN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as c:
        yield c


def _field(at: datetime) -> str:
    return at.astimezone(LIMA).strftime("%Y-%m-%dT%H:%M")


async def _extend(client: httpx.AsyncClient, payment_id: str, until: str) -> httpx.Response:
    form = await client.get(f"/admin/payments/{payment_id}/actions/extend", headers=BEARER)
    assert form.status_code == 200, form.text
    return await client.post(f"/admin/payments/{payment_id}/actions/extend",
                             data={"csrf": csrf_of(form.text), "until": until,
                                   "confirm": "yes"}, headers=BEARER)


async def test_a_cip_extended_and_an_expired_one_revived(shop: Pasarela, served: ServedSandbox,
                                                         client: httpx.AsyncClient) -> None:
    payment = shop.pay(order("pedido-cip-1"), method="cash", idempotency_key="pedido-cip-1")
    assert payment.status is Status.PENDING
    later = (datetime.now(LIMA) + timedelta(days=3)).replace(second=0, microsecond=0)
    done = await _extend(client, payment.id, _field(later))
    assert done.status_code == 303, done.text
    extended = shop.get(payment.id)
    assert extended.expires_at == later
    assert extended.status is Status.PENDING
    assert any(x["method"] == "PATCH" for x in shop.store.exchanges_for(payment.id))
    audit = [r for r in shop.store.operator_audit_log("") if r["action"] == "extend"]
    assert audit[0]["outcome"] == "done"

    assert served.control("POST", f"/cips/{payment.provider_reference}/expire"
                          ).status_code == 200
    assert shop.sync(payment.id).status is Status.EXPIRED
    revived = await _extend(client, payment.id, _field(later + timedelta(days=1)))
    assert revived.status_code == 303, revived.text
    assert shop.get(payment.id).status is Status.PENDING


async def test_a_time_in_the_past_is_refused_and_nothing_is_sent(
    shop: Pasarela, client: httpx.AsyncClient,
) -> None:
    payment = shop.pay(order("pedido-cip-2"), method="cash", idempotency_key="pedido-cip-2")
    sent = len(shop.store.exchanges_for(payment.id))
    refused = await _extend(client, payment.id, _field(datetime.now(LIMA) - timedelta(hours=1)))
    assert refused.status_code == 409
    assert "must be in the future" in refused.text
    garbled = await _extend(client, payment.id, "mañana")
    assert garbled.status_code == 409
    assert "until" in garbled.text
    assert len(shop.store.exchanges_for(payment.id)) == sent
    assert shop.get(payment.id).expires_at == payment.expires_at
