"""Console access in a real browser (headless Chromium through Selenium, as the pages'
browser tests): a viewer signs in with the form and is refused a refund, with the
reason; an operator whose role is lowered while the refund form is open is refused
when she confirms it. Skipped with the reason when Chromium is missing, except under
``CI=true``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from pasarela.api import Pasarela
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import serve_app
from pasarela.web.app import create_app
from pasarela.web.console_auth import Role, hash_password
from pasarela.web.pay_page import PageSettings
from tests.pages.test_browser import CHROMEDRIVER, CHROMIUM, artifacts, start_chromium, wait_for


PASSWORD = "colibrí-de-los-andes-42"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not found (apt-get install -y chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


@pytest.fixture
def console(tmp_path: Path) -> Iterator[dict[str, Any]]:
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = {"store": {"url": url}, "events": {"dispatch": "worker"},
              "providers": {"fake": {"max_retries": 0}}}
    p = Pasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                 transport=FakeGateway().transport(), store=Store(url, upgrade=True))
    for name, role in (("vera", Role.VIEWER), ("omar", Role.OPERATOR)):
        p.store.add_operator("", name, int(role), hash_password(PASSWORD, CHEAP))
    settings = PageSettings(page_secret="page-secret-for-access-browser-0123",
                            admin_token="admin-token-for-access-browser-4567")
    with serve_app(create_app(p, pages=settings)) as base_url:
        driver = start_chromium(tmp_path)
        driver.set_window_size(1280, 1400)
        try:
            yield {"pasarela": p, "url": base_url, "browser": driver}
        finally:
            driver.quit()
    p.close()


def _card(p: Pasarela, ref: str) -> Any:
    order = Order(reference=ref, amount=Money.of("100.00", "PEN"), description="Audífonos",
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe"))
    payment = p.pay(order, method="card", idempotency_key=ref)
    assert payment.status is Status.SUCCEEDED
    return payment


def _sign_in(browser: Any, base: str, name: str) -> None:
    browser.get(f"{base}/admin")
    browser.find_element("id", "name").send_keys(name)
    browser.find_element("id", "password").send_keys(PASSWORD)
    browser.find_element("css selector", "form.login button").click()
    wait_for(browser, lambda d: d.find_elements("id", "total"))     # the dashboard


def test_a_viewer_signs_in_and_is_refused_a_refund(console) -> None:
    p, base, browser = console["pasarela"], console["url"], console["browser"]
    payment = _card(p, "tarjeta-b1")
    _sign_in(browser, base, "vera")
    browser.get(f"{base}/admin/payments/{payment.id}")
    assert "needs the operator role" in browser.find_element("id", "action-refund").text
    browser.get(f"{base}/admin/payments/{payment.id}/actions/refund")
    alert = browser.find_element("css selector", "p.error[role=alert]")
    assert alert.text == "This needs the operator role; vera is a viewer."
    assert not browser.find_elements("id", "confirm-form")
    browser.save_screenshot(str(artifacts() / "console-viewer-refused.png"))
    assert p.get(payment.id).refunded is None


def test_an_operator_lowered_to_viewer_is_refused_when_she_confirms(console) -> None:
    p, base, browser = console["pasarela"], console["url"], console["browser"]
    payment = _card(p, "tarjeta-b2")
    _sign_in(browser, base, "omar")
    browser.get(f"{base}/admin/payments/{payment.id}/actions/refund")
    browser.find_element("id", "amount").send_keys("30.00")
    p.store.set_operator_role("", "omar", int(Role.VIEWER))        # an admin's change
    browser.find_element("id", "confirm").click()
    alert = wait_for(browser, lambda d: d.find_elements("css selector",
                                                        "p.error[role=alert]"))[0]
    assert alert.text == "This needs the operator role; omar is a viewer."
    assert p.get(payment.id).refunded is None
    [row] = [r for r in p.store.operator_audit_log("") if r["outcome"] == "refused"]
    assert (row["operator"], row["role"]) == ("omar", "viewer")
    assert row["target"] == f"/admin/payments/{payment.id}/actions/refund"
    assert row["detail"]["needed"] == "operator"
