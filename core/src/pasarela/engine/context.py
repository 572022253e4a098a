"""The engine's context: what every operation works with.

:class:`Service` holds the store, the configured providers, the router (with the
plugin override and the observer of decisions), the business clock and the scale
of retry waits. The operations (:mod:`~pasarela.engine.payments`,
:mod:`~pasarela.engine.refunds`, :mod:`~pasarela.engine.webhooks`,
:mod:`~pasarela.engine.jobs`) and the one transition path
(:mod:`~pasarela.engine.transitions`) take it as their first argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pasarela.errors import NotFoundError, ProviderNotFoundError
from pasarela.model import Method, Order, Payment
from pasarela.provider import Provider
from pasarela.registry import merchant_of, qualified
from pasarela.routing import Decision, Router
from pasarela.store import Store


__all__ = ["Service"]


def _now() -> datetime:
    return datetime.now(UTC)


class Service:
    """The context behind :class:`pasarela.Pasarela` and :class:`pasarela.AsyncPasarela`."""

    def __init__(
        self,
        *,
        store: Store,
        providers: Mapping[str, Provider],
        preference: tuple[str, ...] = (),
        router: Router | None = None,
        select_provider: Callable[[Order, Method, list[str]], str | None] | None = None,
        on_decision: Callable[[Mapping[str, Any]], object] | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep_scale: float = 1.0,
        merchant: str = "",
        lookup: Callable[[str], Service | None] | None = None,
    ) -> None:
        #: The merchant whose payments this context reads and writes (``""``: the
        #: implicit one); another merchant's payment is "not found" here.
        self.merchant = merchant
        #: The deployment's context only: merchant name to that merchant's context
        #: (built on first use), None for no such merchant. Jobs and webhooks, which
        #: meet every merchant's payments, reach a merchant's accounts through it
        #: (:meth:`scope`, :meth:`account`); a merchant's own context has none, so it
        #: never reaches another's.
        self.lookup = lookup
        self.store = store
        self.providers = dict(providers)
        for account, adapter in self.providers.items():
            if getattr(adapter, "account", account) != account:
                adapter.bind_account(account)  # a mapping key names the account
        self.clock: Callable[[], datetime] = clock or _now
        self.router = router or Router.from_config(
            (), self.providers, clock=self.clock,
            preference=tuple(preference) + tuple(sorted(set(self.providers) - set(preference))),
        )
        self.select_provider = select_provider
        self.on_decision = on_decision
        self.sleep_scale = sleep_scale

    def scope(self, account: str) -> Service:
        """The context of *account*'s merchant: this one, or (on the deployment's
        context) that merchant's, built on first use. An account of no known merchant
        gets this context, where it is not configured."""
        merchant = merchant_of(account)
        if merchant == self.merchant or self.lookup is None:
            return self
        return self.lookup(merchant) or self

    def account(self, name: str) -> Provider | None:
        """The account *name*: this merchant's, or (on the deployment's context) any
        merchant's through :attr:`lookup`; None when it is not configured."""
        adapter = self.providers.get(name)
        if adapter is None and self.lookup is not None:
            scoped = self.scope(name)
            adapter = None if scoped is self else scoped.providers.get(name)
        return adapter

    def provider(self, name: str) -> Provider:
        """The configured provider *name*; ``ProviderNotFoundError`` names the others."""
        adapter = self.account(name)
        if adapter is None:
            installed = ", ".join(sorted(self.providers)) or "none"
            raise ProviderNotFoundError(
                f"no provider {name!r} is configured (configured: {installed})", path="provider"
            )
        return adapter

    def provider_of(self, payment: Payment) -> Provider:
        """The provider *payment* was made with; ``ProviderNotFoundError`` (naming the
        payment) when it is no longer configured."""
        try:
            return self.provider(payment.provider)
        except ProviderNotFoundError as exc:
            exc.payment_id = payment.id
            raise

    def own(self, payment_id: str, *, history: bool = False) -> Payment:
        """This merchant's payment *payment_id*; ``NotFoundError``, as for an id that
        does not exist, when it is another merchant's."""
        payment = self.store.get_payment(payment_id, history=history)
        if merchant_of(payment.provider) != self.merchant:
            raise NotFoundError(f"no payment {payment_id!r}")
        return payment

    def get(self, payment_id: str) -> Payment:
        """The payment with its history."""
        return self.own(payment_id, history=True)

    def decide(self, order: Order, method: Method, provider: str | None = None, *,
               network: str | None = None) -> Decision:
        """The routing decision for *order* by *method* (on *network*, when the caller
        asked for one), with the plugin override."""
        if provider is not None:
            provider = qualified(self.merchant, provider)  # a merchant's own account
            if merchant_of(provider) != self.merchant:
                raise ProviderNotFoundError(f"no provider {provider!r} is configured",
                                            path="provider")
            self.provider(provider)  # ProviderNotFoundError names what is configured
        decision = self.router.decide(order, method, requested_provider=provider,
                                      network=network)
        if provider is None and decision.provider is not None and self.select_provider:
            chosen = self.select_provider(order, method, list(decision.candidates))
            if chosen is not None and chosen != decision.provider:
                decision = decision.overridden(chosen, by="pasarela_select_provider")
        return decision
