"""Merchant A's console against merchant B's objects: its search lists none of B's
payments (not even by B's exact identifiers), B's payment page, confirmations and
actions are 404 with nothing changed, and B's reconciliation differences are neither
listed nor resolvable. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pasarela.api import AsyncPasarela
from pasarela.lifecycle import Status
from pasarela.store import Store
from pasarela.store.reconcile_schema import reconciliation_results
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings

from .console_fixtures import csrf_of, order


TOKENS = {"a": "merchant-a-console-token-0123456789", "b": "merchant-b-console-token-0123456789"}
pytestmark = pytest.mark.anyio


@pytest.fixture
async def two(store_url: str) -> AsyncIterator[dict[str, Any]]:
    gateway = FakeGateway()
    config = {
        "store": {"url": store_url}, "providers": {"fake": {"max_retries": 0}},
        "events": {"dispatch": "worker"},
        "merchants": {name: {"admin_token": token, "providers": {"fake": {"max_retries": 0}}}
                      for name, token in TOKENS.items()},
    }
    p = AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                      transport=gateway.transport(), store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    paid = {name: await p.merchants[name].pay(order(f"pedido-{name}"), method="card",
                                              idempotency_key=f"k-{name}")
            for name in TOKENS}
    app = create_app(p, pages=PageSettings(page_secret="s" * 32, admin_token="r" * 32))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield {"p": p, "client": client, "paid": paid}
    await p.aclose()


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


async def test_merchant_a_finds_and_touches_nothing_of_merchant_b(two: dict[str, Any]) -> None:
    client, paid, p = two["client"], two["paid"], two["p"]
    b = paid["b"]
    for q in (b.id, b.order_reference, b.provider_reference):
        found = await client.get("/m/a/admin/payments", params={"q": q}, headers=_as("a"))
        assert found.status_code == 200
        assert 'id="no-results"' in found.text
        assert f"/payments/{b.id}" not in found.text
    listed = await client.get("/m/a/admin/payments", params={"list": "1"}, headers=_as("a"))
    assert paid["a"].id in listed.text
    assert b.id not in listed.text
    assert (await client.get(f"/m/a/admin/payments/{b.id}", headers=_as("a"))).status_code == 404
    assert (await client.get(f"/m/a/admin/payments/{b.id}/actions/refund",
                             headers=_as("a"))).status_code == 404
    form = await client.get(f"/m/a/admin/payments/{paid['a'].id}/actions/refund",
                            headers=_as("a"))
    refused = await client.post(f"/m/a/admin/payments/{b.id}/actions/refund",
                                data={"csrf": csrf_of(form.text), "confirm": "yes"},
                                headers=_as("a"))
    assert refused.status_code == 404
    assert (await p.merchants["b"].get(b.id)).status is Status.SUCCEEDED


async def test_merchant_bs_differences_are_not_merchant_as(two: dict[str, Any]) -> None:
    client, paid, p = two["client"], two["paid"], two["p"]
    b = paid["b"]
    with p.store.engine.begin() as conn:
        conn.execute(sa.insert(reconciliation_results).values(
            run_key="run-b", item_key="line-1", provider=b.provider, category="amount_mismatch",
            line_no=1, payment_id=b.id, expected="", actual="", detail="", resolved=False,
            healed=False, created_at=datetime.now(UTC)))
    [difference] = p.store.differences("run-b")
    runs = await client.get("/m/a/admin/reconciliation", headers=_as("a"))
    assert "run-b" not in runs.text
    listing = await client.get("/m/a/admin/reconciliation/run-b", headers=_as("a"))
    assert f'id="difference-{difference.id}"' not in listing.text
    asked = await client.get(f"/m/a/admin/reconciliation/differences/{difference.id}/refunded",
                             headers=_as("a"))
    assert asked.status_code == 404
    own = await client.get("/m/b/admin/reconciliation", headers=_as("b"))
    assert "run-b" in own.text
    form = await client.get(f"/m/b/admin/reconciliation/differences/{difference.id}/accepted",
                            headers=_as("b"))
    refused = await client.post(f"/m/a/admin/reconciliation/differences/{difference.id}/healed",
                                data={"csrf": csrf_of(form.text), "confirm": "yes"},
                                headers=_as("a"))
    assert refused.status_code in (403, 404)
    assert p.store.differences("run-b")[0].action is None
