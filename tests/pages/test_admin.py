"""The operator dashboard /admin: auth, CSRF, counts, charts, sync now, payment page."""

from __future__ import annotations

import re
from datetime import timedelta

import anyio.to_thread
import pytest

from pasarela.lifecycle import Status
from pasarela.testing.fake import sign_fake_webhook
from pasarela.web.admin import bar_chart, line_chart, mask
from pasarela.web.app import create_app
from pasarela.web.pay_page import PageSettings

from .conftest import ADMIN, SECRET, client_for, make_order
from .test_pay_page import check_security_headers


pytestmark = pytest.mark.anyio

BEARER = {"Authorization": f"Bearer {ADMIN}"}


async def pay(p, ref, method="cash", **kw):
    return await p.pay(make_order(ref, **kw), method=method, idempotency_key=ref)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def login(client) -> None:
    response = await client.post("/admin/login", data={"token": ADMIN})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"


# --- access ------------------------------------------------------------------------


async def test_admin_is_off_without_a_token(pasarela):
    app = create_app(pasarela, pages=PageSettings(page_secret=SECRET))
    async with client_for(app) as client:
        assert (await client.get("/admin")).status_code == 404
        assert (await client.get("/admin/login")).status_code == 404


async def test_without_the_credential_every_admin_page_is_401(pasarela, client):
    payment = await pay(pasarela, "pedido-1")
    for method, url in [("GET", "/admin"), ("GET", f"/admin/payments/{payment.id}"),
                        ("POST", f"/admin/payments/{payment.id}/sync"),
                        ("GET", "/admin/login")]:
        response = await client.request(method, url)
        assert response.status_code == 401, url
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert 'name="token"' in response.text                 # the sign-in form
        assert payment.id not in response.text
        check_security_headers(response)
    wrong = await client.get("/admin", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    basic = await client.get("/admin", headers={"Authorization": f"Basic {ADMIN}"})
    assert basic.status_code == 401


async def test_bearer_token_opens_the_dashboard(client):
    response = await client.get("/admin", headers=BEARER)
    assert response.status_code == 200
    assert "Operator dashboard" in response.text
    check_security_headers(response)


async def test_login_form_sets_a_strict_httponly_session(client):
    bad = await client.post("/admin/login", data={"token": "guess"})
    assert bad.status_code == 401
    assert "That token is not right." in bad.text
    assert "pasarela_admin" not in bad.headers.get("set-cookie", "")
    ok = await client.post("/admin/login", data={"token": ADMIN})
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/admin" in cookie
    assert ADMIN.lower() not in cookie
    assert (await client.get("/admin")).status_code == 200
    assert (await client.get("/admin/login")).status_code == 303   # already in


async def test_forged_or_expired_session_cookie_is_refused(client, clock):
    await login(client)
    value = client.cookies["pasarela_admin"]
    expiry, mac = value.split(".")
    client.cookies.clear()
    client.cookies.set("pasarela_admin", f"{int(expiry) + 3600}.{mac}", path="/admin")
    assert (await client.get("/admin")).status_code == 401
    client.cookies.clear()
    client.cookies.set("pasarela_admin", value, path="/admin")
    assert (await client.get("/admin")).status_code == 200
    clock.advance(timedelta(hours=13))
    assert (await client.get("/admin")).status_code == 401


async def test_logout_needs_csrf_and_clears_the_session(client):
    await login(client)
    page = (await client.get("/admin")).text
    assert (await client.post("/admin/logout", data={"csrf": "0" * 64})).status_code == 403
    out = await client.post("/admin/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303
    assert (await client.get("/admin")).status_code == 401


# --- what it shows --------------------------------------------------------------------


def total(page: str) -> int:
    return int(re.search(r'<span id="total">(\d+)</span>', page).group(1))


async def test_counts_and_charts_follow_the_payments(pasarela, client, gateway):
    await login(client)
    empty = (await client.get("/admin")).text
    assert total(empty) == 0
    assert "No payments in the last 24 h." in empty
    first = await pay(pasarela, "pedido-1")
    await pay(pasarela, "pedido-2")
    await pay(pasarela, "pedido-3", method="card")               # the fake card succeeds
    headers, body = gateway.settle(first.provider_reference)
    assert (await client.post("/webhooks/fake", headers=headers, content=body)).status_code == 200
    page = (await client.get("/admin")).text
    assert total(page) == 3
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td><td>(\w+)</td><td class=\"num\">(\d+)",
                      page)
    assert sorted(rows) == [("fake", "card", "succeeded", "1"), ("fake", "cash", "pending", "1"),
                            ("fake", "cash", "succeeded", "1")]
    assert '<svg viewBox="0 0 560 220" role="img" aria-label="Success rate' in page
    assert "fake · cash" in page
    assert "fake · card" in page
    assert "No succeeded payments yet." not in page              # the cost chart is drawn


async def test_effective_cost_uses_the_expected_fee(sqlite_url, gateway, clock, settings):
    from pasarela.api import AsyncPasarela
    from pasarela.store import Store
    from pasarela.testing.fake import FakePlugin

    config = {"store": {"url": sqlite_url}, "events": {"dispatch": "worker"},
              "providers": {"fake": {"max_retries": 0,
                                     "fees": {"percent": "3.5", "fixed": "PEN 0.50"}}}}
    async with AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                             transport=gateway.transport(), clock=clock,
                             store=Store(sqlite_url, upgrade=True)) as p:
        await pay(p, "pedido-1", method="card", amount="100.00")
        async with client_for(create_app(p, pages=settings)) as client:
            page = (await client.get("/admin", headers=BEARER)).text
    assert "Effective cost per provider" in page
    assert ">4.00%</text>" in page                     # 3.5 % + S/ 0.50 of S/ 100.00


