"""The console's ``resend`` announces ``payment.link_resent`` through the outbox, as
every payment event (SQLite and PostgreSQL): written with the request, delivered by
the dispatcher to the observers at least once with the outbox row's id, carried by a
relay, and dispatched within the request where events are dispatched inline."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import httpx
import pytest
import sqlalchemy as sa

from pasarela.api import AsyncPasarela
from pasarela.engine.outbox import announce
from pasarela.engine.relaying import RelayDispatcher
from pasarela.errors import ValidationError
from pasarela.events import ANNOUNCEMENTS, LINK_RESENT
from pasarela.relays import RelaySettings
from pasarela.secret import Secret
from pasarela.store import Store
from pasarela.store.schema import outbox
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import EventRecorder
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings
from tests.relays.test_relaying import MemoryRelay

from .console_fixtures import ADMIN, BEARER, SECRET, csrf_of, order


pytestmark = pytest.mark.anyio


def _events(store: Store, payment_id: str) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(outbox).where(outbox.c.payment_id == payment_id,
                                    outbox.c.type == LINK_RESENT))]


async def _resend(client: httpx.AsyncClient, payment_id: str) -> str:
    form = await client.get(f"/admin/payments/{payment_id}/actions/resend", headers=BEARER)
    shown = await client.post(f"/admin/payments/{payment_id}/actions/resend",
                              data={"csrf": csrf_of(form.text), "confirm": "yes"},
                              headers=BEARER)
    assert shown.status_code == 200, shown.text
    link = shown.text.split('id="link" type="text" readonly value="')[1].split('"')[0]
    return link.replace("&amp;", "&")


async def test_resend_goes_through_the_outbox_to_observers_and_relays(
        pasarela: AsyncPasarela, client: httpx.AsyncClient, recorder: EventRecorder) -> None:
    pending = await pasarela.pay(order("pedido-71"), method="cash",
                                 idempotency_key="pedido-71")
    link = await _resend(client, pending.id)
    [row] = _events(pasarela.store, pending.id)
    assert row["dispatched_at"] is None  # written with the request, not yet observed
    assert row["payload"]["link"] == link
    assert row["payload"]["operator"]
    assert (row["payload"]["payment_id"], row["payload"]["status"]) == (pending.id,
                                                                        "pending")
    assert not [e for e in recorder.events if e.type == LINK_RESENT]

    relay = MemoryRelay(RelaySettings(name="mem", type="memory", url=Secret("mem://h"),
                                      batch_size=50))

    def relay_once() -> None:  # the relay worker's loop is its own: in a thread
        dispatcher = RelayDispatcher(pasarela.store, [relay])
        try:
            dispatcher.run()
        finally:
            dispatcher.close()

    await anyio.to_thread.run_sync(relay_once)
    [relayed] = [e for e in relay.received if e.type == LINK_RESENT]
    assert (relayed.id, relayed.payment_id, relayed.payload["link"]) == (row["id"],
                                                                        pending.id, link)

    assert await pasarela.dispatch_outbox() >= 1
    [seen] = [e for e in recorder.events if e.type == LINK_RESENT]
    assert (seen.id, seen.payment_id, seen.order_reference, seen.status) == (
        row["id"], pending.id, "pedido-71", "pending")
    assert seen.payload["link"] == link
    [row] = _events(pasarela.store, pending.id)
    assert row["dispatched_at"] is not None
    await pasarela.dispatch_outbox()  # delivered: not handed out again
    assert len([e for e in recorder.events if e.type == LINK_RESENT]) == 1
    assert (await pasarela.get(pending.id)).version == pending.version  # no status change


async def test_inline_dispatch_observes_it_within_the_request(store_url: str) -> None:
    gateway, recorder = FakeGateway(), EventRecorder()
    config: dict[str, Any] = {"store": {"url": store_url},
                              "providers": {"fake": {"max_retries": 0}},
                              "events": {"dispatch": "inline"}}
    p = AsyncPasarela(config, plugins=[FakePlugin(), recorder], load_entrypoints=False,
                      transport=gateway.transport(), store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    try:
        pending = await p.pay(order("pedido-72"), method="cash", idempotency_key="pedido-72")
        app = create_app(p, pages=PageSettings(page_secret=SECRET, admin_token=ADMIN))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            link = await _resend(client, pending.id)
        [seen] = [e for e in recorder.events if e.type == LINK_RESENT]
        [row] = _events(p.store, pending.id)
        assert (seen.id, seen.payload["link"]) == (row["id"], link)
        assert row["dispatched_at"] is not None
    finally:
        await p.aclose()


async def test_only_an_announcement_is_written_without_a_transition(
        pasarela: AsyncPasarela) -> None:
    pending = await pasarela.pay(order("pedido-73"), method="cash",
                                 idempotency_key="pedido-73")
    assert LINK_RESENT in ANNOUNCEMENTS
    with pytest.raises(ValidationError) as refused:
        announce(pasarela.service, pending.id, "payment.succeeded", {})
    assert refused.value.field == "event_type"
    with pasarela.store.engine.connect() as conn:
        types = list(conn.execute(sa.select(outbox.c.type)
                                  .where(outbox.c.payment_id == pending.id)).scalars())
    assert "payment.succeeded" not in types
