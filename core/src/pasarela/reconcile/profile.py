"""``pasarela costs profile``: the figures a provider asks for before quoting.

From the store, over a window: per month and on average, the volume and number of
paid orders; the average ticket; the method mix and the currency mix (by count and
by volume); refund and dispute rates (by count and by amount); and each account's
current settlement cycle and currency (from its fee table).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from pasarela.fees import round_half_up
from pasarela.money import Money
from pasarela.reconcile.cost_model import CHARGEBACK_WORDS, PAID, CostSetup, months_between
from pasarela.store import Store, queries


__all__ = ["Profile", "profile"]


def _pct(part: int, whole: int) -> str:
    return f"{Decimal(part * 100) / whole:.2f}%" if whole else "0.00%"


@attrs.define
class Profile:
    since: datetime
    until: datetime
    months: list[str]
    #: (month, currency) -> [orders, volume]
    monthly: dict[tuple[str, str], list[int]]
    #: method -> currency -> [orders, volume]
    methods: dict[str, dict[str, list[int]]]
    attempts: int
    refunds: dict[str, list[int]]
    disputes: dict[str, list[int]]
    card: dict[str, list[int]]
    settlement: dict[str, dict[str, Any]]

    def orders(self, currency: str | None = None) -> int:
        return sum(v[0] for (_, c), v in self.monthly.items() if currency in (None, c))

    def volume(self, currency: str) -> int:
        return sum(v[1] for (_, c), v in self.monthly.items() if c == currency)

    @property
    def currencies(self) -> list[str]:
        return sorted({c for _, c in self.monthly})

    def to_dict(self) -> dict[str, Any]:
        total = self.orders()
        n = len(self.months) or 1
        per_currency = {}
        for cur in self.currencies:
            orders, volume = self.orders(cur), self.volume(cur)
            refunds, refunded = self.refunds.get(cur, [0, 0])
            disputes, lost = self.disputes.get(cur, [0, 0])
            card_orders, card_volume = self.card.get(cur, [0, 0])
            per_currency[cur] = {
                "orders": orders, "volume": str(Money(volume, cur)),
                "monthly_orders": str(round_half_up(Decimal(orders) / n)),
                "monthly_volume": str(Money(round_half_up(Decimal(volume) / n), cur)),
                "average_ticket": str(Money(round_half_up(Decimal(volume) / orders), cur))
                if orders else None,
                "share_of_orders": _pct(orders, total),
                "refund_rate": _pct(refunds, orders), "refunded_rate": _pct(refunded, volume),
                "dispute_rate": _pct(disputes, card_orders),
                "disputed_rate": _pct(lost, card_volume),
            }
        methods = {}
        for method, by_cur in sorted(self.methods.items()):
            methods[method] = {
                "orders": sum(v[0] for v in by_cur.values()),
                "share_of_orders": _pct(sum(v[0] for v in by_cur.values()), total),
                "share_of_volume": {c: _pct(v[1], self.volume(c)) for c, v in
                                    sorted(by_cur.items())},
            }
        return {
            "from": self.since.isoformat(), "to": self.until.isoformat(),
            "months": [{"month": m, "currency": c, "orders": v[0],
                        "volume": str(Money(v[1], c))}
                       for (m, c), v in sorted(self.monthly.items())],
            "orders": total, "attempts": self.attempts,
            "success_rate": _pct(total, self.attempts),
            "currencies": per_currency, "methods": methods,
            "settlement": self.settlement,
        }


def profile(store: Store, since: datetime, until: datetime,
            setup: CostSetup | None = None, *,
            accounts: Callable[[str], bool] | None = None) -> Profile:
    """The figures of ``[since, until)``; with *accounts*, of the payments of the
    accounts it says yes to only (a merchant's)."""
    monthly: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    methods: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    card: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    attempts = 0
    for row in queries.cost_payments(store, since, until):
        if accounts is not None and not accounts(row.provider):
            continue
        attempts += 1
        if row.status not in PAID:
            continue
        month = f"{row.created_at.year:04d}-{row.created_at.month:02d}"
        for cell in (monthly[(month, row.currency)], methods[row.method][row.currency]):
            cell[0] += 1
            cell[1] += row.amount_minor
        if row.method == "card":
            card[row.currency][0] += 1
            card[row.currency][1] += row.amount_minor
    refunds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in queries.cost_refunds(store, since, until):
        if accounts is not None and not accounts(r.provider):
            continue
        refunds[r.currency][0] += 1
        refunds[r.currency][1] += r.amount_minor
    disputes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in queries.cost_disputes(store, since, until, words=CHARGEBACK_WORDS):
        if accounts is not None and not accounts(d.provider):
            continue
        disputes[d.currency][0] += 1
        disputes[d.currency][1] += d.amount_minor
    settlement: dict[str, dict[str, Any]] = {}
    if setup is not None:
        for (provider, method), schedule in sorted(setup.schedules.items()):
            if method not in methods:
                continue
            settlement.setdefault(provider, {})[method] = {
                "cycle": f"T+{schedule.settlement_days}",
                "currency": schedule.settlement_currency}
    return Profile(since, until, months_between(since, until), dict(monthly),
                   {k: dict(v) for k, v in methods.items()}, attempts, dict(refunds),
                   dict(disputes), dict(card), settlement)


def as_rows(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The profile as ``(figure, value)`` pairs, for CSV and the terminal."""
    out: list[tuple[str, str]] = [("orders", str(data["orders"])),
                                  ("attempts", str(data["attempts"])),
                                  ("success_rate", data["success_rate"])]
    for m in data["months"]:
        out.append((f"month.{m['month']}.{m['currency']}.orders", str(m["orders"])))
        out.append((f"month.{m['month']}.{m['currency']}.volume", m["volume"]))
    for cur, figures in data["currencies"].items():
        out += [(f"{cur}.{k}", str(v)) for k, v in figures.items()]
    for method, figures in data["methods"].items():
        out.append((f"method.{method}.orders", str(figures["orders"])))
        out.append((f"method.{method}.share_of_orders", figures["share_of_orders"]))
        out += [(f"method.{method}.share_of_volume.{c}", v)
                for c, v in figures["share_of_volume"].items()]
    for provider, by_method in data["settlement"].items():
        for method, s in by_method.items():
            out.append((f"settlement.{provider}.{method}",
                        f"{s['cycle']} {s['currency'] or ''}".strip()))
    return out
