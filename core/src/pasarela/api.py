"""The public API: :class:`Pasarela` (sync) and :class:`AsyncPasarela` (async).

Both are thin drivers over one :class:`~pasarela.engine.service.Service`: every
operation is written once as a generator of steps; the sync class performs the
steps with :class:`httpx.Client`, the async one with :class:`httpx.AsyncClient`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import httpx

from pasarela.config import Config, load_config
from pasarela.engine.flows import Steps, adrive, drive
from pasarela.engine.jobs import expire_due, resolve_due
from pasarela.engine.outbox import dispatch_outbox
from pasarela.engine.service import Option, Service
from pasarela.engine.webhooks import Incoming, handle_webhook, handle_webhooks
from pasarela.model import Method, Order, Payment, Refund
from pasarela.money import Money
from pasarela.plugins import PasarelaPlugins, get_plugin_manager
from pasarela.provider import Provider, WebhookReply
from pasarela.routing import Router, StoreHealth
from pasarela.store import Store


__all__ = ["AsyncPasarela", "Pasarela"]

T = TypeVar("T")


def _build(
    config: Config | str | os.PathLike[str] | Mapping[str, Any],
    *,
    plugins: Iterable[object],
    load_entrypoints: bool,
    clock: Callable[[], datetime] | None,
    env: Mapping[str, str] | None,
    store: Store | None,
) -> tuple[Config, PasarelaPlugins, Service]:
    cfg = config if isinstance(config, Config) else load_config(config, env=env)
    manager = get_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins)
    for module in cfg.plugins.modules:
        manager.load_module(module)
    registry = manager.providers()
    classes = {}
    for name in cfg.providers:
        classes[name] = registry.get(name)  # ProviderNotFoundError names what is installed
    settings = cfg.all_provider_settings({n: c.settings_class for n, c in classes.items()})
    providers: dict[str, Provider] = {
        name: classes[name](settings[name], clock=clock) for name in cfg.providers
    }
    router = Router.from_config(cfg.routes, providers, clock=clock,
                                preference=tuple(cfg.checkout.preference))
    backend = store or Store(cfg.store.url)
    if any(route.strategy == "healthiest" for route in cfg.routes):
        router.health = StoreHealth(backend, clock=clock)

    def select(order: Order, method: Method, candidates: list[str]) -> str | None:
        return manager.select_provider(order=order, method=method, candidates=candidates)

    def observe(decision: Mapping[str, Any]) -> None:
        manager.routing_decision(decision)

    service = Service(
        store=backend,
        providers=providers,
        router=router,
        select_provider=select,
        on_decision=observe,
        clock=clock,
    )
    return cfg, manager, service


class _Base:
    config: Config
    plugins: PasarelaPlugins
    service: Service

    @property
    def store(self) -> Store:
        return self.service.store

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self.service.providers

    def options(self, order: Order) -> list[Option]:
        """Which ways to pay *order* (cash, wallet, card): provider, expiry, fee, why."""
        return self.service.options(order)

    def get(self, payment_id: str) -> Payment:
        """The payment with its history."""
        return self.service.get(payment_id)

    def _dispatch_inline(self) -> None:
        if self.config.outbox.dispatch == "inline":
            dispatch_outbox(self.service, self.plugins)


class Pasarela(_Base):
    """The synchronous API.

    ``Pasarela.from_config("pasarela.toml")`` reads the configuration, discovers the
    installed provider plugins and opens the store (SQLite unless configured).
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | Mapping[str, Any] = "pasarela.toml",
        *,
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
        clock: Callable[[], datetime] | None = None,
        env: Mapping[str, str] | None = None,
        store: Store | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config, self.plugins, self.service = _build(
            config, plugins=plugins, load_entrypoints=load_entrypoints, clock=clock, env=env,
            store=store,
        )
        self._client = httpx.Client(transport=transport)

    @classmethod
    def from_config(
        cls, config: Config | str | os.PathLike[str] | Mapping[str, Any] | Path, **kwargs: Any
    ) -> Pasarela:
        return cls(config, **kwargs)

    def _run(self, steps: Steps[T]) -> T:
        try:
            return drive(steps, self._client)
        finally:
            self._dispatch_inline()

    def pay(
        self,
        order: Order,
        *,
        method: Method | str,
        idempotency_key: str,
        provider: str | None = None,
        **params: Any,
    ) -> Payment:
        """Start paying *order*; ``payment.next_action`` says what the customer does."""
        return self._run(self.service.pay(order, method=method, provider=provider,
                                          idempotency_key=idempotency_key, params=params))

    def confirm(self, payment_id: str, **params: Any) -> Payment:
        """Complete a pending payment (a wallet approval code, a card PaymentMethod)."""
        return self._run(self.service.confirm(payment_id, params))

    def sync(self, payment_id: str) -> Payment:
        """Ask the provider and apply what it says."""
        return self._run(self.service.sync(payment_id))

    def cancel(self, payment_id: str) -> Payment:
        return self._run(self.service.cancel(payment_id))

    def refund(self, payment_id: str, amount: Money | None = None, *, reason: str = "") -> Refund:
        """Refund all (``amount=None``) or part of a succeeded payment."""
        return self._run(self.service.refund(payment_id, amount, reason=reason))

    def handle_webhook(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookReply:
        """Verify, dedupe and apply a provider's delivery; returns what to answer."""
        return self._run(handle_webhook(self.service, provider, headers, body))

    def handle_webhooks(self, deliveries: Sequence[Incoming]) -> list[WebhookReply | Exception]:
        """Many ``(provider, headers, body)`` deliveries at once, applied in one
        transaction where no provider call is needed; each one's reply, or the
        exception it raised, in order (the webhook server batches with this)."""
        return self._run(handle_webhooks(self.service, deliveries))

    def expire_due(self) -> int:
        return self._run(expire_due(self.service))

    def resolve_due(self) -> int:
        return self._run(resolve_due(self.service))

    def dispatch_outbox(self) -> int:
        """Deliver committed lifecycle events to the observer hooks (at least once)."""
        return dispatch_outbox(self.service, self.plugins)

    def close(self) -> None:
        self._client.close()
        self.service.store.close()

    def __enter__(self) -> Pasarela:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncPasarela(_Base):
    """The asynchronous API: the same operations, awaited."""

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | Mapping[str, Any] = "pasarela.toml",
        *,
        plugins: Iterable[object] = (),
        load_entrypoints: bool = True,
        clock: Callable[[], datetime] | None = None,
        env: Mapping[str, str] | None = None,
        store: Store | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config, self.plugins, self.service = _build(
            config, plugins=plugins, load_entrypoints=load_entrypoints, clock=clock, env=env,
            store=store,
        )
        self._client = httpx.AsyncClient(transport=transport)

    @classmethod
    def from_config(
        cls, config: Config | str | os.PathLike[str] | Mapping[str, Any] | Path, **kwargs: Any
    ) -> AsyncPasarela:
        return cls(config, **kwargs)

    async def _run(self, steps: Steps[T], *, inline: bool = False) -> T:
        try:
            return await adrive(steps, self._client, inline=inline)
        finally:
            if self.config.outbox.dispatch == "inline":
                await anyio.to_thread.run_sync(dispatch_outbox, self.service, self.plugins)

    async def pay(
        self,
        order: Order,
        *,
        method: Method | str,
        idempotency_key: str,
        provider: str | None = None,
        **params: Any,
    ) -> Payment:
        return await self._run(self.service.pay(order, method=method, provider=provider,
                                                idempotency_key=idempotency_key, params=params))

    async def confirm(self, payment_id: str, **params: Any) -> Payment:
        return await self._run(self.service.confirm(payment_id, params))

    async def get(self, payment_id: str) -> Payment:  # type: ignore[override]
        """The payment with its history."""
        return await anyio.to_thread.run_sync(self.service.get, payment_id)

    async def sync(self, payment_id: str) -> Payment:
        return await self._run(self.service.sync(payment_id))

    async def cancel(self, payment_id: str) -> Payment:
        return await self._run(self.service.cancel(payment_id))

    async def refund(
        self, payment_id: str, amount: Money | None = None, *, reason: str = ""
    ) -> Refund:
        return await self._run(self.service.refund(payment_id, amount, reason=reason))

    async def handle_webhook(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> WebhookReply:
        return await self._run(handle_webhook(self.service, provider, headers, body))

    async def handle_webhooks(
        self, deliveries: Sequence[Incoming], *, inline: bool = False
    ) -> list[WebhookReply | Exception]:
        """As :meth:`Pasarela.handle_webhooks`; with *inline* the store work runs on
        the event loop rather than in a worker thread (provider calls stay async)."""
        return await self._run(handle_webhooks(self.service, deliveries), inline=inline)

    async def expire_due(self) -> int:
        return await self._run(expire_due(self.service))

    async def resolve_due(self) -> int:
        return await self._run(resolve_due(self.service))

    async def dispatch_outbox(self) -> int:
        return await anyio.to_thread.run_sync(dispatch_outbox, self.service, self.plugins)

    async def aclose(self) -> None:
        await self._client.aclose()
        self.service.store.close()

    async def __aenter__(self) -> AsyncPasarela:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
