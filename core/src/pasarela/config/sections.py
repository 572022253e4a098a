"""The shape of ``pasarela.toml``: one frozen attrs class per section, and
:class:`Config`, which holds them."""

from __future__ import annotations

import base64
import binascii
import difflib
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import attrs

from pasarela.config.errors import InvalidConfigError
from pasarela.config.relays import RelayConfig
from pasarela.config.structure import S, structure_settings
from pasarela.provider import ProviderSettings
from pasarela.registry import qualified


DEFAULT_STORE_URL: Final = "sqlite:///pasarela.db"


def _mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return repr(url)
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{user}:***@{host}{port}"
        return repr(urlunsplit(parts._replace(netloc=netloc)))
    except ValueError:
        return "'***'"


_SQLITE_FILE: Final = re.compile(r"^(sqlite(?:\+\w+)?:///)([^/?][^?]*)(\?.*)?$")


def resolve_store_url(url: str, base: Path) -> str:
    """*url* with a relative SQLite file path made absolute against *base*.

    ``sqlite:///pasarela.db`` in ``/srv/shop/pasarela.toml`` is
    ``sqlite:////srv/shop/pasarela.db``, wherever the command runs from. Absolute
    paths (``sqlite:////var/db/p.db``), in-memory databases and other stores are
    returned as they are.
    """
    match = _SQLITE_FILE.match(url)
    if match is None or match.group(2) == ":memory:":
        return url
    prefix, path, query = match.group(1), match.group(2), match.group(3) or ""
    return f"{prefix}{(base / path).resolve().as_posix()}{query}"


@attrs.frozen(kw_only=True)
class StoreConfig:
    """``[store]``: where payments are kept. A relative SQLite path is relative to the
    configuration file's folder (:func:`resolve_store_url`)."""

    url: str = attrs.field(default=DEFAULT_STORE_URL, repr=_mask_url)


@attrs.frozen(kw_only=True)
class PluginsConfig:
    """``[plugins]``: plugin modules to import and register besides entry points."""

    modules: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CheckoutConfig:
    """``[checkout]``: provider preference order (until routing rules apply)."""

    preference: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class EventsConfig:
    """``[events]``: when lifecycle events reach the observer hooks.

    ``inline`` (the default): right after the operation that caused them has
    committed, in the same call, before it returns (``pay()`` of a card that succeeds
    at once has called ``payment.succeeded`` observers by the time it returns, so a
    host stores its order, by reference, before calling ``pay()``). ``worker``: only
    ``pasarela worker`` (or ``dispatch_outbox()``) calls them, after the call returned.
    Either way an observer never sees an event whose transaction did not commit, and
    may see one more than once (its ``id`` is stable).
    """

    dispatch: Literal["inline", "worker"] = "inline"


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """``[worker]``: what ``pasarela worker`` does about a payment that arrives after
    its code expired: ``flag`` it (the ``payment.late_succeeded`` event) or also
    ``refund`` it automatically where the provider can."""

    late_payment: Literal["flag", "refund"] = "flag"


def _share(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name}: expected a share between 0 and 1, got {value!r}")


