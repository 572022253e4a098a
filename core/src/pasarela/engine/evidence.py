"""The evidence bundle of one payment: what a merchant hands over in a dispute, and
the text a provider's support asks for.

:func:`read_facts` is the one function here that reads (the store, through the
engine's :class:`~pasarela.engine.context.Service`, so that another merchant's
payment is "not found"); everything else is pure assembly over what it returned:

- :func:`document` builds the machine-readable JSON (the order and customer
  masked, every exchange as stored, timestamps in UTC and Lima time, provider
  references, transitions with their causes, webhook deliveries with their
  verification verdicts, the routing decision, the reconciliation lines that
  matched the payment, what was erased and when, and each record's chain proof);
- :func:`summary_text` and :func:`summary_html` render it for people, in English,
  Spanish (Peru) or Simplified Chinese (the ``evidence`` gettext domain);
- :func:`archive` writes them all into one zip;
- :func:`support_text` is what to paste into a ticket to the provider's support.

Personal data: the customer's values (names, email, phone, document number) are
masked in the customer section and replaced by their masked forms wherever else
they occur (exchange bodies, headers and URLs, the description, metadata, refund
reasons), in the encodings a provider's request may carry them in (JSON escapes,
URL encoding). Nothing is unmasked in the archive; secrets were removed when the
exchanges were recorded (:mod:`pasarela.engine.redaction`).
"""

from __future__ import annotations

import gettext as _gettext
import hashlib
import html
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, quote_plus

import attrs

from pasarela.engine.context import Service
from pasarela.logs import mask_email, mask_fields, mask_phone, mask_text
from pasarela.model import Customer, Payment, Refund
from pasarela.money import Money
from pasarela.registry import merchant_of
from pasarela.store import ERASED, queries
from pasarela.timezones import LIMA


__all__ = [
    "ARCHIVE_JSON",
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "PROVIDERS",
    "Facts",
    "archive",
    "archive_names",
    "document",
    "mask_customer",
    "personal_forms",
    "read_facts",
    "stamp",
    "summary_html",
    "summary_text",
    "support_text",
    "translator",
]

#: The summaries' languages (the ``evidence`` catalogs), English first.
LANGUAGES: Final = ("en", "es_PE", "zh_CN")
DOMAIN: Final = "evidence"
LOCALE_DIR: Final = Path(__file__).resolve().parents[1] / "locale"
#: The machine-readable part's name in the archive.
ARCHIVE_JSON: Final = "evidence.json"
#: The bundle's format (bump it when a key changes meaning).
FORMAT: Final = 1


@attrs.frozen
class _Kind:
    """What support knows a provider's objects and account by."""

    title: str
    #: The name of the payment's provider reference at this provider.
    reference: str
    #: Non-secret settings that identify the merchant's account: (field, label).
    account_fields: tuple[tuple[str, str], ...] = ()
    #: Response keys that carry more references: (JSON key, label).
    response_keys: tuple[tuple[str, str], ...] = ()
    #: What to say when the account is found from the reference alone.
    account_note: str = ""


#: The providers support tickets are written for, by adapter name.
PROVIDERS: Final[Mapping[str, _Kind]] = {
    "pagoefectivo": _Kind("PagoEfectivo", "CIP",
                          (("service_id", "service id (idService)"),),
                          (("operationNumber", "operation number"),)),
    "yape": _Kind("Yape (Culqi)", "charge id", (("public_key", "public key"),),
                  (("reference_code", "reference code"),
                   ("authorization_code", "authorization code"))),
    "stripe": _Kind("Stripe", "PaymentIntent", (),
                    (("latest_charge", "charge id"),),
                    account_note="Stripe finds the account from the PaymentIntent id"),
    "mercadopago": _Kind("Mercado Pago", "payment id", (("public_key", "public key"),),
                         (("authorization_code", "authorization code"),)),
    "dlocal": _Kind("dLocal", "payment id", (("x_login", "X-Login"),),
                    (("order_id", "order id"),)),
}
_OTHER: Final = _Kind("", "provider reference")
#: Response headers that name a provider's request (what support asks for first).
_REQUEST_ID_HEADERS: Final = ("request-id", "x-request-id", "x-correlation-id")
_EXCHANGE_KEYS: Final = ("id", "provider", "operation", "attempt", "method", "url",
                         "request_headers", "request_body", "status_code",
                         "response_headers", "response_body", "error", "duration_ms")
