"""The public API: :class:`Pasarela` (sync) and :class:`AsyncPasarela` (async).

Both are thin drivers over one engine context
(:class:`~pasarela.engine.context.Service`): every operation is written once as a
generator of steps (:mod:`pasarela.engine.payments`, :mod:`pasarela.engine.refunds`,
:mod:`pasarela.engine.webhooks`, :mod:`pasarela.engine.jobs`); the sync class
performs the steps with :class:`httpx.Client`, the async one with
:class:`httpx.AsyncClient`.
"""

from __future__ import annotations

import os
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import attrs
import httpx

from pasarela.config import (
    Config,
    InvalidConfigError,
    MerchantConfig,
    check_config,
    load_config,
    merchant_from_table,
)
from pasarela.config.env import EnvResolver
from pasarela.config.loading import MerchantTables, read_config
from pasarela.config.sections import logo_path, merchant_path
from pasarela.engine import payments, refunds
from pasarela.engine.context import Service
from pasarela.engine.jobs import expire_due, resolve_due
from pasarela.engine.outbox import dispatch_outbox
from pasarela.engine.payments import Option
from pasarela.engine.steps import Steps, adrive, drive
from pasarela.engine.webhooks import Incoming, handle_webhook, handle_webhooks
from pasarela.errors import NotFoundError, PasarelaError, ValidationError
from pasarela.model import Method, Order, Payment, Refund
from pasarela.money import Money
from pasarela.plugins import PasarelaPlugins, get_plugin_manager
from pasarela.provider import Provider, WebhookHeaders, WebhookReply
from pasarela.registry import MERCHANT_NAME, merchant_of, qualified
from pasarela.routing import Router, StoreHealth
from pasarela.store import Store
from pasarela.store.sealing import Sealer


__all__ = ["AsyncMerchantPasarela", "AsyncPasarela", "MerchantPasarela", "Merchants",
           "Pasarela", "validate"]

T = TypeVar("T")


def _assemble(
    cfg: Config, manager: PasarelaPlugins, clock: Callable[[], datetime] | None
) -> tuple[dict[str, Provider], Router]:
    """The configured providers and the compiled router: everything
    :meth:`Pasarela.from_config` checks, and nothing that needs the network or the
    store. Raises :class:`~pasarela.config.InvalidConfigError` with every problem."""
    if cfg.source is not None:
        # A host module in [plugins] modules sits beside its configuration file.
        folder = str(Path(cfg.source).resolve().parent)
        if folder not in sys.path:
            sys.path.append(folder)
    for module in cfg.plugins.modules:
        manager.load_module(module)
    registry = manager.providers()
    installed = {name: cls.settings_class for name, cls in registry.items()}
    errors: list[str] = []
    try:
        settings = cfg.all_provider_settings(installed)
    except InvalidConfigError as exc:
        errors += exc.errors
        settings = {}
    providers: dict[str, Provider] = {}
    for name in cfg.providers:
        if name in settings:
            adapter = registry.get(cfg.provider_type(name))(settings[name], clock=clock)
            adapter.bind_account(name)
            providers[name] = adapter
    try:
        router = Router.from_config(cfg.routes, providers, clock=clock,
                                    preference=tuple(cfg.checkout.preference))
    except InvalidConfigError as exc:
        errors += exc.errors
    if errors:
        raise InvalidConfigError(errors, source=cfg.source)
    return providers, router


def _merchant_parts(
    cfg: Config, manager: PasarelaPlugins, clock: Callable[[], datetime] | None, name: str,
    table: MerchantConfig,
) -> tuple[dict[str, Provider], Router]:
    """Merchant *name*'s accounts (by their full names) and its compiled router;
    every problem is reported under ``merchants.NAME``."""
    try:
        return _assemble(cfg.for_merchant(name, table), manager, clock)
    except InvalidConfigError as exc:
        raise InvalidConfigError([merchant_path(name, e) for e in exc.errors],
                                 source=cfg.source) from None


