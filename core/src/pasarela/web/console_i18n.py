"""The operator console's languages: English, Spanish (Peru) and Simplified Chinese.

Every console text is a gettext message (English ``msgid``) of the ``console``
domain, translated by ``pasarela/locale/LANG/LC_MESSAGES/console.po``; the catalogs
are compiled with Babel when first used (:func:`translations`), as the cost report
does for the ``pasarela`` domain.

Templates get Jinja's i18n extension (:func:`console_environment`): ``{{ _("Sign
out") }}``, ``{{ _("%(n)s payments", n=count) }}``, ``{% trans %}...{% endtrans %}``
and ``ngettext``. The catalog is the one of the template context's ``locale`` (one
of :data:`LANGUAGES`), so one environment serves every language at once. Filters
show values in the operator's locale and Lima time: ``money`` (a
:class:`~pasarela.money.Money`), ``number``, ``percent``, ``lima`` (a datetime,
medium format) and ``lima_short``.

:func:`negotiate` picks the language of a request: ``?lang=`` first, then the
``pasarela_lang`` cookie (set by :func:`remember` when ``?lang=`` was given), then
``Accept-Language``; English otherwise. ``GET {mount}/language/{locale}`` (every
console page links the three) sets the cookie and goes back to the dashboard.
"""

from __future__ import annotations

import gettext as _gettext
import io
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pasarela.timezones import LIMA


if TYPE_CHECKING:
    import jinja2
    from starlette.requests import Request
    from starlette.responses import Response

    from pasarela.money import Money

__all__ = [
    "COOKIE",
    "DOMAIN",
    "LANGUAGES",
    "console_environment",
    "context_for",
    "html_lang",
    "language_route",
    "negotiate",
    "remember",
    "translations",
]

LANGUAGES: Final = ("en", "es_PE", "zh_CN")
DOMAIN: Final = "console"
COOKIE: Final = "pasarela_lang"
LOCALE_DIR: Final = Path(__file__).resolve().parents[1] / "locale"
#: What ``<html lang>`` says for each catalog.
_HTML_LANG: Final[Mapping[str, str]] = {"en": "en", "es_PE": "es-PE", "zh_CN": "zh-CN"}


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The ``console`` catalog of *locale* (one of :data:`LANGUAGES`), compiled from
    its ``.po`` with Babel; English (the ``msgid`` themselves) for any other."""
    if locale not in LANGUAGES:
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo  # noqa: PLC0415 - Babel only when shown
    from babel.messages.pofile import read_po  # noqa: PLC0415

    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with open(path, "rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def match(value: str) -> str | None:
    """The catalog for a language tag (``es``, ``es-PE``, ``zh-Hans-CN``, ``zh_CN``),
    or None when there is none."""
    code = value.strip().split(";", 1)[0].split(".", 1)[0].replace("-", "_").lower()
    if not code:
        return None
    for locale in LANGUAGES:
        if code == locale.lower():
            return locale
    primary = code.split("_", 1)[0]
    for locale in LANGUAGES:
        if primary == locale.lower()[:2]:
            return locale
    return None


def accept_language(header: str) -> str | None:
    """The best catalog for an ``Accept-Language`` header (by its q values)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and tag and tag != "*":
            ranked.append((-quality, index, tag))
    for _quality, _index, tag in sorted(ranked):
        found = match(tag)
        if found:
            return found
    return None


def negotiate(request: Request) -> str:
    """The console language of *request*: ``?lang=``, the cookie, ``Accept-Language``,
    English."""
    asked = request.query_params.get("lang")
    if asked and (found := match(asked)):
        return found
    cookie = request.cookies.get(COOKIE)
    if cookie and (found := match(cookie)):
        return found
    return accept_language(request.headers.get("accept-language", "")) or "en"


