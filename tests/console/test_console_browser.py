"""The console in a real browser (Debian's headless Chromium through Selenium, as
``tests/pages/test_browser.py``): find a payment by its CIP, its order reference and a
masked phone; refund part of a card payment; extend a CIP at the PagoEfectivo
sandbox; resolve a reconciliation difference. Skipped with the reason when Chromium
or its driver is missing, except under ``CI=true``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pasarela_pagoefectivo
import pytest
import sqlalchemy as sa
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, create_app

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.store import Store
from pasarela.store.reconcile_schema import reconciliation_results
from pasarela.store.sealing import Sealer
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import serve_app
from pasarela.testing.sandbox import ServedSandbox
from pasarela.timezones import LIMA
from pasarela.web.app import create_app as web_app
from pasarela.web.pay_page import PageSettings

from .console_fixtures import ADMIN, KEY, SECRET, order


CHROMIUM = os.environ.get("PASARELA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PASARELA_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def _require_browser() -> None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            reason = f"{path} not found (apt-get install -y chromium chromium-driver)"
            if os.environ.get("CI") == "true":
                pytest.fail(f"browser tests must run in CI: {reason}")
            pytest.skip(reason)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1280,1600")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture
def stack(tmp_path: Path, pasarela_sandbox: Callable[..., ServedSandbox]
          ) -> Iterator[dict[str, Any]]:
    """A sync pasarela over the fake gateway and the PagoEfectivo sandbox, with a
    [privacy] key, served with the console on; signed in through the browser."""
    _require_browser()
    served = pasarela_sandbox(create_app, seed=11, webhook_retry_delay=0.05)
    gateway = FakeGateway()
    exits = ExitStack()
    fake_url = exits.enter_context(serve_app(gateway.asgi()))
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config: dict[str, Any] = {
        "store": {"url": url}, "events": {"dispatch": "worker"},
        "privacy": {"keys": [KEY]},
        "providers": {
            "fake": {"max_retries": 0, "base_url": fake_url},
            "pagoefectivo": {"environment": "sandbox", "base_url": served.url,
                             "access_key": "env:PE_ACCESS_KEY",
                             "secret_key": "env:PE_SECRET_KEY", "service_id": 1028,
                             "expiry": "48h", "timeout": 2.0, "max_retries": 0}},
    }
    env = {"PE_ACCESS_KEY": DEFAULT_ACCESS_KEY, "PE_SECRET_KEY": DEFAULT_SECRET_KEY}
    p = Pasarela(config, plugins=[FakePlugin(), pasarela_pagoefectivo], load_entrypoints=False,
                 env=env, store=Store(url, upgrade=True, sealer=Sealer.from_keys([KEY])))
    p.service.sleep_scale = 0
    settings = PageSettings(page_secret=SECRET, admin_token=ADMIN)
    with serve_app(web_app(p, pages=settings)) as base_url:
        yield {"pasarela": p, "url": base_url, "sandbox": served}
    served.sandbox.courier.drain(timeout=10)
    p.close()
    exits.close()


def wait_for(driver: Any, condition: Any, timeout: float = 15) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def sign_in(browser: Any, base: str) -> None:
    browser.get(f"{base}/admin/payments")
    browser.find_element("id", "token").send_keys(ADMIN)
    browser.find_element("css selector", "form.login button").click()
    wait_for(browser, lambda d: d.find_elements("id", "total"))


def search(browser: Any, base: str, **fields: str) -> list[str]:
    browser.get(f"{base}/admin/payments")
    if set(fields) - {"q"}:
        browser.find_element("css selector", "#search summary").click()
    for name, value in fields.items():
        box = browser.find_element("id", name)
        box.clear()
        box.send_keys(value)
    browser.find_element("id", "search-button").click()
    wait_for(browser, lambda d: d.find_elements("id", "results")
             or d.find_elements("id", "no-results"))
    links = browser.find_elements("css selector", "#results tbody td:first-child a")
    return [a.text for a in links]


def confirm(browser: Any, base: str, payment_id: str, action: str,
            fill: Callable[[Any], None] | None = None) -> None:
    browser.get(f"{base}/admin/payments/{payment_id}")
    browser.find_element("css selector", f"#action-{action} a").click()
    wait_for(browser, lambda d: d.find_elements("id", "confirm"))
    if fill is not None:
        fill(browser)
    browser.find_element("id", "confirm").click()
    wait_for(browser, lambda d: d.find_elements("id", "done")
             or d.find_elements("id", "failed") or d.find_elements("id", "refused"))


def test_find_a_payment_by_cip_order_reference_and_masked_phone(stack, browser):
    p, base = stack["pasarela"], stack["url"]
    wanted = p.pay(order("pedido-5001", phone="+51 955 123 456"), method="cash",
                   provider="pagoefectivo", idempotency_key="pedido-5001")
    p.pay(order("pedido-5002"), method="cash", provider="pagoefectivo",
          idempotency_key="pedido-5002")
    cip = wanted.provider_reference
    assert cip
    sign_in(browser, base)
    assert search(browser, base, q=cip) == [wanted.id]
    assert search(browser, base, q="pedido-5001") == [wanted.id]
    assert search(browser, base, phone="955123456") == [wanted.id]
    browser.find_element("link text", wanted.id).click()
    wait_for(browser, lambda d: d.find_elements("id", "payment-id"))
    assert browser.find_element("id", "customer").text.startswith("+51 ••• ••• 456")
    assert "955123456" not in browser.page_source
    assert search(browser, base, q="pedido-nada") == []


def test_refund_part_of_a_card_payment(stack, browser):
    p, base = stack["pasarela"], stack["url"]
    card = p.pay(order("tarjeta-5003", amount="200.00"), method="card", provider="fake",
                 idempotency_key="tarjeta-5003")
    assert card.status is Status.SUCCEEDED
    sign_in(browser, base)
    confirm(browser, base, card.id, "refund",
            lambda b: (b.find_element("id", "amount").send_keys("50.00"),
                       b.find_element("id", "reason").send_keys("una talla menos")))
    assert browser.find_element("id", "status").text.startswith("partially_refunded")
    assert "S/ 50.00" in browser.find_element("id", "refunds").text.replace("\xa0", " ")
    refunded = p.get(card.id)
    assert (refunded.status, str(refunded.refunded.amount)) == (Status.PARTIALLY_REFUNDED,
                                                                "50.00")


def test_extend_a_cip(stack, browser):
    p, base = stack["pasarela"], stack["url"]
    cip = p.pay(order("pedido-5004"), method="cash", provider="pagoefectivo",
                idempotency_key="pedido-5004")
    until = (datetime.now(LIMA) + timedelta(days=4)).replace(second=0, microsecond=0)
    sign_in(browser, base)
    confirm(browser, base, cip.id, "extend", lambda b: b.execute_script(
        "document.getElementById('until').value = arguments[0]",
        until.strftime("%Y-%m-%dT%H:%M")))
    assert browser.find_elements("id", "done")
    assert browser.find_element("id", "expires").text == until.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S")
    assert p.get(cip.id).expires_at == until
    card = p.pay(order("tarjeta-5005"), method="card", provider="fake",
                 idempotency_key="tarjeta-5005")
    browser.get(f"{base}/admin/payments/{card.id}")
    refused = browser.find_element("id", "action-extend").text
    assert "expiry cannot be moved" in refused or "does not support extend" in refused


def test_resolve_a_reconciliation_difference(stack, browser):
    p, base = stack["pasarela"], stack["url"]
    with p.store.engine.begin() as conn:  # what a run recorded: one line matching nothing
        conn.execute(sa.insert(reconciliation_results).values(
            run_key="pagoefectivo-2026-12-01", item_key="line-7", provider="pagoefectivo",
            category="missing_here", line_no=7, payment_id=None, provider_reference="9999001",
            expected="", actual="PEN 35.00", detail="no payment of ours", resolved=False,
            healed=False, created_at=datetime.now(UTC)))
    sign_in(browser, base)
    browser.get(f"{base}/admin/reconciliation")
    browser.find_element("link text", "pagoefectivo-2026-12-01").click()
    wait_for(browser, lambda d: d.find_elements("id", "differences"))
    row = browser.find_element("css selector", "#differences tbody tr")
    row.find_element("link text", "accepted").click()
    wait_for(browser, lambda d: d.find_elements("id", "note"))
    browser.find_element("id", "note").send_keys("pago de otra tienda, devuelto por PagoEfectivo")
    browser.find_element("id", "confirm").click()
    wait_for(browser, lambda d: d.find_elements("id", "done"))
    resolution = browser.find_element("css selector", "#differences .resolution").text
    assert resolution.startswith("accepted · @admin-token")
    [difference] = p.store.differences("pagoefectivo-2026-12-01")
    assert (difference.resolved, difference.action) == (True, "accepted")
    audit = [r for r in p.store.operator_audit_log("") if r["action"] == "resolve:accepted"]
    assert audit[0]["outcome"] == "done"
