"""Customers' personal data in the store: sealing it again under the newest key
(:meth:`PersonalData.reseal_personal`, what ``pasarela customers rotate-key`` runs
batch by batch) and erasing it on request (:meth:`PersonalData.forget_customer`,
``pasarela customers forget``; Peru's Ley 29733).

Erasure keeps what the books need (ids, amounts, statuses, timestamps, provider
references, the transitions) and removes the order's personal part (customer,
description, metadata), refunds' free-text reasons, and every occurrence of the
customer's values in the recorded provider exchanges. It appends one transition
(``applied`` false, status unchanged, reason :data:`ERASED`) as the audit line: it
names no personal value, and it is how a second request finds the work done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import quote, quote_plus

import sqlalchemy as sa

from pasarela.errors import ConfigurationError
from pasarela.lifecycle import Cause
from pasarela.store._base import StoreBase
from pasarela.store._rows import INSERT_TRANSITION, utc_now
from pasarela.store._writes import chain_on, next_seq
from pasarela.store.schema import exchanges, payments, refunds, transitions
from pasarela.store.sealing import KEYS_PATH, customer_digests, opened_order, split_order


__all__ = ["ERASED", "Erasure", "PersonalData", "Resealed"]

#: The audit transition's reason (no personal value in it).
ERASED: Final = "personal data erased on request (Ley 29733)"
#: What an erased value becomes in a recorded exchange.
_MARK: Final = "[erased]"


class Resealed(NamedTuple):
    """One batch of :meth:`PersonalData.reseal_personal`."""

    #: Payments looked at (fewer than the batch size: the last batch).
    examined: int
    #: Payments stored in clear that were sealed.
    sealed: int
    #: Payments sealed under an older key, sealed again under the newest.
    rotated: int
    #: The last payment id looked at: where the next batch starts ("" when none).
    last_id: str


class Erasure(NamedTuple):
    """What :meth:`PersonalData.forget_customer` did to one payment."""

    payment_id: str
    #: False when it had been erased before (nothing was written this time).
    erased: bool


class PersonalData(StoreBase):
    """The personal data part of :class:`~pasarela.store.Store`."""

    def reseal_personal(self, *, after: str = "", limit: int = 200) -> Resealed:
        """Seal the personal part of up to *limit* payments (ids above *after*, in id
        order) under the newest key: those in clear, and those sealed with an older
        key. One transaction per call; a payment under the newest key already is
        left alone, so a run that stopped can start again from anywhere. The
        console's keyed hashes of the customer's phone and document are computed
        again under the newest key with it (and for rows sealed before they existed)."""
        sealer = self.sealer
        if sealer is None:
            raise ConfigurationError("no key is configured: nothing to seal with",
                                     path=KEYS_PATH)
        query = (sa.select(payments.c.id, payments.c.order, payments.c.personal,
                           payments.c.phone_hash, payments.c.document_hash)
                 .where(payments.c.id > after).order_by(payments.c.id).limit(limit))
        if not self._sqlite:
            query = query.with_for_update()
        sealed = rotated = examined = 0
        last = ""
        with self._begin(write=True) as conn:
            for pid, order, personal, phone_hash, document_hash in conn.execute(query).all():
                examined, last = examined + 1, pid
                if personal is not None:
                    if sealer.is_current(personal):
                        if phone_hash is not None or document_hash is not None:
                            continue
                        # Sealed before the console's hashes existed (migration 0010):
                        # hash it now; nothing else changes.
                        values: dict[str, Any] = customer_digests(
                            opened_order(order, personal, sealer, payment_id=pid), sealer)
                        if values == {"phone_hash": None, "document_hash": None}:
                            continue
                    else:
                        values = {"personal": sealer.rotate(personal, payment_id=pid),
                                  **customer_digests(opened_order(order, personal, sealer,
                                                                  payment_id=pid), sealer)}
                        rotated += 1
                elif order is not None and _has_personal(order):
                    clear, part = split_order(order)
                    values = {"order": clear, "personal": sealer.seal(part),
                              **customer_digests(order, sealer)}
                    sealed += 1
                else:
                    continue
                conn.execute(sa.update(payments).where(payments.c.id == pid).values(**values))
        return Resealed(examined, sealed, rotated, last)

    def forget_customer(self, order_reference: str, *,
                        merchant: str | None = None) -> list[Erasure]:
        """Erase the personal data of every payment of *order_reference* (see the
        module docs), in one transaction; ``[]`` when there is none. With *merchant*
        (``""``: the implicit one), that merchant's payments only: order references
        are each merchant's own."""
        query = (sa.select(payments.c.id, payments.c.status, payments.c.version,
                           payments.c.order, payments.c.personal, payments.c.chain_seq,
                           payments.c.chain_hash)
                 .where(payments.c.order_reference == order_reference)
                 .order_by(payments.c.id))
        if merchant is not None:
            query = query.where(payments.c.merchant == merchant)
        if not self._sqlite:
            query = query.with_for_update()
        done: list[Erasure] = []
        with self._begin(write=True) as conn:
            for pid, status, version, order, personal, *tip in conn.execute(query).all():
                audited = conn.execute(
                    sa.select(transitions.c.id).where(transitions.c.payment_id == pid,
                                                      transitions.c.reason == ERASED).limit(1)
                ).first()
                if audited is not None:
                    done.append(Erasure(pid, erased=False))
                    continue
                full = opened_order(order, personal, self.sealer, payment_id=pid)
                if full is not None:
                    _scrub_exchanges(conn, pid, _personal_values(full))
                    clear, _ = split_order(full)
                    conn.execute(sa.update(payments).where(payments.c.id == pid)
                                 .values(order=clear, personal=None, phone_hash=None,
                                         document_hash=None))
                conn.execute(sa.update(refunds).where(refunds.c.payment_id == pid)
                             .values(reason=""))
                now = utc_now()
                step = {
                    "payment_id": pid, "seq": next_seq(conn, pid), "source": status,
                    "target": status, "cause": Cause.API.value, "applied": False,
                    "reason": ERASED, "event_id": None, "version": version, "at": now,
                }
                if self.chained:
                    # The erasure is a chained record of its own: the exchanges it
                    # scrubbed keep their hashes (their texts enter by a digest), and
                    # `audit verify` accepts their texts changed before it.
                    chain_on(conn, pid, (int(tip[0]), tip[1]), [("transition", step)])
                conn.execute(INSERT_TRANSITION, step)
                done.append(Erasure(pid, erased=True))
        return done


