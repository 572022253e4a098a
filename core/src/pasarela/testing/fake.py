"""A fake provider and the fake gateway it talks to, for tests and the demo.

:class:`FakeGateway` is an in-memory payment gateway with a small JSON API. It
serves requests through :meth:`FakeGateway.transport` (an ``httpx.MockTransport``
for sync and async clients) or as an ASGI app (:meth:`FakeGateway.asgi`) for tests
over real loopback HTTP. :class:`FakeProvider` is a regular adapter built exactly
like a third party's: pure build/parse functions, flows, an error table, signed
webhooks.

Scenarios, chosen per payment with ``pay(..., scenario="...")`` or the order's
``metadata["scenario"]``:

``GET_MANY`` is ``POST /v1/payments/search`` with ``{"ids": [...]}`` (at most
:data:`SEARCH_LIMIT`); it answers ``{"data": [...]}`` and leaves unknown ids out.

Refunds: ``POST /v1/refunds`` (keyed by our refund id), ``GET /v1/refunds/{id}`` and
``GET /v1/refunds/by-refund-id/{our id}`` (``GET_REFUND``; a refund the gateway does
not show answers 404, which the provider reads as "still pending", never failed).
Knobs on the gateway: :attr:`FakeGateway.refund_outcome` (what a new refund becomes;
``pending`` ones are settled with :meth:`FakeGateway.settle_refund`),
:attr:`FakeGateway.lose_refund_answers` (refunds are made but every answer to their
create is lost: ``httpx.ReadTimeout``, replays included) and
:attr:`FakeGateway.hide_new_refunds` (refunds made meanwhile are not shown by the
lookups until :meth:`FakeGateway.reveal_refunds`).

Lost payments: :attr:`FakeGateway.hide_new_payments` keeps payments made meanwhile
out of every lookup (by id, by our payment id, search) until
:meth:`FakeGateway.reveal_payments`: with the ``timeout`` scenario, a create whose
answer was lost and that the provider's search does not find yet.

``succeed`` (default for card) · ``pending`` (default for cash and wallet; settle it
with :meth:`FakeGateway.settle`, which returns a signed webhook) · ``decline`` ·
``insufficient_funds`` · ``invalid`` (a 400 naming a field) · ``timeout`` (the
gateway records the payment, then the answer is lost: ``httpx.ReadTimeout``) ·
``connect_error`` (nothing reaches the gateway) · ``5xx`` · ``5xx_once`` (one 503,
then normal) · ``malformed`` (a body
that is not JSON) · ``slow`` (answers after ``slow_seconds``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
import httpx

from pasarela.errors import (
    AuthenticationError,
    DeclinedError,
    ErrorCode,
    ProviderError,
    ProviderUnavailableError,
    ProviderValidationError,
    SignatureInvalidError,
    WebhookError,
)
from pasarela.hookspecs import hookimpl
from pasarela.lifecycle import Status
from pasarela.model import Method, Payment, Refund, RefundStatus
from pasarela.money import Money
from pasarela.next_action import (
    ApproveInWallet,
    ConfirmCard,
    NextAction,
    ShowCashCode,
)
from pasarela.provider import (
    CreateRequest,
    Flow,
    Operation,
    Provider,
    ProviderPayment,
    ProviderRefund,
    ProviderSettings,
    WebhookEvent,
    header_key,
)


__all__ = ["FakeGateway", "FakePlugin", "FakeProvider", "FakeSettings", "sign_fake_webhook"]

FAKE_BASE_URL = "http://fake-gateway.test"
#: Most payment ids one ``POST /v1/payments/search`` takes.
SEARCH_LIMIT = 500


@attrs.frozen(kw_only=True)
class FakeSettings(ProviderSettings):
    base_url: str = FAKE_BASE_URL
    api_key: str = attrs.field(default="fake_sk_test_123", repr=False, metadata={"secret": True})
    webhook_secrets: tuple[str, ...] = attrs.field(
        default=("whsec_fake_123",), repr=False, metadata={"secret": True}
    )
    webhook_tolerance: timedelta = timedelta(seconds=300)
    max_retries: int = 2


_STATUS = {
    "pending": Status.PENDING,
    "processing": Status.PROCESSING,
    "succeeded": Status.SUCCEEDED,
    "failed": Status.FAILED,
    "canceled": Status.CANCELED,
    "expired": Status.EXPIRED,
}


class FakeProvider(Provider):
    """The fake provider: every method, PEN and USD, scripted outcomes."""

    name = "fake"
    display_name = "Fake provider"
    methods = frozenset({Method.CASH, Method.WALLET, Method.CARD})
    networks: ClassVar[Mapping[Method, tuple[str, ...]]] = {
        Method.CASH: ("pagoefectivo",), Method.WALLET: ("yape", "plin"), Method.CARD: ("visa",)}
    countries = frozenset({"PE", "US"})
    currencies = frozenset({"PEN", "USD"})
    limits: ClassVar[Mapping[str, tuple[int | None, int | None]]] = {
        "PEN": (100, 5_000_000), "USD": (50, 1_000_000),
    }
    default_expiry = timedelta(hours=24)
    #: Every operation but moving an expiry (its gateway has no such call).
    operations = frozenset(Operation) - {Operation.EXTEND}
    retry_safe = frozenset({Operation.GET, Operation.GET_MANY, Operation.CREATE,
                            Operation.CANCEL, Operation.REFUND, Operation.CONFIRM,
                            Operation.GET_REFUND})
    get_many_limit = SEARCH_LIMIT
    settings_class = FakeSettings
    error_codes: ClassVar[Mapping[str, ErrorCode]] = {
        "card_declined": ErrorCode.CARD_DECLINED,
        "insufficient_funds": ErrorCode.INSUFFICIENT_FUNDS,
        "invalid_request": ErrorCode.VALIDATION,
        "unauthorized": ErrorCode.AUTHENTICATION,
        "server_error": ErrorCode.PROVIDER_UNAVAILABLE,
    }
    secret_fields = frozenset({"code", "api_key", "client_secret"})

    settings: FakeSettings

    # --- pure build / parse ------------------------------------------------------

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                 idempotency_key: str | None = None) -> httpx.Request:
        headers = {"Authorization": f"Bearer {self.settings.api_key}"}
        if idempotency_key:
            headers["Idempotency-Key"] = header_key(idempotency_key)
        return httpx.Request(method, self.settings.base_url.rstrip("/") + path, headers=headers,
                             json=body if body is not None else None)

    def check_request(self, request: CreateRequest) -> None:
        if request.method is Method.CASH and request.order.customer is None:
            raise ProviderValidationError(
                "a cash code needs the customer's name and email",
                fields={"customer": "required"}, provider=self.name,
            )

    def build_create(self, request: CreateRequest) -> httpx.Request:
        order = request.order
        scenario = request.params.get("scenario") or order.metadata.get("scenario") or (
            "succeed" if request.method is Method.CARD else "pending")
        return self._request("POST", "/v1/payments", {
            "payment_id": request.payment_id,
            "reference": order.reference,
            "amount": request.amount.minor,
            "currency": request.amount.currency,
            "method": request.method.value,
            "scenario": scenario,
            "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        }, idempotency_key=request.idempotency_key)

    def parse_payment(self, response: httpx.Response) -> ProviderPayment:
        return self._payment(self._json(response))

    def parse_payments(self, response: httpx.Response) -> dict[str, ProviderPayment]:
        """A search answer, keyed by the gateway's payment id."""
        data = self._json(response).get("data")
        if not isinstance(data, list):
            raise ProviderUnavailableError("fake gateway's search answer has no data list",
                                           provider=self.name, http_status=response.status_code)
        reports = (self._payment(item) for item in data)
        return {r.reference: r for r in reports if r.reference}

    def _payment(self, data: Mapping[str, Any]) -> ProviderPayment:
        status = _STATUS[data["status"]]
        amount = Money(int(data["amount"]), data["currency"])
        expires = datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None
        action: NextAction | None = None
        if status is Status.PENDING and data.get("method") == "cash":
            action = ShowCashCode(code=data["code"], amount=amount, expires_at=expires,
                                  url=f"{self.settings.base_url}/codes/{data['code']}",
                                  instructions={"es": (f"Paga el código {data['code']}.",),
                                                "en": (f"Pay code {data['code']}.",)})
        elif status is Status.PENDING and data.get("method") == "wallet":
            action = ApproveInWallet(wallet="fake", instructions={
                "es": ("Aprueba el pago en tu app.",), "en": ("Approve the payment in your app.",)})
        elif status is Status.PENDING:
            action = ConfirmCard(client_secret=data["client_secret"])
        return ProviderPayment(status=status, reference=data["id"], raw_status=data["status"],
                               next_action=action, amount=amount, expires_at=expires,
                               failure_code=data.get("failure_code"),
                               failure_message=data.get("failure_message"))

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise ProviderUnavailableError(
                f"fake gateway sent a body that is not JSON (HTTP {response.status_code})",
                provider=self.name, http_status=response.status_code,
            ) from None
        if response.status_code >= 400 or "error" in data:
            raise self.map_error(response.status_code, data.get("error") or {})
        return data  # type: ignore[no-any-return]

    def map_error(self, status: int, error: Mapping[str, Any]) -> ProviderError:
        """The one mapping from the gateway's errors to pasarela's."""
        raw = str(error.get("code", ""))
        message = str(error.get("message", "error"))
        code = self.error_codes.get(raw)
        common: dict[str, Any] = {"provider": self.name, "provider_code": raw or None,
                                  "provider_message": message, "http_status": status}
        if code in (ErrorCode.CARD_DECLINED, ErrorCode.INSUFFICIENT_FUNDS):
            return DeclinedError(message, code=code, decline_code=raw, **common)
        if code is ErrorCode.VALIDATION:
            return ProviderValidationError(message, fields={str(error.get("param", "")): message},
                                           **common)
        if code is ErrorCode.AUTHENTICATION:
            return AuthenticationError(message, created_nothing=True, **common)
        if status >= 500:
            return ProviderUnavailableError(message, **common)
        return ProviderError(message, **common)

    # --- flows ---------------------------------------------------------------------

    def create(self, request: CreateRequest) -> Flow[ProviderPayment]:
        self.check_request(request)
        response = yield self.build_create(request)
        return self.parse_payment(response)

    def confirm(self, payment: Payment, params: Mapping[str, Any]) -> Flow[ProviderPayment]:
        response = yield self._request("POST", f"/v1/payments/{payment.provider_reference}/confirm",
                                       dict(params), idempotency_key=f"{payment.id}:confirm")
        return self.parse_payment(response)

    def get(self, payment: Payment) -> Flow[ProviderPayment]:
        if payment.provider_reference:
            response = yield self._request("GET", f"/v1/payments/{payment.provider_reference}")
        else:  # the create's answer was lost: look it up by our id
            response = yield self._request("GET", f"/v1/payments/by-payment-id/{payment.id}")
        return self.parse_payment(response)

    def probe(self) -> Flow[None]:
        response = yield self._request("GET", "/v1/payments/by-payment-id/doctor-probe")
        if response.status_code != 404:  # 404: authenticated, and no such payment
            self._json(response)

    def get_many(self, payments: Sequence[Payment]) -> Flow[dict[str, ProviderPayment]]:
        refs = list(dict.fromkeys(p.provider_reference for p in payments if p.provider_reference))
        if not refs:
            return {}
        response = yield self._request("POST", "/v1/payments/search", {"ids": refs})
        return self.parse_payments(response)

    def cancel(self, payment: Payment) -> Flow[ProviderPayment]:
        response = yield self._request("POST", f"/v1/payments/{payment.provider_reference}/cancel",
                                       {}, idempotency_key=f"{payment.id}:cancel")
        return self.parse_payment(response)

    def refund(self, payment: Payment, amount: Money, *, refund_id: str,
               reason: str, params: Mapping[str, Any] | None = None) -> Flow[ProviderRefund]:
        response = yield self._request("POST", "/v1/refunds", {
            "payment": payment.provider_reference, "amount": amount.minor, "reason": reason,
            "refund_id": refund_id,
        }, idempotency_key=refund_id)
        return self._refund(self._json(response))

    def get_refund(self, payment: Payment, refund: Refund) -> Flow[ProviderRefund]:
        if refund.provider_reference:
            response = yield self._request("GET", f"/v1/refunds/{refund.provider_reference}")
        else:  # the refund's answer was lost: look it up by our id
            response = yield self._request("GET", f"/v1/refunds/by-refund-id/{refund.id}")
        if response.status_code == 404:
            # Not shown (yet): the provider has not said; never failed from that alone.
            return ProviderRefund(status=RefundStatus.PENDING,
                                  reference=refund.provider_reference, refund_id=refund.id)
        return self._refund(self._json(response))

    def _refund(self, data: Mapping[str, Any]) -> ProviderRefund:
        return ProviderRefund(status=RefundStatus(data["status"]), reference=data["id"],
                              amount=Money(int(data["amount"]), data["currency"]),
                              payment_reference=data["payment"],
                              refund_id=data.get("refund_id") or None)

    # --- webhooks -------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, *,
                      now: datetime) -> list[WebhookEvent]:
        header = {k.lower(): v for k, v in headers.items()}.get("fake-signature")
        if not header:
            raise SignatureInvalidError("missing Fake-Signature header", provider=self.name)
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError):
            raise SignatureInvalidError("malformed Fake-Signature header",
                                        provider=self.name) from None
        signed = f"{timestamp}.".encode() + body
        expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()
                    for s in self.settings.webhook_secrets]
        given = [v for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p)
                 if k == "v1"]
        if not any(hmac.compare_digest(e, g) for e in expected for g in given):
            raise SignatureInvalidError("signature does not match", provider=self.name)
        age = abs(now.timestamp() - timestamp)
        if age > self.settings.webhook_tolerance.total_seconds():
            raise SignatureInvalidError(f"timestamp outside tolerance ({age:.0f} s)",
                                        provider=self.name)
        try:
            event = json.loads(body)
            data = event["data"]
            amount = Money(int(data["amount"]), str(data["currency"]))
            status = _STATUS.get(str(data.get("status")))
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookError(f"malformed event: {exc}", provider=self.name) from None
        return [WebhookEvent(event_id=str(event["id"]), type=str(event["type"]),
                             provider_reference=str(data["id"]), status=status, amount=amount,
                             raw=event)]


