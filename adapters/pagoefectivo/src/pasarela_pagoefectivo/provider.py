"""The PagoEfectivo provider: CIP cash codes as pasarela flows.

Every HTTP operation is a flow (it yields :class:`httpx.Request` and receives
:class:`httpx.Response`) built from :mod:`pasarela_pagoefectivo.api`. The bearer
token is the one piece of state: it is cached in memory until shortly before its
``tokenExpires`` (so N creates make one authorization call), and a 401 inside a
flow renews it once and repeats the request, which is safe because a request
refused for its token changed nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from pasarela import provider as contract
from pasarela.errors import (
    ErrorCode,
    ProviderError,
    ProviderValidationError,
    UnsupportedError,
    WebhookError,
)
from pasarela.lifecycle import Status
from pasarela.model import Method, RefundStatus
from pasarela.provider import (
    Flow,
    Operation,
    Provider,
    WebhookHeaders,
    WebhookReply,
    imported_on_use,
)
from pasarela_pagoefectivo.errors import ERROR_TABLE, PROVIDER
from pasarela_pagoefectivo.fields import CURRENCIES
from pasarela_pagoefectivo.instructions import cash_code_action
from pasarela_pagoefectivo.settings import PagoEfectivoSettings


if TYPE_CHECKING:
    import httpx

    from pasarela.model import Payment
    from pasarela.provider import (
        CreateRequest,
        ProviderPayment,
        ProviderRefund,
        SettlementLine,
        WebhookEvent,
        WebhookHint,
    )
    from pasarela_pagoefectivo import api, notifications
else:  # the requests, answers and notifications: imported when a provider first runs one
    api = imported_on_use("pasarela_pagoefectivo.api", globals())
    notifications = imported_on_use("pasarela_pagoefectivo.notifications", globals())


__all__ = [
    "PagoEfectivoProvider",
    "settlement_from_notification",
    "settlement_line",
    "status_of",
]

T = TypeVar("T")


def _event_status(event_type: str) -> Status | None:
    """What a notification's event type reports."""
    return {
        notifications.EVENT_PAID: Status.SUCCEEDED,
        notifications.EVENT_EXPIRED: Status.EXPIRED,
    }.get(event_type)


_ACK: Final = b'{"code":"100","message":"Solicitud exitosa."}'
_NACK: Final = b'{"code":"111","message":"Solicitud con datos inv\xc3\xa1lidos."}'
#: The most checked requests whose fields wait for their create (each is created
#: right after its check; one left over was refused by the store meanwhile).
_CHECKED_KEPT: Final = 64


def status_of(state: api.CipState) -> Status | None:
    """The lifecycle status a searched CIP reports, or None for a code we do not know.

    A CIP with a ``dateRemoval`` was deleted (canceled); 23 ("Cancelado") is paid,
    21 expired, 22 generated (pending).
    """
    if state.removed_at is not None:
        return Status.CANCELED
    return {
        api.STATUS_PAID: Status.SUCCEEDED,
        api.STATUS_EXPIRED: Status.EXPIRED,
        api.STATUS_GENERATED: Status.PENDING,
    }.get(state.status)


def settlement_line(state: api.CipState, line_no: int = 0) -> SettlementLine | None:
    """A paid CIP as a line of what PagoEfectivo collected (None unless paid).

    PagoEfectivo publishes no settlement file, so fees are unknown here."""
    if status_of(state) is not Status.SUCCEEDED or state.paid_at is None:
        return None
    return contract.SettlementLine(
        provider=PROVIDER,
        provider_reference=state.cip,
        order_reference=None,
        amount=state.amount,
        fee=None,
        status="paid",
        occurred_at=state.paid_at,
        line_no=line_no,
        raw={**state.raw, "payment_id": state.transaction_code},
    )


def _done(value: T) -> Flow[T]:
    """A flow that needs no request."""
    yield from ()
    return value


class _TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: api.Token | None = None

    def get(self, now: datetime, margin: timedelta) -> api.Token | None:
        with self._lock:
            token = self._token
        return token if token is not None and token.usable(now, margin) else None

    def put(self, token: api.Token) -> None:
        with self._lock:
            self._token = token

    def drop(self, token: api.Token) -> None:
        with self._lock:
            if self._token is token:
                self._token = None