def _has_personal(order: Mapping[str, Any]) -> bool:
    return bool(order.get("customer") or order.get("description") or order.get("metadata"))


def _personal_values(order: Mapping[str, Any]) -> list[str]:
    """Every personal value of *order*, longest first, in the forms an exchange may
    carry it (a phone also without its country code)."""
    found: set[str] = set()
    customer = order.get("customer") or {}
    for name in ("first_name", "last_name", "email", "phone"):
        value = customer.get(name)
        if isinstance(value, str) and value.strip():
            found.add(value.strip())
    phone = customer.get("phone")
    if isinstance(phone, str) and phone.startswith("+51"):
        found.add(phone[3:])
    document = customer.get("document")
    if isinstance(document, list | tuple) and len(document) == 2:
        found.add(str(document[1]))
    description = order.get("description")
    if isinstance(description, str) and description.strip():
        found.add(description.strip())
    metadata = order.get("metadata") or {}
    found.update(str(v) for v in metadata.values() if str(v).strip())
    forms: set[str] = set()
    for value in found:
        forms.update({value, json.dumps(value)[1:-1], quote_plus(value), quote(value),
                      quote(value, safe="")})
    return sorted((f for f in forms if f), key=len, reverse=True)


def _scrub(text: str, values: Iterable[str]) -> str:
    for value in values:
        text = text.replace(value, _MARK)
    return text


def _scrub_exchanges(conn: sa.Connection, payment_id: str, values: list[str]) -> None:
    if not values:
        return
    query = sa.select(exchanges.c.id, exchanges.c.url, exchanges.c.request_headers,
                      exchanges.c.request_body, exchanges.c.response_headers,
                      exchanges.c.response_body).where(exchanges.c.payment_id == payment_id)
    for xid, url, req_h, req_b, res_h, res_b in conn.execute(query).all():
        changed = {
            "url": _scrub(url, values),
            "request_body": _scrub(req_b, values),
            "response_body": _scrub(res_b, values),
            "request_headers": json.loads(_scrub(json.dumps(req_h), values)),
            "response_headers": json.loads(_scrub(json.dumps(res_h), values)),
        }
        conn.execute(sa.update(exchanges).where(exchanges.c.id == xid).values(**changed))
