"""Cost analysis: what each provider really costs, and what another routing would.

:func:`costs` streams the payments created in a window
(:func:`pasarela.store.queries.cost_payments`: a server-side cursor) and sums, per
provider, method, month and currency: attempts, successes, volume (succeeded
amounts), the expected fee (``routing.expected_fee``, which the fee schedule worked
out with IGV and FX spread included) and the actual fee (the ``fee`` of the
settlement lines that matched the payment, as charged).
The effective rate is fees over volume, taking for each payment the actual fee
where a settlement line gave one, else the expected one.

:func:`what_if` re-routes the same succeeded orders with another configuration's
router (:meth:`pasarela.routing.Router.simulate`) and sums the fees it expects.
:func:`html_report` writes one self-contained HTML page with inline SVG charts
(success rate and effective cost per provider over time): no external assets.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.routing import Router
    from pasarela.store import Store


__all__ = ["CostRow", "costs", "html_report", "what_if"]

_PAID: Final = (Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                Status.REFUNDED.value)


@attrs.define
class CostRow:
    provider: str
    method: str
    month: str
    currency: str
    attempts: int = 0
    succeeded: int = 0
    volume: int = 0
    expected_fee: int = 0
    actual_fee: int = 0
    with_actual: int = 0
    #: Expected fees of the payments no settlement line gave a fee for.
    expected_unsettled: int = 0

    @property
    def success_rate(self) -> Decimal:
        return Decimal(self.succeeded) / self.attempts if self.attempts else Decimal(0)

    @property
    def fees(self) -> int:
        """Per payment, the actual fee where a settlement line gave one, else the
        expected one (minor units)."""
        return self.actual_fee + self.expected_unsettled

    @property
    def effective_rate(self) -> Decimal:
        return Decimal(self.fees) / self.volume if self.volume else Decimal(0)

    def to_dict(self) -> dict[str, Any]:
        def money(minor: int) -> str:
            return str(Money(minor, self.currency))

        return {"provider": self.provider, "method": self.method, "month": self.month,
                "currency": self.currency, "attempts": self.attempts,
                "succeeded": self.succeeded,
                "success_rate": f"{self.success_rate * 100:.2f}%",
                "volume": money(self.volume), "expected_fee": money(self.expected_fee),
                "actual_fee": money(self.actual_fee) if self.with_actual else None,
                "effective_rate": f"{self.effective_rate * 100:.3f}%"}


def _expected(routing: Any, currency: str) -> int:
    if isinstance(routing, Mapping):
        fee = routing.get("expected_fee")
        if isinstance(fee, Mapping) and fee.get("currency") == currency:
            minor = fee.get("minor")
            if isinstance(minor, int):
                return minor
    return 0


def _month(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m")


def costs(store: Store, since: datetime, until: datetime) -> list[CostRow]:
    """Cost rows per provider, method, month and currency, sorted."""
    rows: dict[tuple[str, str, str, str], CostRow] = {}
    for r in queries.cost_payments(store, since, until):
        key = (r.provider, r.method, _month(r.created_at), r.currency)
        row = rows.get(key)
        if row is None:
            row = rows[key] = CostRow(*key)
        row.attempts += 1
        if r.status in _PAID:
            row.succeeded += 1
            row.volume += r.amount_minor
            expected = _expected(r.routing, r.currency)
            row.expected_fee += expected
            if r.actual_fee is not None:
                row.actual_fee += r.actual_fee
                row.with_actual += 1
            else:
                row.expected_unsettled += expected
    return [rows[k] for k in sorted(rows)]


@attrs.define
class WhatIf:
    """Per currency: expected fees as routed, and as the other router would route."""

    current: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    other: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    split: dict[tuple[str, str], int] = attrs.field(factory=lambda: defaultdict(int))
    orders: int = 0
    unroutable: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"orders": self.orders, "unroutable": self.unroutable,
                "current": {c: str(Money(v, c)) for c, v in sorted(self.current.items())},
                "other": {c: str(Money(v, c)) for c, v in sorted(self.other.items())},
                "split": {f"{p}/{m}": n for (p, m), n in sorted(self.split.items())}}


def what_if(store: Store, since: datetime, until: datetime, router: Router) -> WhatIf:
    """Re-route the succeeded orders of the window with *router*; sum expected fees."""
    out = WhatIf()
    for r in queries.routed_orders(store, since, until, statuses=_PAID):
        out.orders += 1
        out.current[r.currency] += _expected(r.routing, r.currency)
        decision = router.simulate(Order.from_dict(r.order), r.method, at=r.created_at)
        if decision.provider is None:
            out.unroutable += 1
            continue
        out.split[(decision.provider, r.method)] += 1
        fee = decision.fees.get(decision.provider)
        if fee is not None:
            out.other[fee.currency] += fee.minor
    return out


# --- HTML ------------------------------------------------------------------------------

_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _chart(title: str, series: Mapping[str, Mapping[str, Decimal]], unit: str) -> str:
    months = sorted({m for points in series.values() for m in points})
    width, height, pad = 640, 260, 48
    top = max((v for points in series.values() for v in points.values()), default=Decimal(0))
    top = top if top > 0 else Decimal(1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(len(months) - 1, 1))

    def y(v: Decimal) -> float:
        return height - pad - float(v / top) * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{html.escape(title)}">',
             f'<text x="{pad}" y="20" font-size="14">{html.escape(title)}</text>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="#888"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>',
             f'<text x="4" y="{pad + 4}" font-size="10">{top:.2f}{unit}</text>']
    for i, month in enumerate(months):
        parts.append(f'<text x="{x(i):.1f}" y="{height - pad + 16}" font-size="10" '
                     f'text-anchor="middle">{html.escape(month)}</text>')
    for n, (name, points) in enumerate(sorted(series.items())):
        colour = _COLOURS[n % len(_COLOURS)]
        coords = " ".join(f"{x(months.index(m)):.1f},{y(v):.1f}"
                          for m, v in sorted(points.items()))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{coords}"/>')
        for m, v in sorted(points.items()):
            parts.append(f'<circle cx="{x(months.index(m)):.1f}" cy="{y(v):.1f}" r="3" '
                         f'fill="{colour}"><title>{html.escape(name)} {m}: {v:.2f}{unit}'
                         '</title></circle>')
        parts.append(f'<text x="{width - pad + 4}" y="{pad + 14 * n}" font-size="11" '
                     f'fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(rows: list[CostRow], *, title: str, extra: str = "") -> str:
    """A self-contained HTML page: the cost table and two inline SVG charts."""
    attempts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    cost: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        a = attempts[row.provider][row.month]
        a[0] += row.succeeded
        a[1] += row.attempts
        c = cost[f"{row.provider} {row.currency}"][row.month]
        c[0] += row.fees
        c[1] += row.volume
    success = {p: {m: Decimal(s * 100) / n for m, (s, n) in months.items() if n}
               for p, months in attempts.items()}
    rate = {p: {m: Decimal(f * 100) / v for m, (f, v) in months.items() if v}
            for p, months in cost.items()}
    head = ("provider", "method", "month", "currency", "attempts", "succeeded", "success rate",
            "volume", "expected fee", "actual fee", "effective rate")
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v if v is not None else '-'))}</td>"
                         for v in row.to_dict().values()) + "</tr>" for row in rows)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        + _chart("Success rate per provider", success, "%")
        + _chart("Effective cost per provider (fees / volume)", rate, "%")
        + "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + body
        + "</table>" + extra + "</body></html>\n"
    )
