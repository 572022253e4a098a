"""The provider contract: what an adapter declares and the operations it offers.

An adapter is a :class:`Provider` subclass in its own distribution, announced with
the ``pasarela_register_providers`` hook. Its HTTP operations are **flows**:
generators that yield :class:`httpx.Request` and receive :class:`httpx.Response`
(as ``httpx.Auth.auth_flow`` does), built from pure ``build_*``/``parse_*``
functions. Adapters hold no clients and do no I/O; the core drives the flows,
records each exchange (redacted), applies timeouts and retries, and maps transport
failures. Webhook verification is a pure function of the raw bytes with the clock
passed in.

What the contract promises an adapter, besides the signatures below:

- ``Provider[S]`` is generic over its settings class: the core builds the adapter with
  an instance of :attr:`Provider.settings_class` (checked once, here), so
  ``self.settings`` is typed as the adapter's own settings.
- :meth:`Provider.parse_webhook` receives the headers as :class:`WebhookHeaders`: names
  lower-cased, looked up case-insensitively (``headers["Stripe-Signature"]`` and
  ``headers["stripe-signature"]`` are the same), whatever the server or framework
  passed.
- :meth:`Provider.settlements` is given ``references=`` (a page of our provider
  references created in the window) when the adapter sets
  :attr:`Provider.settlements_by_reference`: a provider with no settlement listing that
  can only be asked about given codes (PagoEfectivo).
- :meth:`Provider.ineligibility` answers an :class:`Ineligibility`: a reason with a
  normalized :class:`~pasarela.errors.ErrorCode`, which the core raises as the
  ``UnsupportedError`` code when no provider can take an order.
- A ``Retry-After`` header is read with :func:`pasarela.retry.parse_retry_after`.
- :attr:`WebhookHeaders.query` is the delivery URL's query string (Mercado Pago signs
  its ``data.id``); the web servers fill it, a host calling ``handle_webhook`` itself
  passes ``query=``.
- :meth:`Provider.refund` is given ``params=`` (what ``refund(..., **params)`` was
  given, such as where dLocal pays a cash refund) only when there are any: an adapter
  whose ``refund`` takes no ``params`` keeps working, and a refund with params to it
  is refused before anything is written.
- A provider is the company whose API is called; the **network** is what the
  customer pays on (:attr:`Provider.networks`, :func:`network_name`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import attrs

from pasarela.errors import ConfigurationError, ErrorCode, UnsupportedError
from pasarela.model import Method
from pasarela.money import Money


if TYPE_CHECKING:
    import httpx

    from pasarela.model import Order, Payment, Refund
    from pasarela.provider.values import (
        CreateRequest,
        ProviderPayment,
        ProviderRefund,
        SettlementLine,
        WebhookEvent,
        WebhookHint,
    )


__all__ = [
    "NETWORK_NAMES",
    "CreateRequest",
    "Flow",
    "Ineligibility",
    "Operation",
    "Provider",
    "ProviderPayment",
    "ProviderRefund",
    "ProviderSettings",
    "SettlementLine",
    "WebhookEvent",
    "WebhookHeaders",
    "WebhookHint",
    "WebhookReply",
    "collected_by",
    "header_key",
    "imported_on_use",
    "network_name",
]

T = TypeVar("T")


@attrs.frozen
class Ineligibility:
    """Why a provider cannot take an order: a normalized code and words for people.

    ``str()`` gives the words (``"does not accept USD"``), as routing explanations show.
    """

    code: ErrorCode
    message: str

    def __str__(self) -> str:
        return self.message


class WebhookHeaders(Mapping[str, str]):
    """A delivery's headers: names lower-cased, looked up without regard to case.

    :attr:`query` holds the parameters of the URL the delivery was sent to (names as
    sent, case kept; the first value of a repeated name), empty when the caller gave
    none. Built from another ``WebhookHeaders``, it keeps that one's query unless
    *query* is given.
    """

    __slots__ = ("_items", "query")

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), *,
                 query: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self._items: dict[str, str] = {str(k).lower(): v for k, v in pairs}
        if query is None:
            query = headers.query if isinstance(headers, WebhookHeaders) else ()
        found: dict[str, str] = {}
        for key, value in (query.items() if isinstance(query, Mapping) else query):
            found.setdefault(str(key), str(value))
        #: The delivery URL's query parameters.
        self.query: Mapping[str, str] = found

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:  # faster than Mapping.get
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"WebhookHeaders({sorted(self._items)!r})"


_HEADER_SAFE: Final = re.compile(r"^[\x21-\x7e]+$")


def header_key(key: str, *, max_length: int = 255) -> str:
    """An idempotency key as an HTTP header can carry it: *key* itself when it is
    printable ASCII without spaces and at most *max_length* characters, else
    ``sha256:`` and the hex digest of its UTF-8 (the same key always gives the same
    header, so a retried request is still recognised). Adapters send this; the core
    keeps the key as the host gave it (``pedido-ñandú-7``)."""
    if len(key) <= max_length and _HEADER_SAFE.match(key):
        return key
    import hashlib  # noqa: PLC0415 - rare, and not for discovery

    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


#: How people call the networks pasarela knows (a network not listed is shown as named).
NETWORK_NAMES: Final[Mapping[str, str]] = {
    "pagoefectivo": "PagoEfectivo",
    "paycash": "PayCash",
    "yape": "Yape",
    "plin": "Plin",
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "diners": "Diners Club",
    "bcp": "BCP",
    "interbank": "Interbank",
}


def network_name(network: str) -> str:
    """The name people know *network* by (``"pagoefectivo"`` is ``"PagoEfectivo"``)."""
    return NETWORK_NAMES.get(network, network)


_NETWORK_LINES: Final[Mapping[str, Mapping[str, str]]] = {
    "es": {"cash": "Código {network}", "wallet": "{network}", "card": "Tarjeta {network}",
           "bank_transfer": "Transferencia {network}", "by": "{what}, cobrado por {provider}",
           "cash_": "Pago en efectivo", "wallet_": "Billetera", "card_": "Tarjeta",
           "bank_transfer_": "Transferencia bancaria"},
    "en": {"cash": "{network} code", "wallet": "{network}", "card": "{network} card",
           "bank_transfer": "{network} bank transfer", "by": "{what}, collected by {provider}",
           "cash_": "Cash payment", "wallet_": "Wallet", "card_": "Card",
           "bank_transfer_": "Bank transfer"},
}


def collected_by(method: Method, network: str | None, provider: str, *,
                 language: str = "es") -> str:
    """What a payment runs on and who collects it, for people: ``"Código PagoEfectivo,
    cobrado por Mercado Pago"`` (``language`` ``es`` or ``en``). *provider* is the
    provider's display name; a provider named after the network it collects
    (PagoEfectivo directly) is not named twice: ``"Código PagoEfectivo"``."""
    lines = _NETWORK_LINES.get(language[:2], _NETWORK_LINES["es"])
    if network is None:
        what = lines[method.value + "_"]
    else:
        name = network_name(network)
        what = lines[method.value].format(network=name)
        if name.casefold() in provider.casefold():
            return what
    return lines["by"].format(what=what, provider=provider)


#: A flow yields requests and receives responses; its return value is the result.
if TYPE_CHECKING:
    Flow = Generator[httpx.Request, httpx.Response, T]
else:  # the same alias, without importing httpx to define it (annotations are text)
    Flow = Generator["httpx.Request", "httpx.Response", T]


class _ImportedOnUse:
    """A module's stand-in in one namespace until a name is read from it (see
    :func:`imported_on_use`)."""

    __slots__ = ("_alias", "_module", "_name", "_namespace")

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name, self._namespace, self._alias = name, namespace, alias
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = import_module(self._name)
            if self._namespace.get(self._alias) is self:
                self._namespace[self._alias] = module
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def imported_on_use(name: str, namespace: dict[str, Any], alias: str | None = None) -> Any:
    """A stand-in for module *name* under *alias* (default: its last part) in
    *namespace*, a module's ``globals()``: the first name read through it imports the
    module and puts it in the stand-in's place, so later reads are the module's own.

    Plugin discovery imports every adapter's provider module to register its class;
    what only the operations use (httpx, an API module) is imported when a provider
    first runs one::

        if TYPE_CHECKING:
            import httpx
        else:
            httpx = imported_on_use("httpx", globals())
    """
    return _ImportedOnUse(name, namespace, alias or name.rpartition(".")[2])


class Operation(StrEnum):
    CREATE = "create"
    CONFIRM = "confirm"
    GET = "get"
    #: The status of many payments in one flow (the expiry sweep asks this way).
    GET_MANY = "get_many"
    CANCEL = "cancel"
    #: Move a pending payment's expiry (PagoEfectivo: ``PATCH /v1/cips/{cip}``), which
    #: may revive an expired one at the provider.
    EXTEND = "extend"
    REFUND = "refund"
    #: A refund's state at the provider (the resolver asks for refunds of unknown outcome).
    GET_REFUND = "get_refund"
    WEBHOOK = "webhook"
    SETTLEMENTS = "settlements"
    #: One authenticated, harmless request: do the credentials work (``pasarela doctor``)?
    PROBE = "probe"


@attrs.frozen(kw_only=True)
class ProviderSettings:
    """Settings every provider has; an adapter subclasses it to add its own fields.

    Secret fields are marked ``attrs.field(metadata={"secret": True}, repr=False)``;
    their values are scrubbed from recorded exchanges and logs.
    """

    environment: str = "sandbox"
    base_url: str = ""
    enabled: bool = True
    timeout: float = 10.0
    max_retries: int = 2
    expiry: timedelta | None = None
    min_amount: Money | None = None
    max_amount: Money | None = None
    fees: Mapping[str, Any] = attrs.field(factory=dict)
    webhook_secrets: tuple[str, ...] = attrs.field(
        default=(), repr=False, metadata={"secret": True}
    )

    def secret_values(self) -> list[str]:
        """The values of every secret field (for redaction)."""
        out: list[str] = []
        for name in _secret_fields(type(self)):
            value = getattr(self, name)
            if isinstance(value, str) and value:
                out.append(value)
            elif isinstance(value, tuple | list):
                out.extend(v for v in value if isinstance(v, str) and v)
        return out


#: Each settings class's secret field names, read once a class (every recorded
#: exchange is redacted with their values): :func:`_secret_fields`.
_SECRET_FIELDS: Final[dict[type, tuple[str, ...]]] = {}


def _secret_fields(cls: type[ProviderSettings]) -> tuple[str, ...]:
    """The names of *cls*'s fields marked ``metadata={"secret": True}``."""
    names = _SECRET_FIELDS.get(cls)
    if names is None:
        names = tuple(field.name for field in attrs.fields(cls) if field.metadata.get("secret"))
        _SECRET_FIELDS[cls] = names
    return names


