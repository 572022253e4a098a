"""The Stripe sandbox: the :class:`~.state.Account` and what Stripe's HTTP layer adds
to it (API keys, idempotency, rate limits, signed events), without HTTP itself.

Idempotency as Stripe documents it: the first answer to a POST with an
``Idempotency-Key`` is saved (errors too, once execution began) and replayed for
24 hours to the same key with the same parameters; the same key with other
parameters or on another endpoint is a 400 ``idempotency_error``. Parameter
validation failures, 401 and 429 are not saved.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from pasarela.testing.sandbox import Credential, Fault, Sandbox, Webhook
from pasarela_stripe.sandbox.knobs import StripeKnobs
from pasarela_stripe.sandbox.state import Account, APIError
from pasarela_stripe.webhooks import signature_header


__all__ = ["DEFAULT_API_KEY", "IDEMPOTENCY_TTL", "OPERATIONS", "SERVER_ERROR", "Saved",
           "StripeSandbox"]

#: The key the banner suggests: the sandbox takes any ``sk_test_``/``rk_test_`` key
#: unless given one.
DEFAULT_API_KEY: Final = "sk_test_pasarela_sandbox"
IDEMPOTENCY_TTL: Final = 24 * 3600
SERVER_ERROR: Final = (
    "Sorry, something went wrong. We've already been notified of the problem.")
#: The API's routes, as one-shot faults name them.
OPERATIONS: Final = (
    "POST /v1/payment_intents", "GET /v1/payment_intents/search",
    "GET /v1/payment_intents/{intent}", "POST /v1/payment_intents/{intent}/confirm",
    "POST /v1/payment_intents/{intent}/cancel", "POST /v1/refunds", "GET /v1/refunds",
    "GET /v1/refunds/{id}", "GET /v1/charges/{id}", "GET /v1/balance_transactions",
    "GET /v1/events/{id}",
)


@attrs.define
class Saved:
    """An answer saved under an idempotency key."""

    fingerprint: str
    status: int
    body: bytes
    created: float


class StripeSandbox(Sandbox):
    """One sandboxed Stripe account in test mode (see :mod:`pasarela.testing.sandbox`
    for what every sandbox shares).

    :param api_key: accept only this ``sk_test_`` key (default: any ``sk_test_`` or
        ``rk_test_`` key).
    :param base_url: the sandbox's public address, for 3-D Secure URLs (default: the
        request's).
    """

    name = "stripe"
    title = "Stripe (PaymentIntents, API 2023-08-16)"
    default_port = 8812
    knobs_class = StripeKnobs
    operations = OPERATIONS
    #: ``500``: Stripe's ``api_error``, nothing done (``Stripe-Should-Retry: true``);
    #: ``500_after``: the work done, then ``api_error`` answered and saved under the
    #: idempotency key, so a retry with the key replays it (``Stripe-Should-Retry:
    #: false``): the indeterminate 5xx Stripe's error docs describe.
    fault_kinds = ("500", "500_after")
    knobs: StripeKnobs

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None,
                 **options: Any) -> None:
        """*options*: ``clock``, ``seed`` and knobs, as :class:`Sandbox` takes them."""
        self.api_key = api_key
        self.base_url = base_url
        super().__init__(**options)
        self.clear()

    def clear(self) -> None:
        self.account = Account(clock=self.clock.timestamp, rng=self.random)
        self.account.processing = self.knobs.processing
        self.account.refund_status = self.knobs.refund_status
        self.saved: dict[str, Saved] = {}

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        described = super().configure(changes)
        self.account.processing = self.knobs.processing
        self.account.refund_status = self.knobs.refund_status
        return described

    def counts(self) -> dict[str, int]:
        account = self.account
        return {"payment_intents": len(account.intents), "charges": len(account.charges),
                "refunds": len(account.refunds), "events": len(account.events)}

    def credentials(self) -> list[Credential]:
        secret = ", ".join(self.knobs.webhook_secrets)
        return [Credential("api_key", self.api_key or DEFAULT_API_KEY,
                           "" if self.api_key else "or any sk_test_ / rk_test_ key"),
                Credential("webhook_secrets", secret, "signs the events")]

    def settings(self, url: str) -> dict[str, Any]:
        return {"environment": "sandbox", "base_url": url,
                "api_key": self.api_key or DEFAULT_API_KEY,
                "webhook_secrets": list(self.knobs.webhook_secrets)}

    def control_error(self, error: Exception) -> tuple[int, Any] | None:
        return (error.status, error.body()) if isinstance(error, APIError) else None

    # --- what an API request goes through ---------------------------------------------

    def authenticate(self, header: str) -> None:
        """Bearer (or Basic, the key as user) with a test key; else Stripe's 401."""
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip()).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not header:
            raise APIError(401, "invalid_request_error",
                           "You did not provide an API key. You need to provide your API key in "
                           "the Authorization header, using Bearer auth (e.g. 'Authorization: "
                           "Bearer YOUR_SECRET_KEY').", saved=False)
        valid = key.startswith(("sk_test_", "rk_test_")) and (
            self.api_key is None or key == self.api_key)
        if not valid:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else "***"
            raise APIError(401, "invalid_request_error", f"Invalid API Key provided: {shown}",
                           saved=False)

    def refuse(self, operation: str) -> Fault | None:
        """The rate limit (429) or a fault (500) before execution, if one falls due;
        returns a fault due after execution (``500_after``) for the caller to play."""
        knobs = self.knobs
        with self.lock:
            limited = knobs.rate_limit_next > 0 or (
                knobs.rate_limit_rate and self.random.random() < knobs.rate_limit_rate)
            if limited:
                knobs.rate_limit_next = max(0, knobs.rate_limit_next - 1)
        if limited:
            raise APIError(
                429, "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.", code="rate_limit", saved=False,
                headers={"Retry-After": f"{knobs.retry_after:g}"})
        fault = self.take_fault(operation)
        if fault is not None and fault.kind == "500_after":
            return fault
        if fault is not None:
            raise APIError(500, "api_error", SERVER_ERROR, saved=False,
                           headers={"Stripe-Should-Retry": "true"})
        return None

    def saved_answer(self, key: str, fingerprint: str) -> Saved | None:
        """The answer saved under *key* within 24 hours (None: none); raises
        ``idempotency_error`` when it was for other parameters."""
        saved = self.saved.get(key)
        if saved is not None and saved.created < self.clock.timestamp() - IDEMPOTENCY_TTL:
            del self.saved[key]
            saved = None
        if saved is not None and saved.fingerprint != fingerprint:
            raise APIError(
                400, "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with. Try using a key other than "
                f"'{key}' if you meant to execute a different request.")
        return saved

    def save(self, key: str, fingerprint: str, status: int, body: bytes) -> None:
        self.saved[key] = Saved(fingerprint, status, body, self.clock.timestamp())

    # --- events -------------------------------------------------------------------------

    @staticmethod
    def webhook(event: Mapping[str, Any]) -> Webhook:
        """*event* as a webhook for the courier."""
        return Webhook(event["id"], event["type"], event, event["data"]["object"].get("id"))

    def take_webhooks(self) -> list[Webhook]:
        """The events the last operations made, as webhooks for the courier."""
        batch, self.account.outbox = self.account.outbox, []
        return [self.webhook(event) for event in batch]

    def signed(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a delivery of *event*, signed now (with the
        ``webhook_signature`` fault applied)."""
        body = json.dumps(event, indent=2).encode("utf-8")
        timestamp = int(self.clock.timestamp())
        secrets = list(self.knobs.webhook_secrets)
        if self.knobs.webhook_signature == "stale":
            timestamp -= 3600
        elif self.knobs.webhook_signature == "invalid":
            secrets = ["whsec_not_the_endpoint_secret"]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(body, secrets, timestamp),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        return body, headers

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        return self.signed(webhook.payload)
