"""A merchant's branding on the customer's page: its name, logo and colours, from
``[merchants.NAME]`` (``display_name``, ``logo_url`` or ``logo_file``, ``colour``,
``accent``), within the page's Content-Security-Policy (no ``unsafe-inline``: a
stylesheet of the app's own; a logo served by the app, or its https origin added to
``img-src`` of that merchant's pages only). Bad values are configuration errors naming
the field. In headless Chromium too: the brand colour reaches the button, and the
browser reports no policy violation."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pasarela.api import Pasarela, validate
from pasarela.config import InvalidConfigError, load_config
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.testing.helpers import ManualClock, serve_app
from pasarela.web.app import create_app
from pasarela.web.branding import Branding, readable_on, stylesheet
from pasarela.web.pay_page import SECURITY_HEADERS, PageSettings, pay_link


SECRET = "page-secret-0123456789abcdef0123"


def _png() -> bytes:
    """A valid 1x1 PNG (one opaque pixel)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x1a\x7f\x5a\xff")) + chunk(b"IEND", b""))


PNG = _png()


def _config(url: str, logo: Path) -> dict[str, Any]:
    return {
        "store": {"url": url},
        "providers": {"fake": {"max_retries": 0}},
        "merchants": {
            "rosa": {"display_name": "Bodega Rosa", "colour": "#f4d03f", "accent": "#1a5276",
                     "logo_file": str(logo), "providers": {"fake": {"max_retries": 0}}},
            "inca": {"display_name": "Librería Inca", "colour": "#1a7f5a",
                     "logo_url": "https://cdn.inca.example/logo.png",
                     "providers": {"fake": {"max_retries": 0}}},
        },
    }


def _order() -> Order:
    return Order(reference="o-1", amount=Money.of("20.00", "PEN"), country="PE",
                 customer=Customer(first_name="Rosa", last_name="Quispe",
                                   email="rosa@example.pe"))


@pytest.fixture
def site(tmp_path: Path, store_url: str) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    logo = tmp_path / "rosa.png"
    logo.write_bytes(PNG)
    gateway = FakeGateway(clock=ManualClock())
    app = Pasarela(_config(store_url, logo), plugins=[FakePlugin()], load_entrypoints=False,
                   transport=gateway.transport(), clock=gateway.clock,
                   store=Store(store_url, upgrade=True))
    order = _order()
    paid = {"root": app.pay(order, method="cash", idempotency_key="k")}
    for name in ("rosa", "inca"):
        paid[name] = app.merchants[name].pay(order, method="cash", idempotency_key="k")
    links = {k: pay_link(p.id, SECRET, now=gateway.clock()) for k, p in paid.items()}
    asgi = create_app(app, pages=PageSettings(page_secret=SECRET))
    with serve_app(asgi) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client, links
    app.close()


