"""The console's languages: the ``console`` catalogs, Jinja's i18n extension on the
console environment, the language a request gets, and values in the operator's
locale and Lima time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest
from babel.messages.pofile import read_po
from starlette.requests import Request

from pasarela.money import Money
from pasarela.web import console_i18n
from pasarela.web.pay_page import template_environment


def request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{console_i18n.COOKIE}={cookie}".encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request({"type": "http", "method": "GET", "path": "/admin", "root_path": "",
                    "query_string": query.encode(), "headers": headers})


@pytest.mark.parametrize(("query", "cookie", "accept", "expected"), [
    ("", "", "", "en"),
    ("lang=zh-CN", "es_PE", "es", "zh_CN"),
    ("lang=es", "", "zh", "es_PE"),
    ("lang=klingon", "zh_CN", "es", "zh_CN"),
    ("", "es_PE", "zh-CN", "es_PE"),
    ("", "", "fr-FR,zh-Hans-CN;q=0.9,es;q=0.8", "zh_CN"),
    ("", "", "es;q=0.2,zh;q=0.5", "zh_CN"),
    ("", "", "es-PE;q=0,en;q=0.1", "en"),
    ("", "", "de,fr", "en"),
])
def test_negotiation_order_is_query_cookie_header(query, cookie, accept, expected):
    assert console_i18n.negotiate(request(query, cookie, accept)) == expected


def env_with(templates: dict[str, str]) -> jinja2.Environment:
    base = template_environment()
    base.loader = jinja2.DictLoader(templates)
    return console_i18n.console_environment(base)


def render(source: str, locale: str, **context: Any) -> str:
    env = env_with({"t.html": source})
    return env.get_template("t.html").render(**console_i18n.context_for(locale), **context)


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", "Sign out"), ("es_PE", "Cerrar sesión"), ("zh_CN", "退出登录")])
def test_one_environment_translates_by_the_context_locale(locale, expected):
    assert render('{{ _("Sign out") }}|{% trans %}Trends{% endtrans %}', locale) == (
        f"{expected}|{console_i18n.translations(locale).gettext('Trends')}")


def test_translations_are_escaped_and_formatted():
    out = render('{{ _("Alerts") }} {{ _("%(name)s", name=who) }}', "zh_CN", who="<b>")
    assert out == "警报 &lt;b&gt;"


def test_the_customer_environment_is_left_without_the_extension():
    base = template_environment()
    console_i18n.console_environment(base)
    assert "jinja2.ext.InternationalizationExtension" not in base.extensions
    assert "gettext" not in base.globals
    with pytest.raises(jinja2.TemplateSyntaxError):
        base.from_string("{% trans %}x{% endtrans %}")


def test_amounts_and_dates_in_the_operators_locale_and_lima_time():
    at = datetime(2026, 12, 2, 3, 30, tzinfo=UTC)  # 22:30 the day before in Lima
    source = "{{ m|money }}|{{ at|lima }}|{{ n|number }}|{{ r|percent }}"
    amount = Money.of("1234.50", "PEN")
    en, es, zh = (render(source, locale, m=amount, at=at, n=12345, r=0.987)
                  .replace("\xa0", " ").replace("\u202f", " ").split("|")
                  for locale in ("en", "es_PE", "zh_CN"))
    assert en == ["PEN1,234.50", "Dec 1, 2026, 10:30:00 PM", "12,345", "98.7%"]
    assert es == ["S/ 1,234.50", "1 dic. 2026, 10:30:00 p. m.", "12,345", "98.7%"]
    assert zh == ["PEN1,234.50", "2026年12月1日 22:30:00", "12,345", "98.7%"]


@pytest.mark.parametrize("locale", ["es_PE", "zh_CN"])
def test_every_catalog_message_is_translated(locale):
    with open(console_i18n.LOCALE_DIR / "en" / "LC_MESSAGES" / "console.po", "rb") as fh:
        english = {m.id for m in read_po(fh) if m.id}
    with open(console_i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "console.po", "rb") as fh:
        catalog = {m.id: m.string for m in read_po(fh) if m.id}
    assert set(catalog) == english
    assert [k for k, v in catalog.items() if not v] == []


# --- the console rendered --------------------------------------------------------------

CONSOLE_TEMPLATES = sorted((console_i18n.LOCALE_DIR.parent / "web" / "templates").glob(
    "admin*.html"))


def test_every_console_template_message_is_in_the_catalog():
    from babel.messages.extract import extract_from_file

    with open(console_i18n.LOCALE_DIR / "en" / "LC_MESSAGES" / "console.po", "rb") as fh:
        known = {m.id for m in read_po(fh) if m.id}
    used = {message for path in CONSOLE_TEMPLATES
            for _line, message, _comments, _context in extract_from_file(
                "jinja2.ext:babel_extract", str(path),
                options={"extensions": "jinja2.ext.i18n"})}
    assert len(used) > 150
    assert sorted(m for m in used if m not in known) == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize(("asked", "lang", "present", "absent"), [
    ("zh-CN", "zh-CN", ["操作员仪表板", "最近 24 小时的付款", "退出登录", "发件箱"],
     ["Operator dashboard", "Payments of the last 24 h", "Sign out"]),
    ("es-PE", "es-PE", ["Panel del operador", "Pagos de las últimas 24 h", "Cerrar sesión",
                        "Bandeja de salida"],
     ["Operator dashboard", "Payments of the last 24 h", "Sign out"]),
])
async def test_the_dashboard_in_chinese_and_spanish(pasarela, client, asked, lang, present,
                                                    absent):
    from .console_fixtures import BEARER, order

    await pasarela.pay(order("i18n-1", amount="1234.50"), method="cash",
                       idempotency_key="i18n-1")
    page = await client.get(f"/admin?lang={asked}", headers=BEARER)
    assert page.status_code == 200
    assert f'<html lang="{lang}">' in page.text
    for text in present:
        assert text in page.text
    for text in absent:
        assert text not in page.text
    # the time in Lima, in the operator's locale
    lima = page.text.split('<span id="lima-now">', 1)[1].split("</span>", 1)[0]
    assert ("利马" if lang == "zh-CN" else "Lima") in lima
    if lang == "zh-CN":
        assert "年" in lima


@pytest.mark.anyio
async def test_the_language_link_remembers_the_choice(client):
    from .console_fixtures import BEARER

    chosen = await client.get("/admin/language/zh_CN", headers=BEARER)
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/admin"
    cookie = chosen.headers["set-cookie"].lower()
    assert "pasarela_lang=zh_cn" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    page = await client.get("/admin/trends", headers=BEARER)
    assert '<html lang="zh-CN">' in page.text
    assert "趋势" in page.text
    assert (await client.get("/admin/language/klingon", headers=BEARER)).status_code == 404
