"""The operator dashboard at ``/admin`` (mounted by :func:`pasarela.web.pay_page.routes`).

Who may do what is :mod:`pasarela.web.console_auth`'s: operator accounts with roles
(viewer, operator, admin) signing in at ``/admin/login`` to a signed session, the
admin token as the break-glass credential (``Authorization: Bearer TOKEN`` or the
form), a CSRF token on every POST, the operator audit log. Without a credential
every console page answers 401 with the sign-in form. A console (the implicit
merchant's, each merchant's at ``/m/NAME/admin``) is built on its first request
(:class:`LazyConsoles`), and is 404 while it has neither a token nor an operator.

Pages: the last 24 h of payments by provider, method and status; success rate per
provider and method by hour and effective cost per provider, as SVG drawn here
(no scripts); unknown and stale pending payments with "sync now"; the payments and
refunds needing an operator (still unknown, or pending, after the resolver's whole
schedule: how many, and the oldest); recent webhook rejections; outbox lag. The rest of
the console is in its own modules, wired here: the search
(:mod:`pasarela.web.console_search`), each payment's page and its confirmed, audited
actions (:mod:`pasarela.web.console_actions`), the reconciliation runs and their
differences (:mod:`pasarela.web.console_reconcile`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from html import escape
from typing import Any, Final

import anyio.to_thread
import jinja2
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, Router
from starlette.types import Receive, Scope, Send

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.engine.jobs import RESOLVER_CHECKS
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.store import queries
from pasarela.web import (
    console_actions,
    console_i18n,
    console_reconcile,
    console_search,
    console_trends,
)
from pasarela.web import evidence as console_evidence
from pasarela.web.console_actions import mask, redacted_exchanges  # noqa: F401 - moved there
from pasarela.web.console_auth import ConsoleGuard, Role
from pasarela.web.pay_page import STATIC_PATH, PageSettings, html


__all__ = ["bar_chart", "line_chart", "routes"]

log = get_logger("pasarela")

WINDOW: Final = timedelta(hours=24)
_SUCCEEDED: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})
_FINISHED: Final = _SUCCEEDED | {Status.FAILED, Status.CANCELED, Status.EXPIRED}
COLORS: Final = ("#0b5cad", "#c0392b", "#117a3d", "#8e44ad", "#b9770e", "#2c3e50")
#: Payments (refunds) needing an operator listed on the dashboard, oldest first.
OPERATOR_SHOWN: Final = 50


# --- charts (SVG built here, every text escaped) --------------------------------------


def line_chart(series: Mapping[str, list[float | None]], labels: list[str], *, title: str,
               width: int = 560, height: int = 220) -> Markup:
    """Lines of ratios (0..1) per series over *labels*; ``None`` leaves a gap."""
    left, right, top, bottom = 40, 10, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(labels) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return top + plot_h * (1 - v)

    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in (0.0, 0.5, 1.0):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" '
                   f'y2="{y(tick):.1f}" stroke="#c8c8c8" stroke-width="1"/>')
        out.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="11" '
                   f'text-anchor="end" fill="#1a1a1a">{int(tick * 100)}%</text>')
    step = max(1, len(labels) // 6)
    for i, label in enumerate(labels):
        if i % step == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - 10}" font-size="11" '
                       f'text-anchor="middle" fill="#1a1a1a">{escape(label)}</text>')
    for k, (name, values) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        run: list[str] = []
        for i, value in enumerate([*values, None]):
            if value is not None:
                run.append(f"{x(i):.1f},{y(value):.1f}")
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{color}">'
                           f'<title>{escape(name)} {labels[i]}: {value:.0%}</title></circle>')
            elif run:
                if len(run) > 1:
                    out.append(f'<polyline points="{" ".join(run)}" fill="none" '
                               f'stroke="{color}" stroke-width="2"/>')
                run = []
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text is escaped above


def bar_chart(values: Mapping[str, float], *, title: str, unit: str = "%",
              width: int = 560, bar: int = 26) -> Markup:
    """Horizontal bars, one per label (values in *unit*)."""
    left, right = 150, 60
    height = 20 + bar * max(1, len(values))
    top = max(values.values(), default=0.0) or 1.0
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for k, (label, value) in enumerate(values.items()):
        y = 10 + k * bar
        w = (width - left - right) * value / top
        out.append(f'<text x="{left - 6}" y="{y + bar / 2 + 4:.1f}" font-size="12" '
                   f'text-anchor="end" fill="#1a1a1a">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar - 6}" '
                   f'fill="{COLORS[k % len(COLORS)]}"/>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar / 2 + 4:.1f}" font-size="12" '
                   f'fill="#1a1a1a">{value:.2f}{escape(unit)}</text>')
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every interpolated text is escaped above


# --- data -----------------------------------------------------------------------------


def dashboard_data(pasarela: AsyncPasarela | Pasarela, settings: PageSettings,
                   now: datetime, *, merchant: str = "") -> dict[str, Any]:
    """Everything *merchant*'s dashboard shows (``""``: the implicit merchant's),
    read from the store in one go."""
    store = pasarela.store
    since = now - WINDOW
    hours = [since + timedelta(hours=i + 1) for i in range(24)]
    finished: dict[str, list[int]] = {}
    won: dict[str, list[int]] = {}
    amounts: dict[tuple[str, str], int] = {}
    fees: dict[tuple[str, str], int] = {}
    by_key: dict[tuple[str, str, str], int] = {}
    read = queries.dashboard(store, since=since, stale_before=now - settings.stale_after,
                             merchant=merchant)
    for row in read.recent:
        by_key[(row.provider, row.method, row.status)] = (
            by_key.get((row.provider, row.method, row.status), 0) + 1)
        status = Status(row.status)
        if status not in _FINISHED:
            continue
        series = f"{row.provider} · {row.method}"
        index = min(23, max(0, int((row.updated_at - since).total_seconds() // 3600)))
        finished.setdefault(series, [0] * 24)[index] += 1
        won.setdefault(series, [0] * 24)
        if status in _SUCCEEDED:
            won[series][index] += 1
            key = (row.provider, row.currency)
            amounts[key] = amounts.get(key, 0) + row.amount_minor
            fee = (row.routing or {}).get("expected_fee") or {}
            if fee.get("currency") == row.currency:
                fees[key] = fees.get(key, 0) + int(fee.get("minor", 0))
    counts = sorted((p, m, s, c) for (p, m, s), c in by_key.items())
    rates = {name: [w / f if f else None for w, f in zip(won[name], total, strict=True)]
             for name, total in sorted(finished.items())}
    cost = {f"{p} ({c})": 100 * fees.get((p, c), 0) / minor
            for (p, c), minor in sorted(amounts.items()) if minor}
    lag_count, lag_age = store.outbox_lag(now=now)
    operator_payments, operator_refunds = queries.needing_operator(
        store, min_checks=RESOLVER_CHECKS, limit=OPERATOR_SHOWN, merchant=merchant)
    labels = [h.strftime("%H:00") for h in hours]
    return {
        "counts": counts, "total": sum(c for *_, c in counts),
        "rate_chart": line_chart(rates, labels, title="Success rate per provider and method, "
                                 "by hour (UTC)") if rates else None,
        "rate_names": list(rates),
        "cost_chart": bar_chart(cost, title="Effective cost per provider (% of amount "
                                "succeeded)") if cost else None,
        "attention": read.attention, "rejections": read.rejections,
        "lag_count": lag_count, "lag_age": lag_age,
        "operator_payments": operator_payments, "operator_refunds": operator_refunds,
        "resolver_checks": RESOLVER_CHECKS,
    }


# --- routes ---------------------------------------------------------------------------


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings,
           env: jinja2.Environment, now: Callable[[], datetime], *,
           merchant: str | None = None) -> list[BaseRoute]:
    """The console at ``/admin`` (the implicit merchant's payments) and, for each
    merchant, that merchant's console at ``/m/NAME/admin``: its own payments, accounts
    and deliveries only, its name and colour in the header. With *merchant*, that
    merchant's console only.

    A console is there when it has a credential: an admin token (``[pages]
    admin_token``, a merchant's ``admin_token``) or an operator account in the store
    (``pasarela operators add``); otherwise its addresses are 404. Nothing is built
    at start-up: a console is built on its first request and kept (see
    :class:`LazyConsoles`)."""
    env = console_i18n.console_environment(env)  # i18n: _(), ngettext, locale filters
    consoles = LazyConsoles(pasarela, settings, env, now, merchant=merchant)
    if merchant is not None:
        mount = f"/m/{merchant}/admin"
        return [Route(mount, consoles, name=f"pasarela-admin-{merchant}"),
                Route(mount + "/{rest:path}", consoles)]
    return [Route("/admin", consoles, name="pasarela-admin"),
            Route("/admin/{rest:path}", consoles),
            Route("/m/{merchant}/admin", consoles),
            Route("/m/{merchant}/admin/{rest:path}", consoles)]


class LazyConsoles:
    """The ASGI app behind every console address: finds the console the path names
    (the implicit merchant's, or ``/m/NAME/admin``'s merchant), builds it on its first
    request (a merchant's configuration, its :class:`ConsoleGuard`, its routes: once,
    under a lock) and hands the request to it. A merchant that does not exist, or a
    console without any credential, is 404 (and is looked at again next time: an
    operator added later turns it on)."""

    def __init__(self, pasarela: AsyncPasarela | Pasarela, settings: PageSettings,
                 env: jinja2.Environment, now: Callable[[], datetime], *,
                 merchant: str | None = None) -> None:
        self._pasarela = pasarela
        self._settings = settings
        self._env = env
        self._now = now
        self._only = merchant
        self._built: dict[str | None, Router] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many consoles are built so far."""
        return len(self._built)

    def _build(self, merchant: str | None) -> Router | None:
        with self._lock:
            router = self._built.get(merchant)
            if router is not None:
                return router
            pasarela = self._pasarela
            if merchant is None:
                token = self._settings.admin_token
            elif merchant not in pasarela.merchants:
                return None
            else:
                token = pasarela.merchants.table(merchant).admin_token
            if not token and not pasarela.store.has_operators(merchant or ""):
                return None
            router = Router(routes=_console(pasarela, merchant, token, self._settings,
                                            self._env, self._now))
            self._built[merchant] = router
            return router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        merchant = self._only or scope.get("path_params", {}).get("merchant")
        router = self._built.get(merchant)
        if router is None:
            router = await anyio.to_thread.run_sync(self._build, merchant)
        if router is None:
            raise HTTPException(status_code=404)
        await router(scope, receive, send)


def _console(pasarela: AsyncPasarela | Pasarela, merchant: str | None, token: str | None,
             settings: PageSettings, env: jinja2.Environment, now: Callable[[], datetime]
             ) -> list[BaseRoute]:
    """One console: *merchant*'s (None: the implicit merchant's), signed in by its
    operators or with the break-glass *token*."""
    scope = pasarela.service if merchant is None else pasarela.merchants.service(merchant)
    mount = "/admin" if merchant is None else f"/m/{merchant}/admin"
    brand: dict[str, Any] = {}
    if merchant is not None:
        table = pasarela.merchants.table(merchant)
        brand = {"name": table.display_name or merchant, "colour": table.colour}
    guard = ConsoleGuard(merchant=scope.merchant, mount=mount, token=token, env=env, now=now,
                         store=pasarela.store, brand=brand,
                         locale=lambda request: console_i18n.context_for(
                             console_i18n.negotiate(request)))

    def base(request: Request) -> dict[str, Any]:
        prefix = request.scope.get("root_path", "")
        return {**console_i18n.context_for(console_i18n.negotiate(request)),
                "static": prefix + STATIC_PATH, "admin": prefix + mount, "brand": brand}

    async def dashboard(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        at = now()
        data = await anyio.to_thread.run_sync(
            lambda: dashboard_data(pasarela, settings, at, merchant=scope.merchant))
        stale = f"{settings.stale_after.total_seconds() / 60:.0f} min"
        return html(env, "admin.html", {**base(request), **data, "csrf": guard.csrf_token(request),
                                        "now": at, "stale_after": stale})

    return [
        Route(mount, dashboard, methods=["GET"],
              name="pasarela-admin" if merchant is None else f"pasarela-admin-{merchant}"),
        *guard.routes(),
        # Search, the payment page and its actions, reconciliation (one module each).
        *console_search.routes(pasarela, settings, guard, env=env),
        *console_actions.routes(pasarela, settings, guard, env=env, now=now,
                                evidence=_has_evidence()),
        *console_reconcile.routes(pasarela, settings, guard, env=env),
        *console_trends.routes(pasarela, settings, guard, env=env),
        *console_evidence.routes(pasarela, settings, guard),
    ]


def _has_evidence() -> bool:
    """Whether the console offers evidence bundles (``pasarela.web.evidence``)."""
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("pasarela.web.evidence") is not None
