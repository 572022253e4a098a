"""The console's search page, payment page and actions, and reconciliation pages,
over HTTP (no browser), on SQLite and PostgreSQL: what is found, what each action
does through the public API, what is refused and why, and the audit log's lines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from pasarela.api import AsyncPasarela
from pasarela.lifecycle import Status
from pasarela.store.reconcile_schema import reconciliation_results
from pasarela.testing.fake import FakeGateway
from pasarela.web.console_actions import ACTIONS, action_refusals
from pasarela.web.console_auth import Operator, Role

from .console_fixtures import BEARER, csrf_of, order


pytestmark = pytest.mark.anyio


async def _card(p: AsyncPasarela, ref: str, amount: str = "100.00") -> Any:
    payment = await p.pay(order(ref, amount), method="card", idempotency_key=ref)
    assert payment.status is Status.SUCCEEDED
    return payment


async def _cash(p: AsyncPasarela, ref: str, **kw: Any) -> Any:
    return await p.pay(order(ref, **kw), method="cash", idempotency_key=ref)


def _result_ids(page: str) -> list[str]:
    if 'id="results"' not in page:
        return []
    body = page.split('id="results"', 1)[1].split("</table>", 1)[0]
    return [part.split('"', 1)[0] for part in body.split('/admin/payments/')[1:]]


async def test_search_by_cip_order_phone_and_document(pasarela, client) -> None:
    wanted = await _cash(pasarela, "pedido-77", phone="+51 912 345 678", document="70112233")
    await _cash(pasarela, "pedido-78")
    for q in (wanted.provider_reference, "pedido-77", wanted.id):
        response = await client.get("/admin/payments", params={"q": q}, headers=BEARER)
        assert response.status_code == 200
        assert _result_ids(response.text) == [wanted.id], q
    by_phone = await client.get("/admin/payments", params={"phone": "912 345 678"},
                                headers=BEARER)
    assert _result_ids(by_phone.text) == [wanted.id]
    assert "912345678" not in by_phone.text
    assert "912 345 678" in by_phone.text  # the form
    by_document = await client.get("/admin/payments", params={"q": "70112233"},
                                   headers=BEARER)
    assert _result_ids(by_document.text) == [wanted.id]
    none = await client.get("/admin/payments", params={"q": "nada"}, headers=BEARER)
    assert 'id="no-results"' in none.text
    page = await client.get(f"/admin/payments/{wanted.id}", headers=BEARER)
    assert "+51 ••• ••• 678" in page.text
    assert "DNI ••••2233" in page.text
    assert "912345678" not in page.text
    assert "70112233" not in page.text
    assert f'href="/admin/payments/{wanted.id}/evidence"' in page.text
    bundle = await client.get(f"/admin/payments/{wanted.id}/evidence", headers=BEARER)
    assert bundle.status_code == 200
    assert bundle.content.startswith(b"PK")  # the zip


async def test_filters_pages_and_bad_input(pasarela, client) -> None:
    made = [await _cash(pasarela, f"pedido-{i}", amount=f"{10 + i}.00") for i in range(5)]
    await _card(pasarela, "tarjeta-1")
    cash = await client.get("/admin/payments", params={"method": "cash", "status": "pending",
                                                       "min": "11", "max": "13.00"},
                            headers=BEARER)
    assert sorted(_result_ids(cash.text)) == sorted(p.id for p in made[1:4])
    listed = await client.get("/admin/payments", params={"list": "1"}, headers=BEARER)
    assert len(_result_ids(listed.text)) == 6
    bad = await client.get("/admin/payments", params={"min": "diez"}, headers=BEARER)
    assert bad.status_code == 400
    assert "min: " in bad.text
    unknown = await client.get("/admin/payments", params={"status": "paid"}, headers=BEARER)
    assert unknown.status_code == 400
    assert "statuses" in unknown.text


def _audit(p: AsyncPasarela, action: str) -> list[dict[str, Any]]:
    return [r for r in p.store.operator_audit_log("") if r["action"] == action]


async def test_a_partial_refund_confirmed_goes_through_the_api_and_the_audit_log(
    pasarela, client,
) -> None:
    payment = await _card(pasarela, "tarjeta-2")
    page = await client.get(f"/admin/payments/{payment.id}", headers=BEARER)
    assert f'/admin/payments/{payment.id}/actions/refund"' in page.text
    form = await client.get(f"/admin/payments/{payment.id}/actions/refund", headers=BEARER)
    assert form.status_code == 200
    csrf = csrf_of(form.text)
    unconfirmed = await client.post(f"/admin/payments/{payment.id}/actions/refund",
                                    data={"csrf": csrf, "amount": "30.00"}, headers=BEARER)
    assert unconfirmed.status_code == 409
    assert (await pasarela.get(payment.id)).refunded is None
    forged = await client.post(f"/admin/payments/{payment.id}/actions/refund",
                               data={"csrf": "0" * 64, "amount": "30.00", "confirm": "yes"},
                               headers=BEARER)
    assert forged.status_code == 403
    assert [r["outcome"] for r in _audit(pasarela, "refund")] == ["refused", "refused"]
    done = await client.post(f"/admin/payments/{payment.id}/actions/refund",
                             data={"csrf": csrf, "amount": "30.00", "reason": "talla",
                                   "confirm": "yes"}, headers=BEARER)
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=refund")
    after = await pasarela.get(payment.id)
    assert after.status is Status.PARTIALLY_REFUNDED
    assert str(after.refunded.amount) == "30.00"
    audit = _audit(pasarela, "refund")[0]
    assert (audit["outcome"], audit["target"], audit["address"]) == ("done", payment.id,
                                                                    "127.0.0.1")
    assert audit["detail"]["amount"] == "30.00"
    too_much = await client.post(f"/admin/payments/{payment.id}/actions/refund",
                                 data={"csrf": csrf, "amount": "80.00", "confirm": "yes"},
                                 headers=BEARER)
    assert too_much.status_code in (409, 502)
    assert (await pasarela.get(payment.id)).refunded.amount == after.refunded.amount


async def test_refused_actions_say_why(pasarela, client) -> None:
    pending = await _cash(pasarela, "pedido-90")
    page = (await client.get(f"/admin/payments/{pending.id}", headers=BEARER)).text
    refund = page.split('id="action-refund"')[1].split("</li>")[0]
    assert "only a succeeded one can" in refund
    extend = page.split('id="action-extend"')[1].split("</li>")[0]
    assert "does not support extend" in extend
    asked = await client.get(f"/admin/payments/{pending.id}/actions/extend", headers=BEARER)
    assert asked.status_code == 409
    assert 'id="confirm-form"' not in asked.text
    csrf = csrf_of((await client.get(f"/admin/payments/{pending.id}/actions/cancel",
                                     headers=BEARER)).text)
    refused = await client.post(f"/admin/payments/{pending.id}/actions/extend",
                                data={"csrf": csrf, "until": "2030-01-01T10:00",
                                      "confirm": "yes"}, headers=BEARER)
    assert refused.status_code == 409
    assert "does not support extend" in refused.text
    canceled = await client.post(f"/admin/payments/{pending.id}/actions/cancel",
                                 data={"csrf": csrf, "confirm": "yes"}, headers=BEARER)
    assert canceled.status_code == 303
    assert (await pasarela.get(pending.id)).status is Status.CANCELED
    again = await client.post(f"/admin/payments/{pending.id}/actions/cancel",
                              data={"csrf": csrf, "confirm": "yes"}, headers=BEARER)
    assert again.status_code == 409
    assert "cannot be canceled" in again.text


async def test_resend_shows_the_link_and_announces_it(pasarela, client, recorder) -> None:
    pending = await _cash(pasarela, "pedido-91")
    form = await client.get(f"/admin/payments/{pending.id}/actions/resend", headers=BEARER)
    shown = await client.post(f"/admin/payments/{pending.id}/actions/resend",
                              data={"csrf": csrf_of(form.text), "confirm": "yes"},
                              headers=BEARER)
    assert shown.status_code == 200
    link = shown.text.split('id="link" type="text" readonly value="')[1].split('"')[0]
    assert link.startswith(f"http://testserver/pay/{pending.id}?t=")
    # Through the outbox (this deployment dispatches in its worker): not yet observed.
    assert not [e for e in recorder.events if e.type == "payment.link_resent"]
    await pasarela.dispatch_outbox()
    seen = [e for e in recorder.events if e.type == "payment.link_resent"]
    assert len(seen) == 1
    assert seen[0].payload["link"] == link.replace("&amp;", "&")
    customer = await client.get(link.replace("&amp;", "&").removeprefix("http://testserver"))
    assert customer.status_code == 200


def _differences(p: AsyncPasarela, payment_id: str) -> None:
    from datetime import UTC, datetime

    with p.store.engine.begin() as conn:
        for i, (category, pid) in enumerate((("amount_mismatch", payment_id),
                                             ("missing_here", None))):
            conn.execute(sa.insert(reconciliation_results).values(
                run_key="fake-2026-12-01", item_key=f"line-{i}", provider="fake",
                category=category, line_no=i + 1, payment_id=pid, expected="PEN 100.00",
                actual="PEN 99.00", detail="", resolved=False, healed=False,
                created_at=datetime.now(UTC)))


async def test_resolving_differences(pasarela, client, gateway: FakeGateway) -> None:
    payment = await _card(pasarela, "tarjeta-3")
    _differences(pasarela, payment.id)
    runs = await client.get("/admin/reconciliation", headers=BEARER)
    assert "fake-2026-12-01" in runs.text
    listing = await client.get("/admin/reconciliation/fake-2026-12-01",
                               params={"state": "open"}, headers=BEARER)
    ids = [int(x.split('"')[0]) for x in listing.text.split('id="difference-')[1:]]
    assert len(ids) == 2
    only_missing = await client.get("/admin/reconciliation/fake-2026-12-01",
                                    params={"category": "missing_here"}, headers=BEARER)
    assert only_missing.text.count('id="difference-') == 1
    form = await client.get(f"/admin/reconciliation/differences/{ids[1]}/refunded",
                            headers=BEARER)
    assert form.status_code == 409
    assert "only be accepted" in form.text
    accept = await client.get(f"/admin/reconciliation/differences/{ids[1]}/accepted",
                              headers=BEARER)
    csrf = csrf_of(accept.text)
    no_note = await client.post(f"/admin/reconciliation/differences/{ids[1]}/accepted",
                                data={"csrf": csrf, "confirm": "yes"}, headers=BEARER)
    assert no_note.status_code == 409
    done = await client.post(f"/admin/reconciliation/differences/{ids[1]}/accepted",
                             data={"csrf": csrf, "confirm": "yes", "note": "línea de prueba"},
                             headers=BEARER)
    assert done.status_code == 303
    refund = await client.post(f"/admin/reconciliation/differences/{ids[0]}/refunded",
                               data={"csrf": csrf, "confirm": "yes", "amount": "1.00",
                                     "note": "cobro de más"}, headers=BEARER)
    assert refund.status_code == 303
    assert (await pasarela.get(payment.id)).status is Status.PARTIALLY_REFUNDED
    resolved = pasarela.store.differences("fake-2026-12-01")
    assert [(d.action, d.note) for d in resolved] == [("refunded", "cobro de más"),
                                                      ("accepted", "línea de prueba")]
    assert resolved[0].refund_id
    twice = await client.post(f"/admin/reconciliation/differences/{ids[0]}/healed",
                              data={"csrf": csrf, "confirm": "yes"}, headers=BEARER)
    assert twice.status_code == 409
    assert "resolved already" in twice.text


async def test_pages_need_a_signed_in_operator(client: httpx.AsyncClient) -> None:
    for path in ("/admin/payments", "/admin/reconciliation",
                 "/admin/reconciliation/run-1"):
        assert (await client.get(path)).status_code == 401
    assert (await client.post("/admin/payments/x/actions/refund")).status_code == 401


async def test_a_viewer_sees_every_action_refused_with_the_reason(pasarela) -> None:
    payment = await _card(pasarela, "tarjeta-9")
    adapter = pasarela.service.provider_of(payment)
    viewer = Operator("vera", Role.VIEWER, "")
    refusals = action_refusals(payment, adapter, viewer, page_secret="s")
    assert set(refusals) == set(ACTIONS)
    assert all(r == "this needs the operator role; vera is a viewer"
               for r in refusals.values())
    operator = Operator("olga", Role.OPERATOR, "")
    allowed = action_refusals(payment, adapter, operator, page_secret="s")
    assert allowed["refund"] is None
    assert allowed["sync"] is None
    assert "only a pending one" in allowed["cancel"]
    assert "does not support extend" in allowed["extend"]
    assert "nothing left for the customer" in allowed["resend"]
