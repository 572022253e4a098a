"""The console's trends and alerts pages (a viewer may see both).

``GET {mount}/trends?period=hour|day``
    Over the last 48 hours by hour, or the last 30 days by day (Lima time): the
    success rate per account × method × network, the volume (payments created), the
    effective cost per account (expected fees over the amount succeeded), the time
    to pay a CIP (cash codes: creation to payment, as a distribution) and the late
    payments (paid after their code expired), each as an SVG drawn on the server
    (no script, no external file, no inline style: the CSP stays as it is).
``GET {mount}/alerts``
    The alerts firing for this console's merchant, and the history
    (:mod:`pasarela.engine.alerts`).

:func:`trends` is the pure part: rows in, the figures out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Final

import anyio.to_thread
import attrs
import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.engine.alerts import Alert
from pasarela.lifecycle import Status
from pasarela.registry import MERCHANT_SEPARATOR
from pasarela.store.monitoring import TrendRow, alert_history, open_alerts, trend_rows
from pasarela.timezones import LIMA
from pasarela.web import console_i18n
from pasarela.web.console_auth import ConsoleGuard, Role
from pasarela.web.pay_page import PageSettings, html


__all__ = ["KIND_LABELS", "PAY_TIME_BINS", "PERIODS", "Trends", "column_chart", "routes",
           "trends"]

#: ``period -> (bucket length, number of buckets)``.
PERIODS: Final[Mapping[str, tuple[timedelta, int]]] = {
    "hour": (timedelta(hours=1), 48), "day": (timedelta(days=1), 30)}
#: Upper bounds of the time-to-pay distribution of cash codes, with their labels.
PAY_TIME_BINS: Final = (
    (timedelta(minutes=15), "< 15 min"), (timedelta(hours=1), "15–60 min"),
    (timedelta(hours=3), "1–3 h"), (timedelta(hours=6), "3–6 h"),
    (timedelta(hours=12), "6–12 h"), (timedelta(days=1), "12–24 h"),
    (timedelta(days=2), "1–2 d"), (timedelta.max, "> 2 d"))
#: What the alerts page calls each kind of alert (``console`` catalog messages).
KIND_LABELS: Final[Mapping[str, str]] = {
    "success_rate": "Success rate below its baseline",
    "notifications_silent": "No notifications while payments wait",
    "unknown_overdue": "Unknown past the resolver's schedule",
    "outbox_lag": "Events not dispatched",
    "reconciliation_differences": "Reconciliation differences",
}
#: The most payments one trends page reads (the newest of the window).
MAX_ROWS: Final = 200_000
_SUCCEEDED: Final = frozenset({Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                               Status.REFUNDED.value})
_FINISHED: Final = _SUCCEEDED | {Status.FAILED.value, Status.CANCELED.value,
                                 Status.EXPIRED.value}
_COLORS: Final = ("#0b5cad", "#c0392b", "#117a3d", "#8e44ad", "#b9770e", "#2c3e50")


@attrs.frozen
class Trends:
    """The figures of one trends page."""

    labels: tuple[str, ...]
    #: ``"account · method · network" -> success rate per bucket`` (None: none finished).
    rates: Mapping[str, list[float | None]]
    volume: tuple[int, ...]
    #: ``"account (currency)" -> expected fees as a percentage of the amount succeeded``.
    cost: Mapping[str, float]
    #: How many cash codes were paid within each of :data:`PAY_TIME_BINS`.
    pay_times: Mapping[str, int]
    late: tuple[int, ...]
    total: int
    truncated: bool


def _bare(account: str) -> str:
    return account.partition(MERCHANT_SEPARATOR)[2] or account


def bucket_starts(now: datetime, period: str) -> list[datetime]:
    """The start of each bucket, oldest first, in Lima time (hours, or Lima days)."""
    length, count = PERIODS[period]
    local = now.astimezone(LIMA)
    if period == "day":
        top = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        top = local.replace(minute=0, second=0, microsecond=0)
    return [top - length * (count - 1 - i) for i in range(count)]


def trends(rows: Sequence[TrendRow], *, now: datetime, period: str,
           truncated: bool = False) -> Trends:
    """The trends of *rows* (payments created in the window) for *period*."""
    starts = bucket_starts(now, period)
    length, count = PERIODS[period]
    first = starts[0]

    def index(at: datetime) -> int | None:
        i = int((at - first) // length)
        return i if 0 <= i < count else None

    finished: dict[str, list[int]] = {}
    won: dict[str, list[int]] = {}
    volume = [0] * count
    late = [0] * count
    amounts: dict[tuple[str, str], int] = {}
    fees: dict[tuple[str, str], int] = {}
    pay_times = {label: 0 for _, label in PAY_TIME_BINS}
    for row in rows:
        created = index(row.created_at)
        if created is not None:
            volume[created] += 1
        done = index(row.updated_at)
        if row.status not in _FINISHED or done is None:
            continue  # open, or finished outside the window
        name = " · ".join(x for x in (_bare(row.provider), row.method, row.network) if x)
        finished.setdefault(name, [0] * count)[done] += 1
        won.setdefault(name, [0] * count)
        if row.status not in _SUCCEEDED:
            continue
        won[name][done] += 1
        key = (_bare(row.provider), row.currency)
        amounts[key] = amounts.get(key, 0) + row.amount_minor
        if row.fee_minor is not None:
            fees[key] = fees.get(key, 0) + row.fee_minor
        if row.method == "cash":
            waited = row.updated_at - row.created_at
            label = next(label for bound, label in PAY_TIME_BINS if waited < bound)
            pay_times[label] += 1
        if row.expires_at is not None and row.updated_at > row.expires_at:
            late[done] += 1
    rates = {name: [w / f if f else None for w, f in zip(won[name], total, strict=True)]
             for name, total in sorted(finished.items())}
    cost = {f"{account} ({currency})": 100 * fees.get((account, currency), 0) / minor
            for (account, currency), minor in sorted(amounts.items()) if minor}
    fmt = "%d %b" if period == "day" else "%H:00"
    return Trends(tuple(s.strftime(fmt) for s in starts), rates, tuple(volume), cost,
                  pay_times, tuple(late), len(rows), truncated)


def column_chart(values: Sequence[float], labels: Sequence[str], *, title: str,
                 width: int = 560, height: int = 200) -> Markup:
    """Vertical columns of counts over *labels* (SVG, every text escaped)."""
    left, right, top, bottom = 40, 10, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(values))
    peak = max(values, default=0) or 1
    step = plot_w / n
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#c8c8c8" stroke-width="1"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                   f'fill="#1a1a1a">{escape(_short(peak * tick))}</text>')
    every = max(1, len(labels) // 8)
    for i, value in enumerate(values):
        h = plot_h * value / peak
        x = left + i * step
        bar = max(1.0, step - 2)
        out.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                   f'height="{h:.1f}" fill="{_COLORS[0]}"><title>{escape(str(labels[i]))}: '
                   f'{escape(_short(value))}</title></rect>')
        if i % every == 0:
            out.append(f'<text x="{x + step / 2:.1f}" y="{height - 10}" font-size="11" '
                       f'text-anchor="middle" fill="#1a1a1a">{escape(str(labels[i]))}</text>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text is escaped above


def _short(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings, guard: ConsoleGuard,
           *, env: jinja2.Environment) -> list[BaseRoute]:
    """The trends and alerts pages of *guard*'s console."""
    from pasarela.web.admin import bar_chart, line_chart  # noqa: PLC0415 - admin imports us

    store = pasarela.store
    merchant = guard.merchant
    clock = pasarela.service.clock

    async def trends_page(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        period = request.query_params.get("period", "hour")
        if period not in PERIODS:
            period = "hour"
        now = clock()
        since = bucket_starts(now, period)[0]

        def read() -> Trends:
            rows = trend_rows(store, merchant=merchant, since=since - timedelta(days=7),
                              until=now + timedelta(seconds=1), limit=MAX_ROWS)
            return trends(rows, now=now, period=period, truncated=len(rows) >= MAX_ROWS)

        data = await anyio.to_thread.run_sync(read)
        _ = console_i18n.translations(console_i18n.negotiate(request)).gettext
        by = _("by day (Lima)") if period == "day" else _("by hour (Lima)")
        context = {
            **guard.context(request), "period": period, "trends": data, "now": now,
            "rate_chart": line_chart(data.rates, list(data.labels),
                                     title=_("Success rate") + " " + by)
            if data.rates else None,
            "rate_names": list(data.rates),
            "volume_chart": column_chart(data.volume, data.labels,
                                         title=_("Payments created") + " " + by),
            "cost_chart": bar_chart(data.cost, title=_("Effective cost (% of amount succeeded)"))
            if data.cost else None,
            "pay_chart": column_chart(list(data.pay_times.values()), list(data.pay_times),
                                      title=_("Time to pay a CIP"))
            if any(data.pay_times.values()) else None,
            "late_chart": column_chart(data.late, data.labels,
                                       title=_("Late payments") + " " + by)
            if any(data.late) else None,
        }
        return html(env, "admin_trends.html", context)

    async def alerts_page(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator

        def read() -> tuple[list[Alert], list[Alert]]:
            return ([Alert.of(r) for r in open_alerts(store, merchant=merchant)],
                    [Alert.of(r) for r in alert_history(store, merchant=merchant, limit=100)])

        firing, history = await anyio.to_thread.run_sync(read)
        return html(env, "admin_alerts.html", {**guard.context(request), "firing": firing,
                                               "history": history, "now": clock(),
                                               "kinds": KIND_LABELS})

    return [
        Route(guard.mount + "/trends", trends_page, methods=["GET"]),
        Route(guard.mount + "/alerts", alerts_page, methods=["GET"]),
        console_i18n.language_route(guard.mount),
    ]