class PagoEfectivoProvider(Provider[PagoEfectivoSettings]):
    """PagoEfectivo: cash payments with a CIP code, in PEN or USD, in Peru."""

    name: ClassVar[str] = "pagoefectivo"
    display_name: ClassVar[str] = "PagoEfectivo"
    methods: ClassVar[frozenset[Method]] = frozenset({Method.CASH})
    #: The network itself, collected directly (a CIP code).
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {Method.CASH: ("pagoefectivo",)}
    countries: ClassVar[frozenset[str]] = frozenset({"PE"})
    currencies: ClassVar[frozenset[str]] = frozenset(CURRENCIES)
    #: N(18,2): 16 integer digits and 2 decimals; the real maximum is per merchant
    #: (code 511), set it with ``max_amount``.
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {
        "PEN": (1, 10**18 - 1),
        "USD": (1, 10**18 - 1),
    }
    default_expiry: ClassVar[timedelta | None] = timedelta(hours=48)
    #: A CIP is paid at an agent whenever the customer goes; PagoEfectivo notifies
    #: within minutes of a payment, so six hours with none while codes are pending is
    #: unusual.
    notification_delay: ClassVar[timedelta] = timedelta(hours=6)
    operations: ClassVar[frozenset[Operation]] = frozenset({
        Operation.PROBE, Operation.CREATE, Operation.GET, Operation.GET_MANY, Operation.CANCEL,
        Operation.EXTEND, Operation.WEBHOOK, Operation.SETTLEMENTS,
    })
    #: Only the search is repeated: PagoEfectivo takes no idempotency key, so a
    #: repeated create may make a second CIP, and a repeated delete of a deleted
    #: CIP is refused.
    retry_safe: ClassVar[frozenset[Operation]] = frozenset({Operation.PROBE, Operation.GET,
                                                            Operation.GET_MANY})
    #: CIPs per :meth:`get_many`. PagoEfectivo documents no limit on how many CIPs one
    #: search takes; 50 is the conservative default of ``search_batch_size`` (a
    #: smaller ``search_batch_size`` splits a get_many into several searches).
    get_many_limit: ClassVar[int] = 50
    settings_class: ClassVar[type[PagoEfectivoSettings]] = PagoEfectivoSettings
    #: PagoEfectivo lists no settlements: :meth:`settlements` searches given CIPs.
    settlements_by_reference: ClassVar[bool] = True
    error_codes: ClassVar[Mapping[str, ErrorCode]] = {
        **{code: rule.code for code, rule in ERROR_TABLE.items()},
        "401": ErrorCode.AUTHENTICATION,
    }
    secret_headers: ClassVar[frozenset[str]] = Provider.secret_headers | {"pe-signature"}
    secret_fields: ClassVar[frozenset[str]] = frozenset({
        "accessKey", "hashString", "token", "adminEmail", "userEmail", "userName",
        "userLastName", "userPhone", "userDocumentNumber", "userId",
    })
    sandbox_factory: ClassVar[str | None] = "pasarela_pagoefectivo.sandbox:create_app"

    def __init__(
        self, settings: PagoEfectivoSettings, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(settings, clock=clock)
        self._tokens = _TokenCache()
        #: The fields of requests checked and not created yet, by the request's id.
        self._checked: OrderedDict[int, tuple[CreateRequest, dict[str, Any]]] = OrderedDict()

    # --- authorization ---------------------------------------------------------------

    def probe(self) -> Flow[None]:
        """A fresh token (``POST /v1/authorizations``): the keys and the service id."""
        yield from self._authorize()

    def _authorize(self) -> Flow[api.Token]:
        now = self.clock()
        response = yield api.build_authorization_request(self.settings, now)
        token = api.parse_authorization_response(response, now=now)
        self._tokens.put(token)
        return token

    def _send(self, build: Callable[[str], httpx.Request]) -> Flow[httpx.Response]:
        """Send ``build(token)`` with a valid token; on a 401 renew it and send once more."""
        token = self._tokens.get(self.clock(), self.settings.token_refresh_margin)
        if token is None:
            token = yield from self._authorize()
        response = yield build(token.value)
        if response.status_code == 401:
            self._tokens.drop(token)
            token = yield from self._authorize()
            response = yield build(token.value)
        return response

    # --- create ------------------------------------------------------------------------

    def check_request(self, request: CreateRequest) -> None:
        fields = api.cip_fields(request, self.settings, now=self.clock(),
                                default_expiry=self.default_expiry or timedelta(hours=48))
        # The core checks a request, then creates it: the fields are built once.
        checked = self._checked
        checked[id(request)] = (request, fields)
        while len(checked) > _CHECKED_KEPT:  # requests checked and never created
            try:
                checked.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        settings = self.settings
        checked = self._checked.pop(id(request), None)
        if checked is not None and checked[0] is request:
            fields = checked[1]
        else:
            fields = api.cip_fields(request, settings, now=self.clock(),
                                    default_expiry=self.default_expiry or timedelta(hours=48))
        response = yield from self._send(
            lambda token: api.build_create_request(settings, token, fields)
        )
        created = api.parse_create_response(response)
        if created.amount != request.amount:
            raise ProviderError(
                f"PagoEfectivo made CIP {created.cip} for {created.amount}, not "
                f"{request.amount}",
                provider=PROVIDER,
            )
        expires_at = created.expires_at or api.parse_timestamp(fields["dateExpiry"])
        return contract.ProviderPayment(
            status=Status.PENDING,
            reference=created.cip,
            raw_status="generated",
            next_action=cash_code_action(created.cip, request.amount, expires_at, created.url),
            amount=created.amount,
            expires_at=expires_at,
        )

    # --- status -----------------------------------------------------------------------

    def search(self, cips: Sequence[str]) -> Flow[list[api.CipState]]:
        """``POST /v1/cips/search`` for *cips* (one request)."""
        settings = self.settings
        wanted = list(cips)
        response = yield from self._send(
            lambda token: api.build_search_request(settings, token, wanted)
        )
        return api.parse_search_response(response)

    def _report(self, state: api.CipState, current: Status) -> ProviderPayment:
        status = status_of(state)
        return contract.ProviderPayment(
            status=status if status is not None else current,
            reference=state.cip,
            raw_status=f"{state.status} {state.status_name}".strip(),
            amount=state.amount,
            expires_at=state.expires_at,
        )

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        cip = payment.provider_reference
        if not cip:
            # The search takes CIP numbers only: a create whose answer was lost
            # cannot be looked up. It stays unknown until a notification names it.
            return (yield from _done(contract.ProviderPayment(
                status=Status.UNKNOWN if payment.status is Status.UNKNOWN else payment.status,
                raw_status="no CIP number known",
                failure_message="PagoEfectivo's search takes CIP numbers; none is known",
            )))
        states = yield from self.search([cip])
        for state in states:
            if state.cip == cip:
                return self._report(state, payment.status)
        raise ProviderError(
            f"PagoEfectivo's search does not know CIP {cip}",
            code=ErrorCode.NOT_FOUND, provider=PROVIDER, provider_code="not_found",
        )

    def get_many(self, payments: Sequence[Payment]) -> Flow[dict[str, ProviderPayment]]:
        """``POST /v1/cips/search`` for many CIPs, keyed by CIP number.

        Payments with no CIP number, and CIPs the search leaves out, are not in the
        answer (PagoEfectivo said nothing about them). The CIPs go in requests of at
        most ``search_batch_size``.
        """
        current: dict[str, Status] = {}
        for payment in payments:
            if payment.provider_reference:
                current.setdefault(payment.provider_reference, payment.status)
        cips = list(current)
        size = self.settings.search_batch_size
        reports: dict[str, ProviderPayment] = {}
        for start in range(0, len(cips), size):
            states = yield from self.search(cips[start:start + size])
            for state in states:
                if state.cip in current:
                    reports[state.cip] = self._report(state, current[state.cip])
        return reports

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        """``DELETE /v1/cips/{cip}``: allowed only while the CIP is generated.

        When PagoEfectivo refuses (the CIP was paid or expired meanwhile), the CIP is
        searched and its real status reported, so a paid CIP is never canceled here.
        """
        cip = payment.provider_reference
        if not cip:
            raise UnsupportedError(
                "no CIP number is known for this payment; nothing to cancel",
                code=ErrorCode.UNSUPPORTED_OPERATION, provider=PROVIDER,
            )
        settings = self.settings
        response = yield from self._send(
            lambda token: api.build_delete_request(settings, token, cip)
        )
        try:
            api.parse_ack_response(response, "CIP deletion")
        except ProviderError as refused:
            if response.status_code != 400:
                raise
            states = yield from self.search([cip])
            state = next((s for s in states if s.cip == cip), None)
            if state is None or status_of(state) in (None, Status.PENDING):
                raise refused from None
            return self._report(state, payment.status)
        return contract.ProviderPayment(status=Status.CANCELED, reference=cip, raw_status="deleted")

    def extend(self, payment: Payment, until: datetime) -> Flow[ProviderPayment]:
        """``PATCH /v1/cips/{cip}`` with a new ``dateExpiry``, then a search.

        PagoEfectivo revives an expired CIP this way (it becomes generated again:
        the lifecycle's expired → pending, on the provider's word).
        """
        cip = payment.provider_reference
        if not cip:
            raise UnsupportedError("no CIP number is known for this payment",
                                   code=ErrorCode.UNSUPPORTED_OPERATION, provider=PROVIDER)
        if until.tzinfo is None or until <= self.clock():
            raise ProviderValidationError(
                "the new expiry must be a timezone-aware time in the future",
                fields={"until": "must be in the future"}, provider=PROVIDER,
            )
        settings = self.settings
        response = yield from self._send(
            lambda token: api.build_extend_request(settings, token, cip, until)
        )
        api.parse_ack_response(response, "CIP update")
        return (yield from self.get(payment))

    # --- settlements --------------------------------------------------------------------

    def settlements(
        self, since: datetime, until: datetime, *, references: Sequence[str] | None = None
    ) -> Flow[Iterable[SettlementLine]]:
        """Paid CIPs among *references*, paid in ``[since, until)``, searched in batches.

        PagoEfectivo publishes no settlement file and its search takes CIP numbers
        only, so the caller names the CIPs to check (its pending and paid payments).
        """
        cips = sorted({str(r) for r in references or () if r})
        if not cips:
            raise UnsupportedError(
                "PagoEfectivo has no settlement listing; pass references= (CIP numbers)",
                code=ErrorCode.UNSUPPORTED_OPERATION, provider=PROVIDER,
            )
        lines: list[SettlementLine] = []
        size = self.settings.search_batch_size
        for start in range(0, len(cips), size):
            states = yield from self.search(cips[start:start + size])
            for state in states:
                line = settlement_line(state, line_no=len(lines) + 1)
                if line is not None and since <= line.occurred_at < until:
                    lines.append(line)
        return lines

    # --- notifications --------------------------------------------------------------------

    @classmethod
    def webhook_hint(cls, headers: WebhookHeaders, body: bytes) -> WebhookHint | None:
        """The CIP and our payment id (``transactionCode``) an unverified notification
        names: a notification does not say which service id (account) it is for, so
        the core finds the account from the payment before the signature is checked
        with that account's secret only."""
        try:
            note = notifications.parse_notification(body)
        except WebhookError:
            return None
        return contract.WebhookHint(payment_id=note.transaction_code, provider_reference=note.cip)

    def parse_webhook(
        self, headers: WebhookHeaders, body: bytes, *, now: datetime
    ) -> list[WebhookEvent]:
        notifications.verify(headers, body, self.settings.notification_secrets())
        note = notifications.parse_notification(body)
        refund: ProviderRefund | None = None
        amount = note.amount
        if note.event_type == notifications.EVENT_REFUNDED:
            refund = contract.ProviderRefund(
                status=RefundStatus.SUCCEEDED,
                reference=note.event_id,
                amount=note.amount,
                payment_reference=note.cip,
            )
            amount = None  # a refund's amount is not the payment's
        return [contract.WebhookEvent(
            event_id=note.event_id,
            type=note.event_type,
            provider_reference=note.cip,
            payment_id=note.transaction_code,  # our payment id, echoed back
            status=_event_status(note.event_type),
            amount=amount,
            refund=refund,
            occurred_at=note.payment_date,
            raw=note.raw,
        )]

    def webhook_reply(self, error: Exception | None = None) -> WebhookReply:
        """200 (what PagoEfectivo waits for) or 400 for a rejected delivery."""
        if error is None:
            return WebhookReply(200, _ACK)
        return WebhookReply(400, _NACK)


def settlement_from_notification(
    event: WebhookEvent, *, received_at: datetime, line_no: int = 0
) -> SettlementLine | None:
    """A stored ``cip.paid`` event as a settlement line (reconciliation input); its
    time is the notification's ``paymentDate``, else when it was received."""
    if event.type != notifications.EVENT_PAID or event.amount is None:
        return None
    data: Any = event.raw.get("data") if isinstance(event.raw, Mapping) else None
    return contract.SettlementLine(
        provider=PROVIDER,
        provider_reference=event.provider_reference,
        order_reference=None,
        amount=event.amount,
        fee=None,
        status="paid",
        occurred_at=event.occurred_at or received_at,
        line_no=line_no,
        raw={"event_id": event.event_id,
             "payment_id": data.get("transactionCode") if isinstance(data, Mapping) else None},
    )