async def test_unknown_payment_is_listed_and_sync_now_needs_csrf(pasarela, client):
    lost = await pay(pasarela, "pedido-lost", metadata={"scenario": "timeout"})
    assert lost.status is Status.UNKNOWN
    await login(client)
    page = (await client.get("/admin")).text
    assert f'href="/admin/payments/{lost.id}"' in page
    assert f'action="/admin/payments/{lost.id}/sync"' in page
    url = f"/admin/payments/{lost.id}/sync"
    assert (await client.post(url)).status_code == 403
    assert (await client.post(url, data={"csrf": "f" * 64})).status_code == 403
    assert (await pasarela.get(lost.id)).status is Status.UNKNOWN
    done = await client.post(url, data={"csrf": csrf_of(page)})
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/payments/{lost.id}?synced=1"
    assert (await pasarela.get(lost.id)).status is Status.PENDING
    after = (await client.get(done.headers["location"])).text
    assert "Synced with the provider." in after
    assert f'href="/admin/payments/{lost.id}"' not in (await client.get("/admin")).text


async def test_csrf_of_one_session_does_not_work_for_another(pasarela, client, clock):
    lost = await pay(pasarela, "pedido-lost", metadata={"scenario": "timeout"})
    await login(client)
    old = csrf_of((await client.get("/admin")).text)
    clock.advance(timedelta(seconds=5))
    client.cookies.clear()
    await login(client)                                          # a new session
    response = await client.post(f"/admin/payments/{lost.id}/sync", data={"csrf": old})
    assert response.status_code == 403


async def test_bearer_requests_use_their_own_csrf(pasarela, client):
    lost = await pay(pasarela, "pedido-lost", metadata={"scenario": "timeout"})
    page = (await client.get("/admin", headers=BEARER)).text
    response = await client.post(f"/admin/payments/{lost.id}/sync", headers=BEARER,
                                 data={"csrf": csrf_of(page)})
    assert response.status_code == 303


async def test_stale_pending_is_listed(pasarela, client, clock):
    payment = await pay(pasarela, "pedido-old")
    page = (await client.get("/admin", headers=BEARER)).text
    assert f"/admin/payments/{payment.id}/sync" not in page
    clock.advance(timedelta(hours=2))
    page = (await client.get("/admin", headers=BEARER)).text
    assert f"/admin/payments/{payment.id}/sync" in page


async def test_sync_of_a_missing_payment_is_404(client):
    page = (await client.get("/admin", headers=BEARER)).text
    response = await client.post("/admin/payments/01JNOPE/sync", headers=BEARER,
                                 data={"csrf": csrf_of(page)})
    assert response.status_code == 404
    assert (await client.get("/admin/payments/01JNOPE", headers=BEARER)).status_code == 404


async def test_webhook_rejections_and_outbox_lag_are_shown(pasarela, client, gateway):
    payment = await pay(pasarela, "pedido-1")
    _, body = gateway.settle(payment.provider_reference)
    forged = sign_fake_webhook(body, "whsec_wrong", int(gateway.clock().timestamp()))
    assert (await client.post("/webhooks/fake", headers=forged, content=body)).status_code == 400
    page = (await client.get("/admin", headers=BEARER)).text
    section = page.split('id="rejections"')[1].split("</table>")[0]
    assert "<td>fake</td>" in section
    lag = re.search(r'<p id="outbox">(\d+) event', page)
    assert lag
    assert int(lag.group(1)) >= 1


async def test_payment_page_shows_history_and_redacted_exchanges(pasarela, client, gateway):
    payment = await pay(pasarela, "pedido-1", description="<script>alert(1)</script>")
    headers, body = gateway.settle(payment.provider_reference)
    await client.post("/webhooks/fake", headers=headers, content=body)
    response = await client.get(f"/admin/payments/{payment.id}", headers=BEARER)
    page = response.text
    assert response.status_code == 200
    check_security_headers(response)
    history = page.split('id="history"')[1].split("</table>")[0]
    assert "<td>created</td><td>pending</td><td>api</td>" in history
    assert "<td>pending</td><td>succeeded</td><td>webhook</td>" in history
    exchanges = page.split('id="exchanges"')[1].split("</table>")[0]
    assert "POST " in exchanges
    assert "/v1/payments" in exchanges
    assert "fake_sk_test_123" not in page                        # the API key is redacted
    assert "_secret_x" not in page                               # masked again here
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page


