"""The evidence chain's pure part: the canonical text of each chained record, its
hash, and the fold of many hashes into a store's chain head (``docs/audit.md``).

Every provider exchange, transition and webhook delivery of a payment carries a
hash chained to the previous record of the same payment::

    hash = SHA-256(prev_hash "\\n" kind "\\n" canonical(content))

``canonical`` is JSON with sorted keys, no spaces, UTF-8, datetimes as UTC
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, non-integer numbers as their shortest exact text
(never a float's binary form), so the same row gives the same bytes on SQLite and
PostgreSQL, today and after an upgrade. An exchange's texts that may carry personal
data (URL, headers, bodies) enter the hash as one digest (``body_digest``, stored
with the row), so erasing them (``pasarela customers forget``) keeps the chain
whole. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

import attrs


__all__ = [
    "GENESIS",
    "KINDS",
    "ChainRecord",
    "ChainReport",
    "Kind",
    "body_digest",
    "canonical",
    "content_of",
    "delivery_content",
    "exchange_content",
    "fold",
    "head_hash",
    "link",
    "link_all",
    "record_hash",
    "transition_content",
    "utc_text",
]

Kind: TypeAlias = Literal["exchange", "transition", "delivery"]
KINDS: Final[tuple[Kind, ...]] = ("exchange", "transition", "delivery")
#: The previous hash of a payment's first record (and of a record of no payment).
GENESIS: Final = ""


@attrs.frozen(kw_only=True)
class ChainRecord:
    """One chained record as verified: what it is, where it sits and whether its
    stored hash is the one its content and link give."""

    kind: Kind
    #: The row's id in its table (exchanges, transitions, webhook_deliveries); for a
    #: pruned range (``kind`` of its first record), the first pruned position.
    record_id: int
    #: When it happened (UTC): an exchange's start, a transition's, a delivery's arrival.
    at: datetime
    prev_hash: str
    hash: str
    #: Whether the recomputed hash and the link to the previous record both match.
    ok: bool
    payment_id: str | None = None
    #: Its position in the payment's chain (1, 2, ...).
    seq: int = 0
    #: Why it is not ok ("" when it is): ``content`` or ``link`` and what differs.
    problem: str = ""
    #: True for a range removed by retention, summarised by its hashes.
    pruned: bool = False
    #: Pruned: how many records the range held.
    count: int = 1


@attrs.frozen(kw_only=True)
class ChainReport:
    """What :meth:`Store.verify_chain` found."""

    ok: bool
    #: Records recomputed (a pruned range counts once).
    checked: int
    #: The first record that does not match (payments in id order, records in chain
    #: order), or None.
    first_bad: ChainRecord | None = None
    #: What differs at *first_bad* ("" when ok).
    reason: str = ""
    #: Payments whose chain was checked.
    payments: int = 0


#: The last datetime written and its text: a batch stamps all its records with one.
_last_time: tuple[datetime | None, str] = (None, "")


def utc_text(value: datetime) -> str:
    """An aware datetime as canonical UTC text (a naive one is taken as UTC, as
    SQLite returns it)."""
    global _last_time  # noqa: PLW0603 - a one-entry cache (one tuple: thread-safe)
    last = _last_time
    if last[0] is value:
        return last[1]
    text = _utc_text(value)
    _last_time = (value, text)
    return text


def _utc_text(value: datetime) -> str:
    if value.year < 1000:  # isoformat pads the year, strftime's %Y does not
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is strftime's "%Y-%m-%dT%H:%M:%S.%f" (and its "+00:00") at a
    # fraction of the cost
    if value.tzinfo is None:
        return value.isoformat(timespec="microseconds") + "Z"
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def _default(value: Any) -> Any:
    """JSON for what ``json`` does not write itself: datetimes as UTC text, decimals
    as their exact text."""
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot chain a {type(value).__name__}")


def _slow_canonical(content: Mapping[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default).encode("utf-8")


#: The string encoder ``json.dumps(..., ensure_ascii=False)`` itself uses.
_string: Final = json.encoder.encode_basestring


def _datetime_text(value: datetime) -> str:
    return '"' + utc_text(value) + '"'  # digits and separators: nothing to escape


#: The JSON of a value of exactly these types, as ``json.dumps`` writes it.
_WRITERS: Final[dict[type, Callable[[Any], str]]] = {
    str: _string, int: int.__repr__, bool: lambda v: "true" if v else "false",
    type(None): lambda _: "null", datetime: _datetime_text,
}
#: The keys of contents seen, in insertion order -> their JSON prefixes, sorted.
_LAYOUTS: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}


def _scalar(value: Any) -> str | None:
    """The JSON ``json.dumps`` (with :func:`_default`) writes for a flat *value*,
    or None for one it should write itself (a float, a container, anything else)."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return _datetime_text(value)
    return None