def validate(
    config: str | os.PathLike[str] | Mapping[str, Any],
    *,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    env: Mapping[str, str] | None = None,
    merchant: str | None = None,
) -> list[str]:
    """Every problem :meth:`Pasarela.from_config` would refuse *config* for, with its
    path, without opening the store or calling a provider (``pasarela config check``).
    An empty list means it starts.

    With *merchant*, the deployment's own tables and that merchant's only (``pasarela
    --merchant NAME config check``): another merchant's problems are not listed, and a
    merchant the file does not declare is a problem of its own."""
    try:
        manager = get_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins)
        problems: list[str] = []
        loaded: Config | None
        try:
            loaded = load_config(config, env=env)
        except InvalidConfigError:
            # Every problem of the file at once, the provider tables' and the
            # merchant tables' too; then each merchant's accounts and routes.
            problems = _file_problems(config, manager, env)
            loaded = None
        cfg = loaded if loaded is not None else read_config(config, env=env)[0]
        if cfg is None:
            return problems
        if loaded is not None:
            try:
                _assemble(cfg, manager, None)
            except InvalidConfigError as exc:
                problems += exc.errors
        tables = cfg.merchants
        for name in tables:  # every merchant, eagerly (from_config: on first use)
            if merchant is not None and name != merchant:
                continue
            trouble = tables.problems(name) if isinstance(tables, MerchantTables) else []
            if trouble:
                problems += trouble if loaded is not None else []  # else listed already
                continue
            try:
                _merchant_parts(cfg, manager, None, name, tables[name])
            except InvalidConfigError as exc:
                problems += exc.errors
            logo = tables[name].logo_file
            if logo is not None and not logo_path(cfg.source, logo).is_file():
                problems.append(f"merchants.{name}.logo_file: no such file "
                                f"{str(logo_path(cfg.source, logo))!r}")
    except PasarelaError as exc:
        return [str(e) for e in getattr(exc, "errors", None) or [str(exc)]]
    if merchant is None:
        return problems
    mine = [p for p in problems if not p.startswith("merchants.")
            or p.startswith((f"merchants.{merchant}.", f"merchants.{merchant}:"))]
    if merchant not in cfg.merchants:
        mine.append(f"merchants: no merchant {merchant!r} in this file")
    return mine


def _file_problems(config: str | os.PathLike[str] | Mapping[str, Any],
                   manager: PasarelaPlugins, env: Mapping[str, str] | None) -> list[str]:
    raw: Any = config
    if not isinstance(config, Mapping):
        try:
            with Path(config).open("rb") as fh:
                raw = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError):
            raw = {}  # check_config reports the file's own problem
    modules = raw.get("plugins", {}).get("modules", []) if isinstance(raw, Mapping) else []
    for module in modules if isinstance(modules, list) else []:
        manager.load_module(str(module))
    registry = manager.providers()
    return check_config(config, {n: c.settings_class for n, c in registry.items()}, env=env)


def _build(
    config: Config | str | os.PathLike[str] | Mapping[str, Any],
    *,
    plugins: Iterable[object],
    load_entrypoints: bool,
    clock: Callable[[], datetime] | None,
    env: Mapping[str, str] | None,
    store: Store | None,
) -> tuple[Config, PasarelaPlugins, Service, Merchants]:
    cfg = config if isinstance(config, Config) else load_config(config, env=env)
    manager = get_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins)
    providers, router = _assemble(cfg, manager, clock)
    sealer = Sealer.from_keys(cfg.privacy.keys)
    backend = store or Store(cfg.store.url, sealer=sealer)
    if backend.sealer is None:
        backend.sealer = sealer  # the configuration's keys apply to a store given too
    backend.chained = cfg.audit.chain  # [audit] chain
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
    merchants = Merchants(cfg, manager, service)
    tables = cfg.merchants
    for name in tables:
        merchants.declare(name, partial(tables.__getitem__, name),
                          partial(_table_accounts, tables, name))
    if backend.has_merchants_table():
        # Each stored document is decoded (and unsealed) when its merchant is first used.
        for name, document in backend.stored_merchant_documents().items():
            if name not in merchants:
                merchants.declare(name, partial(_stored_table, name, document),
                                  partial(_stored_accounts, document))
    return cfg, manager, service, merchants


def _raw_accounts(table: Mapping[str, Any]) -> list[str]:
    """The account names of a merchant's table as written (nothing structured)."""
    providers = table.get("providers", {})
    return list(providers) if isinstance(providers, Mapping) else []


def _table_accounts(tables: Mapping[str, MerchantConfig], name: str) -> list[str]:
    if isinstance(tables, MerchantTables):
        return _raw_accounts(tables.raw(name))
    return list(tables[name].providers)


