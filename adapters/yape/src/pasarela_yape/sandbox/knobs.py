"""The sandbox's knobs: what it does beyond the happy path, settable at run time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs


__all__ = ["DEFAULT_YAPE_OUTCOMES", "TOKEN_STAGE_DECLINES", "Knobs"]

#: Culqi's documented Yape test phone approves with any 6 digits; the others are
#: this sandbox's decline matrix (Culqi publishes no Yape decline numbers).
#: A value is a decline code, or None to approve. Phones not listed use
#: ``Knobs.yape_default``.
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

@attrs.define(kw_only=True)
class Knobs:
    """What the sandbox does beyond the happy path. All settable at run time."""

    #: seconds added before every API answer
    latency: float = 0.0
    #: probability that an API call fails with HTTP 500 (nothing is done)
    error_rate: float = 0.0
    #: seconds a ``hang``/``hang_after`` fault holds the answer (or until the client leaves)
    hang_seconds: float = 30.0
    #: where ``order.status.changed`` events are POSTed (None: recorded, not sent)
    webhook_url: str | None = None
    #: seconds to wait before sending each webhook (sent in the background)
    webhook_delay: float = 0.0
    #: extra copies of each webhook delivery (same event id)
    duplicates: int = 0
    #: probability that a webhook is lost (never sent)
    lose: float = 0.0
    #: lose the next N webhooks
    lose_next: int = 0
    #: hold each webhook until the next one, then send the newer first
    reorder: bool = False
    #: resend a webhook the receiver did not answer with 2xx, this many times
    webhook_retries: int = 2
    #: phone -> decline code (or None to approve) for Yape tokens; options and
    #: ``/_control/config`` merge into it
    yape_outcomes: dict[str, str | None] = attrs.field(
        factory=lambda: dict(DEFAULT_YAPE_OUTCOMES)
    )
    #: the decline of phones not in ``yape_outcomes`` (None approves every phone)
    yape_default: str | None = "invalid_otp"
    #: most a Yape token may carry, in céntimos
    yape_max: int = 50_000
    #: QR order bounds in céntimos of PEN (Culqi wallets: S/ 6 to S/ 500)
    qr_min: int = 600
    qr_max: int = 50_000
    #: seconds a Yape token can be used (single use)
    token_ttl: float = 300.0
