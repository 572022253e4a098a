"""One HTTP exchange with a provider, as the evidence trail keeps it (redacted).

The engine records an :class:`Exchange` for every request it sends on a provider's
behalf (:mod:`pasarela.engine.flows`); the store writes them beside the payment they
concern; the console and ``pasarela payment`` show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs


__all__ = ["Exchange"]


@attrs.frozen(kw_only=True)
class Exchange:
    """One HTTP exchange with a provider, redacted, for the evidence trail."""

    provider: str
    operation: str
    payment_id: str | None
    attempt: int
    method: str
    url: str
    request_headers: Mapping[str, str] = attrs.field(repr=False)
    request_body: str = attrs.field(repr=False)
    status_code: int | None
    response_headers: Mapping[str, str] = attrs.field(repr=False)
    response_body: str = attrs.field(repr=False)
    error: str | None
    started_at: datetime
    duration_ms: float