_ERASED_PARTS: Final = (
    "the order's customer (names, email, phone, document), description and metadata",
    "the refunds' free-text reasons",
    "every occurrence of the customer's values in the recorded provider exchanges",
)


def N_(message: str) -> str:
    """Mark *message* for the catalogs (translated where it is shown)."""
    return message


# --- reading --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Facts:
    """What the store holds about one payment, as :func:`read_facts` read it."""

    payment: Payment
    merchant: str
    #: The order's personal part is sealed in the store (``payments.personal``).
    sealed: bool
    transitions: tuple[Mapping[str, Any], ...]
    exchanges: tuple[Mapping[str, Any], ...]
    deliveries: tuple[Mapping[str, Any], ...]
    refunds: tuple[Refund, ...]
    decisions: tuple[Mapping[str, Any], ...]
    lines: tuple[Mapping[str, Any], ...]
    differences: tuple[Mapping[str, Any], ...]
    #: The store's chain records of the payment; None when the store keeps no chain.
    chain: tuple[Any, ...] | None
    #: The store's verdict on the payment's chain (``verify_chain``); None as above.
    chain_report: Any | None
    #: The adapter's name (``pagoefectivo``...); None when the account is gone.
    adapter: str | None
    #: The account's non-secret identifiers: (label, value).
    account_ids: tuple[tuple[str, str], ...]
    generated_at: datetime