def _stored_accounts(document: Callable[[], Mapping[str, Any]]) -> list[str]:
    return _raw_accounts(document())


def _stored_table(name: str, document: Callable[[], Mapping[str, Any]]) -> MerchantConfig:
    merchant, problems = merchant_from_table(document(), EnvResolver(os.environ),
                                             f"merchants.{name}")
    if problems or merchant is None:
        raise InvalidConfigError([f"{p}: {m}" for p, m in problems])
    return merchant


class Merchants:
    """The merchants of one deployment (``pasarela.merchants``): those of
    ``[merchants.NAME]`` and those made at run time with :meth:`create` (kept in the
    store). ``pasarela.merchants["bodega"]`` is merchant ``bodega``'s API: its own
    accounts, routes, fees and payments, and nothing of another merchant's.

    A merchant is built (its table structured, its accounts' settings structured,
    fee schedules and routes compiled) when it is first used, then kept for the life
    of the process. The cache is not bounded: a merchant's context carries state that
    must outlive a request (its circuit breakers and health figures), and it holds no
    more than an eager start held for every merchant. First uses are serialised by a
    lock, so many threads asking for one merchant build it once. A merchant whose
    configuration is broken raises :class:`~pasarela.config.InvalidConfigError`
    naming its paths (``merchants.NAME...``) on each use; the others are not affected.
    """

    def __init__(self, config: Config, plugins: PasarelaPlugins, platform: Service) -> None:
        self._config = config
        self._plugins = plugins
        self._platform = platform
        self._services: dict[str, Service] = {}
        self._tables: dict[str, MerchantConfig] = {}
        self._sources: dict[str, Callable[[], MerchantConfig]] = {}
        self._accounts: dict[str, Callable[[], Iterable[str]]] = {}
        self._sorted: list[str] | None = None
        self._lock = threading.RLock()
        self._owner: Pasarela | AsyncPasarela | None = None

    def declare(self, name: str, table: Callable[[], MerchantConfig],
                accounts: Callable[[], Iterable[str]]) -> None:
        """Know merchant *name*, to be built from ``table()`` on first use;
        ``accounts()`` names its accounts (short names) without building it."""
        self._sources[name] = table
        self._accounts[name] = accounts
        self._sorted = None
        # With merchants, the deployment's context reaches theirs (none: as before).
        self._platform.lookup = self.find

    def add(self, name: str, table: MerchantConfig, service: Service | None = None
            ) -> Service:
        """Build merchant *name*'s context from *table* now (checked in full first)."""
        with self._lock:
            service = service or self._make(name, table)
            self.declare(name, lambda: table, lambda: list(table.providers))
            self._tables[name] = table
            self._services[name] = service
        return service

    def _make(self, name: str, table: MerchantConfig) -> Service:
        platform = self._platform
        providers, router = _merchant_parts(self._config, self._plugins, platform.clock, name,
                                            table)
        if any(route.strategy == "healthiest" for route in table.routes):
            router.health = StoreHealth(platform.store, clock=platform.clock)
        return Service(store=platform.store, providers=providers, router=router,
                       select_provider=platform.select_provider,
                       on_decision=platform.on_decision, clock=platform.clock,
                       sleep_scale=platform.sleep_scale, merchant=name)

    def find(self, name: str) -> Service | None:
        """Merchant *name*'s context, built on first use; None when there is no such
        merchant. This is the deployment's lookup (:attr:`Service.lookup`): webhooks
        and jobs reach a merchant's account through it. A broken merchant raises
        ``InvalidConfigError`` naming its paths."""
        service = self._services.get(name)
        if service is not None:
            return service
        if name not in self._sources:
            return None
        with self._lock:
            service = self._services.get(name)
            if service is None:
                service = self._make(name, self.table(name))
                self._services[name] = service
        return service

    def create(self, name: str, *, providers: Mapping[str, Mapping[str, Any]],
               routes: Sequence[Mapping[str, Any]] = (), display_name: str = "",
               logo_url: str | None = None, colour: str | None = None,
               accent: str | None = None, logo_file: str | None = None,
               admin_token: str | None = None,
               preference: Sequence[str] = ()) -> MerchantPasarela:
        """Add merchant *name* at run time, kept in the store, and return its API.

        Secrets are written as ``env:NAME`` references (resolved now and at each
        start), or in clear when the store seals with ``[privacy] keys`` (the whole
        merchant is then sealed at rest). A secret in clear without keys is refused
        (``ValidationError`` naming it); nothing is written unless all of it is good
        (``InvalidConfigError`` lists every problem under ``merchants.NAME``)."""
        if not isinstance(name, str) or not MERCHANT_NAME.match(name):
            raise ValidationError(f"must match {MERCHANT_NAME.pattern}", field="name")
        if name in self._sources:
            raise ValidationError(f"merchant {name!r} exists already", field="name")
        document: dict[str, Any] = {
            "display_name": display_name, "providers": {k: dict(v) for k, v in
                                                        providers.items()},
            "routes": [dict(route) for route in routes],
            "checkout": {"preference": list(preference)},
        }
        document.update({key: value for key, value in (
            ("logo_url", logo_url), ("colour", colour), ("accent", accent),
            ("logo_file", logo_file), ("admin_token", admin_token))
            if value is not None})
        path = f"merchants.{name}"
        table, problems = merchant_from_table(document, EnvResolver(
            self._config.env if self._config.env is not None else os.environ), path)
        if problems or table is None:
            raise InvalidConfigError([f"{p}: {m}" for p, m in problems])
        if self._platform.store.sealer is None:
            self._refuse_clear_secrets(name, document)
        with self._lock:
            service = self._make(name, table)  # every problem before anything is written
            self._platform.store.add_merchant(name, document)
            self.add(name, table, service)
        return self[name]  # type: ignore[no-any-return]

    def _refuse_clear_secrets(self, name: str, document: Mapping[str, Any]) -> None:
        """Without a sealer, every secret must be an ``env:`` reference."""
        registry = self._plugins.providers()
        admin = document.get("admin_token")
        cleartext = ["admin_token"] if isinstance(admin, str) and not admin.startswith(
            "env:") else []
        for account, raw in document["providers"].items():
            kind = raw.get("type", account)
            if not isinstance(kind, str) or kind not in registry:
                continue
            for field in attrs.fields(registry.get(kind).settings_class):
                key = field.alias or field.name
                value = raw.get(key)
                values = value if isinstance(value, list | tuple) else [value]
                if field.metadata.get("secret") and any(
                        isinstance(v, str) and not v.startswith("env:") for v in values):
                    cleartext.append(f"providers.{account}.{key}")
        if cleartext:
            raise ValidationError(
                f"secrets in clear ({', '.join(cleartext)}) need [privacy] keys to be "
                "sealed in the store; or write them as env:NAME", field=f"merchants.{name}")

    def __contains__(self, name: object) -> bool:
        return name in self._sources

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._sources)

    def names(self) -> list[str]:
        """The merchants' names, sorted (none is built)."""
        names = self._sorted
        if names is None:
            names = self._sorted = sorted(self._sources)
        return list(names)

    def account_names(self, name: str) -> list[str]:
        """Merchant *name*'s accounts by their full names, from its table as written
        (nothing is built; none for a merchant that does not exist)."""
        accounts = self._accounts.get(name)
        return [] if accounts is None else [qualified(name, a) for a in accounts()]

    def service(self, name: str) -> Service:
        """Merchant *name*'s engine context (built on first use); ``NotFoundError`` when
        there is none, ``InvalidConfigError`` when its configuration is broken."""
        service = self.find(name)
        if service is None:
            raise NotFoundError(f"no merchant {name!r}")
        return service

    def table(self, name: str) -> MerchantConfig:
        """Merchant *name*'s configuration (branding, operators, accounts), structured
        on first use."""
        table = self._tables.get(name)
        if table is not None:
            return table
        source = self._sources.get(name)
        if source is None:
            raise NotFoundError(f"no merchant {name!r}")
        table = self._tables[name] = source()
        return table

    def __getitem__(self, name: str) -> Any:
        """Merchant *name*'s API: a :class:`MerchantPasarela` (an
        :class:`AsyncMerchantPasarela` on an :class:`AsyncPasarela`)."""
        service = self.service(name)
        if isinstance(self._owner, AsyncPasarela):
            return AsyncMerchantPasarela(self._owner, name, service)
        if self._owner is None:
            raise NotFoundError(f"no merchant {name!r}")
        return MerchantPasarela(self._owner, name, service)


