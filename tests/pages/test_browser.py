"""The pages in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, against the app served by uvicorn on loopback.

Skipped with the reason when Chromium or its driver is missing, except under
``CI=true``, where that is a failure (install them with
``apt-get install -y chromium chromium-driver``). Screenshots go to
``$PASARELA_ARTIFACTS/pages`` (default: ``<tmp>/pasarela-artifacts/pages``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.next_action import OpenCheckout, ScanQr
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app
from pasarela.web.pay_page import SECURITY_HEADERS, PageSettings, pay_link

from .conftest import ADMIN, SECRET, make_order


CHROMIUM = os.environ.get("PASARELA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PASARELA_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not found (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


def artifacts() -> Path:
    root = Path(os.environ.get("PASARELA_ARTIFACTS")
                or Path(tempfile.gettempdir()) / "pasarela-artifacts")
    out = root / "pages"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sync pasarela over the fake gateway (real time), served with the pages on."""
    _require_browser()
    gateway = FakeGateway()
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = {"store": {"url": url}, "events": {"dispatch": "worker"},
              "providers": {"fake": {"max_retries": 0,
                                     "fees": {"percent": "3.5", "fixed": "PEN 0.50"}}}}
    p = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                 transport=gateway.transport(), store=Store(url, upgrade=True))
    settings = PageSettings(page_secret=SECRET, admin_token=ADMIN, poll_seconds=1,
                            renew_url="https://tienda.example.pe/reintentar?pedido={order_reference}")
    with serve_app(create_app(p, pages=settings)) as base_url:
        yield {"pasarela": p, "gateway": gateway, "url": base_url}
    p.close()