def remember(request: Request, response: Response, locale: str) -> Response:
    """*response* with the language cookie set when the request asked by ``?lang=``."""
    if request.query_params.get("lang") and match(request.query_params["lang"]) == locale:
        response.set_cookie(COOKIE, locale, max_age=365 * 86400, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
    return response


def html_lang(locale: str) -> str:
    """The ``<html lang>`` value (BCP 47) of *locale*."""
    return _HTML_LANG.get(locale, "en")


def context_for(locale: str) -> dict[str, Any]:
    """The template variables a console page needs for *locale*: ``locale`` (the
    catalog), ``lang`` (``<html lang>``) and ``languages`` (for the switcher)."""
    return {"locale": locale, "lang": html_lang(locale),
            "languages": [(code, _NATIVE[code]) for code in LANGUAGES]}


_NATIVE: Final[Mapping[str, str]] = {"en": "English", "es_PE": "Español (Perú)",
                                     "zh_CN": "简体中文"}


def _babel_locale(locale: str) -> str:
    return "en_US" if locale == "en" else locale


def console_environment(base: jinja2.Environment) -> jinja2.Environment:
    """A Jinja environment over *base*'s templates (same loader, filters, globals and
    options) with the i18n extension and the locale filters; *base* is unchanged."""
    import jinja2  # noqa: PLC0415 - only when the console is on
    from babel.dates import format_datetime  # noqa: PLC0415
    from babel.numbers import format_decimal, format_percent  # noqa: PLC0415

    env = jinja2.Environment(
        loader=base.loader, autoescape=True, undefined=base.undefined,
        trim_blocks=base.trim_blocks, lstrip_blocks=base.lstrip_blocks,
        extensions=["jinja2.ext.i18n"],
    )
    env.filters.update(base.filters)
    env.globals.update(base.globals)

    def locale_of(context: Any) -> str:
        value = context.get("locale")
        return value if isinstance(value, str) else "en"

    @jinja2.pass_context
    def gettext(context: Any, message: str) -> str:
        return translations(locale_of(context)).gettext(message)

    @jinja2.pass_context
    def ngettext(context: Any, singular: str, plural: str, n: int) -> str:
        return translations(locale_of(context)).ngettext(singular, plural, n)

    @jinja2.pass_context
    def money(context: Any, value: Money) -> str:
        return value.format(_babel_locale(locale_of(context)))

    @jinja2.pass_context
    def number(context: Any, value: int | float | Decimal) -> str:
        return str(format_decimal(value, locale=_babel_locale(locale_of(context))))

    @jinja2.pass_context
    def percent(context: Any, value: float | None) -> str:
        if value is None:
            return "–"
        return str(format_percent(value, "#,##0.0%", locale=_babel_locale(locale_of(context))))

    @jinja2.pass_context
    def lima(context: Any, value: datetime | None) -> str:
        if value is None:
            return "–"
        return str(format_datetime(value.astimezone(LIMA), "medium",
                                   locale=_babel_locale(locale_of(context))))

    @jinja2.pass_context
    def lima_short(context: Any, value: datetime | None) -> str:
        if value is None:
            return "–"
        return str(format_datetime(value.astimezone(LIMA), "short",
                                   locale=_babel_locale(locale_of(context))))

    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(money=money, number=number, percent=percent, lima=lima,
                       lima_short=lima_short)
    return env


def language_route(mount: str) -> Any:
    """``GET {mount}/language/{locale}``: remember *locale* in the cookie (a year,
    HttpOnly, SameSite=Strict), then back to the console's dashboard. An unknown
    locale is 404."""
    from starlette.responses import RedirectResponse, Response  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    async def choose(request: Request) -> Response:
        locale = request.path_params["locale"]
        if locale not in LANGUAGES:
            return Response("no such language\n", status_code=404, media_type="text/plain")
        target = request.scope.get("root_path", "") + mount
        response = RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
        response.set_cookie(COOKIE, locale, max_age=365 * 86400, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    return Route(mount + "/language/{locale}", choose, methods=["GET"])