def _positive_duration(_: object, attribute: attrs.Attribute[Any], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{attribute.name}: expected a positive duration")


def _optional_positive(_: object, attribute: attrs.Attribute[Any],
                       value: timedelta | None) -> None:
    if value is not None and value <= timedelta(0):
        raise ValueError(f"{attribute.name}: must be a positive duration")


@attrs.frozen(kw_only=True)
class AuditConfig:
    """``[audit]``: the evidence chain (``docs/audit.md``). ``chain`` hashes every
    exchange, transition and delivery at write time (off only to measure its cost);
    ``keep`` is how long exchanges and deliveries are kept (``"400d"``; none: for
    ever), the worker removing older ones while the chain still verifies;
    ``every`` is how often the worker seals a chain head (and prunes);
    ``signing_key`` (``env:NAME``: an Ed25519 private key, PEM or url-safe base64
    of its 32 raw bytes) signs each head."""

    chain: bool = True
    keep: timedelta | None = attrs.field(default=None, validator=_optional_positive)
    every: timedelta = attrs.field(default=timedelta(hours=1), validator=_positive_duration)
    signing_key: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class AlertsConfig:
    """``[alerts]``: what ``pasarela worker`` watches and whom it tells
    (:mod:`pasarela.engine.alerts`; ``docs/alerts.md``).

    Durations are written like ``"30m"``, ``"1h"``, ``"2d"``. ``delays`` gives an
    account its own normal notification delay (``[alerts.delays] pagoefectivo =
    "2h"``). ``webhook_url`` (with ``webhook_secret``, as ``env:NAME``) receives each
    alert opened and resolved as a signed POST."""

    enabled: bool = True
    #: How often the worker evaluates the alerts.
    every: timedelta = attrs.field(default=timedelta(minutes=1), validator=_positive_duration)
    #: The recent window whose success rate is compared with the baseline before it.
    window: timedelta = attrs.field(default=timedelta(hours=1), validator=_positive_duration)
    baseline: timedelta = attrs.field(default=timedelta(hours=24),
                                      validator=_positive_duration)
    #: Finished payments each window needs before a rate is compared.
    min_finished: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    #: How far (a share, 0.2 = 20 points) the rate may fall below its baseline.
    drop: float = attrs.field(default=0.2, validator=_share)
    #: How long an account may send no notification while payments wait.
    notification_delay: timedelta = attrs.field(default=timedelta(minutes=30),
                                                validator=_positive_duration)
    delays: Mapping[str, timedelta] = attrs.field(factory=dict)
    #: Payments waiting longer than the delay that it takes to alert.
    min_waiting: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    #: The age of the oldest undispatched event that alerts.
    outbox_lag: timedelta = attrs.field(default=timedelta(minutes=5),
                                        validator=_positive_duration)
    #: Unresolved reconciliation differences of one account that alert.
    differences: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    #: Log each alert opened and resolved (``alert_fired``, ``alert_resolved``).
    log: bool = True
    webhook_url: str | None = None
    webhook_secret: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class PagesConfig:
    """``[pages]``: the customer's page (on with a ``page_secret``, which signs the
    links) and the operator dashboard (on with an ``admin_token``). Write both as
    ``env:NAME``."""

    page_secret: str | None = attrs.field(default=None, repr=False)
    admin_token: str | None = attrs.field(default=None, repr=False)
    #: Link for "generar un nuevo código"; ``{order_reference}`` is replaced.
    renew_url: str | None = None
    #: A pending payment older than this is "stale" on the dashboard.
    stale_after: timedelta = timedelta(hours=1)
    #: How often the customer's page asks for the payment's status.
    poll_seconds: int = 5


def key_problem(key: object) -> str | None:
    """Why *key* is not a usable ``[privacy] keys`` entry (a message that never
    quotes the key), or None: url-safe base64 of 32 random bytes, as
    ``pasarela customers new-key`` prints one."""
    if not isinstance(key, str) or not key:
        return "expected a key (url-safe base64 of 32 bytes; `pasarela customers new-key`)"
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return "not url-safe base64 (make one with `pasarela customers new-key`)"
    if len(raw) != 32:
        return (f"decodes to {len(raw)} bytes, not 32 (make one with "
                "`pasarela customers new-key`)")
    return None


@attrs.frozen(kw_only=True)
class PrivacyConfig:
    """``[privacy]``: the keys that seal customers' personal data in the store
    (``docs/privacy.md``). The first key seals; every key opens (put a new key first
    and keep the old ones until ``pasarela customers rotate-key`` is done). Write
    them as ``env:NAME``. With none, personal data is stored as given (``pasarela
    doctor`` warns)."""

    keys: tuple[str, ...] = attrs.field(default=(), repr=lambda keys: f"<{len(keys)} keys>")


@attrs.frozen(kw_only=True)
class RouteConfig:
    """One ``[[routes]]`` entry. ``when`` is kept raw; routing compiles it."""

    name: str
    #: Provider names, or ``{provider = "x", weight = 70}`` tables for ``weighted``.
    use: tuple[Any, ...]
    when: Mapping[str, Any] = attrs.field(factory=dict)
    strategy: str = "ordered"
    weights: Mapping[str, int] = attrs.field(factory=dict)
    min_sample: int | None = None
    exploration: str | None = None

    def provider_names(self) -> list[str]:
        return [str(item.get("provider", "")) if isinstance(item, Mapping) else str(item)
                for item in self.use]


_COLOUR: Final = re.compile(r"^#[0-9a-fA-F]{6}$")


def _check_colour(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not _COLOUR.match(value):
        raise ValueError(f"{attribute.name}: expected a colour like '#1a7f5a'")


def _check_logo(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.startswith("https://"):
        raise ValueError(f"{attribute.name}: expected an https:// address")


#: The image files a merchant's ``logo_file`` may be (the suffix gives the type served).
LOGO_TYPES: Final[Mapping[str, str]] = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".webp": "image/webp", ".gif": "image/gif", ".svg": "image/svg+xml",
}


def logo_path(source: str | None, logo_file: str) -> Path:
    """Where a merchant's ``logo_file`` is: as given when absolute, else in the folder
    of the configuration file *source* (the working folder without one)."""
    path = Path(logo_file)
    if path.is_absolute() or source is None:
        return path
    return Path(source).parent / path


def _check_logo_file(instance: Any, attribute: attrs.Attribute[Any], value: str | None
                     ) -> None:
    if value is None:
        return
    suffix = Path(value).suffix.lower()
    if suffix not in LOGO_TYPES:
        raise ValueError(f"{attribute.name}: expected an image file ("
                         f"{', '.join(sorted(LOGO_TYPES))}), got {value!r}")
    if instance.logo_url is not None:
        raise ValueError(f"{attribute.name}: give logo_url or logo_file, not both")


def branding_problems(table: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, message)`` for each branding value of a merchant's *table* that is
    not good (a colour not ``#rrggbb``, a logo not https or not an image file), so
    that each is reported under its own path (``merchants.NAME.colour``)."""
    out: list[tuple[str, str]] = []
    for name in ("colour", "accent", "logo_url", "logo_file"):
        value = table.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            out.append((name, "expected a string"))
        elif name in ("colour", "accent") and not _COLOUR.match(value):
            out.append((name, f"expected a colour like '#1a7f5a', got {value!r}"))
        elif name == "logo_url" and not value.startswith("https://"):
            out.append((name, "expected an https:// address"))
        elif name == "logo_file" and Path(value).suffix.lower() not in LOGO_TYPES:
            out.append((name, f"expected an image file ({', '.join(sorted(LOGO_TYPES))}), "
                              f"got {value!r}"))
        elif name == "logo_file" and table.get("logo_url") is not None:
            out.append((name, "give logo_url or logo_file, not both"))
    return out


@attrs.frozen(kw_only=True)
class MerchantConfig:
    """One ``[merchants.NAME]`` table: a merchant of a platform, with accounts,
    routes and fee schedules of its own (its ``providers`` tables, raw as
    :attr:`Config.providers` is), its branding on the customer's page and the
    console, and its operators' credential (``admin_token``, ``env:NAME``)."""

    display_name: str = ""
    #: An https address of the merchant's logo (the page's CSP allows that origin).
    logo_url: str | None = attrs.field(default=None, validator=_check_logo)
    #: The merchant's logo as an image file served by the app itself (a path, relative
    #: to the configuration file's folder), instead of ``logo_url``.
    logo_file: str | None = attrs.field(default=None, validator=_check_logo_file)
    #: The brand colour, ``#rrggbb`` (buttons, the page's top line).
    colour: str | None = attrs.field(default=None, validator=_check_colour)
    #: A second colour, ``#rrggbb`` (links, the amount's box).
    accent: str | None = attrs.field(default=None, validator=_check_colour)
    admin_token: str | None = attrs.field(default=None, repr=False)
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    routes: tuple[RouteConfig, ...] = ()
    checkout: CheckoutConfig = attrs.field(factory=CheckoutConfig)


def _qualify_use(merchant: str, item: Any) -> Any:
    if isinstance(item, Mapping):
        return {**item, "provider": qualified(merchant, str(item.get("provider", "")))}
    return qualified(merchant, str(item))


def qualified_routes(merchant: str, routes: Sequence[RouteConfig]) -> tuple[RouteConfig, ...]:
    """*merchant*'s routes naming its accounts by their full names."""
    return tuple(attrs.evolve(
        route, use=tuple(_qualify_use(merchant, item) for item in route.use),
        weights={qualified(merchant, k): v for k, v in route.weights.items()})
        for route in routes)


def merchant_path(merchant: str, message: str) -> str:
    """An error of *merchant*'s own configuration, under ``merchants.NAME``."""
    message = message.replace(f"providers.{qualified(merchant, '')}", "providers.")
    for head in ("providers.", "routes", "checkout."):
        if message.startswith(head):
            return f"merchants.{merchant}.{message}"
    return message


@attrs.frozen(kw_only=True)
class Config:
    """The structured configuration.

    Attributes:
        store, plugins, checkout, events, worker, pages, privacy: the sections of
            the same names.
        providers: ``[providers.NAME]`` tables, raw (``env:`` not yet resolved);
            structure one with :meth:`provider_settings`.
        routes: the ``[[routes]]`` entries, in file order.
        source: the file it was read from, or None.
    """

    store: StoreConfig = attrs.field(factory=StoreConfig)
    plugins: PluginsConfig = attrs.field(factory=PluginsConfig)
    checkout: CheckoutConfig = attrs.field(factory=CheckoutConfig)
    events: EventsConfig = attrs.field(factory=EventsConfig)
    worker: WorkerConfig = attrs.field(factory=WorkerConfig)
    pages: PagesConfig = attrs.field(factory=PagesConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    audit: AuditConfig = attrs.field(factory=AuditConfig)
    privacy: PrivacyConfig = attrs.field(factory=PrivacyConfig)
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    routes: tuple[RouteConfig, ...] = ()
    #: The ``[[relays]]`` entries (:mod:`pasarela.config.relays`), in file order.
    relays: tuple[RelayConfig, ...] = ()
    #: The ``[merchants.NAME]`` tables; none: one implicit merchant (everything above).
    merchants: Mapping[str, MerchantConfig] = attrs.field(factory=dict)
    source: str | None = None
    env: Mapping[str, str] | None = attrs.field(default=None, repr=False, eq=False)

    def for_merchant(self, merchant: str, table: MerchantConfig) -> Config:
        """The configuration merchant *merchant* runs with: its own accounts (by their
        full names, :func:`~pasarela.registry.qualified`), routes and preference; the
        deployment's store, plugins, events, worker, pages and privacy."""
        return attrs.evolve(
            self,
            providers={qualified(merchant, name): (
                {"type": name, **value} if isinstance(value, Mapping) else value)
                for name, value in table.providers.items()},
            routes=qualified_routes(merchant, table.routes),
            checkout=CheckoutConfig(preference=tuple(
                qualified(merchant, name) for name in table.checkout.preference)),
            merchants={},
        )

    def provider_type(self, account: str) -> str:
        """The adapter ``[providers.ACCOUNT]`` uses: its ``type``, else the account's
        own name (``[providers.pagoefectivo]`` is a PagoEfectivo account)."""
        kind = self.providers.get(account, {}).get("type", account)
        return kind if isinstance(kind, str) else account

    def provider_settings(self, name: str, settings_class: type[S]) -> S:
        """Structure ``[providers.NAME]`` (empty when absent) into *settings_class*.

        :raises InvalidConfigError: listing every problem in the table.
        """
        return structure_settings(
            name, _without_type(self.providers.get(name, {})), settings_class, env=self.env
        )

    def all_provider_settings(
        self, installed: Mapping[str, type[ProviderSettings]]
    ) -> dict[str, ProviderSettings]:
        """Structure every ``[providers.*]`` table and check every provider reference.

        *installed* maps each installed provider's name to its settings class. A
        ``[providers.ACCOUNT]`` table is an account of the provider its ``type`` names
        (the account's own name when it has no ``type``). A table whose type names no
        installed provider, or a ``checkout.preference`` or ``routes[].use`` entry
        naming neither a configured account nor an installed provider, is an error. A
        preference entry naming a provider that is installed but not configured is
        skipped (the preference orders what is configured); a route naming one is
        refused by the router, which says to configure it.

        :returns: the settings of every configured account, by account name.
        :raises InvalidConfigError: listing every problem found.
        """
        errors: list[str] = []
        out: dict[str, ProviderSettings] = {}
        names = sorted(installed)
        for name, table in self.providers.items():
            kind = table.get("type", name) if isinstance(table, Mapping) else name
            if not isinstance(kind, str):
                errors.append(f"providers.{name}.type: expected a string (an installed "
                              f"provider: {', '.join(names) or 'none'})")
                continue
            settings_class = installed.get(kind)
            if settings_class is None:
                where = f"providers.{name}.type" if kind != name else f"providers.{name}"
                errors.append(f"{where}: {_not_installed(kind, names)}")
                continue
            try:
                out[name] = structure_settings(name, _without_type(table), settings_class,
                                               env=self.env)
            except InvalidConfigError as exc:
                errors.extend(exc.errors)
        references = [
            (f"checkout.preference[{i}]", name) for i, name in enumerate(self.checkout.preference)
        ]
        for r, route in enumerate(self.routes):
            references += [(f"routes[{r}].use[{i}]", name)
                           for i, name in enumerate(route.provider_names())]
        for path, name in references:
            if name not in installed and name not in self.providers:
                errors.append(f"{path}: {_not_installed(name, names)}")
        if errors:
            raise InvalidConfigError(errors, source=self.source)
        return out


def _without_type(table: Any) -> Any:
    """A ``[providers.ACCOUNT]`` table without its ``type`` (which names the adapter,
    not one of its settings)."""
    if isinstance(table, Mapping) and "type" in table:
        return {key: value for key, value in table.items() if key != "type"}
    return table


def _not_installed(name: str, installed: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, installed, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    listed = ", ".join(installed) or "none"
    return f"no provider named {name!r} is installed (installed: {listed}){hint}"
