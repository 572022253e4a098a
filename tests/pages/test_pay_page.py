"""The customer page /pay/{id}: tokens, states, language, escaping, headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.next_action import BankTransfer, OpenCheckout, ScanQr
from pasarela.web.app import create_app
from pasarela.web.pay_page import (
    SECURITY_HEADERS,
    PageSettings,
    check_page_token,
    checkout_origin,
    negotiate_language,
    page_token,
    pay_link,
)

from .conftest import SECRET, client_for, make_order


pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


async def cash(p, ref="pedido-1042", **kw):
    key = ref.encode().hex()
    return await p.pay(make_order(ref, **kw), method="cash", idempotency_key=key)


async def deliver(client, gateway, payment, status="succeeded"):
    headers, body = gateway.settle(payment.provider_reference, status)
    response = await client.post("/webhooks/fake", headers=headers, content=body)
    assert response.status_code == 200


# --- tokens ---------------------------------------------------------------------------


def test_a_token_is_valid_for_its_payment_until_it_expires():
    token = page_token("01JPAY", SECRET, NOW + timedelta(hours=1))
    assert check_page_token("01JPAY", token, SECRET, now=NOW)
    assert check_page_token("01JPAY", token, SECRET, now=NOW + timedelta(minutes=59))
    assert not check_page_token("01JPAY", token, SECRET, now=NOW + timedelta(hours=1))
    assert not check_page_token("01JPAX", token, SECRET, now=NOW)
    assert not check_page_token("01JPAY", token, "another-secret", now=NOW)


@pytest.mark.parametrize("forge", [
    lambda t: "",
    lambda t: "nodot",
    lambda t: t.split(".")[0] + ".",
    lambda t: str(int(t.split(".")[0]) + 3600) + "." + t.split(".")[1],   # longer life
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),                    # one char changed
    lambda t: t + "A",
    lambda t: "-1." + t.split(".")[1],
    lambda t: "9" * 40 + "." + t.split(".")[1],
    lambda t: t.split(".")[0] + ".ñ" + t.split(".")[1],
])
def test_forged_tokens_are_refused(forge):
    token = page_token("01JPAY", SECRET, NOW + timedelta(hours=1))
    assert not check_page_token("01JPAY", forge(token), SECRET, now=NOW)


def test_pay_link_is_what_a_host_sends():
    link = pay_link("01JPAY", SECRET, timedelta(hours=2), base_url="https://shop.pe/pasarela/",
                    now=NOW)
    assert link.startswith("https://shop.pe/pasarela/pay/01JPAY?t=")
    token = link.split("?t=")[1]
    assert check_page_token("01JPAY", token, SECRET, now=NOW + timedelta(hours=1))
    assert not check_page_token("01JPAY", token, SECRET, now=NOW + timedelta(hours=2))
    with pytest.raises(ValueError, match="empty"):
        pay_link("01JPAY", "", now=NOW)


# --- the pending cash code ----------------------------------------------------------------


async def test_pending_cip_page_shows_code_amount_expiry_qr_channels(pasarela, client, link):
    payment = await cash(pasarela)
    code = payment.next_action.code
    response = await client.get(link(payment.id))
    assert response.status_code == 200
    page = response.text
    assert '<html lang="es">' in page
    assert f'value="{code}"' in page                       # the big copyable field
    assert 'for="cip-code"' in page                          # labelled
    assert "S/\xa0149.90" in page or "S/ 149.90" in page
    assert "hora de Lima" in page
    lima = payment.expires_at.astimezone(lima_zone()).strftime("%H:%M")
    assert lima in page
    assert f'role="img" aria-label="Código QR del pago {code}"' in page
    assert "<svg" in page
    assert f'<p class="qr-text">{code}</p>' in page
    for channel in ("Banca por internet", "Agentes", "Bodegas"):
        assert channel in page
    assert f'href="{payment.next_action.url}"' in page       # the provider's cipUrl
    assert f"Paga el código {code}." in page                 # the provider's own steps
    assert 'data-state="cash"' in page
    assert "/pasarela-static/pay.js" in page
    assert "/pasarela-static/pasarela.css" in page


def lima_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/Lima")


async def test_page_needs_no_inline_script_or_style(pasarela, client, link):
    payment = await cash(pasarela)
    page = (await client.get(link(payment.id))).text
    assert "style=" not in page
    assert "<style" not in page
    for tag in re.findall(r"<script[^>]*>", page):
        assert "src=" in tag
    assert re.search(r"<script[^>]*>\s*[^<\s]", page) is None    # no inline code


async def test_status_endpoint_and_paid_state(pasarela, client, link, gateway):
    payment = await cash(pasarela)
    url = link(payment.id)
    status_url = url.replace("?t=", "/status?t=")
    first = await client.get(status_url)
    assert first.status_code == 200
    assert first.json() == {"state": "cash", "status": "pending"}
    assert first.headers["cache-control"] == "no-store"
    await deliver(client, gateway, payment)
    assert (await client.get(status_url)).json() == {"state": "paid", "status": "succeeded"}
    page = (await client.get(url)).text
    assert "¡Pago recibido!" in page
    assert 'data-state="paid"' in page
    assert "data-status-url" not in page                     # no more polling
    assert "cip-code" not in page


async def test_expired_state_offers_a_new_code_when_configured(pasarela, client, link, gateway):
    payment = await cash(pasarela, ref="pedido 7/ñ")
    await deliver(client, gateway, payment, "expired")
    page = (await client.get(link(payment.id))).text
    assert "El código venció" in page
    assert ('href="https://tienda.example.pe/reintentar?pedido=pedido%207%2F%C3%B1"'
            in page)
    assert "cip-code" not in page


async def test_expired_without_renew_url_has_no_link(pasarela, gateway, link):
    app = create_app(pasarela, pages=PageSettings(page_secret=SECRET))
    async with client_for(app) as client:
        payment = await cash(pasarela)
        await deliver(client, gateway, payment, "expired")
        page = (await client.get(link(payment.id))).text
    assert "El código venció" in page
    assert "Generar un nuevo código" not in page


async def test_pending_code_past_its_expiry_shows_expired(pasarela, client, clock):
    payment = await cash(pasarela)
    url = pay_link(payment.id, SECRET, timedelta(days=30), now=clock())
    clock.advance(timedelta(days=2))                          # fake default expiry: 24 h
    page = (await client.get(url)).text
    assert (await pasarela.get(payment.id)).status is Status.PENDING
    assert 'data-state="expired"' in page


async def test_wallet_qr_page(pasarela, client, link):
    payment = await cash(pasarela)
    action = ScanQr(qr_data="0002010102122637yape-qr-data", expires_at=payment.expires_at,
                    instructions={"es": ("Abre Yape y escanea.",), "en": ("Open Yape.",)})
    pasarela.store.update_payment(payment.id, expected_version=payment.version,
                                  next_action=action)
    page = (await client.get(link(payment.id))).text
    assert "paga desde Yape o Plin" in page
    assert 'role="img" aria-label="Código QR para pagar"' in page
    assert "<svg" in page
    assert "Abre Yape y escanea." in page
    assert 'data-state="qr"' in page


async def test_bank_transfer_page_shows_bank_account_reference_and_amount_to_transfer(
        pasarela, client, link):
    """A bank transfer shows the bank, holder, account (its label as the provider
    gives it), the reference to quote, the deadline, the provider's steps and link, and
    the amount to transfer (in the currency charged, here USD for a PEN price)."""
    payment = await cash(pasarela)
    action = BankTransfer(
        bank="BCP", amount=Money.of("40.00", "USD"), expires_at=payment.expires_at,
        account="00219300123456789012", account_label="CCI", holder="dLocal Peru SAC",
        reference="DL-778812",
        url="https://sandbox.dlocal.com/bank-transfer/T-1",
        instructions={"es": ("Entra a tu banca por internet.",),
                      "en": ("Open your online banking.",)})
    pasarela.store.update_payment(payment.id, expected_version=payment.version,
                                  next_action=action)
    page = (await client.get(link(payment.id))).text
    assert 'data-state="transfer"' in page
    assert "Transfiere el monto desde tu banco" in page
    assert '<dd class="bank">BCP</dd>' in page
    assert '<dd class="holder">dLocal Peru SAC</dd>' in page
    assert "<dt>CCI</dt>" in page
    assert 'value="00219300123456789012"' in page
    assert 'value="DL-778812"' in page
    assert "Entra a tu banca por internet." in page
    assert 'href="https://sandbox.dlocal.com/bank-transfer/T-1"' in page
    assert re.search(r'id="amount">[^<]*40\.00', page)
    assert 'id="expires"' in page
    english = (await client.get(link(payment.id),
                                headers={"Accept-Language": "en"})).text
    assert "Transfer the amount from your bank" in english
    assert "Open your online banking." in english


CULQI = "https://js.culqi.com/checkout-js"


async def with_checkout(pasarela, script_url=CULQI, **kw):
    payment = await cash(pasarela)
    action = OpenCheckout(
        provider="culqi", script_url=script_url,
        settings={"public_key": "pk_test_abc", "order": "ord_test_1", "amount": 14990,
                  "currency": "PEN", "title": "Audífonos"},
        expires_at=payment.expires_at,
        instructions={"es": ("Abre el checkout de Culqi.",), "en": ("Open Culqi's checkout.",)},
        **kw)
    pasarela.store.update_payment(payment.id, expected_version=payment.version,
                                  next_action=action)
    return payment


def directives(csp):
    return {part.split()[0]: part.split()[1:] for part in csp.split("; ")}


async def test_checkout_page_loads_exactly_the_checkout_script(pasarela, client, link):
    payment = await with_checkout(pasarela, cash_code="36338442")
    response = await client.get(link(payment.id))
    page = response.text
    assert 'data-state="checkout"' in page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == ["/pasarela-static/pay.js", CULQI, "/pasarela-static/checkout.js"]
    assert re.search(r"<script[^>]*>\s*[^<\s]", page) is None       # no inline code
    assert "style=" not in page
    assert 'id="open-checkout"' in page
    assert "Pagar con Culqi" in page
    assert "data-settings='{" in page
    assert "ord_test_1" in page
    assert "pk_test_abc" in page
    assert "Abre el checkout de Culqi." in page
    assert "36338442" in page
    assert "PagoEfectivo" in page
    assert f'id="checkout-link" href="/pay/{payment.id}?t=' in page
    # the policy adds Culqi's origin to script-src, frame-src, connect-src, nothing else
    csp = response.headers["content-security-policy"]
    base = directives(SECURITY_HEADERS["Content-Security-Policy"])
    now = directives(csp)
    assert set(now) - set(base) == {"frame-src"}
    assert now["frame-src"] == ["https://js.culqi.com"]
    for name, values in now.items():
        added = [v for v in values if v not in base.get(name, [])]
        if name in ("script-src", "connect-src", "frame-src"):
            assert added == ["https://js.culqi.com"], name
        else:
            assert added == [], name
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp


async def test_checkout_page_in_english(pasarela, client, link):
    payment = await with_checkout(pasarela)
    page = (await client.get(link(payment.id), headers={"accept-language": "en"})).text
    assert "Pay with Culqi" in page
    assert "Open Culqi&#39;s checkout." in page


@pytest.mark.parametrize("script_url", [
    "http://js.culqi.com/checkout-js", "javascript:alert(1)", "data:text/javascript,alert(1)",
    "https://user:pw@js.culqi.com/checkout-js", "//js.culqi.com/checkout-js", "checkout-js",
])
async def test_a_checkout_script_that_is_not_https_is_not_loaded(pasarela, client, link,
                                                                 script_url):
    payment = await with_checkout(pasarela, script_url=script_url)
    response = await client.get(link(payment.id))
    page = response.text
    assert 'data-state="checkout"' in page
    assert re.findall(r'<script src="([^"]+)"', page) == ["/pasarela-static/pay.js"]
    assert 'id="open-checkout"' not in page
    assert 'id="checkout-missing">' in page                   # shown, not hidden
    assert "Abre el checkout de Culqi." in page               # instructions and link stay
    assert 'id="checkout-link"' in page
    assert response.headers["content-security-policy"] == (
        SECURITY_HEADERS["Content-Security-Policy"])


def test_checkout_origin():
    assert checkout_origin("https://js.culqi.com/checkout-js") == "https://js.culqi.com"
    assert checkout_origin("https://js.culqi.com:8443/x?y=1") == "https://js.culqi.com:8443"
    assert checkout_origin("http://127.0.0.1:8802/checkout-js") == "http://127.0.0.1:8802"
    assert checkout_origin("http://localhost:9/x") == "http://localhost:9"
    assert checkout_origin("http://[::1]:9/x") == "http://[::1]:9"
    for refused in ("http://js.culqi.com/x", "ftp://js.culqi.com/x", "https:///x",
                    "https://a b.com/x", "https://js.culqi.com;script-src *",
                    "https://js.culqi.com:99999/x", "https://u@js.culqi.com/x"):
        assert checkout_origin(refused) is None, refused


async def test_other_pages_keep_the_policy(pasarela, client, link):
    payment = await cash(pasarela)
    response = await client.get(link(payment.id))
    assert response.headers["content-security-policy"] == (
        SECURITY_HEADERS["Content-Security-Policy"])
    js = await client.get("/pasarela-static/checkout.js")
    assert js.status_code == 200
    assert "CulqiCheckout" in js.text


async def test_card_needing_action_shows_the_next_step_and_no_secret(pasarela, client, link):
    order = make_order("pedido-card", metadata={"scenario": "pending"})
    payment = await pasarela.pay(order, method="card", idempotency_key="card-1")
    assert payment.status is Status.PENDING
    page = (await client.get(link(payment.id))).text
    assert 'data-state="card"' in page
    assert "Tu banco pide un paso más" in page
    assert payment.next_action.client_secret not in page
    assert "secret" not in page


# --- refusing ----------------------------------------------------------------------


async def test_tampered_expired_missing_and_unknown_links_are_the_same_404(
        pasarela, client, link, clock):
    payment = await cash(pasarela)
    good = link(payment.id, ttl=timedelta(hours=1))
    base, token = good.split("?t=")
    expiry, sig = token.split(".")
    other = await cash(pasarela, ref="pedido-otro")
    responses = {
        "tampered": await client.get(f"{base}?t={expiry}.{sig[:-2]}xx"),
        "extended": await client.get(f"{base}?t={int(expiry) + 86400}.{sig}"),
        "missing": await client.get(base),
        "other payment's token": await client.get(f"/pay/{other.id}?t={token}"),
        "no such payment": await client.get(link("01JXXXXXXXXXXXXXXXXXXXXXXX")),
        "odd id": await client.get(link("..%2Fadmin")),
    }
    clock.advance(timedelta(hours=2))
    responses["expired"] = await client.get(good)
    bodies = {r.text for r in responses.values()}
    assert {r.status_code for r in responses.values()} == {404}
    assert len(bodies) == 1                                    # nothing tells them apart
    assert payment.id not in bodies.pop()
    status = await client.get(f"{base}/status?t={expiry}.{sig[:-2]}xx")
    assert status.status_code == 404
    assert status.json() == {"error": "not found"}


async def test_pages_are_off_unless_configured(pasarela, monkeypatch, link):
    monkeypatch.delenv("PASARELA_PAGE_SECRET", raising=False)
    monkeypatch.delenv("PASARELA_ADMIN_TOKEN", raising=False)
    payment = await cash(pasarela)
    async with client_for(create_app(pasarela)) as client:
        assert (await client.get(link(payment.id))).status_code == 404
        assert (await client.get("/admin")).status_code == 404
        assert (await client.get("/pasarela-static/pay.js")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


async def test_environment_turns_the_page_on(pasarela, monkeypatch, link):
    monkeypatch.setenv("PASARELA_PAGE_SECRET", SECRET)
    monkeypatch.delenv("PASARELA_ADMIN_TOKEN", raising=False)
    payment = await cash(pasarela)
    async with client_for(create_app(pasarela)) as client:
        assert (await client.get(link(payment.id))).status_code == 200
        assert (await client.get("/admin")).status_code == 404


# --- language ----------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    (None, "es"), ("", "es"), ("es-PE,es;q=0.9", "es"), ("en-US,en;q=0.9", "en"),
    ("fr-FR, en;q=0.5", "en"), ("es-PE,en;q=0.8", "es"), ("en;q=0.2, es;q=0.9", "es"),
    ("de, fr", "es"), ("en;q=0", "es"), ("EN", "en"), ("en;q=abc", "es"), ("*", "es"),
    ("en, es", "en"), ("es, en", "es"),
])
def test_negotiate_language(header, expected):
    assert negotiate_language(header) == expected


async def test_english_by_accept_language(pasarela, client, link):
    payment = await cash(pasarela)
    response = await client.get(link(payment.id), headers={"Accept-Language": "en-US,en;q=0.9"})
    page = response.text
    assert '<html lang="en">' in page
    assert "Amount to pay" in page
    assert "Lima time" in page
    assert "S/149.90" in page or "S/ 149.90" in page or "PEN" in page
    assert f"Pay code {payment.next_action.code}." in page
    assert "Paga el código" not in page
    not_found = await client.get("/pay/nothing?t=1.x", headers={"Accept-Language": "en"})
    assert "Page not found" in not_found.text


# --- escaping and headers -----------------------------------------------------------------


async def test_order_text_is_escaped(pasarela, client, link):
    payment = await cash(pasarela, ref="<b>ref</b>",
                         description='<script>alert("x")</script><img src=x onerror=y>')
    page = (await client.get(link(payment.id))).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;b&gt;ref&lt;/b&gt;" in page


def check_security_headers(response):
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_security_headers_everywhere(pasarela, client, link):
    payment = await cash(pasarela)
    for url in (link(payment.id), link(payment.id).replace("?t=", "/status?t="),
                f"/pay/{payment.id}?t=bad", "/pasarela-static/pasarela.css",
                "/pasarela-static/pay.js"):
        response = await client.get(url)
        check_security_headers(response)
    css = await client.get("/pasarela-static/pasarela.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    js = await client.get("/pasarela-static/pay.js")
    assert "javascript" in js.headers["content-type"]


async def test_mounted_under_a_prefix_links_stay_inside(pasarela, settings, clock):
    host = Starlette(routes=[Mount("/pasarela", create_app(pasarela, pages=settings))])
    payment = await cash(pasarela)
    url = pay_link(payment.id, SECRET, base_url="/pasarela", now=clock())
    async with client_for(host) as client:
        page = (await client.get(url)).text
        assert 'href="/pasarela/pasarela-static/pasarela.css"' in page
        assert f'data-status-url="/pasarela/pay/{payment.id}/status?t=' in page
        assert (await client.get("/pasarela/pasarela-static/pay.js")).status_code == 200


async def test_the_page_names_the_network_and_who_collects_it(pasarela, client, link):
    payment = await cash(pasarela)
    assert payment.network == "pagoefectivo"
    es = (await client.get(link(payment.id))).text
    line = "Código PagoEfectivo, cobrado por Fake provider"
    assert f'<p class="network" id="network">{line}</p>' in es
    en = (await client.get(link(payment.id), headers={"accept-language": "en"})).text
    assert "PagoEfectivo code, collected by Fake provider" in en
    assert 'id="fx"' not in es  # charged in the price's currency: no rate line


async def test_a_payment_charged_in_another_currency_shows_the_rate(pasarela, client, link):
    from decimal import Decimal

    payment = await cash(pasarela)
    pasarela.store.update_payment(payment.id, expected_version=payment.version,
                                  charged=Money.of("40.00", "USD"), fx_rate=Decimal("0.266845"))
    page = (await client.get(link(payment.id))).text
    assert "tipo de cambio: 1 PEN = 0.266845 USD" in page
    assert "US$" in page or "USD" in page