# --- charts ----------------------------------------------------------------------------


def test_charts_escape_their_labels_and_leave_gaps():
    svg = line_chart({"<x>": [0.5, None, 1.0, 0.0]}, ["a", "b", "c", "d"], title='t"<')
    assert "<x>" not in svg
    assert "&lt;x&gt;" in svg
    assert 't&quot;&lt;' in svg
    assert svg.count("<polyline") == 1                           # c-d; a alone is a dot
    assert svg.count("<circle") == 3
    bars = bar_chart({"a&b": 2.5, "c": 0.0}, title="cost")
    assert "a&amp;b" in bars
    assert ">2.50%</text>" in bars
    assert "style=" not in svg + bars


def test_mask_hides_secret_looking_keys_at_any_depth():
    data = {"id": "x", "client_secret": "cs_1", "nested": [{"Authorization": "Bearer k",
            "card_number": "4242", "amount": 5}], "token": None, "api-key": "k"}
    assert mask(data) == {"id": "x", "client_secret": "[redacted]", "nested": [
        {"Authorization": "[redacted]", "card_number": "[redacted]", "amount": 5}],
        "token": None, "api-key": "[redacted]"}


async def test_sign_in_is_throttled_per_address(client):
    """Five wrong tokens from one address: the sixth attempt, even with the right token,
    is refused with 429 and a Retry-After, until the failures leave the window."""
    for _ in range(5):
        assert (await client.post("/admin/login", data={"token": "guess"})).status_code == 401
    refused = await client.post("/admin/login", data={"token": ADMIN})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    guessed = await client.get("/admin", headers={"Authorization": f"Bearer {ADMIN}"})
    assert guessed.status_code == 401  # a bearer from a throttled address is refused too


def test_the_throttle_counts_addresses_and_the_account():
    from datetime import UTC, datetime

    from pasarela.web.throttle import LoginThrottle

    throttle = LoginThrottle(per_address=3, per_account=5, window=timedelta(minutes=1))
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    for _ in range(3):
        throttle.failed("client-1", t0)
    assert throttle.retry_after("client-1", t0) == 60.0
    assert throttle.retry_after("client-2", t0) is None
    throttle.failed("client-2", t0)
    throttle.failed("client-3", t0)
    # five failures on the one account: every address waits
    assert throttle.retry_after("client-9", t0) == 60.0
    later = t0 + timedelta(minutes=1, seconds=1)
    assert throttle.retry_after("client-1", later) is None
    throttle.failed("client-4", later)
    throttle.succeeded("client-4")
    assert throttle.retry_after("client-4", later) is None


def _table(page: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.DOTALL)
    assert match, f"no table {table_id} on the page"
    return match.group(1)


async def test_payments_and_refunds_past_the_resolver_schedule_are_listed_for_an_operator(
        pasarela, client, gateway, clock):
    from pasarela.engine.jobs import RESOLVER_CHECKS
    from pasarela.errors import UnknownOutcomeError

    gateway.hide_new_payments = True                    # its answer lost, search empty
    lost = await pay(pasarela, "pedido-lost", method="card", metadata={"scenario": "timeout"})
    gateway.hide_new_payments = False
    paid = await pay(pasarela, "pedido-paid", method="card")
    gateway.lose_refund_answers = gateway.hide_new_refunds = True
    with pytest.raises(UnknownOutcomeError):
        await pasarela.refund(paid.id)
    [refund] = await anyio.to_thread.run_sync(pasarela.store.refunds_for, paid.id)
    page = (await client.get("/admin", headers=BEARER)).text
    assert 'id="operator-payments-count">0<' in page      # within the schedule: not yet
    assert 'id="operator-refunds-count">0<' in page
    for _ in range(RESOLVER_CHECKS):
        clock.advance(timedelta(hours=7))
        await pasarela.resolve_due()
    assert (await pasarela.get(lost.id)).status is Status.UNKNOWN
    page = (await client.get("/admin", headers=BEARER)).text
    assert 'id="operator-payments-count">1<' in page
    assert f'href="/admin/payments/{lost.id}"' in _table(page, "operator-payments")
    assert f"/admin/payments/{lost.id}/sync" in _table(page, "operator-payments")
    assert 'id="operator-refunds-count">1<' in page
    refunds = _table(page, "operator-refunds")
    assert refund.id in refunds
    assert f'href="/admin/payments/{paid.id}"' in refunds
    gateway.reveal_payments()                             # the provider answers at last
    gateway.reveal_refunds()
    clock.advance(timedelta(hours=7))
    await pasarela.resolve_due()
    page = (await client.get("/admin", headers=BEARER)).text
    assert 'id="operator-payments-count">0<' in page
    assert 'id="operator-refunds-count">0<' in page
    assert 'id="operator-payments"' not in page
