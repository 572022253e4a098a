"""The sandbox's knobs (faults and limits) and one-shot faults."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs


__all__ = ["Fault", "Knobs", "as_flag", "as_limits", "configure"]


def as_flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def as_limits(value: object) -> dict[str, Decimal]:
    """``{"PEN": "5000"}`` or ``"PEN 5000"`` (or a list of such strings)."""
    if not value:
        return {}
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        pairs = [str(item).split() for item in value]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"max_amount: expected 'PEN 5000', got {value!r}")
        return {cur.upper(): Decimal(amount) for cur, amount in pairs}
    if isinstance(value, Mapping):
        return {str(k).upper(): Decimal(str(v)) for k, v in value.items()}
    raise ValueError(f"max_amount: expected {{currency: amount}}, got {value!r}")


@attrs.define
class Knobs:
    """Faults and limits; all can be changed at run time with ``POST /_control/config``."""

    latency: float = 0.0  # seconds added before every API answer
    error_rate: float = 0.0  # share of API calls answered 500/166 before doing anything
    max_amount: dict[str, Decimal] = attrs.Factory(dict)  # per currency; above it: 511
    strict: bool = True  # the spec's mandatory fields and Origin; False: the demo's leniency
    default_expiry: float = 4 * 3600.0  # when no dateExpiry is sent (4 h in the official demo)
    token_ttl: float = 2 * 3600.0
    date_request_tolerance: float | None = None  # seconds; None: not checked (unverified)
    notification_url: str | None = None
    notification_delay: float = 0.0
    duplicate_notifications: int = 0  # extra copies of every notification
    lose_notifications: float = 0.0  # share of notifications never sent
    late_payment_grace: float = 0.0  # seconds after dateExpiry a bank payment still lands
    expired_notifications: bool = False  # send cip.expired (unverified event) on expiry


@attrs.define
class Fault:
    """A one-shot fault for the next calls of *operation* (``any`` matches all).

    kinds: ``500`` (166, nothing done), ``401``, ``508``, ``timeout`` (the call is
    done, then the answer waits *seconds*: the client sees a timeout after send).
    """

    operation: str
    kind: str
    seconds: float = 30.0
    times: int = 1


_FLOATS = frozenset({"latency", "error_rate", "default_expiry", "token_ttl", "notification_delay",
                     "lose_notifications", "late_payment_grace"})


def configure(knobs: Knobs, values: Mapping[str, Any]) -> None:
    """Set *knobs* by name, converting text from the command line; unknown names
    are refused with ``ValueError``."""
    names = {f.name for f in attrs.fields(Knobs)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown knob(s): {', '.join(unknown)}")
    for name, given in values.items():
        value: Any = given
        if name == "max_amount":
            value = as_limits(given)
        elif name in _FLOATS:
            value = float(given)
        elif name == "date_request_tolerance":
            value = None if given is None else float(given)
        elif name == "duplicate_notifications":
            value = int(given)
        elif name in ("strict", "expired_notifications"):
            value = as_flag(given)
        setattr(knobs, name, value)
