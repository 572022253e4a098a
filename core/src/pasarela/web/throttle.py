"""Sign-in throttling for the operator console: per address and per account.

A failed sign-in (a wrong password for an operator, a wrong admin token in the form
or as a ``Bearer`` token) counts against the client's address and against the
account it tried (the operator's name; :data:`ACCOUNT` for the admin token). Past
:attr:`LoginThrottle.per_address` failures from one address, or
:attr:`LoginThrottle.per_account` on one account from everywhere, within
:attr:`LoginThrottle.window`, further attempts from that address, or on that account,
are refused (429 with ``Retry-After``) until the oldest failure leaves the window; a
correct sign-in clears its address. State is in memory, per process, and bounded:
the oldest addresses and accounts are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta
from typing import Final

import attrs


__all__ = ["ACCOUNT", "LoginThrottle"]

#: The account the admin token signs in to.
ACCOUNT: Final = "admin"


@attrs.define
class LoginThrottle:
    per_address: int = 5
    per_account: int = 50
    window: timedelta = timedelta(minutes=15)
    max_addresses: int = 10_000
    _failures: OrderedDict[str, deque[datetime]] = attrs.field(factory=OrderedDict, init=False)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, address: str, now: datetime, account: str = ACCOUNT
                    ) -> float | None:
        """Seconds until *address* may try *account* again, or None when it may now."""
        waits = []
        for key, limit in ((f"address:{address}", self.per_address),
                           (f"account:{account}", self.per_account)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append((times[0] + self.window - now).total_seconds())
        return max(1.0, *waits) if waits else None

    def failed(self, address: str, now: datetime, account: str = ACCOUNT) -> None:
        for key in (f"address:{address}", f"account:{account}"):
            times = self._failures.setdefault(key, deque())
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(f"address:{address}", None)
