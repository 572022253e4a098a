"""An alert appears on the console when a provider's notifications stop arriving
while payments wait: the PagoEfectivo sandbox's courier loses every notification
(its fault control), a paid CIP stays pending, the alerts' evaluation (what
``pasarela worker`` runs) opens ``notifications_silent``, and the operator sees it
in headless Chromium (Selenium, as the other browser tests), in English and Chinese;
``/metrics`` has it too. Skipped with the reason when Chromium or its driver is
missing, except under ``CI=true``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pasarela_pagoefectivo
import pytest
from pasarela_pagoefectivo.sandbox import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, create_app

from pasarela.api import Pasarela
from pasarela.engine.alerts import AlertJob
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app as web_app
from pasarela.web.pay_page import PageSettings


CHROMIUM = os.environ.get("PASARELA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PASARELA_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
ADMIN = "admin-token-for-the-alerts-browser-test"


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
    options.add_argument("--window-size=1280,1400")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def order(ref: str) -> Order:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    return Order(reference=ref, amount=Money.of("59.90", "PEN"), description="Zapatillas",
                 customer=customer)


def wait_for(check: Any, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_alert_appears_when_the_sandbox_stops_notifying(tmp_path, browser,
                                                            pasarela_sandbox):
    served = pasarela_sandbox(create_app, seed=21, webhook_retry_delay=0.05)
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config: dict[str, Any] = {
        "store": {"url": url}, "events": {"dispatch": "worker"},
        "alerts": {"notification_delay": "30m", "log": False},
        "providers": {"pagoefectivo": {
            "environment": "sandbox", "base_url": served.url, "access_key": "env:PE_ACCESS_KEY",
            "secret_key": "env:PE_SECRET_KEY", "service_id": 1028, "expiry": "48h",
            "timeout": 2.0, "max_retries": 0}},
    }
    env = {"PE_ACCESS_KEY": DEFAULT_ACCESS_KEY, "PE_SECRET_KEY": DEFAULT_SECRET_KEY}
    p = Pasarela(config, plugins=[pasarela_pagoefectivo], load_entrypoints=False, env=env,
                 store=Store(url, upgrade=True))
    p.service.sleep_scale = 0
    control = httpx.Client(base_url=served.url, timeout=10)
    try:
        with serve_app(web_app(p, pages=PageSettings(admin_token=ADMIN))) as base:
            control.post("/_control/config", json={
                "webhook_url": f"{base}/webhooks/pagoefectivo"}).raise_for_status()
            # The callback works: a paid CIP is notified and succeeds.
            first = p.pay(order("pedido-7001"), method="cash", idempotency_key="pedido-7001")
            control.post(f"/_control/cips/{first.provider_reference}/pay").raise_for_status()
            wait_for(lambda: p.get(first.id).status is Status.SUCCEEDED)
            browser.get(f"{base}/admin/alerts")
            browser.find_element("id", "token").send_keys(ADMIN)
            browser.find_element("css selector", "form.login button").click()
            wait_for(lambda: browser.find_elements("id", "total"))  # signed in: the dashboard
            browser.get(f"{base}/admin/alerts")
            assert browser.find_element("id", "no-alerts").is_displayed()
            # The callback stops: every notification is lost from now on.
            control.post("/_control/config", json={"lose_webhooks": 1.0}).raise_for_status()
            paid = p.pay(order("pedido-7002"), method="cash", idempotency_key="pedido-7002")
            p.pay(order("pedido-7003"), method="cash", idempotency_key="pedido-7003")
            control.post(f"/_control/cips/{paid.provider_reference}/pay").raise_for_status()
            served.sandbox.courier.drain(timeout=10)
            log = control.get("/_control/webhooks").json()
            assert "lost" in str(log)
            assert p.get(paid.id).status is Status.PENDING  # paid, but nobody told us
            p.dispatch_outbox()  # the worker runs: no outbox lag
            # An hour later the worker's alerts job evaluates (its clock moved on).
            later = p.service.clock() + timedelta(hours=1)
            job = AlertJob(p.store, p.config.alerts, clock=lambda: later,
                           hook=p.plugins.alert)
            assert job() == 1
            browser.get(f"{base}/admin/alerts")
            rows = browser.find_elements("css selector",
                                         '#firing tr[data-kind="notifications_silent"]')
            assert len(rows) == 1
            text = rows[0].text
            assert "pagoefectivo" in text
            assert "2 payment(s) wait" in text
            assert "/webhooks/pagoefectivo" in text
            assert browser.find_element("id", "firing-count").text == "1"
            browser.save_screenshot(str(tmp_path / "alerts.png"))
            browser.get(f"{base}/admin/alerts?lang=zh-CN")
            assert browser.find_element("id", "h-firing").text.startswith("正在触发")
            assert "付款等待中却未收到通知" in browser.find_element("id", "firing").text
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert ('pasarela_alerts_firing{kind="notifications_silent",merchant="",'
                    'subject="pagoefectivo"} 1.0') in metrics
    finally:
        control.close()
        served.sandbox.courier.drain(timeout=10)
        p.close()
