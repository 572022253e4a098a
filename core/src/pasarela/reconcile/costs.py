"""What another routing would cost: :func:`what_if` re-routes the succeeded orders of a
window with another configuration's router (:meth:`pasarela.routing.Router.simulate`)
and sums the fees it expects, beside the fees expected as they were routed
(``routing.expected_fee``). The cost report itself is :mod:`pasarela.reconcile.cost_model`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from pasarela.lifecycle import Status
from pasarela.model import Order
from pasarela.money import Money
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.routing import Router
    from pasarela.store import Store


__all__ = ["WhatIf", "what_if"]

_PAID: Final = (Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                Status.REFUNDED.value)


def _expected(routing: Any, currency: str) -> int:
    if isinstance(routing, Mapping):
        fee = routing.get("expected_fee")
        if isinstance(fee, Mapping) and fee.get("currency") == currency:
            minor = fee.get("minor")
            if isinstance(minor, int):
                return minor
    return 0


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
