"""What every webhook route shares (the ASGI app's in :mod:`pasarela.web.app`, the
Django view in :mod:`pasarela.web.django`): which media types a provider's deliveries
may have, and which errors answer 503 so that the provider delivers again.

It imports no web framework, so the Django view works with the ``django`` extra alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pasarela.errors import ConcurrencyConflictError, ConfigurationError, ProviderError
from pasarela.provider import Provider
from pasarela.store import UNAVAILABLE


__all__ = ["DEFAULT_CONTENT_TYPES", "RETRY_LATER", "accepted_content_types"]

#: What a provider may send when its class declares no ``webhook_content_types``.
DEFAULT_CONTENT_TYPES: Final = frozenset({"application/json", "application/x-www-form-urlencoded"})
#: Errors after which the delivery should come again: 503, not 500.
RETRY_LATER: Final[tuple[type[Exception], ...]] = (
    ProviderError, ConcurrencyConflictError, ConfigurationError, *UNAVAILABLE)


def accepted_content_types(adapter: Provider) -> frozenset[str]:
    """The media types *adapter* sends webhooks as: its class's
    ``webhook_content_types`` when declared, else :data:`DEFAULT_CONTENT_TYPES`."""
    declared: Iterable[str] | None = getattr(type(adapter), "webhook_content_types", None)
    if not declared:
        return DEFAULT_CONTENT_TYPES
    # Asked on every delivery: each declared set lower-cased once (a class that
    # declares another set later gets its own entry; a list is not remembered).
    try:
        found = _LOWERED.get(declared)
    except TypeError:  # unhashable
        return frozenset(t.lower() for t in declared)
    if found is None:
        found = _LOWERED[declared] = frozenset(t.lower() for t in declared)
    return found


#: Each declared set of media types seen (a frozenset, a tuple), lower-cased.
_LOWERED: dict[Iterable[str], frozenset[str]] = {}