def start_chromium(tmp_path: Path, *, javascript: bool = True) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=412,1500")              # a phone's width
    options.add_argument("--lang=es-PE")
    prefs: dict[str, Any] = {"intl.accept_languages": "es-PE,es"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    driver = start_chromium(tmp_path)
    yield driver
    driver.quit()


def wait_for(driver: Any, condition: Any, timeout: float = 15) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def state_is(state: str) -> Any:
    def check(driver: Any) -> bool:
        elements = driver.find_elements("id", "pay")
        return bool(elements) and elements[0].get_attribute("data-state") == state

    return check


def settle(stack: dict[str, Any], payment: Any, status: str = "succeeded") -> None:
    """The customer pays (or the code expires): the gateway's webhook reaches the app."""
    headers, body = stack["gateway"].settle(payment.provider_reference, status)
    response = httpx.post(f"{stack['url']}/webhooks/fake", headers=headers,
                          content=body, timeout=10)
    assert response.status_code == 200


def page_url(stack: dict[str, Any], payment: Any) -> str:
    return pay_link(payment.id, SECRET, timedelta(hours=2), base_url=stack["url"])


def test_cip_page_counts_down_and_turns_paid(stack, browser):
    p = stack["pasarela"]
    payment = p.pay(make_order("pedido-1042"), method="cash", idempotency_key="pedido-1042")
    code = payment.next_action.code
    browser.get(page_url(stack, payment))
    assert browser.find_element("tag name", "html").get_attribute("lang") == "es"
    field = browser.find_element("id", "cip-code")
    assert field.is_displayed()
    assert field.get_attribute("value") == code
    amount = browser.find_element("id", "amount")
    assert amount.is_displayed()
    assert amount.text.replace("\xa0", " ") == "S/ 149.90"
    countdown = browser.find_element("id", "countdown")
    wait_for(browser, lambda d: re.fullmatch(r"\d{2}:\d{2}:\d{2}", countdown.text))
    assert countdown.is_displayed()
    first = countdown.text
    assert first.startswith(("23:", "24:"))  # the fake's 24 h expiry
    wait_for(browser, lambda d: countdown.text != first, timeout=5)   # it ticks
    qr = browser.find_element("css selector", ".qr-image")
    assert qr.get_attribute("role") == "img"
    assert code in qr.get_attribute("aria-label")
    drawn = browser.execute_script(
        "return document.querySelector('.qr-image svg path').getBoundingClientRect().width")
    assert drawn >= 150                                          # the QR itself is scaled up
    assert browser.find_element("id", "auto-note").is_displayed()
    copy = browser.find_element("css selector", "button.copy")
    assert copy.is_displayed()
    assert copy.text == "Copiar código"
    shot = artifacts() / "pay-cip-pending.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    settle(stack, payment)
    wait_for(browser, state_is("paid"))                          # by polling, no reload by hand
    assert "¡Pago recibido!" in browser.find_element("id", "state-title").text
    assert not browser.find_elements("id", "cip-code")
    browser.save_screenshot(str(artifacts() / "pay-cip-paid.png"))
    assert p.get(payment.id).status is Status.SUCCEEDED


def test_cip_page_turns_expired_with_a_new_code_link(stack, browser):
    p = stack["pasarela"]
    payment = p.pay(make_order("pedido-1043"), method="cash", idempotency_key="pedido-1043")
    browser.get(page_url(stack, payment))
    wait_for(browser, state_is("cash"))
    settle(stack, payment, "expired")
    wait_for(browser, state_is("expired"))
    link = browser.find_element("link text", "Generar un nuevo código")
    assert link.get_attribute("href") == (
        "https://tienda.example.pe/reintentar?pedido=pedido-1043")
    browser.save_screenshot(str(artifacts() / "pay-cip-expired.png"))


def test_wallet_qr_page_renders_a_scan_qr_action(stack, browser):
    """A ScanQr next action (an adapter that has a payable QR payload) still renders."""
    p = stack["pasarela"]
    payment = p.pay(make_order("pedido-1044"), method="cash", idempotency_key="pedido-1044")
    action = ScanQr(qr_data="0002010102122637yape-interoperable-qr", expires_at=payment.expires_at)
    p.store.update_payment(payment.id, expected_version=payment.version, next_action=action)
    browser.get(page_url(stack, payment))
    lead = browser.find_element("css selector", ".qr .lead")
    assert "paga desde Yape o Plin" in lead.text
    drawn = browser.execute_script(
        "return document.querySelector('.qr-image svg path').getBoundingClientRect().width")
    assert drawn >= 150                                           # readable on a phone
    settle(stack, payment)
    wait_for(browser, state_is("paid"))


@pytest.fixture
def yape_stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A sync pasarela whose Yape provider talks to the Yape sandbox (Culqi) on loopback;
    the sandbox's webhooks reach the app, which serves the pages."""
    _require_browser()
    import pasarela_yape
    from pasarela_yape.sandbox import DEFAULT_PUBLIC_KEY, DEFAULT_SECRET_KEY
    from pasarela_yape.sandbox import create_app as yape_sandbox

    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    with serve_app(yape_sandbox(public_key=DEFAULT_PUBLIC_KEY,
                                secret_key=DEFAULT_SECRET_KEY)) as sandbox_url:
        config = {"store": {"url": url}, "events": {"dispatch": "worker"},
                  "providers": {"yape": {"base_url": sandbox_url, "max_retries": 0,
                                         "public_key": DEFAULT_PUBLIC_KEY,
                                         "secret_key": DEFAULT_SECRET_KEY}}}
        p = Pasarela(config, plugins=[pasarela_yape], load_entrypoints=False,
                     store=Store(url, upgrade=True))
        settings = PageSettings(page_secret=SECRET, poll_seconds=1)
        with serve_app(create_app(p, pages=settings)) as base_url:
            httpx.post(f"{sandbox_url}/_control/config",
                       json={"webhook_url": f"{base_url}/webhooks/yape"},
                       timeout=10).raise_for_status()
            yield {"pasarela": p, "url": base_url, "sandbox": sandbox_url}
        p.close()


def test_yape_qr_page_opens_culqis_checkout_and_turns_paid(yape_stack, browser):
    """The page of a wallet QR order loads exactly the checkout script (the sandbox's
    stand-in for Culqi's), its CSP allows that origin and nothing else new, and paying
    in the checkout turns the page paid (the sandbox's webhook, the page's polling)."""
    p = yape_stack["pasarela"]
    payment = p.pay(make_order("pedido-1044", amount="59.90"), method="wallet",
                    idempotency_key="pedido-1044", flow="qr")
    assert payment.status is Status.PENDING
    action = payment.next_action
    assert isinstance(action, OpenCheckout)
    script = f"{yape_stack['sandbox']}/checkout-js"
    assert action.script_url == script
    url = page_url(yape_stack, payment)

    csp = httpx.get(url, timeout=10).headers["content-security-policy"]
    base = dict(part.split(" ", 1) for part in SECURITY_HEADERS[
        "Content-Security-Policy"].split("; "))
    now = dict(part.split(" ", 1) for part in csp.split("; "))
    origin = yape_stack["sandbox"]
    assert now["script-src"] == f"{base['script-src']} {origin}"
    assert now["connect-src"] == f"{base['connect-src']} {origin}"
    assert now["frame-src"] == origin
    assert {k: v for k, v in now.items() if k not in ("script-src", "connect-src",
                                                       "frame-src")} == {
        k: v for k, v in base.items() if k not in ("script-src", "connect-src")}

    browser.get(url)
    wait_for(browser, state_is("checkout"))
    button = browser.find_element("id", "open-checkout")
    wait_for(browser, lambda d: button.is_displayed())
    assert button.text == "Pagar con Culqi"
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
        ".filter(function (n) { return n.indexOf('.css') < 0; })")
    outside = [name for name in loaded if not name.startswith(yape_stack["url"])]
    assert outside == [script]                              # exactly the checkout script
    assert "Billeteras móviles" in browser.find_element("id", "checkout").text
    browser.save_screenshot(str(artifacts() / "pay-yape-checkout.png"))

    button.click()
    frame = wait_for(browser, lambda d: d.find_elements("id", "culqi-sandbox-checkout"))[0]
    browser.switch_to.frame(frame)
    assert payment.provider_reference in browser.find_element("id", "order-id").text
    assert browser.find_element("id", "order-amount").text == "S/ 59.90"
    browser.find_element("id", "pay-plin").click()
    browser.switch_to.default_content()
    wait_for(browser, state_is("paid"))
    assert "¡Pago recibido!" in browser.find_element("id", "state-title").text
    browser.save_screenshot(str(artifacts() / "pay-yape-paid.png"))
    assert p.get(payment.id).status is Status.SUCCEEDED


