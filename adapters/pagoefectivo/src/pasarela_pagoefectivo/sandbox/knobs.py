"""PagoEfectivo's own knobs, beside the ones every sandbox has.

The names and units follow :mod:`pasarela.testing.sandbox.knobs`: times in
seconds, shares from 0 to 1, webhook faults ``<verb>_webhooks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import attrs

from pasarela.errors import ValidationError
from pasarela.testing.sandbox import Knobs, count, flag, knob, seconds


__all__ = ["PagoEfectivoKnobs", "as_limits"]


def as_limits(value: object, name: str = "max_amount") -> dict[str, Decimal]:
    """``{"PEN": "5000"}`` or ``"PEN 5000"`` (or a list of such strings)."""
    if not value:
        return {}
    if isinstance(value, str):
        value = [value]
    try:
        if isinstance(value, list | tuple):
            pairs = [str(item).split() for item in value]
            if any(len(pair) != 2 for pair in pairs):
                raise ValidationError(f"expected 'PEN 5000', got {value!r}", field=name)
            return {cur.upper(): Decimal(amount) for cur, amount in pairs}
        if isinstance(value, Mapping):
            return {str(k).upper(): Decimal(str(v)) for k, v in value.items()}
    except InvalidOperation:
        raise ValidationError(f"not an amount in {value!r}", field=name) from None
    raise ValidationError(f"expected {{currency: amount}}, got {value!r}", field=name)


@attrs.define(kw_only=True)
class PagoEfectivoKnobs(Knobs):
    """The shared knobs, PagoEfectivo's retry (one more attempt, after a second), and
    the merchant's limits and the spec's leniencies."""

    webhook_retries: int = count(
        1, "PagoEfectivo tries once more after an answer other than 200 (PE spec v1.1 §5.2)")
    webhook_retry_delay: float = seconds(
        1.0, "seconds before that second attempt (the spec gives none: a sandbox choice)")
    max_amount: dict[str, Decimal] = knob(  # noqa: RUF009 - an attrs field (factory)
        as_limits, "per currency; above it a CIP is refused with 511 ('PEN 5000')",
        factory=dict, unit="amounts")
    strict: bool = flag(
        True, "the spec's exact forms: every mandatory field, Origin, dateRequest as "
        "yyyy-mm-ddThh:mm:ss-05:00 within date_request_tolerance, a lower-case hex "
        "hashString; false: what the official demo's sandbox took (a space for T, any or "
        "no offset, an upper-case hash, any age, no phone)")
    default_expiry: float = seconds(
        4 * 3600.0, "seconds a CIP lives when no dateExpiry is sent (4 h, as the demo)")
    token_ttl: float = seconds(2 * 3600.0, "seconds an authorization token lives")
    date_request_tolerance: float | None = seconds(
        300.0, "seconds dateRequest may differ from the clock when strict (5 min: the spec "
        "gives no window; the usual clock-skew allowance); null: not checked",
        optional=True)
    late_payment_grace: float = seconds(
        0.0, "seconds after dateExpiry that a bank payment still lands")
    expired_webhooks: bool = flag(
        False, "send cip.expired (an unverified event) when a CIP is expired")
