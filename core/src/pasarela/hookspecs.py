"""The pasarela hook specifications.

Hooks register; classes do the work. A provider is a
:class:`pasarela.provider.Provider` subclass announced with
:func:`pasarela_register_providers`; everything a provider *does* lives on that
class. The other hooks override routing or observe what happened.

Implement a hook with :data:`hookimpl`, in a module named by an entry point in the
``pasarela`` group (a provider distribution) or in an object passed to
``plugins.register(...)`` (a host application)::

    from pasarela.hookspecs import hookimpl

    @hookimpl
    def pasarela_register_providers(register):
        register.add(PlinProvider)

Every hook is called with keyword arguments, so an implementation may accept only
the arguments it needs. ``docs/plugin-hooks.md`` documents each hook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import pluggy


if TYPE_CHECKING:
    from pasarela.events import LifecycleEvent
    from pasarela.model import Method, Order
    from pasarela.registry import ProviderRegistry


__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "pasarela_alert",
    "pasarela_payment_event",
    "pasarela_register_providers",
    "pasarela_routing_decision",
    "pasarela_select_provider",
]

#: The pluggy project name and the entry point group.
PROJECT_NAME: Final = "pasarela"

#: Marks a hook specification (pasarela itself uses it).
hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a hook implementation in a plugin: ``@hookimpl def pasarela_...``.
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def pasarela_register_providers(register: ProviderRegistry) -> None:
    """Register provider classes.

    Call ``register.add(ProviderClass)`` once per class. The registry checks on the
    spot that the class is a :class:`~pasarela.provider.Provider` subclass with
    ``name``, ``display_name``, ``methods`` and ``currencies`` declared, and that
    no other plugin registered the same name.

    Built-in providers register through this hook too.

    :param register: the :class:`~pasarela.registry.ProviderRegistry` to add to; a
        name that another plugin already registered raises
        :class:`~pasarela.errors.DuplicateProviderError`, naming both plugins.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def pasarela_select_provider(order: Order, method: Method, candidates: Sequence[str]) -> str | None:
    """Override configuration-based routing for one payment.

    Called after the routing rules picked *candidates*, before the first attempt.
    The first implementation that returns a name wins (``firstresult``); return
    ``None`` to defer to the next implementation and finally to the rules.

    :param order: the :class:`~pasarela.model.Order` being paid.
    :param method: the :class:`~pasarela.model.Method` the customer chose.
    :param candidates: the eligible provider names, in the order routing would
        try them. The returned name must be one of them.
    :returns: a provider name from *candidates*, or ``None``.

    .. versionadded:: 0.1
    """


@hookspec
def pasarela_payment_event(event: LifecycleEvent) -> None:
    """Observe a committed lifecycle event (succeeded, expired, late payment, refunded).

    Called by the outbox dispatcher after the status change was committed, **at
    least once**: the same event may arrive again after a crash or retry, always
    with the same ``event.id``, so deduplicate on it. ``event.type`` is
    ``payment.<status>``, ``payment.late_succeeded`` (the provider confirmed money
    taken after the payment had expired or been canceled: decide about stock you
    already released), or ``payment.link_resent`` (an operator resent the customer's
    page link from the console: send ``event.payload["link"]`` to the customer;
    the payment's status did not change).

    Each implementation runs on its own: an exception is logged (event
    ``observer_failed`` with the plugin's name) and does not stop the other
    observers, nor undo anything.

    :param event: the :class:`~pasarela.events.LifecycleEvent`.

    .. versionadded:: 0.1
    """


@hookspec
def pasarela_routing_decision(decision: Mapping[str, Any]) -> None:
    """Observe a routing decision after it was made.

    For metrics and audit: which rule matched, the candidates and the reasons
    others were excluded. Like every observer, an exception is logged and changes
    nothing.

    :param decision: the decision with its explanation, as stored with the attempt
        (JSON-compatible values).

    .. versionadded:: 0.1
    """


@hookspec
def pasarela_alert(alert: Mapping[str, Any]) -> None:
    """Observe an alert opened or resolved by ``pasarela worker`` (``docs/alerts.md``).

    Called once when the alert starts firing (``alert["state"] == "firing"``) and once
    when it resolves (``"resolved"``), in the worker that evaluated it, after the
    alert's state was committed. Like every observer, an exception is logged and
    changes nothing (the log and webhook notifiers still run).

    :param alert: the alert as JSON-compatible values: ``id``, ``state``, ``kind``
        (``success_rate``, ``notifications_silent``, ``unknown_overdue``,
        ``outbox_lag``, ``reconciliation_differences``), ``merchant`` (``""``: the
        implicit one), ``subject`` (an account, ``account/method`` or ``outbox``),
        ``severity``, ``value``, ``threshold``, ``message``, ``started_at`` and
        ``resolved_at`` (ISO 8601, UTC). The webhook notifier POSTs the same document.

    .. versionadded:: 0.1
    """
