"""The cost report for people: table rows, CSV, warnings and a self-contained HTML
page with inline SVG charts, in English, Spanish (Peru) or Simplified Chinese.

Every text is a gettext message (English ``msgid``), translated by the catalogs in
``pasarela/locale/LANG/LC_MESSAGES/pasarela.po``, compiled with Babel when first used
(:func:`translator`). :func:`resolve_lang` picks the language: the one asked for, else
``LC_ALL``, ``LC_MESSAGES``, ``LANG``; else English.
"""

from __future__ import annotations

import gettext as _gettext
import html
import io
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pasarela.errors import ConfigurationError
from pasarela.money import Money


if TYPE_CHECKING:
    from pasarela.reconcile.cost_model import CostLine, CostReport, Notice


__all__ = ["LANGUAGES", "columns", "csv_fields", "csv_rows", "html_page", "money_text",
           "notice_text", "resolve_lang", "table_rows", "translator"]

LANGUAGES: Final = ("en", "es_PE", "zh_CN")
LOCALE_DIR: Final = Path(__file__).resolve().parents[1] / "locale"
DOMAIN: Final = "pasarela"


def N_(message: str) -> str:
    """Mark *message* for the catalogs (translated where it is shown)."""
    return message


Gettext = Callable[[str], str]


def resolve_lang(asked: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The language of *asked* (``es``, ``es-PE``, ``zh_CN.UTF-8``...), else of the
    locale variables, among :data:`LANGUAGES`; English when none matches.

    :raises ConfigurationError: when *asked* names a language there is no catalog for.
    """
    def match(value: str) -> str | None:
        code = value.split(".", 1)[0].split("@", 1)[0].replace("-", "_")
        for lang in LANGUAGES:
            if code.lower() == lang.lower() or code.lower().split("_")[0] == lang.lower()[:2]:
                return lang
        return None

    if asked:
        found = match(asked)
        if found is None:
            raise ConfigurationError(f"no translation for {asked!r}; known: "
                                     f"{', '.join(LANGUAGES)}", path="--lang")
        return found
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value and value not in ("C", "POSIX"):
            return match(value) or "en"
    return "en"


@cache
def translator(lang: str) -> _gettext.NullTranslations:
    """The catalog of *lang* (one of :data:`LANGUAGES`), compiled from its ``.po``."""
    from babel.messages.mofile import write_mo  # noqa: PLC0415
    from babel.messages.pofile import read_po  # noqa: PLC0415

    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with open(path, "rb") as fh:
        catalog = read_po(fh, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


#: The report's columns: the key in a row's ``to_dict()`` and its heading.
_COLUMNS: Final = (
    ("provider", N_("provider")), ("method", N_("method")), ("network", N_("network")),
    ("month", N_("month")), ("currency", N_("currency")), ("tier", N_("tier")),
    ("count", N_("count")), ("volume", N_("volume")),
    ("average_ticket", N_("average ticket")), ("commission", N_("commission")),
    ("igv", N_("IGV")), ("fx", N_("FX spread")),
    ("cross_border", N_("cross-border fee")), ("markup", N_("markup")),
    ("expected_fee", N_("expected fee")), ("actual_fee", N_("actual fee")),
    ("fee_difference", N_("actual less expected")),
    ("fixed_fees", N_("fixed fees")), ("shortfall", N_("shortfall")),
    ("transit_cost", N_("money in transit")), ("refunds", N_("refunds")),
    ("refund_fees", N_("refund fees")), ("disputes", N_("disputes")),
    ("dispute_fees", N_("chargeback fees")), ("dispute_lost", N_("lost to chargebacks")),
    ("fx_settled", N_("FX in settlement currency")),
    ("total_cost", N_("total cost of acceptance")), ("effective_rate", N_("effective rate")),
)

_NOTICES: Final = {
    "renewal_notice_due": N_("{provider}: the contract renews on {renews_on} for "
                             "{term_months} months unless notice is given by {notice_by} "
                             "({days_left} days left); early termination costs "
                             "{early_termination}"),
    "renewal_notice_passed": N_("{provider}: the notice deadline {notice_by} has passed; "
                                "the contract renews on {renews_on} for {term_months} months"),
    "term_ends": N_("{provider}: the contract ends on {ends_on}"),
    "term_ended": N_("{provider}: the contract ended on {ended_on}"),
    "shortfall_projected": N_("{provider}: {month} is projected at {projected} ({volume} so "
                              "far) against a commitment of {commitment}: a shortfall "
                              "charge of {charge}"),
}


def columns(gettext: Gettext) -> list[str]:
    return [gettext(title) for _key, title in _COLUMNS]


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Mapping) and "minor" in value:
        return str(Money(int(value["minor"]), str(value["currency"])))
    return str(value)


def money_text(value: Mapping[str, object]) -> str:
    """``{"minor": 14990, "currency": "PEN"}`` as ``PEN 149.90``."""
    return _cell(value)


def table_rows(report: CostReport) -> Iterator[list[str]]:
    """Each row's cells, in the order of :func:`columns`."""
    for line in report.lines:
        data = line.to_dict()
        yield [_cell(data[key]) for key, _ in _COLUMNS]


def csv_rows(report: CostReport) -> Iterator[dict[str, object]]:
    """Each row for CSV: the keys of :data:`_COLUMNS`, money in minor units."""
    for line in report.lines:
        data = line.to_dict()
        out: dict[str, object] = {}
        for key, _ in _COLUMNS:
            value = data[key]
            out[key] = value["minor"] if isinstance(value, Mapping) else value
        yield out


def csv_fields() -> list[str]:
    return [key for key, _ in _COLUMNS]


def notice_text(notice: Notice, _: Gettext) -> str:
    return _(_NOTICES[notice.code]).format(provider=notice.provider, **notice.values)


# --- HTML ------------------------------------------------------------------------------

_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f")
_PARTS: Final = (("per_payment", N_("per-payment fees")), ("fixed", N_("fixed fees")),
                 ("shortfall", N_("shortfall")), ("transit", N_("money in transit")),
                 ("refund_fees", N_("refund fees")), ("dispute_fees", N_("chargeback fees")),
                 ("dispute_lost", N_("lost to chargebacks")))


def _e(text: object) -> str:
    return html.escape(str(text))


def _line_chart(title: str, series: Mapping[str, Mapping[str, Decimal]], unit: str) -> str:
    months = sorted({m for points in series.values() for m in points})
    width, height, pad = 680, 280, 56
    top = max((v for points in series.values() for v in points.values()), default=Decimal(0))
    top = top if top > 0 else Decimal(1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad - 120) * (i / max(len(months) - 1, 1))

    def y(v: Decimal) -> float:
        return height - pad - float(v / top) * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="{pad}" y="20" font-size="14">{_e(title)}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad - 120}" '
             f'y2="{height - pad}" stroke="#888"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
             f'<text x="4" y="{pad + 4}" font-size="10">{top:.2f}{unit}</text>']
    for i, month in enumerate(months):
        parts.append(f'<text x="{x(i):.1f}" y="{height - pad + 16}" font-size="10" '
                     f'text-anchor="middle">{_e(month)}</text>')
    for n, (name, points) in enumerate(sorted(series.items())):
        colour = _COLOURS[n % len(_COLOURS)]
        coords = " ".join(f"{x(months.index(m)):.1f},{y(v):.1f}"
                          for m, v in sorted(points.items()))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{coords}"/>')
        for m, v in sorted(points.items()):
            parts.append(f'<circle cx="{x(months.index(m)):.1f}" cy="{y(v):.1f}" r="3" '
                         f'fill="{colour}"><title>{_e(name)} {m}: {v:.2f}{unit}</title>'
                         '</circle>')
        parts.append(f'<text x="{width - pad - 110}" y="{pad + 14 * n}" font-size="11" '
                     f'fill="{colour}">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bar_chart(title: str, bars: list[tuple[str, Decimal]], unit: str) -> str:
    width, bar, pad, label = 680, 22, 40, 260
    height = pad + len(bars) * (bar + 6) + 20
    top = max((v for _, v in bars), default=Decimal(0))
    top = top if top > 0 else Decimal(1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="8" y="20" font-size="14">{_e(title)}</text>']
    for i, (name, value) in enumerate(bars):
        y = pad + i * (bar + 6)
        length = float(value / top) * (width - label - 80)
        parts.append(f'<text x="8" y="{y + 15}" font-size="11">{_e(name)}</text>'
                     f'<rect x="{label}" y="{y}" width="{length:.1f}" height="{bar}" '
                     f'fill="{_COLOURS[i % len(_COLOURS)]}"><title>{_e(name)}: '
                     f'{value:.3f}{unit}</title></rect>'
                     f'<text x="{label + length + 4:.1f}" y="{y + 15}" font-size="11">'
                     f'{value:.3f}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _stacked_chart(title: str, stacks: list[tuple[str, list[int]]], legend: list[str],
                   ) -> str:
    width, bar, pad, label = 680, 22, 40, 200
    height = pad + len(stacks) * (bar + 6) + 30 + 14 * len(legend)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="8" y="20" font-size="14">{_e(title)}</text>']
    for i, (name, values) in enumerate(stacks):
        y = pad + i * (bar + 6)
        whole = sum(values) or 1
        x = float(label)
        parts.append(f'<text x="8" y="{y + 15}" font-size="11">{_e(name)}</text>')
        for n, value in enumerate(values):
            length = value / whole * (width - label - 20)
            if length <= 0:
                continue
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{length:.1f}" height="{bar}" '
                         f'fill="{_COLOURS[n % len(_COLOURS)]}"><title>{_e(legend[n])}: '
                         f'{100 * value / whole:.1f}%</title></rect>')
            x += length
    base = pad + len(stacks) * (bar + 6) + 14
    for n, name in enumerate(legend):
        parts.append(f'<rect x="8" y="{base + 14 * n - 9}" width="10" height="10" '
                     f'fill="{_COLOURS[n % len(_COLOURS)]}"/><text x="24" '
                     f'y="{base + 14 * n}" font-size="11">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _part(line: CostLine, key: str) -> int:
    return int(getattr(line, key))


def html_page(report: CostReport, lang: str, *, extra: str = "") -> str:
    """One self-contained page: a chart per question (cost per provider over months,
    effective rate by tier, where the money goes), the warnings, the networks side by
    side and the table. No script, no external asset."""
    _ = translator(lang).gettext
    cost: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    tiers: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    money: dict[str, list[int]] = {}
    base_rates = _("base rates")
    for line in report.lines:
        c = cost[f"{line.provider} {line.currency}"][line.month]
        c[0] += line.total
        c[1] += line.volume
        t = tiers[f"{line.provider} {line.method} · {line.tier or base_rates}"]
        t[0] += line.total
        t[1] += line.volume
        parts = money.setdefault(f"{line.provider} {line.currency}", [0] * len(_PARTS))
        for n, (key, _title) in enumerate(_PARTS):
            parts[n] += _part(line, key)
    rate = {p: {m: Decimal(f * 100) / v for m, (f, v) in months.items() if v}
            for p, months in cost.items()}
    by_tier = [(name, Decimal(f * 100) / v) for name, (f, v) in sorted(tiers.items()) if v]
    title = _("Costs {since} to {until}").format(
        since=f"{report.since:%Y-%m-%d}", until=f"{report.until:%Y-%m-%d}")
    heads = columns(_)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
                   for row in table_rows(report))
    notices = "".join(f"<li>{_e(notice_text(n, _))}</li>" for n in report.notices)
    networks = []
    for item in report.to_dict()["networks"]:
        for p in item["providers"]:
            networks.append(
                f"<tr><td>{_e(item['network'])}</td><td>{_e(p['provider'])}</td>"
                f"<td>{_e(_cell(p['volume']))}</td><td>{_e(_cell(p['per_payment_fees']))}</td>"
                f"<td>{_e(p['per_payment_rate'])}</td><td>{_e(p['markup_over_cheapest'])}</td>"
                "</tr>")
    total = report.to_dict()["total"]
    html_lang = lang.replace("_", "-")
    total_title, warnings_title = _("Total cost of acceptance"), _("Warnings")
    networks_title = _("Networks side by side")
    return (
        f'<!DOCTYPE html><html lang="{_e(html_lang)}"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}svg{display:block;margin:1em 0}</style></head>"
        f"<body><h1>{_e(title)}</h1>"
        f"<p>{_e(total_title)}: "
        f"{_e(_cell(total['total_cost']))} / {_e(_cell(total['volume']))} = "
        f"{_e(total['effective_rate'])}</p>"
        + (f"<h2>{_e(warnings_title)}</h2><ul>{notices}</ul>" if notices else "")
        + _line_chart(_("Cost per provider over months (total cost / volume)"), rate, "%")
        + _bar_chart(_("Effective rate by tier"), by_tier, "%")
        + _stacked_chart(_("Where the money goes"), sorted(money.items()),
                         [_(t) for _k, t in _PARTS])
        + f"<h2>{_e(networks_title)}</h2><table><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in (
            _("network"), _("provider"), _("volume"), _("per-payment fees"),
            _("per-payment rate"), _("markup over the cheapest")))
        + "</tr>" + "".join(networks) + "</table>"
        + "<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in heads) + "</tr>" + body
        + "</table>" + extra + "</body></html>\n"
    )