def _by_merchant(platform: Service, deliveries: Sequence[Incoming]
                 ) -> list[tuple[Service, list[int], list[Incoming]]]:
    """*deliveries* grouped by their account's merchant: each group's context (built on
    first use), indexes and deliveries, in order within each group."""
    groups: dict[str, list[int]] = {}
    for i, (account, _, _) in enumerate(deliveries):
        groups.setdefault(merchant_of(account), []).append(i)
    return [(platform.scope(deliveries[indexes[0]][0]), indexes,
             [deliveries[i] for i in indexes]) for indexes in groups.values()]


def _merge(size: int, parts: Iterable[tuple[list[int], list[WebhookReply | Exception]]]
           ) -> list[WebhookReply | Exception]:
    """The groups' replies back in the deliveries' order."""
    out: list[WebhookReply | Exception] = [WebhookReply(500, b"")] * size
    for indexes, replies in parts:
        for i, reply in zip(indexes, replies, strict=True):
            out[i] = reply
    return out


class _Accounts(Mapping[str, Provider]):
    """:attr:`Pasarela.providers`: the deployment's accounts, each merchant's looked up
    (and its merchant built) when it is read."""

    def __init__(self, platform: Service, merchants: Merchants) -> None:
        self._platform = platform
        self._merchants = merchants

    def __getitem__(self, name: str) -> Provider:
        adapter = self._platform.account(name)
        if adapter is None:
            raise KeyError(name)
        return adapter

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._platform.providers or name in self._merchants.account_names(
            merchant_of(name))

    def __iter__(self) -> Iterator[str]:
        yield from self._platform.providers
        for merchant in self._merchants.names():
            yield from self._merchants.account_names(merchant)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Base:
    config: Config
    plugins: PasarelaPlugins
    service: Service

    @property
    def store(self) -> Store:
        return self.service.store

    merchants: Merchants

    @property
    def providers(self) -> Mapping[str, Provider]:
        """Every account of the deployment by its full name, the implicit merchant's
        and each merchant's: names and ``in`` build nothing, ``get`` builds the one
        merchant named, reading every value builds every merchant."""
        return _Accounts(self.service, self.merchants)

    def _dispatch_inline(self) -> None:
        if self.config.events.dispatch == "inline":
            dispatch_outbox(self.service, self.plugins)