def sign_fake_webhook(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {"Content-Type": "application/json",
            "Fake-Signature": f"t={timestamp},v1={digest.hexdigest()}"}


class FakePlugin:
    """Registers :class:`FakeProvider`; ``plugins.modules = ["pasarela.testing.fake"]``."""

    @staticmethod
    @hookimpl
    def pasarela_register_providers(register: Any) -> None:
        register.add(FakeProvider)


# Module-level hook so that the module itself can be registered as a plugin.
pasarela_register_providers = FakePlugin.pasarela_register_providers


# --- the gateway -------------------------------------------------------------------


@attrs.define
class _FakePayment:
    id: str
    payment_id: str
    reference: str
    amount: int
    currency: str
    method: str
    status: str
    scenario: str
    code: str
    expires_at: str | None
    refunded: int = 0
    #: False while :attr:`FakeGateway.hide_new_payments` hides it from lookups.
    visible: bool = True


@attrs.define
class _FakeRefund:
    id: str
    #: Ours (the refund id the core sent).
    refund_id: str
    payment: str
    amount: int
    currency: str
    status: str
    #: False while :attr:`FakeGateway.hide_new_refunds` hides it from lookups.
    visible: bool = True


class FakeGateway:
    """An in-memory gateway behind :class:`FakeProvider`. Thread-safe."""

    def __init__(self, *, webhook_secret: str = "whsec_fake_123",  # noqa: S107
                 clock: Callable[[], datetime] | None = None, slow_seconds: float = 0.05) -> None:
        self.webhook_secret = webhook_secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.slow_seconds = slow_seconds
        self.payments: dict[str, _FakePayment] = {}
        self.by_payment_id: dict[str, str] = {}
        self.idempotency: dict[str, tuple[int, bytes]] = {}
        self.calls: list[tuple[str, str]] = []
        #: Every payment id a search was asked about, in order (``calls`` has no bodies).
        self.searched: list[str] = []
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._lock = threading.Lock()
        self._failed_once: set[str] = set()
        self.refunds: dict[str, _FakeRefund] = {}
        #: What a new refund becomes: ``succeeded``, ``pending`` or ``failed``.
        self.refund_outcome = "succeeded"
        #: Refunds are made, but every answer to their create is lost (replays too).
        self.lose_refund_answers = False
        #: Refunds made while set are not shown by the lookups until revealed.
        self.hide_new_refunds = False
        #: Payments made while set are not shown by any lookup until revealed.
        self.hide_new_payments = False

    # --- transports ----------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        status, payload, error = self.respond(request.method, request.url.path,
                                              dict(request.headers), body)
        if error is not None:
            raise error(f"fake gateway: {error.__name__}", request=request)  # type: ignore[call-arg]
        return httpx.Response(status, content=payload,
                              headers={"Content-Type": "application/json"})

    def asgi(self) -> Callable[..., Any]:
        """The gateway as a raw ASGI app (for tests and benchmarks over loopback)."""
        gateway = self

        async def app(scope: dict[str, Any], receive: Callable[..., Any],
                      send: Callable[..., Any]) -> None:
            if scope["type"] != "http":
                return
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            status, payload, error = gateway.respond(scope["method"], scope["path"], headers,
                                                     b"".join(chunks))
            if error is not None:
                status, payload = 504, b"gateway timeout"
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})

        return app

    # --- the API -----------------------------------------------------------------------

    def respond(self, method: str, path: str, headers: Mapping[str, str],
                body: bytes) -> tuple[int, bytes, type[httpx.HTTPError] | None]:
        with self._lock:
            self.calls.append((method, path))
            lowered = {k.lower(): v for k, v in headers.items()}
            if lowered.get("authorization", "") != "Bearer fake_sk_test_123":
                return self._error(401, "unauthorized", "bad API key")
            key = lowered.get("idempotency-key")
            lost = (httpx.ReadTimeout if self.lose_refund_answers and method == "POST"
                    and path.rstrip("/") == "/v1/refunds" else None)
            if method == "POST" and key and f"{path}:{key}" in self.idempotency:
                status, payload = self.idempotency[f"{path}:{key}"]
                return status, payload, lost
            status, payload, error = self._route(method, path, body)
            if method == "POST" and key and 0 < status < 500:
                self.idempotency[f"{path}:{key}"] = (status, payload)
            return status, payload, error or lost

    def _route(self, method: str, path: str,
               body: bytes) -> tuple[int, bytes, type[httpx.HTTPError] | None]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "payments"]:
            return self._create(json.loads(body))
        if method == "POST" and parts == ["v1", "payments", "search"]:
            return self._search(json.loads(body))
        if method == "GET" and parts[:3] == ["v1", "payments", "by-payment-id"]:
            ref = self.by_payment_id.get(parts[3])
            return self._show(ref) if ref else self._error(404, "not_found", "no such payment")
        if method == "GET" and parts[:3] == ["v1", "refunds", "by-refund-id"] and len(parts) == 4:
            found = [r for r in self.refunds.values() if r.refund_id == parts[3]]
            return self._show_refund(found[0].id if found else "")
        if method == "GET" and parts[:2] == ["v1", "refunds"] and len(parts) == 3:
            return self._show_refund(parts[2])
        if method == "GET" and parts[:2] == ["v1", "payments"] and len(parts) == 3:
            return self._show(parts[2])
        if method == "POST" and parts[:2] == ["v1", "payments"] and len(parts) == 4:
            fake = self.payments.get(parts[2])
            if fake is None:
                return self._error(404, "not_found", "no such payment")
            if parts[3] == "cancel" and fake.status == "pending":
                fake.status = "canceled"
            elif parts[3] == "confirm" and fake.status == "pending":
                fake.status = "succeeded"
            return self._show(fake.id)
        if method == "POST" and parts == ["v1", "refunds"]:
            data = json.loads(body)
            fake = self.payments.get(data.get("payment", ""))
            if fake is None:
                return self._error(404, "not_found", "no such payment")
            if fake.refunded + int(data["amount"]) > fake.amount:
                return self._error(400, "invalid_request", "refund exceeds charge", "amount")
            refund = _FakeRefund(id=f"re_{next(self._ids)}",
                                 refund_id=str(data.get("refund_id") or ""), payment=fake.id,
                                 amount=int(data["amount"]), currency=fake.currency,
                                 status=self.refund_outcome, visible=not self.hide_new_refunds)
            if refund.status != "failed":  # a pending refund holds its amount
                fake.refunded += refund.amount
            self.refunds[refund.id] = refund
            return 200, json.dumps(self._public_refund(refund)).encode(), None
        return self._error(404, "not_found", f"no route {method} {path}")

    def _create(self, data: dict[str, Any]) -> tuple[int, bytes, type[httpx.HTTPError] | None]:
        scenario = data.get("scenario", "succeed")
        if scenario == "connect_error":
            return 0, b"", httpx.ConnectError
        if scenario == "5xx" or (scenario == "5xx_once" and data["payment_id"] not in
                                 self._failed_once):
            self._failed_once.add(data["payment_id"])
            return self._error(503, "server_error", "try again later")
        if scenario == "invalid":
            return self._error(400, "invalid_request", "amount is not acceptable", "amount")
        if scenario == "malformed":
            return 200, b"<html>oops</html>", None
        if scenario in ("decline", "insufficient_funds"):
            code = "card_declined" if scenario == "decline" else "insufficient_funds"
            return self._error(402, code, "the issuer declined the payment")
        if scenario == "slow":
            time.sleep(self.slow_seconds)
        number = next(self._ids)
        fake = _FakePayment(
            id=f"fp_{number:06d}", payment_id=data["payment_id"], reference=data["reference"],
            amount=int(data["amount"]), currency=data["currency"], method=data["method"],
            status="pending" if scenario == "pending" else "succeeded",
            scenario=scenario, code=f"{90000000 + number}", expires_at=data.get("expires_at"),
            visible=not self.hide_new_payments,
        )
        if scenario == "timeout":
            fake.status = "pending" if data["method"] != "card" else "succeeded"
        self.payments[fake.id] = fake
        self.by_payment_id[fake.payment_id] = fake.id
        status, payload, _ = self._show(fake.id)
        if scenario == "timeout":  # processed, but the answer is lost on the way back
            return status, payload, httpx.ReadTimeout
        return status, payload, None

    def _search(self, data: Any) -> tuple[int, bytes, type[httpx.HTTPError] | None]:
        ids = data.get("ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return self._error(400, "invalid_request", "ids must be a list of strings", "ids")
        if not 1 <= len(ids) <= SEARCH_LIMIT:
            return self._error(400, "invalid_request",
                               f"search takes 1 to {SEARCH_LIMIT} ids", "ids")
        self.searched += ids
        found = [self._public(self.payments[i]) for i in ids
                 if i in self.payments and self.payments[i].visible]
        return 200, json.dumps({"data": found}).encode(), None

    def _show(self, ref: str) -> tuple[int, bytes, type[httpx.HTTPError] | None]:
        fake = self.payments.get(ref)
        if fake is None or not fake.visible:
            return self._error(404, "not_found", "no such payment")
        return 200, json.dumps(self._public(fake)).encode(), None

    def _show_refund(self, ref: str) -> tuple[int, bytes, type[httpx.HTTPError] | None]:
        refund = self.refunds.get(ref)
        if refund is None or not refund.visible:
            return self._error(404, "not_found", "no such refund")
        return 200, json.dumps(self._public_refund(refund)).encode(), None

    @staticmethod
    def _public_refund(refund: _FakeRefund) -> dict[str, Any]:
        return {"id": refund.id, "refund_id": refund.refund_id, "status": refund.status,
                "amount": refund.amount, "currency": refund.currency,
                "payment": refund.payment}

    def _public(self, fake: _FakePayment) -> dict[str, Any]:
        return {"id": fake.id, "payment_id": fake.payment_id, "status": fake.status,
                "amount": fake.amount, "currency": fake.currency, "method": fake.method,
                "code": fake.code, "client_secret": f"{fake.id}_secret_x",
                "expires_at": fake.expires_at}

    @staticmethod
    def _error(status: int, code: str, message: str,
               param: str = "") -> tuple[int, bytes, None]:
        return status, json.dumps({"error": {"code": code, "message": message,
                                             "param": param}}).encode(), None

    # --- playing the customer ----------------------------------------------------------

    def settle(self, reference: str, status: str = "succeeded", *,
               amount: int | None = None) -> tuple[dict[str, str], bytes]:
        """Move a payment (the customer paid, or it expired) and return a signed
        webhook ``(headers, body)`` announcing it."""
        with self._lock:
            fake = self.payments[reference]
            fake.status = status
            event = {"id": f"evt_{next(self._events)}", "type": f"payment.{status}",
                     "data": {**self._public(fake),
                              **({"amount": amount} if amount is not None else {})}}
        body = json.dumps(event, separators=(",", ":")).encode()
        timestamp = int(self.clock().timestamp())
        return sign_fake_webhook(body, self.webhook_secret, timestamp), body

    def settle_refund(self, key: str, status: str = "succeeded") -> None:
        """Move a pending refund (by the gateway's id or ours) to *status*; a failed
        one gives its amount back to the payment."""
        with self._lock:
            [refund] = [r for r in self.refunds.values() if key in (r.id, r.refund_id)]
            if refund.status != "failed" and status == "failed":
                self.payments[refund.payment].refunded -= refund.amount
            refund.status = status

    def reveal_refunds(self) -> None:
        """Show the refunds :attr:`hide_new_refunds` kept from the lookups."""
        with self._lock:
            for refund in self.refunds.values():
                refund.visible = True

    def reveal_payments(self) -> None:
        """Show the payments :attr:`hide_new_payments` kept from the lookups."""
        with self._lock:
            for fake in self.payments.values():
                fake.visible = True
