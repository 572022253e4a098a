"""The catalogs: every message the cost report and its commands show has a
translation in each language, and the report renders in the three."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from pasarela.errors import ConfigurationError
from pasarela.reconcile import cost_report as cr


CORE = Path(cr.__file__).resolve().parents[1]
SOURCES = [CORE / "reconcile" / "cost_report.py", CORE / "cli" / "reconcile.py"]


def messages() -> set[str]:
    found = set()
    for path in SOURCES:
        for _line, message, _comments, _context in extract_from_file(
                "python", str(path), keywords={"_": None, "N_": None}):
            found.add(message)
    return found


def test_the_sources_mark_their_messages() -> None:
    found = messages()
    assert "total cost of acceptance" in found
    assert len(found) > 40


@pytest.mark.parametrize("lang", cr.LANGUAGES)
def test_every_message_is_translated(lang: str) -> None:
    path = CORE / "locale" / lang / "LC_MESSAGES" / "pasarela.po"
    with open(path, "rb") as fh:
        catalog = read_po(fh)
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(messages() - set(translated))
    assert not missing, f"{lang}: no translation for {missing}"
    stale = sorted(set(translated) - messages())
    assert not stale, f"{lang}: messages nothing shows any more: {stale}"
    for msgid, text in translated.items():  # the placeholders survive translation
        assert sorted(_fields(msgid)) == sorted(_fields(str(text))), (lang, msgid)


def _fields(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def test_translations_are_used() -> None:
    assert cr.translator("es_PE").gettext("total cost of acceptance") == \
        "costo total de aceptación"
    assert cr.translator("zh_CN").gettext("total cost of acceptance") == "总收单成本"
    assert cr.translator("en").gettext("total cost of acceptance") == \
        "total cost of acceptance"


@pytest.mark.parametrize(("asked", "env", "lang"), [
    ("es", {}, "es_PE"), ("es-PE", {}, "es_PE"), ("zh_CN.UTF-8", {}, "zh_CN"),
    (None, {"LANG": "es_PE.UTF-8"}, "es_PE"), (None, {"LC_ALL": "zh_CN"}, "zh_CN"),
    (None, {"LANG": "C"}, "en"), (None, {"LANG": "fr_FR"}, "en"), (None, {}, "en"),
])
def test_language_from_the_option_or_the_locale(asked: str | None, env: dict[str, str],
                                                lang: str) -> None:
    assert cr.resolve_lang(asked, env) == lang


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no translation"):
        cr.resolve_lang("fr", {})