def _with_query(headers: Mapping[str, str],
                query: Mapping[str, str] | None) -> Mapping[str, str]:
    """*headers* with the delivery URL's *query* attached (as ``WebhookHeaders``)."""
    return headers if query is None else WebhookHeaders(headers, query=query)


class _Merchant:
    """What one merchant's API holds, sync or async: its name, its service (its own
    accounts, routes and fees) and the deployment it belongs to."""

    _owner: Pasarela | AsyncPasarela

    def __init__(self, owner: Pasarela | AsyncPasarela, name: str, service: Service) -> None:
        self.name = name
        self.service = service
        self._owner = owner

    @property
    def providers(self) -> Mapping[str, Provider]:
        """This merchant's accounts, by their full names."""
        return self.service.providers

    @property
    def config(self) -> MerchantConfig:
        return self._owner.merchants.table(self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class MerchantPasarela(_Merchant):
    """One merchant's API (``pasarela.merchants["bodega"]``): the operations of
    :class:`Pasarela` over that merchant's own accounts, routes and fees. Its
    payments, idempotency keys and webhooks are its own: another merchant's payment
    id is ``NotFoundError`` here, and its accounts are not configured here.
    Accounts are named by their short names (``pay(..., provider="pe_usd")``,
    ``handle_webhook("pe_usd", ...)``); payments name them in full
    (``payment.provider == "bodega.pe_usd"``)."""

    _owner: Pasarela

    def options(self, order: Order) -> list[Option]:
        return payments.options(self.service, order)

    def get(self, payment_id: str) -> Payment:
        return self.service.get(payment_id)

    def pay(self, order: Order, *, method: Method | str, idempotency_key: str,
            provider: str | None = None, network: str | None = None,
            **params: Any) -> Payment:
        return self._owner._run(payments.pay(self.service, order, method=method,
                                             provider=provider, network=network,
                                             idempotency_key=idempotency_key, params=params))

    def confirm(self, payment_id: str, **params: Any) -> Payment:
        return self._owner._run(payments.confirm(self.service, payment_id, params))

    def sync(self, payment_id: str) -> Payment:
        return self._owner._run(payments.sync(self.service, payment_id))

    def cancel(self, payment_id: str) -> Payment:
        return self._owner._run(payments.cancel(self.service, payment_id))

    def extend(self, payment_id: str, until: datetime) -> Payment:
        return self._owner._run(payments.extend(self.service, payment_id, until))

    def refund(self, payment_id: str, amount: Money | None = None, *, reason: str = "",
               **params: Any) -> Refund:
        return self._owner._run(refunds.refund(self.service, payment_id, amount,
                                               reason=reason, params=params))

    def handle_webhook(self, account: str, headers: Mapping[str, str], body: bytes, *,
                       query: Mapping[str, str] | None = None) -> WebhookReply:
        """A delivery to this merchant's *account* (``/webhooks/MERCHANT.ACCOUNT``)."""
        return self._owner._run(handle_webhook(
            self.service, qualified(self.name, account), _with_query(headers, query), body))


class AsyncMerchantPasarela(_Merchant):
    """One merchant's API on an :class:`AsyncPasarela`: as :class:`MerchantPasarela`,
    awaited."""

    _owner: AsyncPasarela

    async def options(self, order: Order) -> list[Option]:
        return await anyio.to_thread.run_sync(payments.options, self.service, order)

    async def get(self, payment_id: str) -> Payment:
        return await anyio.to_thread.run_sync(self.service.get, payment_id)

    async def pay(self, order: Order, *, method: Method | str, idempotency_key: str,
                  provider: str | None = None, network: str | None = None,
                  **params: Any) -> Payment:
        return await self._owner._run(payments.pay(
            self.service, order, method=method, provider=provider, network=network,
            idempotency_key=idempotency_key, params=params))

    async def confirm(self, payment_id: str, **params: Any) -> Payment:
        return await self._owner._run(payments.confirm(self.service, payment_id, params))

    async def sync(self, payment_id: str) -> Payment:
        return await self._owner._run(payments.sync(self.service, payment_id))

    async def cancel(self, payment_id: str) -> Payment:
        return await self._owner._run(payments.cancel(self.service, payment_id))

    async def extend(self, payment_id: str, until: datetime) -> Payment:
        return await self._owner._run(payments.extend(self.service, payment_id, until))

    async def refund(self, payment_id: str, amount: Money | None = None, *,
                     reason: str = "", **params: Any) -> Refund:
        return await self._owner._run(refunds.refund(self.service, payment_id, amount,
                                                     reason=reason, params=params))

    async def handle_webhook(self, account: str, headers: Mapping[str, str], body: bytes, *,
                             query: Mapping[str, str] | None = None) -> WebhookReply:
        return await self._owner._run(handle_webhook(
            self.service, qualified(self.name, account), _with_query(headers, query), body))


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
        self.config, self.plugins, self.service, self.merchants = _build(
            config, plugins=plugins, load_entrypoints=load_entrypoints, clock=clock, env=env,
            store=store,
        )
        self.merchants._owner = self
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

    def options(self, order: Order) -> list[Option]:
        """Which ways to pay *order* (cash, wallet, card): provider, expiry, fee, why."""
        return payments.options(self.service, order)

    def get(self, payment_id: str) -> Payment:
        """The payment with its history."""
        return self.service.get(payment_id)

    def pay(
        self,
        order: Order,
        *,
        method: Method | str,
        idempotency_key: str,
        provider: str | None = None,
        network: str | None = None,
        **params: Any,
    ) -> Payment:
        """Start paying *order*; ``payment.next_action`` says what the customer does.

        *network* asks for a network (``"yape"``, ``"plin"``): only providers that
        take *method* on it are candidates, and ``network`` routing conditions match
        it. *params* go to the provider (a wallet phone, a card PaymentMethod)."""
        return self._run(payments.pay(self.service, order, method=method, provider=provider,
                                      network=network, idempotency_key=idempotency_key,
                                      params=params))

    def confirm(self, payment_id: str, **params: Any) -> Payment:
        """Complete a pending payment (a wallet approval code, a card PaymentMethod)."""
        return self._run(payments.confirm(self.service, payment_id, params))

    def sync(self, payment_id: str) -> Payment:
        """Ask the provider and apply what it says."""
        return self._run(payments.sync(self.service, payment_id))

    def cancel(self, payment_id: str) -> Payment:
        return self._run(payments.cancel(self.service, payment_id))

    def extend(self, payment_id: str, until: datetime) -> Payment:
        """Make a pending (or expired) payment payable until *until* at its provider
        (a PagoEfectivo CIP's new expiry; an expired CIP is revived, pending again).
        ``UnsupportedError`` when the provider cannot; ``IllegalTransitionError`` for
        a payment in any other state; ``ValidationError`` (``until``) for a time that
        is not aware or not in the future."""
        return self._run(payments.extend(self.service, payment_id, until))

    def refund(self, payment_id: str, amount: Money | None = None, *, reason: str = "",
               **params: Any) -> Refund:
        """Refund all (``amount=None``) or part of a succeeded payment. *params* go to
        the provider (dLocal: ``bank={...}``, where a cash refund is paid); a provider
        whose ``refund`` takes none refuses them before anything is written."""
        return self._run(refunds.refund(self.service, payment_id, amount, reason=reason,
                                        params=params))

    def handle_webhook(
        self, provider: str, headers: Mapping[str, str], body: bytes, *,
        query: Mapping[str, str] | None = None,
    ) -> WebhookReply:
        """Verify, dedupe and apply a provider's delivery; returns what to answer.

        *query* is the delivery URL's query string as a mapping (Mercado Pago signs
        its ``data.id``); headers given as a ``WebhookHeaders`` carry their own."""
        return self._run(handle_webhook(self.service.scope(provider), provider,
                                        _with_query(headers, query), body))

    def handle_webhooks(self, deliveries: Sequence[Incoming]) -> list[WebhookReply | Exception]:
        """Many ``(provider, headers, body)`` deliveries at once, applied in one
        transaction where no provider call is needed; each one's reply, or the
        exception it raised, in order (the webhook server batches with this)."""
        return _merge(len(deliveries), [(indexes, self._run(handle_webhooks(service, part)))
                                        for service, indexes, part in
                                        _by_merchant(self.service, deliveries)])

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
        self.config, self.plugins, self.service, self.merchants = _build(
            config, plugins=plugins, load_entrypoints=load_entrypoints, clock=clock, env=env,
            store=store,
        )
        self.merchants._owner = self
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
            if self.config.events.dispatch == "inline":
                await anyio.to_thread.run_sync(dispatch_outbox, self.service, self.plugins)

    async def pay(
        self,
        order: Order,
        *,
        method: Method | str,
        idempotency_key: str,
        provider: str | None = None,
        network: str | None = None,
        **params: Any,
    ) -> Payment:
        return await self._run(payments.pay(self.service, order, method=method,
                                            provider=provider, network=network,
                                            idempotency_key=idempotency_key, params=params))

    async def confirm(self, payment_id: str, **params: Any) -> Payment:
        return await self._run(payments.confirm(self.service, payment_id, params))

    async def options(self, order: Order) -> list[Option]:
        """As :meth:`Pasarela.options` (routing may read the store's health figures)."""
        return await anyio.to_thread.run_sync(payments.options, self.service, order)

    async def get(self, payment_id: str) -> Payment:
        """The payment with its history."""
        return await anyio.to_thread.run_sync(self.service.get, payment_id)

    async def sync(self, payment_id: str) -> Payment:
        return await self._run(payments.sync(self.service, payment_id))

    async def cancel(self, payment_id: str) -> Payment:
        return await self._run(payments.cancel(self.service, payment_id))

    async def extend(self, payment_id: str, until: datetime) -> Payment:
        return await self._run(payments.extend(self.service, payment_id, until))

    async def refund(
        self, payment_id: str, amount: Money | None = None, *, reason: str = "",
        **params: Any,
    ) -> Refund:
        return await self._run(refunds.refund(self.service, payment_id, amount, reason=reason,
                                              params=params))

    async def handle_webhook(
        self, provider: str, headers: Mapping[str, str], body: bytes, *,
        query: Mapping[str, str] | None = None,
    ) -> WebhookReply:
        return await self._run(handle_webhook(self.service.scope(provider), provider,
                                              _with_query(headers, query), body))

    async def handle_webhooks(
        self, deliveries: Sequence[Incoming], *, inline: bool = False
    ) -> list[WebhookReply | Exception]:
        """As :meth:`Pasarela.handle_webhooks`; with *inline* the store work runs on
        the event loop rather than in a worker thread (provider calls stay async)."""
        return _merge(len(deliveries), [
            (indexes, await self._run(handle_webhooks(service, part), inline=inline))
            for service, indexes, part in _by_merchant(self.service, deliveries)])

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