def _aware(value: Any) -> Any:
    """A datetime from the database, in UTC (SQLite returns it naive)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _account_ids(adapter: Any, kind: _Kind) -> tuple[tuple[str, str], ...]:
    settings = getattr(adapter, "settings", None)
    if settings is None or not attrs.has(type(settings)):
        return ()
    fields = attrs.fields_dict(type(settings))
    out = []
    for name, label in kind.account_fields:
        field = fields.get(name)
        value = getattr(settings, name, None)
        if field is None or field.metadata.get("secret") or value in (None, ""):
            continue  # never a secret, whatever the table says
        out.append((label, str(value)))
    return tuple(out)


def read_facts(service: Service, payment_id: str, *,
               now: datetime | None = None) -> Facts:
    """Everything the bundle of *payment_id* is made of, read through *service* (its
    merchant's payment only: another's is ``NotFoundError``, as a missing one)."""
    payment = service.own(payment_id, history=True)
    store = service.store
    rows = queries.evidence_rows(store, payment_id)
    exchanges = tuple(store.exchanges_for(payment_id))
    chain = tuple(store.chain_records(payment_id))
    report = store.verify_chain(payment_id=payment_id)
    adapter = service.account(payment.provider)
    name = getattr(adapter, "name", None) if adapter is not None else None
    return Facts(
        payment=payment, merchant=merchant_of(payment.provider), sealed=rows.sealed,
        transitions=rows.transitions, exchanges=exchanges, deliveries=rows.deliveries,
        refunds=tuple(store.refunds_for(payment_id)), decisions=rows.decisions,
        lines=rows.settlement_lines, differences=rows.differences, chain=chain,
        chain_report=report, adapter=name,
        account_ids=_account_ids(adapter, PROVIDERS.get(name or "", _OTHER)),
        generated_at=now or service.clock(),
    )


# --- masking --------------------------------------------------------------------------


def _mask_name(value: str) -> str:
    return " ".join(f"{part[0]}***" for part in value.split()) or "***"


def _mask_number(value: str) -> str:
    return f"****{value[-3:]}" if len(value) > 3 else "****"


def mask_customer(customer: Customer | None) -> dict[str, Any] | None:
    """The customer with every value masked (``R***``, ``r***@example.pe``,
    ``***321``, ``DNI ****912``)."""
    if customer is None:
        return None
    return {
        "first_name": _mask_name(customer.first_name),
        "last_name": _mask_name(customer.last_name),
        "email": mask_email(customer.email) if customer.email else None,
        "phone": mask_phone(customer.phone) if customer.phone else None,
        "document": ([customer.document.kind, _mask_number(customer.document.number)]
                     if customer.document else None),
    }


def personal_forms(customer: Customer | None) -> list[tuple[str, str]]:
    """Each personal value of *customer* in every form a recorded exchange may carry
    it (as is, JSON-escaped, URL-encoded; a Peruvian phone also without +51), with
    its masked form; longest first, so that a longer value is replaced whole."""
    if customer is None:
        return []
    values: dict[str, str] = {}
    for name in (customer.first_name, customer.last_name,
                 f"{customer.first_name} {customer.last_name}"):
        if len(name.strip()) >= 2:
            values[name.strip()] = _mask_name(name)
    if customer.email:
        values[customer.email] = mask_email(customer.email)
    if customer.phone:
        values[customer.phone] = mask_phone(customer.phone)
        if customer.phone.startswith("+51"):
            values[customer.phone[3:]] = mask_phone(customer.phone)
            values[customer.phone[1:]] = mask_phone(customer.phone)
    if customer.document:
        values[customer.document.number] = _mask_number(customer.document.number)
    forms: dict[str, str] = {}
    for value, masked in values.items():
        for form in (value, json.dumps(value)[1:-1], quote_plus(value), quote(value),
                     quote(value, safe="")):
            if form:
                forms.setdefault(form, masked)
    return sorted(forms.items(), key=lambda item: len(item[0]), reverse=True)


def _scrubber(forms: Sequence[tuple[str, str]]) -> Callable[[Any], Any]:
    """Replace each form by its mask where it stands as a whole value (not inside a
    longer word or number: a name "Ana" leaves "Analysis" alone)."""
    masks = dict(forms)
    pattern = re.compile("|".join(f"(?<!\\w){re.escape(form)}(?!\\w)" for form in masks)
                         ) if masks else None

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: masks[m.group(0)], value) if pattern else value
        if isinstance(value, Mapping):
            return {str(k): scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v) for v in value]
        return value
    return scrub


# --- the document ---------------------------------------------------------------------


def stamp(at: datetime | None) -> dict[str, str] | None:
    """A moment in UTC and in Lima time (ISO 8601 with offsets)."""
    if at is None:
        return None
    at = _aware(at)
    return {"utc": at.astimezone(UTC).isoformat(), "lima": at.astimezone(LIMA).isoformat()}


def _money(minor: int | None, currency: str | None) -> dict[str, Any] | None:
    return None if minor is None or currency is None else {"minor": int(minor),
                                                            "currency": currency}


def _json_body(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _provider_error(exchange: Mapping[str, Any]) -> dict[str, Any] | None:
    """The provider's error code and message in an exchange's response, as the
    provider wrote them; else the transport error pasarela recorded."""
    body = _json_body(str(exchange.get("response_body") or ""))
    status = exchange.get("status_code")
    if isinstance(body, Mapping) and (status is None or status >= 400
                                      or body.get("object") == "error"):
        nested = body.get("error")
        inner: Mapping[str, Any] = nested if isinstance(nested, Mapping) else body
        code = next((inner[k] for k in ("code", "decline_code", "type", "error", "status")
                     if isinstance(inner.get(k), str | int) and inner.get(k) != ""), None)
        message = next((inner[k] for k in ("merchant_message", "message", "user_message",
                                           "description") if isinstance(inner.get(k), str)),
                       None)
        causes = body.get("cause")
        if isinstance(causes, list) and causes and isinstance(causes[0], Mapping):
            code = causes[0].get("code", code)
            message = causes[0].get("description", message)
        if code is not None or message is not None:
            return {"code": None if code is None else str(code), "message": message,
                    "status_code": status}
    if exchange.get("error") or (status is not None and status >= 400):
        return {"code": exchange.get("error") or str(status), "message": None,
                "status_code": status}
    return None


def _references(facts: Facts, kind: _Kind) -> dict[str, Any]:
    payment = facts.payment
    refs: dict[str, Any] = {"provider_reference": payment.provider_reference,
                            "name": kind.reference}
    found: dict[str, list[str]] = {}
    for exchange in facts.exchanges:
        body = _json_body(str(exchange.get("response_body") or ""))
        items = body.get("data") if isinstance(body, Mapping) and isinstance(
            body.get("data"), Mapping) else None
        for source in (body, items):
            if not isinstance(source, Mapping):
                continue
            for key, label in kind.response_keys:
                value = source.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                    values = found.setdefault(label.replace(" ", "_"), [])
                    if str(value) not in values:
                        values.append(str(value))
    if facts.adapter == "pagoefectivo":  # a notification's key: CIP:event:operation
        for delivery in facts.deliveries:
            parts = str(delivery.get("event_id") or "").split(":")
            if len(parts) == 3 and parts[2]:
                values = found.setdefault("operation_number", [])
                if parts[2] not in values:
                    values.append(parts[2])
    refs["more"] = found
    refs["refunds"] = {r.id: r.provider_reference for r in facts.refunds}
    return refs


def _record_json(record: Any) -> dict[str, Any]:
    out = {"kind": str(record.kind), "record_id": int(record.record_id), "at": stamp(record.at),
           "prev_hash": record.prev_hash, "hash": record.hash, "ok": bool(record.ok)}
    for extra in ("seq", "pruned", "count", "problem"):  # where the store says them
        if hasattr(record, extra):
            out[extra] = getattr(record, extra)
    return out


def _chain_part(facts: Facts) -> tuple[dict[str, Any], dict[tuple[str, int], Any]]:
    if facts.chain is None:
        return ({"available": False,
                 "reason": "this store keeps no audit chain (pasarela audit verify)"}, {})
    by_record = {(str(r.kind), int(r.record_id)): _record_json(r) for r in facts.chain}
    report = facts.chain_report
    verified = None
    if report is not None:
        bad = report.first_bad
        verified = {"ok": bool(report.ok), "checked": int(report.checked),
                    "first_bad": None if bad is None else (
                        {"kind": str(bad.kind), "record_id": int(bad.record_id)}
                        if hasattr(bad, "record_id") else str(bad)),
                    "reason": str(report.reason or "")}
    return ({"available": True, "verified": verified,
             "records": list(by_record.values())}, by_record)


def _verdict(outcome: str) -> str:
    """What a delivery's recorded outcome says of its verification."""
    return "rejected" if outcome == "rejected" else "passed"


