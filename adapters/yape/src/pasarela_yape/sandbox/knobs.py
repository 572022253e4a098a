"""The Culqi sandbox's own knobs, beside the ones every sandbox has.

The names and units follow :mod:`pasarela.testing.sandbox.knobs`: times in
seconds, shares from 0 to 1, webhook faults ``<verb>_webhooks``; amounts here are
céntimos, as Culqi writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from pasarela.errors import ValidationError
from pasarela.testing.sandbox import Knobs, count, knob, seconds, text


__all__ = ["DEFAULT_YAPE_OUTCOMES", "TOKEN_STAGE_DECLINES", "CulqiKnobs"]

#: Culqi's documented Yape test phone approves with any 6 digits; the others are
#: this sandbox's decline matrix (Culqi publishes no Yape decline numbers).
#: A value is a decline code, or None to approve. Phones not listed use
#: ``CulqiKnobs.yape_default``.
DEFAULT_YAPE_OUTCOMES: Final[Mapping[str, str | None]] = {
    "900000001": None,
    "900000002": "insufficient_funds",
    "900000003": "invalid_otp",
    "900000004": "expired_otp",
    "900000005": "issuer_decline_operation",
    "900000006": "processing_error",
    "900000007": "fraudulent",
}

#: Declines that refuse the token (the approval code); the rest refuse the charge.
TOKEN_STAGE_DECLINES: Final = frozenset({"invalid_otp", "expired_otp"})


def _outcomes(value: Any, name: str) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise ValidationError("must map phone to a decline code or null", field=name)
    return {str(k): (None if v in (None, "approve", "approved") else str(v))
            for k, v in value.items()}


@attrs.define(kw_only=True)
class CulqiKnobs(Knobs):
    """The shared knobs and Culqi's limits and Yape decline matrix."""

    yape_outcomes: dict[str, str | None] = knob(  # noqa: RUF009 - an attrs field (factory)
        _outcomes, "phone -> decline code (or null to approve) for Yape tokens; a change "
                   "merges into the matrix", factory=lambda: dict(DEFAULT_YAPE_OUTCOMES),
        unit="phones")
    yape_default: str | None = text(
        "invalid_otp", "the decline of phones not in yape_outcomes (null approves them)")
    yape_max: int = count(50_000, "most a Yape token may carry, in céntimos")
    charge_min: int = count(300, "least a PEN charge may take, in céntimos (Culqi: S/ 3)")
    qr_min: int = count(600, "least a QR order may ask, in céntimos (Culqi wallets: S/ 6)")
    qr_max: int = count(50_000, "most a QR order may ask, in céntimos (S/ 500)")
    token_ttl: float = seconds(300.0, "seconds a Yape token can be used (once)")

    def merge(self, name: str, value: Any) -> Any:
        if name == "yape_outcomes":  # name only the phones that change
            return {**self.yape_outcomes, **_outcomes(value, name)}
        return value