def test_dashboard_login_and_counts_change(stack, browser):
    p = stack["pasarela"]
    browser.set_window_size(1280, 1600)
    base = stack["url"]
    browser.get(f"{base}/admin")
    browser.find_element("id", "token").send_keys(ADMIN)
    browser.find_element("css selector", "form.login button").click()
    wait_for(browser, lambda d: d.find_elements("id", "total"))
    before = int(browser.find_element("id", "total").text)
    paid = p.pay(make_order("pedido-2001"), method="cash", idempotency_key="pedido-2001")
    p.pay(make_order("pedido-2002"), method="card", idempotency_key="pedido-2002")
    p.pay(make_order("pedido-2003", metadata={"scenario": "timeout"}), method="cash",
          idempotency_key="pedido-2003")
    settle(stack, paid)
    browser.get(f"{base}/admin")
    assert int(browser.find_element("id", "total").text) == before + 3
    assert browser.find_elements("css selector", "figure svg")
    browser.save_screenshot(str(artifacts() / "admin-dashboard.png"))
    browser.find_element("css selector", "#attention button").click()   # sync now
    # The console speaks the page's language (es-PE here): the status line by its id.
    wait_for(browser, lambda d: d.find_elements("id", "done"))
    assert browser.find_element("id", "done").text == "Sincronizado con el proveedor."
    assert browser.find_element("id", "status").text.startswith("pending")
    browser.save_screenshot(str(artifacts() / "admin-payment.png"))


def test_cip_page_is_complete_without_javascript(stack, tmp_path):
    p = stack["pasarela"]
    payment = p.pay(make_order("pedido-1045"), method="cash", idempotency_key="pedido-1045")
    driver = start_chromium(tmp_path, javascript=False)
    try:
        driver.get(page_url(stack, payment))
        assert driver.find_element("id", "cip-code").get_attribute("value") == (
            payment.next_action.code)
        assert driver.find_element("id", "amount").text.replace("\xa0", " ") == "S/ 149.90"
        assert "hora de Lima" in driver.find_element("css selector", ".expiry").text
        assert not driver.find_element("id", "countdown").is_displayed()   # needs the script
        assert not driver.find_element("css selector", "button.copy").is_displayed()
        assert not driver.find_element("id", "auto-note").is_displayed()  # no false promise
        assert driver.find_element("css selector", ".qr-image svg").is_displayed()
        driver.save_screenshot(str(artifacts() / "pay-cip-no-js.png"))
        settle(stack, payment)
        driver.find_element("link text", "Actualizar").click()        # reload by hand
        assert driver.find_element("id", "pay").get_attribute("data-state") == "paid"
    finally:
        driver.quit()