def document(facts: Facts) -> dict[str, Any]:
    """The bundle's machine-readable part (JSON-ready, masked; see the module docs)."""
    payment = facts.payment
    order = payment.order
    customer = order.customer if order is not None else None
    scrub = _scrubber(personal_forms(customer))
    kind = PROVIDERS.get(facts.adapter or "", _OTHER)
    chain, proofs = _chain_part(facts)

    def proof(kind_name: str, record_id: Any) -> Any:
        if facts.chain is None:
            return None
        return proofs.get((kind_name, int(record_id)), {"missing": True})

    erasures = [t for t in facts.transitions if t.get("reason") == ERASED]
    exchanges = []
    for exchange in facts.exchanges:
        item = {k: exchange.get(k) for k in _EXCHANGE_KEYS}
        item["started_at"] = stamp(exchange.get("started_at"))
        item["provider_error"] = _provider_error(exchange)
        item["chain"] = proof("exchange", exchange["id"])
        exchanges.append(item)
    last = facts.exchanges[-1] if facts.exchanges else None
    last_error = next((e for e in (_provider_error(x) for x in reversed(facts.exchanges))
                       if e is not None), None)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": stamp(facts.generated_at),
        "pasarela": _version(),
        "merchant": facts.merchant,
        "payment": {
            "id": payment.id, "order_reference": payment.order_reference,
            "idempotency_key": payment.idempotency_key,
            "provider": payment.provider, "adapter": facts.adapter,
            "provider_name": kind.title or payment.provider,
            "method": payment.method.value, "network": payment.network,
            "status": payment.status.value, "version": payment.version,
            "amount": _money(payment.amount.minor, payment.amount.currency),
            "refunded": _money(payment.refunded_amount.minor, payment.amount.currency),
            "charged": (_money(payment.charged.minor, payment.charged.currency)
                        if payment.charged is not None else None),
            "fx_rate": str(payment.fx_rate) if payment.fx_rate is not None else None,
            "created_at": stamp(payment.created_at), "updated_at": stamp(payment.updated_at),
            "expires_at": stamp(payment.expires_at),
            "error": ({"code": payment.error_code, "message": payment.error_message}
                      if payment.error_code or payment.error_message else None),
            "next_action": payment.next_action.to_dict() if payment.next_action else None,
        },
        "order": None if order is None else {
            "reference": order.reference,
            "amount": _money(order.amount.minor, order.amount.currency),
            "country": order.country, "description": mask_text(order.description),
            "metadata": mask_fields(dict(order.metadata)),
            "expires_at": stamp(order.expires_at),
        },
        "customer": mask_customer(customer),
        "personal_data": {
            "sealed_in_store": facts.sealed,
            "erased": bool(erasures),
            "erasures": [{"at": stamp(t["at"]), "transition_seq": t["seq"],
                          "what": list(_ERASED_PARTS)} for t in erasures],
            "kept": "ids, amounts, statuses, timestamps, provider references, transitions "
                    "and their hashes",
        },
        "account": {"name": payment.provider, "ids": dict(facts.account_ids),
                    "note": kind.account_note or None},
        "references": _references(facts, kind),
        "transitions": [{
            "id": t["id"], "seq": t["seq"], "from": t["source"], "to": t["target"],
            "cause": t["cause"], "applied": bool(t["applied"]), "reason": t["reason"],
            "event_id": t["event_id"], "version": t["version"], "at": stamp(t["at"]),
            "chain": proof("transition", t["id"]),
        } for t in facts.transitions],
        "exchanges": exchanges,
        "last_exchange": None if last is None else {
            "id": last["id"], "operation": last.get("operation"),
            "started_at": stamp(last.get("started_at")), "status_code": last.get("status_code"),
            "request_id": next((str(v) for k, v in (last.get("response_headers") or {}).items()
                                if str(k).lower() in _REQUEST_ID_HEADERS), None)},
        "last_provider_error": last_error,
        "deliveries": [{
            "id": d["id"], "provider": d["provider"], "event_id": d["event_id"],
            "event_type": d["event_type"], "outcome": d["outcome"], "detail": d["detail"],
            "received_at": stamp(d["received_at"]),
            "verification": _verdict(str(d["outcome"])),
            "chain": proof("delivery", d["id"]),
        } for d in facts.deliveries],
        "deliveries_note": (
            "the store records a delivery's outcome, not a separate signature verdict: a "
            "delivery is linked to this payment only after its signature (or, where the "
            "provider signs nothing, a fetch from the provider) verified it; deliveries "
            "refused as forged, stale or malformed are recorded without a payment "
            "(outcome 'rejected') and so are not in this bundle"),
        "refunds": [{
            "id": r.id, "amount": _money(r.amount.minor, r.amount.currency),
            "status": r.status.value, "reason": r.reason,
            "provider_reference": r.provider_reference, "created_at": stamp(r.created_at),
        } for r in facts.refunds],
        "routing": {"decision": dict(payment.routing),
                    "recorded": [{"id": d["id"], "order_reference": d["order_reference"],
                                  "decision": d["decision"], "at": stamp(d["created_at"])}
                                 for d in facts.decisions]},
        "reconciliation": {
            "lines": [{
                "run_key": x["run_key"], "line_key": x["line_key"], "line_no": x["line_no"],
                "provider": x["provider"], "provider_reference": x["provider_reference"],
                "order_reference": x["order_reference"],
                "amount": _money(x["amount_minor"], x["currency"]),
                "fee": _money(x["fee_minor"], x["currency"]), "status": x["status"],
                "occurred_at": stamp(x["occurred_at"]), "matched_by": x["matched_by"],
                "category": x["category"], "recorded_at": stamp(x["created_at"]),
            } for x in facts.lines],
            "differences": [{
                "run_key": x["run_key"], "category": x["category"], "line_no": x["line_no"],
                "expected": x["expected"], "actual": x["actual"], "detail": x["detail"],
                "resolved": bool(x["resolved"]), "healed": bool(x["healed"]),
                "recorded_at": stamp(x["created_at"]),
            } for x in facts.differences],
        },
        "chain": chain,
    }
    scrubbed: dict[str, Any] = scrub(doc)
    return scrubbed