def test_the_page_shows_the_merchants_name_logo_and_stylesheet(
        site: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, links = site
    page = client.get(links["rosa"])
    assert page.status_code == 200
    assert '<span class="brand-name" id="brand-name">Bodega Rosa</span>' in page.text
    assert 'src="/pasarela-brand/rosa/logo"' in page.text
    assert '<link rel="stylesheet" href="/pasarela-brand/rosa/style.css">' in page.text
    # The logo is the app's own: the policy is the pages' own, unchanged.
    assert page.headers["content-security-policy"] == SECURITY_HEADERS[
        "Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "style=" not in page.text
    css = client.get("/pasarela-brand/rosa/style.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "--accent: #f4d03f;" in css.text
    assert "--on-accent: #1a1a1a;" in css.text  # a light yellow: dark text on buttons
    assert "--brand-accent: #1a5276;" in css.text
    logo = client.get("/pasarela-brand/rosa/logo")
    assert (logo.headers["content-type"], logo.content) == ("image/png", PNG)


def test_a_logo_url_adds_its_origin_to_img_src_of_that_merchants_pages_only(
        site: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, links = site
    page = client.get(links["inca"])
    policy = dict(part.split(" ", 1) for part in
                  page.headers["content-security-policy"].split("; "))
    assert policy["img-src"] == "'self' data: https://cdn.inca.example"
    base = dict(part.split(" ", 1) for part in
                SECURITY_HEADERS["Content-Security-Policy"].split("; "))
    assert {k: v for k, v in policy.items() if k != "img-src"} == {
        k: v for k, v in base.items() if k != "img-src"}
    assert 'src="https://cdn.inca.example/logo.png"' in page.text
    assert client.get("/pasarela-brand/inca/logo").status_code == 404  # not the app's
    for other in ("rosa", "root"):
        assert "cdn.inca.example" not in client.get(links[other]).headers[
            "content-security-policy"]


def test_the_implicit_merchants_page_has_no_branding(
        site: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, links = site
    page = client.get(links["root"])
    assert page.status_code == 200
    assert "brand-name" not in page.text
    assert "/pasarela-brand/" not in page.text
    assert page.headers["content-security-policy"] == SECURITY_HEADERS[
        "Content-Security-Policy"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("colour", "verde", "merchants.m.colour: expected a colour like '#1a7f5a', got 'verde'"),
    ("accent", "#12345", "merchants.m.accent: expected a colour like '#1a7f5a'"),
    ("accent", 12, "merchants.m.accent: expected a string"),
    ("logo_url", "http://x.example/l.png", "merchants.m.logo_url: expected an https://"),
    ("logo_file", "logo.exe", "merchants.m.logo_file: expected an image file"),
])
def test_bad_branding_is_a_configuration_error_naming_the_field(
        field: str, value: object, message: str) -> None:
    config = {"merchants": {"m": {field: value}}}
    with pytest.raises(InvalidConfigError) as caught:
        load_config(config).merchants["m"]
    assert message in str(caught.value)
    assert any(message in p for p in validate(config, plugins=[FakePlugin()],
                                              load_entrypoints=False))


def test_logo_file_and_logo_url_together_and_a_missing_logo_file(tmp_path: Path) -> None:
    both = {"merchants": {"m": {"logo_url": "https://x.example/l.png",
                                "logo_file": "l.png"}}}
    assert "merchants.m.logo_file: give logo_url or logo_file, not both" in validate(
        both, plugins=[FakePlugin()], load_entrypoints=False)
    path = tmp_path / "pasarela.toml"
    path.write_text('[merchants.m]\nlogo_file = "brand/logo.svg"\n', encoding="utf-8")
    [problem] = validate(path, plugins=[FakePlugin()], load_entrypoints=False)
    # Relative to the configuration file's folder.
    assert problem.startswith("merchants.m.logo_file: no such file")
    assert str(tmp_path / "brand" / "logo.svg") in problem
    (tmp_path / "brand").mkdir()
    (tmp_path / "brand" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert validate(path, plugins=[FakePlugin()], load_entrypoints=False) == []


def test_text_on_the_brand_colour_reads() -> None:
    assert readable_on("#ffffff") == "#1a1a1a"
    assert readable_on("#f4d03f") == "#1a1a1a"
    assert readable_on("#0b5cad") == "#ffffff"
    assert readable_on("#000000") == "#ffffff"
    sheet = stylesheet(Branding(merchant="m", name="M"))
    assert "--accent" not in sheet  # no colours: the pages' own


def test_templates_reach_a_merchants_branding_by_a_function(tmp_path: Path) -> None:
    from pasarela.web.branding import template_branding

    found = {"m": Branding(merchant="m", name="Bodega M", colour="#1a7f5a",
                           logo="https://cdn.example/m.png")}
    branding = template_branding(found.get)
    assert branding("m", "/pasarela") == {
        "merchant": "m", "name": "Bodega M", "colour": "#1a7f5a", "accent": None,
        "logo": "https://cdn.example/m.png",
        "stylesheet": "/pasarela/pasarela-brand/m/style.css"}
    assert branding(None) is None
    assert branding("zz") is None


# --- in a browser ----------------------------------------------------------------------


def _browser_or_skip() -> None:
    """As the pages' browser tests: skipped without Chromium, a failure under CI."""
    chromium = os.environ.get("PASARELA_CHROMIUM", "/usr/bin/chromium")
    driver = os.environ.get("PASARELA_CHROMEDRIVER", "/usr/bin/chromedriver")
    missing = [p for p in (chromium, driver) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {missing} not found")
        pytest.skip(f"{missing} not found (apt-get install -y chromium chromium-driver)")
    pytest.importorskip("selenium")


def test_the_brand_colour_reaches_the_page_in_chromium(tmp_path: Path) -> None:
    _browser_or_skip()
    from tests.pages.test_browser import start_chromium, wait_for  # the pages' own driver

    url = f"sqlite:///{tmp_path / 'p.db'}"
    logo = tmp_path / "rosa.png"
    logo.write_bytes(PNG)
    gateway = FakeGateway()
    app = Pasarela(_config(url, logo), plugins=[FakePlugin()], load_entrypoints=False,
                   transport=gateway.transport(), store=Store(url, upgrade=True))
    payment = app.merchants["rosa"].pay(_order(), method="cash", idempotency_key="k")
    driver = start_chromium(tmp_path)
    try:
        with serve_app(create_app(app, pages=PageSettings(page_secret=SECRET))) as base:
            driver.get(base + pay_link(payment.id, SECRET, timedelta(hours=1)))
            wait_for(driver, lambda d: d.find_elements("id", "brand-name"))
            assert driver.find_element("id", "brand-name").text == "Bodega Rosa"
            border = driver.execute_script(
                "return getComputedStyle(document.getElementById('brand'))"
                ".borderBottomColor")
            assert border == "rgb(244, 208, 63)"  # #f4d03f, from the merchant's sheet
            width = driver.execute_script(
                "return document.getElementById('brand-logo').naturalWidth")
            assert width == 1  # the app's own logo loaded within the policy
            errors = [e for e in driver.get_log("browser")
                      if "Content Security Policy" in e.get("message", "")]
            assert errors == []
    finally:
        driver.quit()
        app.close()
