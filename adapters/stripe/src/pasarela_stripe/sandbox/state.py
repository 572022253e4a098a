"""The sandbox's account: PaymentIntents, Charges, Refunds, balance transactions
and Events in memory.

Pure state transitions with Stripe's rules; the HTTP layer (:mod:`.app`) adds
authentication, idempotency, fault knobs and webhook delivery. Operations take
decoded form parameters and return Stripe objects, or raise :class:`APIError`
with Stripe's error shape.
"""

from __future__ import annotations

import copy
import functools
import random
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from pasarela_stripe.sandbox import objects
from pasarela_stripe.sandbox.objects import TEST_CARDS, SandboxCard, new_id


__all__ = ["APIError", "Account"]

#: Minimum charge per currency in minor units (USD 0.50 documented; the rest are
#: the sandbox's assumptions, PEN 2.00 as the adapter's limits).
MINIMUMS: Final[Mapping[str, int]] = {
    "usd": 50, "pen": 200, "eur": 50, "gbp": 30, "mxn": 1000, "brl": 50,
}
MAXIMUM: Final = 99_999_999
CANCELABLE: Final = frozenset(
    {"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action"}
)
CONFIRMABLE: Final = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action"}
)
CANCELLATION_REASONS: Final = frozenset(
    {"abandoned", "duplicate", "fraudulent", "requested_by_customer"}
)
REFUND_REASONS: Final = frozenset({"duplicate", "fraudulent", "requested_by_customer"})

CREATE_PARAMS: Final = frozenset({
    "amount", "currency", "payment_method_types", "metadata", "description",
    "payment_method", "confirm", "return_url", "capture_method", "statement_descriptor",
    "statement_descriptor_suffix", "receipt_email", "expand", "automatic_payment_methods",
    "payment_method_options", "confirmation_method",
})
CONFIRM_PARAMS: Final = frozenset({"payment_method", "return_url", "expand", "receipt_email"})
CANCEL_PARAMS: Final = frozenset({"cancellation_reason", "expand"})
REFUND_PARAMS: Final = frozenset(
    {"payment_intent", "charge", "amount", "reason", "metadata", "expand"}
)
REFUND_LIST_PARAMS: Final = frozenset({"payment_intent", "charge", "limit", "starting_after"})
BALANCE_LIST_PARAMS: Final = frozenset(
    {"created", "limit", "starting_after", "expand", "type", "currency"}
)

#: The sandbox's card fee: 3.6 % of the amount (rounded half-up) plus a fixed part
#: per currency, in minor units. The sandbox's own schedule, not Stripe's price list
#: for any country.
FEE_PERCENT_TENTHS: Final = 36
FIXED_FEES: Final[Mapping[str, int]] = {
    "usd": 30, "pen": 100, "eur": 25, "gbp": 20, "mxn": 300, "brl": 39,
}
#: How long a balance transaction stays pending before its funds are available.
AVAILABLE_AFTER: Final = 2 * 86400


class APIError(Exception):
    """A Stripe error answer. ``saved`` is False for refusals before execution
    (parameter validation), which Stripe does not store under an idempotency key."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        saved: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = dict(extra or {})
        self.saved = saved
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.decline_code:
            error["decline_code"] = self.decline_code
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None,
            saved: bool = False) -> APIError:
    return APIError(400, "invalid_request_error", message, param=param, code=code, saved=saved)


def _unknown_params(params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise invalid(f"Received unknown parameter: {name}", param=name,
                          code="parameter_unknown")


def _integer(params: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = params.get(name)
    if value is None:
        if required:
            raise invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid("Invalid integer: " + str(value), param=name,
                      code="parameter_invalid_integer")
    return int(value)


def _string(params: Mapping[str, Any], name: str, *, max_len: int = 5000) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {name}", param=name)
    if len(value) > max_len:
        raise invalid(f"Invalid string: {value[:20]}...; must be at most {max_len} characters",
                      param=name)
    return value


def _boolean(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {value}", param=name)
    return bool(value == "true")


def _metadata(params: Mapping[str, Any]) -> dict[str, str]:
    value = params.get("metadata")
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param="metadata")
    if len(value) > 50:
        raise invalid("Metadata can have at most 50 keys.", param="metadata")
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid("Invalid string", param=f"metadata[{key}]")
        if len(key) > 40:
            raise invalid("Metadata keys must be at most 40 characters.", param=f"metadata[{key}]")
        if len(item) > 500:
            raise invalid("Metadata values must be at most 500 characters.",
                          param=f"metadata[{key}]")
    return dict(value)


def card_fee(amount: int, currency: str) -> int:
    """The sandbox's fee on a charge of *amount* minor units of *currency*."""
    return (amount * FEE_PERCENT_TENTHS + 500) // 1000 + FIXED_FEES.get(currency, 0)


