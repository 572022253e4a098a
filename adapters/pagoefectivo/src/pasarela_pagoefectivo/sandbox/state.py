"""The sandbox's merchant, tokens and CIPs, and the rules of each endpoint.

Each API method returns an :data:`Answer` (HTTP status, JSON body) exactly as
PagoEfectivo documents it; :mod:`.app` only routes. Knobs, clock, faults and the
notification courier come from :class:`pasarela.testing.sandbox.Sandbox`. Choices where the spec is
silent are marked *sandbox choice* and listed in the adapter's README.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import attrs

from pasarela.money import Money
from pasarela.testing.sandbox import Credential, Delivery, Sandbox, Webhook
from pasarela_pagoefectivo.api import NO_DATE, auth_hash, lima_timestamp
from pasarela_pagoefectivo.notifications import (
    EVENT_EXPIRED,
    EVENT_PAID,
    EVENT_REFUNDED,
    SIGNATURE_HEADER,
    build_notification,
    sign,
)
from pasarela_pagoefectivo.sandbox.knobs import PagoEfectivoKnobs
from pasarela_pagoefectivo.sandbox.rules import (
    MESSAGES,
    check_create,
    lowered,
    parse_amount,
    parse_date,
    parse_date_request,
    well_formed_hash,
)


__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_SERVICE_ID",
    "Answer",
    "CipRecord",
    "PagoEfectivoSandbox",
]

Answer = tuple[int, dict[str, Any]]
#: A control action's answer and the webhook deliveries it made.
Acted = tuple[Answer, list[Delivery]]

#: Credentials the sandbox accepts unless told otherwise (accessKey is 20 characters).
DEFAULT_ACCESS_KEY: Final = "PESANDBOXACCESSKEY01"
DEFAULT_SECRET_KEY: Final = "sandbox-secret-key-do-not-use-in-production"  # noqa: S105
DEFAULT_SERVICE_ID: Final = 1028
STATUS_NAMES: Final = {21: "Expirado.", 22: "Generado.", 23: "Cancelado.", 24: "Eliminado."}
OPERATIONS: Final = ("authorization", "create", "search", "update", "delete")
_BEARER: Final = re.compile(r"^Bearer ([^ ]+)$")


def _number(amount: Decimal) -> Decimal:
    """As PagoEfectivo writes amounts in answers: trailing zeros dropped (``1``, ``22.5``)."""
    if amount == amount.to_integral_value():
        return Decimal(int(amount))
    return amount.normalize()


@attrs.define
class CipRecord:
    number: int
    transaction_code: str
    currency: str
    amount: Decimal
    created_at: datetime
    expires_at: datetime
    guid: str
    fields: dict[str, Any] = attrs.field(repr=False)
    paid_at: datetime | None = None
    removed_at: datetime | None = None
    refunded_at: datetime | None = None
    operation_number: str | None = None

    def status(self, now: datetime) -> int:
        if self.removed_at is not None:
            return 24  # sandbox choice: the spec names no code for a deleted CIP
        if self.paid_at is not None:
            return 23
        return 21 if now >= self.expires_at else 22

    def money(self) -> Money:
        return Money.of(self.amount, self.currency)


@attrs.define
class _Token:
    service_id: int
    expires: datetime


class PagoEfectivoSandbox(Sandbox):
    """One simulated PagoEfectivo merchant account (see :mod:`pasarela.testing.sandbox`
    for what every sandbox shares)."""

    name = "pagoefectivo"
    title = "PagoEfectivo (CIP API v1.1)"
    default_port = 8801
    knobs_class = PagoEfectivoKnobs
    operations = OPERATIONS
    #: ``500`` (166, nothing done), ``401``, ``508``, ``timeout`` (the call is done,
    #: then the answer waits the fault's seconds: the client times out after sending).
    fault_kinds = ("500", "401", "508", "timeout")
    knobs: PagoEfectivoKnobs

    def __init__(self, *, access_key: str = DEFAULT_ACCESS_KEY,
                 secret_key: str = DEFAULT_SECRET_KEY, service_id: int = DEFAULT_SERVICE_ID,
                 first_cip: int = 10092757, **options: Any) -> None:
        """*options*: ``clock``, ``seed`` and knobs, as :class:`Sandbox` takes them."""
        self.access_key = access_key
        self.secret_key = secret_key
        self.service_id = int(service_id)
        self._cip_numbers = itertools.count(first_cip)
        self._operations = itertools.count(1253)
        self._jwt_key = uuid.uuid4().bytes
        self.tokens: dict[str, _Token] = {}
        self.cips: dict[int, CipRecord] = {}
        super().__init__(**options)

    def clear(self) -> None:
        with self.lock:  # numbering goes on: a CIP number is never given twice
            self.tokens.clear()
            self.cips.clear()

    def counts(self) -> dict[str, int]:
        return {"cips": len(self.cips), "tokens": len(self.tokens)}

    def credentials(self) -> list[Credential]:
        return [Credential("access_key", self.access_key),
                Credential("secret_key", self.secret_key, "also signs the notifications"),
                Credential("service_id", str(self.service_id))]

    def settings(self, url: str) -> dict[str, Any]:
        return {**super().settings(url), "service_id": self.service_id}

    def render_webhook(self, webhook: Webhook) -> tuple[bytes, Mapping[str, str]]:
        body: bytes = webhook.payload
        return body, {"Content-Type": "application/json",
                      SIGNATURE_HEADER: sign(body, self.secret_key)}

    def accepts_webhook(self, status: int) -> bool:
        return status == 200  # "espera que el portal responda estado 200"

    # --- answers --------------------------------------------------------------------

    @staticmethod
    def error(
        code: str, language: str = "es", fields: Sequence[tuple[str, str]] = ()
    ) -> Answer:
        es, en = MESSAGES[code]
        status = {"166": 500, "401": 401}.get(code, 400)
        details = [{"code": c, "message": MESSAGES[c][language == "en"], "field": f}
                   for c, f in fields]
        return status, {"code": code, "message": en if language == "en" else es,
                        "data": details}

    def ok(self, data: Any, language: str = "es", status: int = 200) -> Answer:
        return status, {"code": 100, "message": MESSAGES["100"][language == "en"], "data": data}

    # --- /v1/authorizations -------------------------------------------------------------

    def _jwt(self, service_id: int, expires: datetime) -> str:
        def part(data: dict[str, Any]) -> bytes:
            raw = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=")

        head = part({"alg": "HS256", "typ": "JWT"})
        claims = part({"sub": "BK2", "jti": str(uuid.uuid4()), "nameid": str(service_id),
                       "exp": int(expires.timestamp())})
        mac = hmac.new(self._jwt_key, head + b"." + claims, hashlib.sha256).digest()
        return b".".join((head, claims, base64.urlsafe_b64encode(mac).rstrip(b"="))).decode()

    def authorize(self, body: Any, language: str = "es") -> Answer:
        """``POST /v1/authorizations``. Strict (the default): ``dateRequest`` exactly
        ``yyyy-mm-ddThh:mm:ss-05:00`` and within ``date_request_tolerance`` of the
        clock, ``hashString`` 64 lower-case hex digits, else 111 with a 113 entry on
        the field; a well-formed but wrong hash is a 401. Lenient (``strict=false``):
        what the official demo's sandbox took."""
        if not isinstance(body, Mapping):
            return self.error("111", language)
        strict = self.knobs.strict
        values = lowered(body)
        problems: list[tuple[str, str]] = []
        for name in ("accessKey", "idService", "dateRequest", "hashString"):
            if values.get(name.lower()) in (None, ""):
                problems.append(("112", name))
        service = values.get("idservice")
        if service is not None and (isinstance(service, bool) or not isinstance(service, int)):
            problems.append(("113", "idService"))  # a JSON number, per the spec
        moment = parse_date_request(values.get("daterequest"), strict=strict)
        if values.get("daterequest") and moment is None:
            problems.append(("113", "dateRequest"))
        hash_string = values.get("hashstring")
        if hash_string not in (None, "") and not well_formed_hash(hash_string, strict=strict):
            problems.append(("113", "hashString"))
        if problems:
            return self.error("111", language, problems)
        now = self.now()
        tolerance = self.knobs.date_request_tolerance
        if strict and tolerance is not None and moment is not None and abs(
            (moment - now).total_seconds()
        ) > tolerance:
            return self.error("111", language, [("113", "dateRequest")])
        assert isinstance(service, int)
        expected = auth_hash(service, self.access_key, self.secret_key,
                             str(values["daterequest"]))
        given = str(hash_string) if strict else str(hash_string).lower()
        if (values.get("accesskey") != self.access_key or service != self.service_id
                or not hmac.compare_digest(given, expected)):
            return self.error("401", language)  # sandbox choice: the spec shows no body
        expires = now + timedelta(seconds=self.knobs.token_ttl)
        token = self._jwt(self.service_id, expires)
        with self.lock:
            self.tokens[token] = _Token(self.service_id, expires)
        return self.ok({"token": token, "codeService": "SRV", "tokenStart": lima_timestamp(now),
                        "tokenExpires": lima_timestamp(expires)}, language, 201)

    def check_token(self, authorization: str | None, language: str = "es") -> Answer | None:
        """401 for a missing, malformed or expired bearer token; 508 for another service's."""
        match = _BEARER.match(authorization or "")
        token = self.tokens.get(match.group(1)) if match else None
        if token is None or self.now() >= token.expires:
            return self.error("401", language)
        if token.service_id != self.service_id:
            return self.error("508", language)
        return None

    def expire_tokens(self) -> int:
        with self.lock:
            for token in self.tokens.values():
                token.expires = self.now() - timedelta(seconds=1)
            return len(self.tokens)

    # --- /v1/cips ------------------------------------------------------------------------

    def create(self, body: Any, *, origin: str | None, base_url: str,
               language: str = "es") -> Answer:
        if not isinstance(body, Mapping):
            return self.error("111", language)
        now = self.now()
        problems = [(e.code, e.field) for e in check_create(body, now=now,
                                                            strict=self.knobs.strict)]
        if self.knobs.strict and origin not in ("web", "android", "ios"):
            problems.append(("112" if not origin else "113", "Origin"))
        if problems:
            return self.error("111", language, problems)
        values = lowered(body)
        amount = parse_amount(values["amount"])
        assert amount is not None
        currency = str(values["currency"])
        limit = self.knobs.max_amount.get(currency)
        if limit is not None and amount > limit:
            return self.error("511", language)
        expiry = parse_date(values.get("dateexpiry")) or now + timedelta(
            seconds=self.knobs.default_expiry)
        with self.lock:
            record = CipRecord(
                number=next(self._cip_numbers), transaction_code=str(values["transactioncode"]),
                currency=currency, amount=amount, created_at=now, expires_at=expiry,
                guid=str(uuid.uuid4()).upper(), fields=values,
            )
            self.cips[record.number] = record
        return self.ok({
            "cip": record.number, "currency": currency, "amount": _number(amount),
            "transactionCode": record.transaction_code,
            "dateExpiry": lima_timestamp(expiry),
            "cipUrl": f"{base_url.rstrip('/')}/payment/{record.guid}.html",
        }, language, 201)

    def describe(self, record: CipRecord) -> dict[str, Any]:
        def date(value: datetime | None) -> str:
            return lima_timestamp(value) if value is not None else NO_DATE

        status = record.status(self.now())
        return {
            "cip": record.number, "transactionCode": record.transaction_code,
            "amount": _number(record.amount), "currency": record.currency, "status": status,
            "statusName": STATUS_NAMES[status], "dateCreation": date(record.created_at),
            "dateExpiry": date(record.expires_at), "datePayment": date(record.paid_at),
            "dateRemoval": date(record.removed_at), "token": record.guid,
        }

    def _find(self, cip: object) -> CipRecord | None:
        text = str(cip).strip()
        return self.cips.get(int(text)) if text.isdigit() else None

    def search(self, body: Any, language: str = "es") -> Answer:
        items = lowered(body).get("data") if isinstance(body, Mapping) else None
        if not isinstance(items, list) or not items:
            return self.error("111", language, [("112", "data")])
        found: list[dict[str, Any]] = []
        for item in items:
            cip = lowered(item).get("cip") if isinstance(item, Mapping) else None
            if cip is None or isinstance(cip, bool) or not str(cip).strip().isdigit():
                return self.error("111", language, [("113", "cip")])
            record = self._find(cip)
            if record is not None:  # sandbox choice: unknown CIPs are left out
                found.append(self.describe(record))
        return self.ok(found, language)

    def update(self, cip: str, body: Any, language: str = "es") -> Answer:
        record = self._find(cip)
        value = lowered(body).get("dateexpiry") if isinstance(body, Mapping) else None
        if value in (None, ""):
            return self.error("111", language, [("112", "dateExpiry")])
        moment = parse_date(value)
        if moment is None or moment <= self.now():
            return self.error("111", language, [("113", "dateExpiry")])
        with self.lock:
            if record is None or record.paid_at is not None or record.removed_at is not None:
                return self.error("111", language, [("113", "cip")])
            record.expires_at = moment  # an expired CIP becomes generated again
        return self.ok({}, language)

    def delete(self, cip: str, language: str = "es") -> Answer:
        record = self._find(cip)
        with self.lock:
            if record is None or record.status(self.now()) != 22:
                return self.error("111", language, [("113", "cip")])  # sandbox choice
            record.removed_at = self.now()
        return self.ok({}, language)

    # --- the customer's side (control) ---------------------------------------------------

    def _notify(self, record: CipRecord, event_type: str, operation: str) -> list[Delivery]:
        body = build_notification(
            event_type, operation_number=operation, cip=str(record.number),
            amount=record.money(), payment_date=record.paid_at,
            transaction_code=record.transaction_code,
        )
        return self.send_webhook(Webhook(f"{record.number}:{event_type}:{operation}",
                                         event_type, body, str(record.number)))

    def pay(self, cip: str, *, race: bool = False, notify: bool = True) -> Acted:
        """A bank agent takes the money for *cip*. With *race* (or within
        ``late_payment_grace``) an expired CIP is paid as if one second before expiry."""
        record = self._find(cip)
        if record is None:
            return (404, {"error": f"no CIP {cip}"}), []
        now = self.now()
        with self.lock:
            status = record.status(now)
            late = status == 21 and (
                race or now - record.expires_at <= timedelta(seconds=self.knobs.late_payment_grace)
            )
            if status != 22 and not late:
                return (409, {"error": f"CIP {cip} is {STATUS_NAMES[status]}"}), []
            record.paid_at = record.expires_at - timedelta(seconds=1) if late else now
            record.operation_number = str(next(self._operations))
        sent = self._notify(record, EVENT_PAID, record.operation_number) if notify else []
        return (200, {"cip": record.number, "status": 23, "late": late,
                      "operationNumber": record.operation_number,
                      "deliveries": [d.id for d in sent]}), sent

    def expire(self, cip: str) -> Acted:
        record = self._find(cip)
        if record is None:
            return (404, {"error": f"no CIP {cip}"}), []
        with self.lock:
            if record.status(self.now()) != 22:
                return (409, {"error": f"CIP {cip} is not generated"}), []
            record.expires_at = self.now()
        sent = (self._notify(record, EVENT_EXPIRED, str(next(self._operations)))
                if self.knobs.expired_webhooks else [])
        return (200, {"cip": record.number, "status": 21,
                      "deliveries": [d.id for d in sent]}), sent

    def refund(self, cip: str) -> Acted:
        record = self._find(cip)
        if record is None:
            return (404, {"error": f"no CIP {cip}"}), []
        with self.lock:
            if record.paid_at is None or record.refunded_at is not None:
                return (409, {"error": f"CIP {cip} is not paid or already refunded"}), []
            record.refunded_at = self.now()
        sent = self._notify(record, EVENT_REFUNDED, str(next(self._operations)))
        return (200, {"cip": record.number, "deliveries": [d.id for d in sent]}), sent

    def resend(self, cip: str) -> Acted:
        """Send the ``cip.paid`` notification again (as PagoEfectivo's retry would)."""
        record = self._find(cip)
        if record is None or record.operation_number is None:
            return (404, {"error": f"no paid CIP {cip}"}), []
        sent = self._notify(record, EVENT_PAID, record.operation_number)
        return (200, {"cip": record.number, "deliveries": [d.id for d in sent]}), sent
