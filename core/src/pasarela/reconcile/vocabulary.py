"""The vocabulary of reconciliation: categories, differences, summaries.

See :mod:`pasarela.reconcile` for what each category means.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Any, Final

import attrs

from pasarela.lifecycle import Status


__all__ = ["OURS_PAID", "OURS_REFUNDED", "Category", "Difference", "Summary", "line_status"]

_PAID: Final = frozenset({"paid", "succeeded", "success", "settled", "captured", "completed",
                          "pagado", "cancelado", "available", "approved"})
_REFUNDED: Final = frozenset({"refunded", "refund", "reversed", "chargeback", "extornado",
                              "devuelto"})
_FAILED: Final = frozenset({"failed", "declined", "rejected", "denied", "expired", "voided"})
OURS_PAID: Final = frozenset({Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                               Status.REFUNDED.value})
OURS_REFUNDED: Final = frozenset({Status.PARTIALLY_REFUNDED.value, Status.REFUNDED.value})


class Category(StrEnum):
    MATCHED = "matched"
    MISSING_IN_BOOKS = "missing_in_books"
    MISSING_AT_PROVIDER = "missing_at_provider"
    STATUS_MISMATCH = "status_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    DUPLICATE = "duplicate"


def line_status(raw: str) -> str:
    """A provider's status word as ``paid``, ``refunded``, ``failed`` or ``other``."""
    word = raw.strip().lower()
    if word in _PAID:
        return "paid"
    if word in _REFUNDED:
        return "refunded"
    if word in _FAILED:
        return "failed"
    return "other"


@attrs.frozen(kw_only=True)
class Difference:
    """One difference found (a row of ``reconciliation_results``)."""

    category: Category
    provider: str
    item_key: str
    line_no: int | None = None
    payment_id: str | None = None
    provider_reference: str | None = None
    order_reference: str | None = None
    expected: str = ""
    actual: str = ""
    detail: str = ""
    resolved: bool = False
    healed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value, "provider": self.provider,
            "item_key": self.item_key, "line_no": self.line_no, "payment_id": self.payment_id,
            "provider_reference": self.provider_reference,
            "order_reference": self.order_reference, "expected": self.expected,
            "actual": self.actual, "detail": self.detail, "resolved": self.resolved,
            "healed": self.healed,
        }


@attrs.define
class Summary:
    """What a run found. ``counts`` has every category; ``skipped`` counts lines
    recorded by an earlier run with the same key (a re-run)."""

    run_key: str
    provider: str
    lines: int = 0
    skipped: int = 0
    counts: Counter[str] = attrs.field(factory=Counter)
    unresolved: int = 0
    healed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"run_key": self.run_key, "provider": self.provider, "lines": self.lines,
                "skipped": self.skipped,
                "counts": {c.value: self.counts.get(c.value, 0) for c in Category},
                "unresolved": self.unresolved, "healed": self.healed}