@cache
def _version() -> str:
    try:
        return metadata.version("pasarela")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- for people -----------------------------------------------------------------------


@cache
def translator(lang: str) -> _gettext.NullTranslations:
    """The ``evidence`` catalog of *lang* (one of :data:`LANGUAGES`), compiled from its
    ``.po`` with Babel."""
    from babel.messages.mofile import write_mo  # noqa: PLC0415
    from babel.messages.pofile import read_po  # noqa: PLC0415

    if lang not in LANGUAGES:
        raise ValueError(f"no evidence catalog for {lang!r}; known: {', '.join(LANGUAGES)}")
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as fh:
        catalog = read_po(fh, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def _when(value: Mapping[str, str] | None) -> str:
    if not value:
        return "-"
    utc = datetime.fromisoformat(value["utc"])
    lima = datetime.fromisoformat(value["lima"])
    return f"{utc:%Y-%m-%d %H:%M:%S} UTC · {lima:%Y-%m-%d %H:%M:%S} Lima"


def _amount(value: Mapping[str, Any] | None) -> str:
    if not value:
        return "-"
    return Money(int(value["minor"]), str(value["currency"])).format()


_LABELS: Final = {
    "title": N_("Evidence for payment {id}"),
    "generated": N_("Generated"), "merchant": N_("Merchant"), "default": N_("(default)"),
    "order": N_("Order reference"), "amount": N_("Amount"), "refunded": N_("Refunded"),
    "status": N_("Status"), "provider": N_("Provider"),
    "method": N_("Method"), "created": N_("Created"), "updated": N_("Last change"),
    "references": N_("Provider references"), "customer": N_("Customer (masked)"),
    "no_customer": N_("no customer data"),
    "sealed": N_("Personal data is sealed in the store."),
    "clear": N_("Personal data is kept in clear in the store."),
    "erased": N_("Personal data was erased on request on {at}."),
    "timeline": N_("Transitions"), "exchanges": N_("Provider exchanges (redacted)"),
    "deliveries": N_("Webhook deliveries"), "refunds": N_("Refunds"),
    "routing": N_("Routing decision"), "reconciliation": N_("Reconciliation lines"),
    "chain": N_("Chain proof"), "none": N_("none"),
    "chain_ok": N_("The chain of {count} records verifies."),
    "chain_bad": N_("The chain does not verify: first bad record {record} ({reason})."),
    "chain_missing": N_("This store keeps no audit chain."),
    "verified": N_("verification passed"), "rejected": N_("rejected"),
    "applied": N_("applied"), "ignored": N_("ignored"), "mismatch": N_("mismatch"),
    "files": N_("The machine-readable record is in evidence.json."),
    "at": N_("At"), "from_to": N_("From → to"), "cause": N_("Cause"),
    "reason": N_("Reason"), "operation": N_("Operation"), "request": N_("Request"),
    "response": N_("Response"), "ms": N_("ms"), "event": N_("Event"),
    "outcome": N_("Outcome"), "verdict": N_("Verification"), "run": N_("Run"),
    "category": N_("Category"), "fee": N_("Fee"), "rule": N_("Rule"),
    "last_error": N_("Last provider error"),
}
_CAUSES: Final = {"api": N_("api"), "webhook": N_("webhook"), "job": N_("job"),
                  "reconcile": N_("reconcile")}


@attrs.frozen
class _Section:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _sections(doc: Mapping[str, Any], _: Callable[[str], str]
              ) -> tuple[list[tuple[str, str]], list[str], list[_Section]]:
    """(facts as label/value, notes, tables) of the summary, in *_*'s language."""
    p = doc["payment"]
    facts = [
        (_(_LABELS["generated"]), _when(doc["generated_at"])),
        (_(_LABELS["merchant"]), doc["merchant"] or _(_LABELS["default"])),
        (_(_LABELS["order"]), p["order_reference"]),
        (_(_LABELS["amount"]), _amount(p["amount"])),
        (_(_LABELS["refunded"]), _amount(p["refunded"])),
        (_(_LABELS["status"]), p["status"]),
        (_(_LABELS["provider"]), f"{p['provider_name']} ({p['provider']})"),
        (_(_LABELS["method"]), f"{p['method']}" + (f" · {p['network']}" if p["network"]
                                                   else "")),
        (_(_LABELS["created"]), _when(p["created_at"])),
        (_(_LABELS["updated"]), _when(p["updated_at"])),
    ]
    refs = doc["references"]
    listed = [f"{refs['name']}: {refs['provider_reference'] or '-'}"]
    listed += [f"{k.replace('_', ' ')}: {', '.join(v)}" for k, v in refs["more"].items()]
    listed += [f"{rid}: {ref or '-'}" for rid, ref in refs["refunds"].items()]
    facts.append((_(_LABELS["references"]), "; ".join(listed)))
    customer = doc["customer"]
    facts.append((_(_LABELS["customer"]), _(_LABELS["no_customer"]) if not customer else
                  ", ".join(str(v if not isinstance(v, list) else " ".join(v))
                            for v in customer.values() if v)))
    if doc["last_provider_error"]:
        error = doc["last_provider_error"]
        facts.append((_(_LABELS["last_error"]),
                      f"{error['code'] or '-'}: {error['message'] or '-'}"))
    notes = []
    personal = doc["personal_data"]
    for erasure in personal["erasures"]:
        notes.append(_(_LABELS["erased"]).format(at=_when(erasure["at"])))
    if not personal["erased"]:
        notes.append(_(_LABELS["sealed"] if personal["sealed_in_store"] else _LABELS["clear"]))
    chain = doc["chain"]
    if not chain["available"]:
        notes.append(_(_LABELS["chain_missing"]))
    elif chain["verified"] and chain["verified"]["ok"]:
        notes.append(_(_LABELS["chain_ok"]).format(count=len(chain["records"])))
    else:
        verified = chain["verified"] or {}
        bad = verified.get("first_bad")
        record = (f"{bad['kind']} {bad['record_id']}" if isinstance(bad, Mapping)
                  else str(bad))
        notes.append(_(_LABELS["chain_bad"]).format(record=record,
                                                    reason=verified.get("reason")))
    notes.append(_(_LABELS["files"]))

    def verdict(word: str) -> str:
        return _(_LABELS["verified"] if word == "passed" else _LABELS["rejected"])

    def short(value: Any) -> str:
        return "-" if not value else str(value)[:16]

    sections = [
        _Section(_(_LABELS["timeline"]),
                 (_(_LABELS["at"]), _(_LABELS["from_to"]), _(_LABELS["cause"]),
                  _(_LABELS["reason"]), _(_LABELS["chain"])),
                 tuple((_when(t["at"]), f"{t['from']} → {t['to']}",
                        _(_CAUSES.get(t["cause"], t["cause"]))
                        + ("" if t["applied"] else f" ({_(_LABELS['ignored'])})"),
                        t["reason"] or "", short((t["chain"] or {}).get("hash")))
                       for t in doc["transitions"])),
        _Section(_(_LABELS["exchanges"]),
                 (_(_LABELS["at"]), _(_LABELS["operation"]), _(_LABELS["request"]),
                  _(_LABELS["response"]), _(_LABELS["ms"]), _(_LABELS["chain"])),
                 tuple((_when(x["started_at"]), f"{x['operation']} #{x['attempt']}",
                        f"{x['method']} {x['url']}",
                        str(x["status_code"] or x["error"] or "-")
                        + (f" {x['provider_error']['code']}" if x["provider_error"]
                           and x["provider_error"]["code"] and x["status_code"] else ""),
                        f"{float(x['duration_ms']):.0f}", short((x["chain"] or {}).get("hash")))
                       for x in doc["exchanges"])),
        _Section(_(_LABELS["deliveries"]),
                 (_(_LABELS["at"]), _(_LABELS["event"]), _(_LABELS["outcome"]),
                  _(_LABELS["verdict"]), _(_LABELS["chain"])),
                 tuple((_when(d["received_at"]), f"{d['event_type'] or '-'} {d['event_id'] or ''}",
                        _(_LABELS.get(d["outcome"], d["outcome"])), verdict(d["verification"]),
                        short((d["chain"] or {}).get("hash")))
                       for d in doc["deliveries"])),
        _Section(_(_LABELS["refunds"]),
                 (_(_LABELS["at"]), _(_LABELS["amount"]), _(_LABELS["status"]),
                  _(_LABELS["references"])),
                 tuple((_when(r["created_at"]), _amount(r["amount"]), r["status"],
                        r["provider_reference"] or "-") for r in doc["refunds"])),
        _Section(_(_LABELS["routing"]), (_(_LABELS["rule"]), _(_LABELS["provider"]),
                                         _(_LABELS["reason"])),
                 ((str(doc["routing"]["decision"].get("rule") or "-"),
                   str(doc["routing"]["decision"].get("provider") or "-"),
                   _reasons(doc["routing"]["decision"])),)
                 if doc["routing"]["decision"] else ()),
        _Section(_(_LABELS["reconciliation"]),
                 (_(_LABELS["run"]), _(_LABELS["at"]), _(_LABELS["amount"]),
                  _(_LABELS["fee"]), _(_LABELS["category"])),
                 tuple((f"{x['run_key'][:12]} #{x['line_no']}", _when(x["occurred_at"]),
                        _amount(x["amount"]), _amount(x["fee"]), x["category"])
                       for x in doc["reconciliation"]["lines"])),
    ]
    return facts, notes, sections


def _reasons(decision: Mapping[str, Any]) -> str:
    said = decision.get("reason") or decision.get("explanation") or "-"
    return "; ".join(str(x) for x in said) if isinstance(said, list) else str(said)


def summary_text(doc: Mapping[str, Any], lang: str = "en") -> str:
    """The summary for people, as plain text in *lang*."""
    _ = translator(lang).gettext
    facts, notes, sections = _sections(doc, _)
    title = _(_LABELS["title"]).format(id=doc["payment"]["id"])
    out = [title, "=" * len(title), ""]
    width = max(len(label) for label, _v in facts)
    out += [f"{label.ljust(width)}  {value}" for label, value in facts]
    out += ["", *notes]
    for section in sections:
        out += ["", section.title, "-" * len(section.title)]
        if not section.rows:
            out.append(_(_LABELS["none"]))
            continue
        out.append(" | ".join(section.header))
        out += [" | ".join(row) for row in section.rows]
    return "\n".join(out) + "\n"


def summary_html(doc: Mapping[str, Any], lang: str = "en") -> str:
    """The summary for people, as one self-contained HTML page in *lang*."""
    _ = translator(lang).gettext
    e = html.escape
    facts, notes, sections = _sections(doc, _)
    title = _(_LABELS["title"]).format(id=doc["payment"]["id"])
    parts = [
        "<!doctype html>", f'<html lang="{e(lang.replace("_", "-"))}">', "<head>",
        '<meta charset="utf-8">', f"<title>{e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
        "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;"
        "vertical-align:top;font-size:.9rem}th{background:#f3f3f3}"
        "code{font-size:.85rem}</style>",
        "</head>", "<body>", f"<h1>{e(title)}</h1>", "<table>",
    ]
    parts += [f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in facts]
    parts.append("</table>")
    parts += [f"<p>{e(note)}</p>" for note in notes]
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        if not section.rows:
            parts.append(f"<p>{e(_(_LABELS['none']))}</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in section.header)
                     + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
                  for row in section.rows]
        parts.append("</table>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def archive_names() -> list[str]:
    """The files of every archive, in their order (``manifest.json`` last)."""
    names = [ARCHIVE_JSON]
    for lang in LANGUAGES:
        names += [f"summary.{lang}.html", f"summary.{lang}.txt"]
    return [*names, "manifest.json"]


def archive(doc: Mapping[str, Any]) -> bytes:
    """The zip of the bundle: ``evidence.json``, the summaries (HTML and text, each
    language) and ``manifest.json`` (each file's SHA-256)."""
    files: dict[str, bytes] = {
        ARCHIVE_JSON: json.dumps(doc, indent=2, ensure_ascii=False, default=str).encode()}
    for lang in LANGUAGES:
        files[f"summary.{lang}.html"] = summary_html(doc, lang).encode()
        files[f"summary.{lang}.txt"] = summary_text(doc, lang).encode()
    manifest = {"payment_id": doc["payment"]["id"], "generated_at": doc["generated_at"],
                "format": doc["format"],
                "files": {name: hashlib.sha256(data).hexdigest()
                          for name, data in files.items()}}
    files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    moment = datetime.fromisoformat(doc["generated_at"]["utc"])
    stamp_tuple = (max(moment.year, 1980), moment.month, moment.day, moment.hour,
                   moment.minute, moment.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in archive_names():
            info = zipfile.ZipInfo(f"evidence-{doc['payment']['id']}/{name}", stamp_tuple)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    return buffer.getvalue()


# --- support --------------------------------------------------------------------------


def support_text(doc: Mapping[str, Any]) -> str:
    """What the provider's support asks for about this payment, ready to paste (in
    English; no secret, the customer masked)."""
    p = doc["payment"]
    refs = doc["references"]
    last = doc["last_exchange"]
    error = doc["last_provider_error"]
    title = p["provider_name"]
    lines = [f"{title}: payment {p['order_reference']}", ""]
    ids = doc["account"]["ids"]
    lines += [f"Merchant {label}: {value}" for label, value in ids.items()]
    if not ids:
        lines.append(f"Merchant account: {doc['account']['note'] or doc['account']['name']}")
    lines += [
        f"Transaction code ({refs['name']}): {refs['provider_reference'] or 'none (not created)'}",
        f"Provider reference: {refs['provider_reference'] or '-'}",
    ]
    lines += [f"{k.replace('_', ' ').capitalize()}: {', '.join(v)}"
              for k, v in refs["more"].items()]
    lines += [
        f"Merchant order reference: {p['order_reference']}",
        f"Amount: {_amount(p['amount'])}" + (f" (charged {_amount(p['charged'])})"
                                             if p["charged"] else ""),
        f"Status at our side: {p['status']}",
        f"Created: {_when(p['created_at'])}",
    ]
    if last is None:
        lines.append("Last exchange: none recorded")
    else:
        lines.append(f"Last exchange: {_when(last['started_at'])} ({last['operation']}, "
                     f"HTTP {last['status_code'] or 'no answer'})")
        if last["request_id"]:
            lines.append(f"Request id: {last['request_id']}")
    if error is None:
        lines.append("Last error: none")
    else:
        lines.append(f"Last error code: {error['code'] or '-'}")
        lines.append(f"Last error message: {error['message'] or '-'}")
    lines.append(f"Our payment id: {p['id']}")
    return "\n".join(lines) + "\n"