def _layout(content: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """*content*'s keys in sorted order with their JSON (``"key":``), or None
    when a key is not a string."""
    names = tuple(content)
    layout = _LAYOUTS.get(names)
    if layout is None:
        if any(type(key) is not str for key in names):
            return None
        layout = tuple((key, _string(key) + ":") for key in sorted(names))
        if len(_LAYOUTS) < 64:  # the record kinds' few layouts, not every caller's
            _LAYOUTS[names] = layout
    return layout


def canonical(content: Mapping[str, Any]) -> bytes:
    """The exact bytes hashed for *content* (see the module docs). Contents hold no
    float (``exchange_content`` writes ``duration_ms`` as its shortest exact text).

    A flat content (every value a string, integer, boolean, None or datetime: every
    transition and delivery) is written here, byte for byte what ``json.dumps`` with
    sorted keys writes, without its encoder's per-call set-up; anything else goes
    through ``json.dumps``."""
    layout = _layout(content)
    if layout is None:
        return _slow_canonical(content)
    parts = []
    for key, prefix in layout:
        value = content[key]
        writer = _WRITERS.get(type(value))
        text = writer(value) if writer is not None else _scalar(value)
        if text is None:
            return _slow_canonical(content)
        parts.append(prefix + text)
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def record_hash(prev_hash: str, kind: str, content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the previous hash, the kind and the canonical content."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n" + kind.encode("ascii") + b"\n")
    digest.update(canonical(content))
    return digest.hexdigest()


def body_digest(row: Mapping[str, Any]) -> str:
    """The digest of an exchange's texts that may carry personal data."""
    return hashlib.sha256(canonical({
        "url": row["url"],
        "request_headers": dict(row["request_headers"] or {}),
        "request_body": row["request_body"],
        "response_headers": dict(row["response_headers"] or {}),
        "response_body": row["response_body"],
    })).hexdigest()


def exchange_content(row: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """What an ``exchanges`` row's hash covers (its texts by their *digest*)."""
    return {
        "payment_id": row["payment_id"], "provider": row["provider"],
        "operation": row["operation"], "attempt": row["attempt"], "method": row["method"],
        "status_code": row["status_code"], "error": row["error"],
        "started_at": row["started_at"],
        # the shortest text that gives the same float back: never the float's bits
        "duration_ms": repr(float(row["duration_ms"])),
        "body": digest,
    }


def transition_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a ``transitions`` row's hash covers."""
    return {
        "payment_id": row["payment_id"], "seq": row["seq"], "source": row["source"],
        "target": row["target"], "cause": row["cause"], "applied": bool(row["applied"]),
        "reason": row["reason"], "event_id": row["event_id"], "version": row["version"],
        "at": row["at"],
    }


def delivery_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a ``webhook_deliveries`` row's hash covers."""
    return {
        "provider": row["provider"], "event_id": row["event_id"],
        "event_type": row["event_type"], "payment_id": row["payment_id"],
        "payment_key": row["payment_key"], "outcome": row["outcome"],
        "detail": row["detail"], "received_at": row["received_at"],
    }


_CONTENT: Final = {"transition": transition_content, "delivery": delivery_content}


def content_of(kind: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """What the hash of *row*, a record of *kind*, covers (an exchange by its stored
    ``body_digest``)."""
    if kind == "exchange":
        return exchange_content(row, row["body_digest"])
    return _CONTENT[kind](row)


def _transition_text(row: Mapping[str, Any]) -> str | None:
    """The canonical text of a transition row's content (:func:`transition_content`,
    keys in sorted order) written in one expression, or None when a value is not of
    the type the store writes there (:func:`canonical` then writes it): byte for
    byte what :func:`canonical` writes, with none of its per-key dispatch."""
    cause, event_id, payment_id, reason = (row["cause"], row["event_id"],
                                           row["payment_id"], row["reason"])
    seq, source, target, version, at = (row["seq"], row["source"], row["target"],
                                        row["version"], row["at"])
    if not (type(cause) is str and type(payment_id) is str and type(reason) is str
            and type(source) is str and type(target) is str and type(seq) is int
            and type(version) is int and type(at) is datetime
            and (event_id is None or type(event_id) is str)):
        return None
    string = _string
    # one f-string: its parts joined in one copy, not one per "+"
    return (f'{{"applied":{"true" if row["applied"] else "false"},"at":"{utc_text(at)}",'
            f'"cause":{string(cause)},'
            f'"event_id":{"null" if event_id is None else string(event_id)},'
            f'"payment_id":{string(payment_id)},"reason":{string(reason)},"seq":{seq},'
            f'"source":{string(source)},"target":{string(target)},"version":{version}}}')


def _delivery_text(row: Mapping[str, Any]) -> str | None:
    """The canonical text of a delivery row's content (:func:`delivery_content`, keys
    in sorted order) written in one expression, or None when a value is not of the
    type the store writes there (:func:`canonical` then writes it): byte for byte what
    :func:`canonical` writes, as :func:`_transition_text` is for a transition."""
    detail, event_id, event_type, outcome = (row["detail"], row["event_id"],
                                             row["event_type"], row["outcome"])
    payment_id, payment_key, provider, at = (row["payment_id"], row["payment_key"],
                                             row["provider"], row["received_at"])
    if not (type(outcome) is str and type(payment_key) is str and type(provider) is str
            and type(at) is datetime
            and (detail is None or type(detail) is str)
            and (event_id is None or type(event_id) is str)
            and (event_type is None or type(event_type) is str)
            and (payment_id is None or type(payment_id) is str)):
        return None
    string = _string
    return (f'{{"detail":{"null" if detail is None else string(detail)},'
            f'"event_id":{"null" if event_id is None else string(event_id)},'
            f'"event_type":{"null" if event_type is None else string(event_type)},'
            f'"outcome":{string(outcome)},'
            f'"payment_id":{"null" if payment_id is None else string(payment_id)},'
            f'"payment_key":{string(payment_key)},"provider":{string(provider)},'
            f'"received_at":"{utc_text(at)}"}}')


#: The kinds whose canonical text is written in one expression, and their headers
#: (``kind "\n"``, as :func:`record_hash` writes them after the previous hash).
_TEXTS: Final[dict[str, tuple[Callable[[Mapping[str, Any]], str | None], str]]] = {
    "transition": (_transition_text, "\ntransition\n"),
    "delivery": (_delivery_text, "\ndelivery\n"),
}


def link(kind: Kind, row: dict[str, Any], *, seq: int, prev: str) -> str:
    """Chain *row* (a record of *kind* about to be inserted) at position *seq* after
    *prev*: set its ``chain_seq``, ``chain_prev``, ``chain_hash`` (and an exchange's
    ``body_digest``) and return its hash, the payment's new tip."""
    if kind == "exchange":
        row["body_digest"] = body_digest(row)
    row["chain_seq"] = seq
    row["chain_prev"] = prev
    fast = _TEXTS.get(kind) if prev.isascii() else None
    text = None if fast is None else fast[0](row)
    if fast is not None and text is not None:  # record_hash's bytes, in one call
        value = row["chain_hash"] = hashlib.sha256(
            f"{prev}{fast[1]}{text}".encode()).hexdigest()
        return value
    value = row["chain_hash"] = record_hash(prev, kind, content_of(kind, row))
    return value


def link_all(items: Iterable[tuple[Kind, dict[str, Any]]], *, seq: int, prev: str
             ) -> tuple[int, str]:
    """Chain *items* in order after position *seq* and hash *prev* (a payment's tip);
    the new tip."""
    for kind, row in items:
        seq += 1
        prev = link(kind, row, seq=seq, prev=prev)
    return seq, prev


def fold(hashes: Iterable[tuple[str, int, str]]) -> tuple[str, int]:
    """The digest of ``(kind, record id, hash)`` items, in the order given, and
    their number: what one chain head covers."""
    digest = hashlib.sha256()
    count = 0
    for kind, record_id, value in hashes:
        digest.update(f"{kind}:{record_id}:{value}\n".encode("ascii"))
        count += 1
    return digest.hexdigest(), count


def head_hash(prev_head: str, *, seq: int, at: datetime, records: str, count: int,
              upto: Mapping[str, int]) -> str:
    """A chain head's hash: the previous head and what this one folded."""
    return record_hash(prev_head, "head", {
        "seq": seq, "at": at, "records": records, "count": count, "upto": dict(upto)})