def _bounded(test: Callable[[int, int], bool], bound: int, created: int) -> bool:
    return test(created, bound)


def _format(amount: int, currency: str) -> str:
    return f"{currency.upper()} {amount / 100:.2f}"


class Account:
    """One Stripe account in test mode. Not thread-safe: the app calls it from its
    event loop, between awaits."""

    def __init__(self, *, clock: Callable[[], float], rng: random.Random) -> None:
        """*clock* gives Unix seconds (the sandbox's clock), *rng* the ids."""
        self.clock = clock
        self.rng = rng
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        #: In the order they were made (the list answers newest first).
        self.balance_transactions: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        #: Events made by the last operations, waiting for the app to deliver them.
        self.outbox: list[dict[str, Any]] = []
        #: Intent id -> return_url given at confirmation (for the 3-D Secure page).
        self.return_urls: dict[str, str] = {}
        #: Concrete PaymentMethod ids (pm_...) -> the test token they were made from.
        self._tokens: dict[str, str] = {}
        self.processing = False
        self.refund_status = "succeeded"
        self.request_id: str | None = None
        self.idempotency_key: str | None = None

    # --- helpers ------------------------------------------------------------------

    def unix(self) -> int:
        """The clock in whole Unix seconds (Stripe's `created`)."""
        return int(self.clock())

    def _id(self, prefix: str) -> str:
        return new_id(prefix, self.rng)

    def emit(self, type: str, obj: Mapping[str, Any],
             previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        event = objects.event(
            id=self._id("evt"), type=type, obj=copy.deepcopy(dict(obj)), created=self.unix(),
            request_id=self.request_id, idempotency_key=self.idempotency_key,
            previous_attributes=previous,
        )
        self.events[event["id"]] = event
        self.outbox.append(event)
        return event

    def intent(self, intent_id: str, *, param: str = "intent") -> dict[str, Any]:
        found = self.intents.get(intent_id)
        if found is None:
            raise APIError(404, "invalid_request_error",
                           f"No such payment_intent: '{intent_id}'", code="resource_missing",
                           param=param, saved=False)
        return found

    # --- PaymentIntents -------------------------------------------------------------

    def create_intent(self, params: Mapping[str, Any], *, base_url: str) -> dict[str, Any]:
        _unknown_params(params, CREATE_PARAMS)
        amount = _integer(params, "amount", required=True)
        currency = _string(params, "currency")
        if currency is None:
            raise invalid("Missing required param: currency.", param="currency",
                          code="parameter_missing")
        if currency not in MINIMUMS:
            raise invalid(f"Invalid currency: {currency}. Stripe currently supports these "
                          f"currencies: {', '.join(sorted(MINIMUMS))}", param="currency")
        assert amount is not None
        if amount < 1:
            raise invalid("This value must be greater than or equal to 1.", param="amount")
        if amount < MINIMUMS[currency]:
            raise invalid(
                f"Amount must be at least {_format(MINIMUMS[currency], currency)}",
                param="amount", code="amount_too_small")
        if amount > MAXIMUM:
            raise invalid(f"Amount must be no more than {_format(MAXIMUM, currency)}",
                          param="amount", code="amount_too_large")
        types = params.get("payment_method_types", ["card"])
        if not isinstance(types, list) or any(t != "card" for t in types):
            raise invalid("The sandbox supports only payment_method_types[]=card.",
                          param="payment_method_types")
        capture = _string(params, "capture_method") or "automatic"
        if capture not in ("automatic", "automatic_async", "manual"):
            raise invalid(f"Invalid capture_method: {capture}", param="capture_method")
        suffix = _string(params, "statement_descriptor_suffix", max_len=22)
        descriptor = _string(params, "statement_descriptor", max_len=22)
        metadata = _metadata(params)
        description = _string(params, "description", max_len=1000)
        confirm = _boolean(params, "confirm")
        payment_method = _string(params, "payment_method")
        if payment_method is not None:
            self._card(payment_method)
        if confirm and payment_method is None:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method. "
                "To confirm the PaymentIntent with pm_card_visa, specify "
                "payment_method=pm_card_visa.",
                code="payment_intent_unexpected_state")
        return_url = _string(params, "return_url")
        intent_id = self._id("pi")
        intent = objects.payment_intent(
            id=intent_id, amount=amount, currency=currency, created=self.unix(),
            client_secret=f"{intent_id}_secret_{new_id('', self.rng, 25)[1:]}",
            metadata=metadata, description=description, capture_method=capture,
            statement_descriptor=descriptor, statement_descriptor_suffix=suffix,
            receipt_email=_string(params, "receipt_email"),
        )
        self.intents[intent_id] = intent
        self.emit("payment_intent.created", intent)
        if payment_method is not None:
            intent["payment_method"] = self._attach(payment_method)
            intent["status"] = "requires_confirmation"
            if confirm:
                return self._confirm(intent, payment_method, return_url, base_url)
        return intent

    def retrieve_intent(self, intent_id: str) -> dict[str, Any]:
        return self.intent(intent_id)

    def confirm_intent(self, intent_id: str, params: Mapping[str, Any], *,
                       base_url: str) -> dict[str, Any]:
        intent = self.intent(intent_id)
        _unknown_params(params, CONFIRM_PARAMS)
        payment_method = _string(params, "payment_method")
        return_url = _string(params, "return_url")
        if intent["status"] not in CONFIRMABLE:
            raise self._unexpected(intent, "confirm")
        if payment_method is None:
            pm = intent.get("payment_method")
            token = self._tokens.get(pm) if isinstance(pm, str) else None
            if token is None:
                raise invalid(
                    "You cannot confirm this PaymentIntent because it's missing a payment "
                    "method.", code="payment_intent_unexpected_state")
            payment_method = token
        else:
            self._card(payment_method)
            intent["payment_method"] = self._attach(payment_method)
        return self._confirm(intent, payment_method, return_url, base_url)

    def cancel_intent(self, intent_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        intent = self.intent(intent_id)
        _unknown_params(params, CANCEL_PARAMS)
        reason = _string(params, "cancellation_reason")
        if reason is not None and reason not in CANCELLATION_REASONS:
            raise invalid(f"Invalid cancellation_reason: {reason}", param="cancellation_reason")
        if intent["status"] not in CANCELABLE:
            raise self._unexpected(intent, "cancel")
        intent.update(status="canceled", canceled_at=self.unix(), cancellation_reason=reason,
                      next_action=None, amount_capturable=0)
        self.emit("payment_intent.canceled", intent)
        return intent

    def search_intents(self, query: str, limit: int) -> dict[str, Any]:
        match = re.fullmatch(
            r"""\s*(?:metadata\[(["'])(?P<key>[^"']+)\1\]|(?P<field>status|currency))"""
            r"""\s*:\s*(?P<q>["'])(?P<value>(?:(?!(?P=q))[^\\]|\\.)*)(?P=q)\s*""",
            query,
        )
        if match is None:
            raise invalid("The sandbox searches only metadata[\"key\"]:\"value\", status:\"...\" "
                          "or currency:\"...\".", param="query")
        value = re.sub(r"\\(.)", r"\1", match["value"])
        if match["key"]:
            found = [i for i in self.intents.values()
                     if i["metadata"].get(match["key"]) == value]
        else:
            found = [i for i in self.intents.values() if i[match["field"]] == value]
        found.sort(key=lambda i: i["created"], reverse=True)
        return {"object": "search_result", "data": found[:limit], "has_more": len(found) > limit,
                "next_page": None, "url": "/v1/payment_intents/search"}

    # --- confirmation and its outcomes ------------------------------------------------

    def _card(self, payment_method: str) -> SandboxCard:
        token = self._tokens.get(payment_method, payment_method)
        card = TEST_CARDS.get(token)
        if card is None:
            raise invalid(f"No such PaymentMethod: '{payment_method}'", param="payment_method",
                          code="resource_missing")
        return card

    def _attach(self, token: str) -> str:
        if token in self._tokens:  # already a concrete pm_ id
            return token
        pm_id = self._id("pm")
        self._tokens[pm_id] = token
        return pm_id

    def _unexpected(self, intent: Mapping[str, Any], action: str) -> APIError:
        allowed = CANCELABLE if action == "cancel" else CONFIRMABLE
        return APIError(
            400, "invalid_request_error",
            f"You cannot {action} this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            f"be {'canceled' if action == 'cancel' else 'confirmed'}: "
            f"{', '.join(sorted(allowed))}.",
            code="payment_intent_unexpected_state",
            extra={"payment_intent": copy.deepcopy(dict(intent))},
        )

    def _confirm(self, intent: dict[str, Any], token: str, return_url: str | None,
                 base_url: str) -> dict[str, Any]:
        token = self._tokens.get(token, token)
        card = self._card(token)
        pm_id = intent["payment_method"]
        if card.outcome == "authenticate":
            if intent["status"] == "requires_action":  # still waiting for the customer
                return intent
            if return_url:
                self.return_urls[intent["id"]] = return_url
            url = f"{base_url.rstrip('/')}/_sandbox/3ds/{intent['id']}"
            if return_url:
                action: dict[str, Any] = {
                    "type": "redirect_to_url",
                    "redirect_to_url": {"return_url": return_url, "url": url},
                }
            else:
                action = {"type": "use_stripe_sdk",
                          "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": url}}
            intent.update(status="requires_action", next_action=action, last_payment_error=None)
            self.emit("payment_intent.requires_action", intent)
            return intent
        if card.outcome == "decline":
            self._decline(intent, card, pm_id)
            raise APIError(
                402, "card_error", card.message or "Your card was declined.",
                code=card.code, decline_code=card.decline_code,
                extra={"charge": intent["latest_charge"],
                       "payment_intent": copy.deepcopy(intent)},
            )
        self._succeed(intent, card, pm_id)
        return intent

    def _decline(self, intent: dict[str, Any], card: SandboxCard, pm_id: str) -> None:
        ch = objects.charge(id=self._id("ch"), intent=intent, card=card, payment_method=pm_id,
                            created=self.unix(), succeeded=False, balance_transaction=None)
        self.charges[ch["id"]] = ch
        error: dict[str, Any] = {"type": "card_error", "code": card.code,
                                 "message": card.message, "charge": ch["id"]}
        if card.decline_code:
            error["decline_code"] = card.decline_code
        intent.update(status="requires_payment_method", next_action=None, payment_method=None,
                      latest_charge=ch["id"], last_payment_error=error)
        self.emit("charge.failed", ch)
        self.emit("payment_intent.payment_failed", intent)

    def _succeed(self, intent: dict[str, Any], card: SandboxCard, pm_id: str) -> None:
        if self.processing and intent["status"] != "processing":
            intent.update(status="processing", next_action=None, last_payment_error=None,
                          processing={"card": {}, "type": "card"})
            self.emit("payment_intent.processing", intent)
            return
        manual = intent["capture_method"] == "manual"
        ch = objects.charge(id=self._id("ch"), intent=intent, card=card, payment_method=pm_id,
                            created=self.unix(), succeeded=True,
                            balance_transaction=None if manual else self._id("txn"))
        if manual:
            ch.update(captured=False, amount_captured=0)
        self.charges[ch["id"]] = ch
        intent.update(next_action=None, last_payment_error=None, processing=None,
                      latest_charge=ch["id"])
        if manual:
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self.emit("charge.succeeded", ch)
            self.emit("payment_intent.amount_capturable_updated", intent)
        else:
            intent.update(status="succeeded", amount_received=intent["amount"])
            self._transaction(ch["balance_transaction"], "charge", ch["id"], ch["amount"],
                              ch["currency"], card_fee(ch["amount"], ch["currency"]),
                              ch["description"])
            self.emit("charge.succeeded", ch)
            self.emit("payment_intent.succeeded", intent)

    # --- control: what the customer and the card networks do --------------------------

    def authenticate(self, intent_id: str, succeed: bool) -> dict[str, Any]:
        """Complete (or fail) 3-D Secure for a PaymentIntent in requires_action."""
        intent = self.intent(intent_id)
        if intent["status"] != "requires_action":
            raise invalid(f"PaymentIntent {intent_id} is {intent['status']}, not requires_action")
        pm_id = intent["payment_method"]
        card = self._card(pm_id)
        if succeed:
            self._succeed(intent, card, pm_id)
        else:
            intent.update(
                status="requires_payment_method", next_action=None, payment_method=None,
                last_payment_error={
                    "type": "invalid_request_error",
                    "code": "payment_intent_authentication_failure",
                    "message": "We are unable to authenticate your payment method. Please "
                               "choose a different payment method and try again.",
                },
            )
            self.emit("payment_intent.payment_failed", intent)
        return intent

    def settle(self, intent_id: str, succeed: bool) -> dict[str, Any]:
        """Finish a PaymentIntent left in processing (the ``processing`` knob)."""
        intent = self.intent(intent_id)
        if intent["status"] != "processing":
            raise invalid(f"PaymentIntent {intent_id} is {intent['status']}, not processing")
        pm_id = intent["payment_method"]
        card = self._card(pm_id)
        if succeed:
            saved, self.processing = self.processing, False
            try:
                self._succeed(intent, card, pm_id)
            finally:
                self.processing = saved
        else:
            declined = SandboxCard(card.brand, card.last4, "decline", "card_declined",
                                   "generic_decline", "Your card was declined.")
            intent["status"] = "requires_payment_method"
            self._decline(intent, declined, pm_id)
        return intent

    # --- refunds ----------------------------------------------------------------------

    def create_refund(self, params: Mapping[str, Any]) -> dict[str, Any]:
        _unknown_params(params, REFUND_PARAMS)
        intent_id = _string(params, "payment_intent")
        charge_id = _string(params, "charge")
        if (intent_id is None) == (charge_id is None):
            raise invalid("You must pass either a charge or a payment_intent, but not both.",
                          code="parameters_exclusive" if intent_id else "parameter_missing",
                          param="payment_intent")
        if intent_id is not None:
            intent = self.intent(intent_id, param="payment_intent")
            charge_id = intent["latest_charge"]
            if intent["status"] != "succeeded" or charge_id is None:
                raise invalid(f"This PaymentIntent ({intent_id}) does not have a successful "
                              "charge to refund.", param="payment_intent", saved=True)
        ch = self.charges.get(charge_id or "")
        if ch is None:
            raise invalid(f"No such charge: '{charge_id}'", param="charge",
                          code="resource_missing")
        metadata = _metadata(params)
        reason = _string(params, "reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid(f"Invalid reason: {reason}", param="reason")
        remaining = ch["amount"] - ch["amount_refunded"]
        amount = _integer(params, "amount", required=False)
        if amount is not None and amount < 1:
            raise invalid("Invalid positive integer", param="amount",
                          code="parameter_invalid_integer")
        if remaining <= 0:
            raise APIError(400, "invalid_request_error",
                           f"Charge {ch['id']} has already been refunded.",
                           code="charge_already_refunded")
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise APIError(
                400, "invalid_request_error",
                f"Refund amount ({_format(amount, ch['currency'])}) is greater than unrefunded "
                f"amount on charge ({_format(remaining, ch['currency'])})", param="amount")
        status = self.refund_status
        re_ = objects.refund(
            id=self._id("re"), amount=amount, currency=ch["currency"], charge_id=ch["id"],
            intent_id=ch["payment_intent"], created=self.unix(), status=status, reason=reason,
            metadata=metadata,
            balance_transaction=self._id("txn") if status == "succeeded" else None,
        )
        self.refunds[re_["id"]] = re_
        if status == "succeeded":
            self._refund_transaction(re_)
        previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
        ch["refunds"]["data"].insert(0, re_)
        self.emit("charge.refunded", ch, previous)
        return re_

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        found = self.refunds.get(refund_id)
        if found is None:
            raise APIError(404, "invalid_request_error", f"No such refund: '{refund_id}'",
                           code="resource_missing", param="id", saved=False)
        return found

    def list_refunds(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /v1/refunds``: newest first, of one PaymentIntent (``payment_intent``)
        or Charge (``charge``) or all, paged by ``limit`` (default 10, at most 100) and
        ``starting_after``. A PaymentIntent or Charge that does not exist is a 404."""
        for name in ("created", "ending_before", "expand"):
            if name in params:
                raise invalid(f"The sandbox does not support {name} here (Stripe does).",
                              param=name)
        _unknown_params(params, REFUND_LIST_PARAMS)
        intent_id, charge_id = _string(params, "payment_intent"), _string(params, "charge")
        if intent_id is not None:
            self.intent(intent_id, param="payment_intent")
        if charge_id is not None and charge_id not in self.charges:
            raise APIError(404, "invalid_request_error", f"No such charge: '{charge_id}'",
                           code="resource_missing", param="charge", saved=False)
        limit = _integer(params, "limit", required=False)
        if limit is None:
            limit = 10
        if not 1 <= limit <= 100:
            raise invalid("This value must be between 1 and 100.", param="limit")
        # newest first; within one second, the one made last first
        ordered = [r for _, r in sorted(enumerate(self.refunds.values()),
                                        key=lambda p: (-p[1]["created"], -p[0]))]
        after = _string(params, "starting_after")
        if after is not None:
            ids = [r["id"] for r in ordered]
            if after not in ids:
                raise APIError(404, "invalid_request_error", f"No such refund: '{after}'",
                               code="resource_missing", param="starting_after", saved=False)
            ordered = ordered[ids.index(after) + 1:]
        found = [r for r in ordered
                 if (intent_id is None or r["payment_intent"] == intent_id)
                 and (charge_id is None or r["charge"] == charge_id)]
        return {"object": "list", "data": [copy.deepcopy(r) for r in found[:limit]],
                "has_more": len(found) > limit, "url": "/v1/refunds"}

    def settle_refund(self, refund_id: str, status: str) -> dict[str, Any]:
        """Move a pending refund to succeeded or failed (the ``refund_status`` knob)."""
        re_ = self.retrieve_refund(refund_id)
        if re_["status"] != "pending" or status not in ("succeeded", "failed"):
            raise invalid(f"refund {refund_id} is {re_['status']}; settle takes a pending refund "
                          "to succeeded or failed")
        previous = {"status": re_["status"]}
        re_["status"] = status
        if status == "failed":
            re_["failure_reason"] = "lost_or_stolen_card"
            ch = self.charges[re_["charge"]]
            ch["amount_refunded"] -= re_["amount"]
            ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
        else:
            re_["balance_transaction"] = self._id("txn")
            self._refund_transaction(re_)
        self.emit("refund.updated", re_, previous)
        return re_

    # --- balance transactions ---------------------------------------------------------

    def _transaction(self, txn_id: str, type: str, source: str, amount: int, currency: str,
                     fee: int, description: str | None) -> None:
        now = self.unix()
        self.balance_transactions[txn_id] = objects.balance_transaction(
            id=txn_id, amount=amount, currency=currency, created=now,
            available_on=now + AVAILABLE_AFTER, fee=fee, type=type, source=source,
            description=description)

    def _refund_transaction(self, re_: Mapping[str, Any]) -> None:
        ch = self.charges[re_["charge"]]
        self._transaction(re_["balance_transaction"], "refund", re_["id"], -re_["amount"],
                          re_["currency"], 0,
                          f"REFUND FOR CHARGE ({ch['description'] or ch['id']})")

    def list_balance_transactions(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``GET /v1/balance_transactions``: newest first, filtered by ``created``
        (an integer or ``gt``/``gte``/``lt``/``lte``), ``type`` and ``currency``,
        paged by ``limit`` and ``starting_after``; ``expand[]=data.source`` puts the
        Charge or Refund in ``source``."""
        for name in ("ending_before", "payout", "source"):
            if name in params:
                raise invalid(f"The sandbox does not support {name} here (Stripe does).",
                              param=name)
        _unknown_params(params, BALANCE_LIST_PARAMS)
        bounds = self._created_bounds(params.get("created"))
        limit = _integer(params, "limit", required=False)
        if limit is None:
            limit = 10
        if not 1 <= limit <= 100:
            raise invalid("This value must be between 1 and 100.", param="limit")
        expand = params.get("expand", [])
        if not isinstance(expand, list) or any(e != "data.source" for e in expand):
            raise invalid("The sandbox expands only data.source here.", param="expand")
        kind, currency = _string(params, "type"), _string(params, "currency")
        now = self.unix()
        # newest first; within one second, the one made last first
        ordered = [t for _, t in sorted(enumerate(self.balance_transactions.values()),
                                        key=lambda p: (-p[1]["created"], -p[0]))]
        after = _string(params, "starting_after")
        if after is not None:
            ids = [t["id"] for t in ordered]
            if after not in ids:
                raise APIError(404, "invalid_request_error",
                               f"No such balance_transaction: '{after}'",
                               code="resource_missing", param="starting_after", saved=False)
            ordered = ordered[ids.index(after) + 1:]
        found = []
        for txn in ordered:
            if txn["status"] == "pending" and txn["available_on"] <= now:
                txn["status"] = "available"
            if all(test(txn["created"]) for test in bounds) and (
                    kind is None or txn["type"] == kind) and (
                    currency is None or txn["currency"] == currency):
                found.append(txn)
        page = [copy.deepcopy(t) for t in found[:limit]]
        if expand:
            for txn in page:
                source = self.charges.get(txn["source"]) or self.refunds.get(txn["source"])
                if source is not None:
                    txn["source"] = copy.deepcopy(source)
        return {"object": "list", "data": page, "has_more": len(found) > limit,
                "url": "/v1/balance_transactions"}

    @staticmethod
    def _created_bounds(value: Any) -> list[Callable[[int], bool]]:
        if value is None:
            return []
        if isinstance(value, str):
            exact = _integer({"created": value}, "created", required=True)
            return [lambda c: c == exact]
        if not isinstance(value, dict):
            raise invalid("Invalid created", param="created")
        tests: dict[str, Callable[[int, int], bool]] = {
            "gt": lambda c, v: c > v, "gte": lambda c, v: c >= v,
            "lt": lambda c, v: c < v, "lte": lambda c, v: c <= v,
        }
        bounds: list[Callable[[int], bool]] = []
        for op, raw in value.items():
            if op not in tests:
                raise invalid(f"Received unknown parameter: created[{op}]",
                              param=f"created[{op}]", code="parameter_unknown")
            bound = _integer({op: raw}, op, required=True)
            assert bound is not None
            bounds.append(functools.partial(_bounded, tests[op], bound))
        return bounds
