"""Fee schedules: what a provider charges the merchant for a payment.

A schedule comes from a provider's ``fees`` setting::

    fees = { percent = "3.5", fixed = "PEN 0.50", minimum = "PEN 1.00", igv = true }

The fee is ``percent`` of the amount plus ``fixed``, at least ``minimum``, plus IGV
(18 %) on the fee when ``igv`` is true, rounded half-up to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError
from pasarela.money import Money


__all__ = ["IGV_RATE", "FeeSchedule"]

#: Peru's IGV (IGV + IPM), charged on the provider's fee.
IGV_RATE: Final = Decimal("0.18")


def _money(value: Any, path: str) -> Money | None:
    if value is None or isinstance(value, Money):
        return value
    try:
        return Money.parse(str(value))
    except ValueError as exc:
        raise ConfigurationError(str(exc), path=path) from None


@attrs.frozen(kw_only=True)
class FeeSchedule:
    percent: Decimal = Decimal(0)
    fixed: Money | None = None
    minimum: Money | None = None
    igv: bool = False

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "fees") -> FeeSchedule:
        unknown = set(data) - {"percent", "fixed", "minimum", "igv"}
        if unknown:
            raise ConfigurationError(f"unknown fee keys {sorted(unknown)}", path=path)
        raw = data.get("percent", "0")
        if isinstance(raw, float):
            raise ConfigurationError(
                'write percentages as strings, e.g. "3.5"', path=f"{path}.percent"
            )
        try:
            percent = Decimal(str(raw))
        except InvalidOperation:
            raise ConfigurationError(f"not a number: {raw!r}", path=f"{path}.percent") from None
        return cls(
            percent=percent,
            fixed=_money(data.get("fixed"), f"{path}.fixed"),
            minimum=_money(data.get("minimum"), f"{path}.minimum"),
            igv=bool(data.get("igv", False)),
        )

    def fee(self, amount: Money) -> Money:
        """The expected fee for *amount*, IGV included where it applies."""
        base = amount.amount * self.percent / 100
        if self.fixed is not None and self.fixed.currency == amount.currency:
            base += self.fixed.amount
        if self.minimum is not None and self.minimum.currency == amount.currency:
            base = max(base, self.minimum.amount)
        if self.igv:
            base *= 1 + IGV_RATE
        quantum = Decimal(1).scaleb(-amount.exponent)
        return Money.of(base.quantize(quantum, rounding=ROUND_HALF_UP), amount.currency)