@attrs.frozen
class WebhookReply:
    """What to answer the provider."""

    status_code: int
    body: bytes = b""
    content_type: str = "application/json"


#: The adapter's settings class; a bare ``Provider`` means any settings. Covariant:
#: a ``Provider[YapeSettings]`` is a ``Provider`` (the settings are set once, in
#: ``__init__``, and only read after).
if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    SettingsT_co = DefaultedTypeVar(
        "SettingsT_co", bound=ProviderSettings, default=ProviderSettings, covariant=True
    )
else:  # the default is for type checkers: typing_extensions stays out of discovery
    SettingsT_co = TypeVar("SettingsT_co", bound=ProviderSettings, covariant=True)


class Provider(Generic[SettingsT_co]):
    """Base class of every provider adapter, generic over its settings class.

    Subclasses declare the class variables and implement the operations they list
    in ``operations``. The core builds a fresh flow for every attempt of a retried
    operation, so an adapter derives any idempotency key from its inputs (the
    request's ``idempotency_key``, the payment id, the refund id), never at random.
    ``error_codes`` is the adapter's one table from the provider's documented error
    codes to normalized ones; the conformance suite checks it covers them.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]
    methods: ClassVar[frozenset[Method]]
    #: Per method, the networks the provider takes it on (``{Method.CASH:
    #: ("pagoefectivo",)}``); the first is the one a payment by that method runs on
    #: unless the caller asks for another (``pay(..., network=)``) or the provider's
    #: answer says (:attr:`ProviderPayment.network`). A card's network is its brand,
    #: known from the card: a payment by card has none until the answer says.
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {}
    countries: ClassVar[frozenset[str]] = frozenset({"PE"})
    currencies: ClassVar[frozenset[str]]
    #: Per currency, the (min, max) amount in minor units; None is unbounded.
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {}
    default_expiry: ClassVar[timedelta | None] = None
    operations: ClassVar[frozenset[Operation]] = frozenset({Operation.CREATE, Operation.GET})
    #: Operations that may be repeated safely (idempotent at the provider).
    retry_safe: ClassVar[frozenset[Operation]] = frozenset({Operation.GET})
    #: How long the provider normally takes to notify an outcome once the customer has
    #: acted; ``pasarela doctor`` flags pending payments older than this when no
    #: webhook from the provider has arrived since (a callback URL not configured).
    notification_delay: ClassVar[timedelta] = timedelta(hours=1)
    #: The most payments one :meth:`get_many` flow is given (the core splits more).
    get_many_limit: ClassVar[int] = 100
    settings_class: ClassVar[type[ProviderSettings]] = ProviderSettings
    #: True when :meth:`settlements` takes ``references=``: the provider lists no
    #: settlements and is asked about given references instead.
    settlements_by_reference: ClassVar[bool] = False
    error_codes: ClassVar[Mapping[str, ErrorCode]] = {}
    #: Header names whose values are secrets (scrubbed from recorded exchanges).
    secret_headers: ClassVar[frozenset[str]] = frozenset(
        {"authorization", "proxy-authorization", "cookie", "set-cookie"}
    )
    #: JSON body keys whose values are secrets or personal data.
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    #: Content types its webhook deliveries may have (the ASGI app answers 415 to others).
    webhook_content_types: ClassVar[frozenset[str]] = frozenset(
        {"application/json", "application/x-www-form-urlencoded"}
    )
    #: ``"module:function"`` returning the provider's sandbox ASGI app, called as
    #: ``factory(**options)``; ``pasarela sandbox NAME --port N`` serves it.
    sandbox_factory: ClassVar[str | None] = None

    def __init__(
        self, settings: SettingsT_co, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        if not isinstance(settings, self.settings_class):
            raise ConfigurationError(
                f"providers.{self.name}: settings must be {self.settings_class.__name__}, "
                f"not {type(settings).__name__}"
            )
        self.settings: SettingsT_co = settings
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        #: The configured account this instance is (``[providers.ACCOUNT]``); the
        #: provider's ``name`` unless the core binds another (:meth:`bind_account`).
        self.account: str = self.name

    def bind_account(self, account: str) -> None:
        """Name the configured account this instance serves (the core calls it once,
        when it builds ``[providers.ACCOUNT] type = NAME``)."""
        self.account = account

    # --- capabilities -----------------------------------------------------------

    @classmethod
    def supports(cls, operation: Operation) -> bool:
        return operation in cls.operations

    def amount_limits(self, currency: str) -> tuple[int | None, int | None]:
        low, high = self.limits.get(currency, (None, None))
        if self.settings.min_amount is not None and self.settings.min_amount.currency == currency:
            low = self.settings.min_amount.minor
        if self.settings.max_amount is not None and self.settings.max_amount.currency == currency:
            high = self.settings.max_amount.minor
        return low, high

    def ineligibility(self, order: Order, method: Method) -> Ineligibility | None:
        """Why this provider cannot take *order* by *method*, or None if it can.

        Adapters that override it call ``super()`` first and answer their own reasons
        with a code (``ErrorCode.UNSUPPORTED_METHOD`` for a rule of their own).
        """
        if not self.settings.enabled:
            return Ineligibility(ErrorCode.UNSUPPORTED_METHOD, "disabled in configuration")
        if method not in self.methods:
            return Ineligibility(ErrorCode.UNSUPPORTED_METHOD, f"does not offer {method.value}")
        if order.country not in self.countries:
            return Ineligibility(ErrorCode.UNSUPPORTED_METHOD, f"does not serve {order.country}")
        if order.amount.currency not in self.currencies:
            return Ineligibility(ErrorCode.UNSUPPORTED_CURRENCY,
                                 f"does not accept {order.amount.currency}")
        low, high = self.amount_limits(order.amount.currency)
        if low is not None and order.amount.minor < low:
            return Ineligibility(ErrorCode.AMOUNT_OUT_OF_RANGE,
                                 f"amount below minimum {Money(low, order.amount.currency)}")
        if high is not None and order.amount.minor > high:
            return Ineligibility(ErrorCode.AMOUNT_OUT_OF_RANGE,
                                 f"amount above maximum {Money(high, order.amount.currency)}")
        return None

    def expiry(self) -> timedelta | None:
        return self.settings.expiry or self.default_expiry

    def default_network(self, method: Method) -> str | None:
        """The network a payment by *method* runs on before its answer says (None for
        a card, whose brand is known from the card, and for an undeclared method)."""
        if method is Method.CARD:
            return None
        declared = self.networks.get(method, ())
        return declared[0] if declared else None

    def network_ineligibility(self, method: Method, network: str) -> Ineligibility | None:
        """Why this provider cannot take *method* on *network*, or None if it can."""
        if network in self.networks.get(method, ()):
            return None
        return Ineligibility(ErrorCode.UNSUPPORTED_METHOD,
                             f"does not take {method.value} on {network}")

    # --- operations (flows) -------------------------------------------------------

    def check_request(self, request: CreateRequest) -> None:
        """Check *request* against the provider's field rules without any I/O.

        Called by the core before anything is stored, so bad input gets its
        ``ProviderValidationError`` naming the field and nothing is written. Adapters
        override it (and may call it again from ``create``).
        """

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        raise self.unsupported(Operation.CREATE)

    def confirm(self, payment: Payment, params: Mapping[str, Any]) -> Flow[ProviderPayment]:
        raise self.unsupported(Operation.CONFIRM)

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        raise self.unsupported(Operation.GET)

    def get_many(self, payments: Sequence[Payment]) -> Flow[dict[str, ProviderPayment]]:
        """The status of many payments at once (``Operation.GET_MANY``, optional).

        The core passes at most :attr:`get_many_limit` payments, each with a
        ``provider_reference``; the answer is keyed by provider reference. A reference
        missing from the answer means the provider did not say (the core treats it as
        it treats a payment it could not ask about); an error raised means nothing
        was learned, and the core falls back to :meth:`get` per payment.
        """
        raise self.unsupported(Operation.GET_MANY)

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        raise self.unsupported(Operation.CANCEL)

    def extend(self, payment: Payment, until: datetime) -> Flow[ProviderPayment]:
        """Make *payment* payable until *until* (``Operation.EXTEND``, optional): the
        provider's report afterwards, with the new ``expires_at`` (and ``pending``
        when the provider revived an expired payment)."""
        raise self.unsupported(Operation.EXTEND)

    def refund(
        self, payment: Payment, amount: Money, *, refund_id: str, reason: str,
        params: Mapping[str, Any] | None = None,
    ) -> Flow[ProviderRefund]:
        """Refund *amount* of *payment*. *params* is what ``refund(..., **params)``
        was given, passed only when there are any (an adapter may leave it out of its
        signature if it takes none)."""
        raise self.unsupported(Operation.REFUND)

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        """*refund*'s state at the provider (``Operation.GET_REFUND``, optional).

        The resolver asks this for a refund whose outcome is unknown (its answer was
        lost), on the payments' schedule. *refund* may have no ``provider_reference``:
        an adapter then finds it by our ``refund.id`` where the provider keeps it
        (metadata, an idempotency key), and answers ``RefundStatus.PENDING`` while the
        provider has not said; it never answers ``failed`` from an empty search alone.
        """
        raise self.unsupported(Operation.GET_REFUND)

    def settlements(
        self, since: datetime, until: datetime, *, references: Sequence[str] | None = None
    ) -> Flow[Iterable[SettlementLine]]:
        """The provider's settlement lines for ``[since, until)``.

        *references* is given only to a provider that sets
        :attr:`settlements_by_reference` (a page of our provider references created in
        the window); others list what the provider reports and ignore it.
        """
        raise self.unsupported(Operation.SETTLEMENTS)

    def probe(self) -> Flow[None]:
        """One authenticated request that changes nothing (``Operation.PROBE``).

        Returns when the provider accepted the credentials; raises
        ``AuthenticationError`` when it refused them, and another ``ProviderError``
        for any other failure. ``pasarela doctor`` drives it and reads the clock skew
        from the answer's ``Date`` header.
        """
        raise self.unsupported(Operation.PROBE)

    # --- webhooks (pure) ----------------------------------------------------------

    def parse_webhook(
        self, headers: WebhookHeaders, body: bytes, *, now: datetime
    ) -> list[WebhookEvent]:
        """Verify the raw bytes and parse them. Raises ``SignatureInvalidError``
        for forged or stale deliveries and ``WebhookError`` for malformed ones.

        *headers* has lower-cased names and case-insensitive lookups."""
        raise self.unsupported(Operation.WEBHOOK)

    @classmethod
    def webhook_hint(cls, headers: WebhookHeaders, body: bytes) -> WebhookHint | None:
        """Which payment an *unverified* delivery refers to, for a provider whose
        notifications do not say which account they belong to (one callback URL for
        several accounts, as PagoEfectivo's service ids share one). The core looks the
        payment up among this provider's accounts and checks the signature with that
        account's secrets only. Never raises on a bad body: it answers None, and the
        account named in the URL then verifies (and refuses) it. Default: None."""
        return None

    def webhook_reply(self, error: Exception | None = None) -> WebhookReply:
        """What to answer the provider: 200 on success, 4xx on a rejection."""
        if error is None:
            return WebhookReply(200, b'{"received":true}')
        return WebhookReply(400, b'{"received":false}')

    def unsupported(self, operation: Operation) -> UnsupportedError:
        """The error for an operation this provider does not offer (raise it)."""
        account = getattr(self, "account", self.name)
        return UnsupportedError(
            f"{account} does not support {operation.value}",
            code=ErrorCode.UNSUPPORTED_OPERATION,
            provider=account,
        )


#: The values an adapter builds in its flows, defined in ``pasarela.provider.values``
#: on first use: attrs compiling their methods was a tenth of discovering the plugins.
_VALUES = frozenset({"CreateRequest", "ProviderPayment", "ProviderRefund", "SettlementLine",
                     "WebhookEvent", "WebhookHint"})


def _define_values() -> None:
    """Import the values' module and put its classes in this module's place."""
    from pasarela.provider import values  # noqa: PLC0415 - defined on first use

    names = globals()
    for name in _VALUES:
        names[name] = getattr(values, name)
    # What their annotations name, where typing.get_type_hints looks (their __module__).
    for name, value in vars(values).items():
        if not name.startswith("_"):
            names.setdefault(name, value)
    from pasarela import model  # noqa: PLC0415 - CreateRequest.order's annotation

    for name in ("Order", "Payment", "Refund"):
        names.setdefault(name, getattr(model, name))


def __getattr__(name: str) -> Any:
    if name in _VALUES:
        _define_values()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_VALUES})
