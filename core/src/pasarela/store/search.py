"""The operator console's reads: finding payments, a payment's events and deliveries,
reconciliation runs and their differences, and the one write the console makes
itself (recording how an operator resolved a difference; every change to a payment
goes through the public API).

Searches are scoped to one merchant (``""``: the implicit one) and paginated by
keyset (newest first: ``(created_at, id)`` below the last row's, never ``OFFSET``),
so page 1,000 costs what page 1 does. A customer's phone or document is found by
its keyed hash (:meth:`pasarela.store.sealing.Sealer.digests`, stored at write in
``phone_hash`` / ``document_hash``): the value itself is never stored in clear
beside the sealed order, nor compared in SQL. Every configured key's hash is asked
for, so rows not yet hashed again after a key rotation are found too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

import attrs
import sqlalchemy as sa

from pasarela.errors import ConfigurationError, NotFoundError, ValidationError
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.store._base import StoreBase
from pasarela.store._rows import from_db, opt_from_db, to_db, utc_now
from pasarela.store.reconcile_schema import reconciliation_results, settlement_lines
from pasarela.store.schema import (
    metadata,
    outbox,
    payments,
    relay_deliveries,
    routing_decisions,
    webhook_deliveries,
)
from pasarela.store.sealing import KEYS_PATH, opened_order


__all__ = [
    "RESOLUTIONS",
    "Difference",
    "DifferenceQuery",
    "PaymentQuery",
    "PaymentRow",
    "ReconciliationRun",
    "Search",
    "SearchPage",
    "reconciliation_resolutions",
]

#: The most rows one page holds.
MAX_PAGE: Final = 200
#: What an operator may do about a difference.
RESOLUTIONS: Final = ("healed", "accepted", "refunded")

_ts = sa.DateTime(timezone=True)

#: How operators resolved reconciliation differences (migration 0010): one row per
#: difference; the operator audit log has the same action with the address.
reconciliation_resolutions = sa.Table(
    "reconciliation_resolutions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("result_id", sa.Integer, nullable=False),
    sa.Column("run_key", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("operator", sa.String(64), nullable=False),
    sa.Column("refund_id", sa.String(26), nullable=True),
    sa.Column("at", _ts, nullable=False),
    sa.UniqueConstraint("result_id"),
)

#: A run's differences, listed by id (keyset) with filters.
sa.Index("ix_reconciliation_results_run_key_id", reconciliation_results.c.run_key,
         reconciliation_results.c.id)


def _aware(field: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise ValidationError("must be a timezone-aware datetime", field=field)


def _check_query(query: PaymentQuery) -> None:
    for name in ("min_minor", "max_minor"):
        value = getattr(query, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ValidationError("must be a whole number of minor units, 0 or more",
                                  field=name)
    if (query.min_minor is not None and query.max_minor is not None
            and query.min_minor > query.max_minor):
        raise ValidationError("must not be above max_minor", field="min_minor")
    for status in query.statuses:
        try:
            Status(status)
        except ValueError:
            raise ValidationError(f"not a status: {status!r}", field="statuses") from None
    _aware("created_from", query.created_from)
    _aware("created_to", query.created_to)


@attrs.frozen(kw_only=True)
class PaymentQuery:
    """What to look for; every criterion given must hold (empty: not asked).

    ``text`` is one box for an identifier: a payment id, an order reference, a
    provider reference (CIP, charge id, PaymentIntent) or a customer's phone or
    document number. ``phone`` and ``document`` are matched by keyed hash only.
    ``created_to`` is exclusive; amounts are minor units in ``currency`` when given.
    """

    text: str = ""
    payment_id: str = ""
    order_reference: str = ""
    provider_reference: str = ""
    statuses: tuple[str, ...] = ()
    provider: str = ""
    method: str = ""
    network: str = ""
    currency: str = ""
    min_minor: int | None = None
    max_minor: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    phone: str = ""
    document: str = ""

    def __attrs_post_init__(self) -> None:
        _check_query(self)


class PaymentRow(NamedTuple):
    """One payment in a list (no personal data)."""

    id: str
    order_reference: str
    provider: str
    method: str
    network: str | None
    provider_reference: str | None
    amount: Money
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


class SearchPage(NamedTuple):
    """One page of a list; ``after`` is what asks for the next (None: the last page)."""

    rows: list[PaymentRow]
    after: str | None


class ReconciliationRun(NamedTuple):
    run_key: str
    lines: int
    differences: int
    unresolved: int
    healed: int
    started_at: datetime | None


@attrs.frozen(kw_only=True)
class DifferenceQuery:
    """Filters of a run's differences; ``state`` is ``open``, ``resolved`` or ``""``."""

    category: str = ""
    provider: str = ""
    state: str = ""

    def __attrs_post_init__(self) -> None:
        if self.state not in ("", "open", "resolved"):
            raise ValidationError("must be open, resolved or empty", field="state")


class Difference(NamedTuple):
    id: int
    run_key: str
    item_key: str
    provider: str
    category: str
    line_no: int | None
    payment_id: str | None
    provider_reference: str | None
    order_reference: str | None
    expected: str
    actual: str
    detail: str
    resolved: bool
    healed: bool
    #: How an operator resolved it (``healed``, ``accepted``, ``refunded``), by whom,
    #: when, with what note (None when no operator did).
    action: str | None
    operator: str | None
    note: str
    at: datetime | None
    refund_id: str | None


_ROW_COLUMNS: Final = (
    payments.c.id, payments.c.order_reference, payments.c.provider, payments.c.method,
    payments.c.network, payments.c.provider_reference, payments.c.amount_minor,
    payments.c.currency, payments.c.status, payments.c.created_at, payments.c.updated_at,
    payments.c.expires_at,
)


def _row(r: Any) -> PaymentRow:
    return PaymentRow(r[0], r[1], r[2], r[3], r[4], r[5], Money(int(r[6]), r[7]), r[8],
                      from_db(r[9]), from_db(r[10]), opt_from_db(r[11]))


def _cursor(row: PaymentRow) -> str:
    return f"{row.created_at.strftime('%Y%m%dT%H%M%S.%f')}~{row.id}"


def _parse_cursor(after: str) -> tuple[datetime, str]:
    stamp, _, pid = after.partition("~")
    try:
        at = datetime.strptime(stamp + "+0000", "%Y%m%dT%H%M%S.%f%z")
    except ValueError:
        raise ValidationError("not a page cursor of this list", field="after") from None
    if not pid:
        raise ValidationError("not a page cursor of this list", field="after")
    return at, pid


class Search(StoreBase):
    """The console part of :class:`~pasarela.store.Store` (see the module docs)."""

    def _digests(self, kind: str, value: str) -> tuple[str, ...]:
        if self.sealer is None:
            raise ConfigurationError(
                f"searching by {kind} needs [privacy] keys (the keyed hash is made with "
                "a key derived from them)", path=KEYS_PATH)
        return self.sealer.digests(kind, value)

    def search_payments(self, query: PaymentQuery, *, merchant: str = "",
                        after: str | None = None, limit: int = 50) -> SearchPage:
        """*merchant*'s payments matching *query*, newest first, *limit* at most (up
        to :data:`MAX_PAGE`), below the cursor *after* (a previous page's ``after``)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"must be 1 to {MAX_PAGE}", field="limit")
        p = payments.c
        where: list[sa.ColumnElement[bool]] = [p.merchant == merchant]
        for column, value in ((p.id, query.payment_id),
                              (p.order_reference, query.order_reference),
                              (p.provider_reference, query.provider_reference),
                              (p.provider, query.provider), (p.method, query.method),
                              (p.network, query.network), (p.currency, query.currency)):
            if value:
                where.append(column == value)
        if query.statuses:
            where.append(p.status.in_(sorted(set(query.statuses))))
        if query.min_minor is not None:
            where.append(p.amount_minor >= query.min_minor)
        if query.max_minor is not None:
            where.append(p.amount_minor <= query.max_minor)
        if query.created_from is not None:
            where.append(p.created_at >= to_db(query.created_from, "created_from"))
        if query.created_to is not None:
            where.append(p.created_at < to_db(query.created_to, "created_to"))
        if query.phone:
            where.append(p.phone_hash.in_(self._digests("phone", query.phone) or ("",)))
        if query.document:
            where.append(p.document_hash.in_(self._digests("document", query.document)
                                             or ("",)))
        if after:
            at, pid = _parse_cursor(after)
            where.append(sa.tuple_(p.created_at, p.id) < sa.tuple_(
                sa.literal(at, _ts), sa.literal(pid, sa.String(26))))
        with self._begin() as conn:
            if query.text:
                # A few payments an identifier names: read them by id (the primary
                # key) and order them here, so no plan walks the date index instead.
                ids = self._identified(conn, query.text.strip(), merchant)
                if not ids:
                    return SearchPage([], None)
                found = [_row(r) for r in conn.execute(
                    sa.select(*_ROW_COLUMNS).where(*where, p.id.in_(ids)))]
                found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
                rows = found[:limit + 1]
            else:
                rows = [_row(r) for r in conn.execute(
                    sa.select(*_ROW_COLUMNS).where(*where)
                    .order_by(p.created_at.desc(), p.id.desc()).limit(limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return SearchPage(rows, _cursor(rows[-1]) if more else None)

    def _identified(self, conn: sa.Connection, text: str, merchant: str) -> list[str]:
        """The ids of *merchant*'s payments *text* identifies (each way, indexed)."""
        p = payments.c
        tests: list[sa.ColumnElement[bool]] = [p.id == text, p.order_reference == text,
                                               p.provider_reference == text]
        if self.sealer is not None:
            for kind in ("phone", "document"):
                digests = self.sealer.digests(kind, text)
                if digests:
                    column = p.phone_hash if kind == "phone" else p.document_hash
                    tests.append(column.in_(digests))
        found: list[str] = []
        for test in tests:
            found += conn.scalars(sa.select(p.id).where(p.merchant == merchant, test)
                                  .limit(MAX_PAGE * 5)).all()
        return sorted(set(found))

    def customer_contact(self, payment_id: str) -> Mapping[str, Any] | None:
        """The payment's customer (opened when sealed), for the console to show
        masked; None when there is none (or it was erased)."""
        with self._begin() as conn:
            row = conn.execute(sa.select(payments.c.order, payments.c.personal)
                               .where(payments.c.id == payment_id)).first()
        if row is None:
            raise NotFoundError(f"payment {payment_id} not found", payment_id=payment_id)
        full = opened_order(row[0], row[1], self.sealer, payment_id=payment_id)
        customer = (full or {}).get("customer")
        return customer if isinstance(customer, Mapping) else None

    # --- a payment's events, deliveries and routing ----------------------------------

    def payment_events(self, payment_id: str) -> list[dict[str, Any]]:
        """The payment's outbox events, oldest first, each with its relay deliveries."""
        o, r = outbox.c, relay_deliveries.c
        with self._begin() as conn:
            events = [dict(m) for m in conn.execute(
                sa.select(o.id, o.type, o.created_at, o.dispatched_at, o.attempts,
                          o.last_error).where(o.payment_id == payment_id)
                .order_by(o.created_at, o.id)).mappings()]
            relayed: dict[str, list[dict[str, Any]]] = {}
            for m in conn.execute(sa.select(r.event_id, r.relay, r.delivered_at, r.attempts,
                                            r.last_error).where(r.payment_id == payment_id)
                                  ).mappings():
                relayed.setdefault(m["event_id"], []).append(
                    {**m, "delivered_at": opt_from_db(m["delivered_at"])})
        for event in events:
            event["created_at"] = from_db(event["created_at"])
            event["dispatched_at"] = opt_from_db(event["dispatched_at"])
            event["relays"] = relayed.get(event["id"], [])
        return events

    def payment_deliveries(self, payment_id: str) -> list[dict[str, Any]]:
        """The webhook deliveries that named the payment, oldest first."""
        w = webhook_deliveries.c
        with self._begin() as conn:
            rows = [dict(m) for m in conn.execute(
                sa.select(w.provider, w.event_id, w.event_type, w.outcome, w.detail,
                          w.received_at).where(w.payment_id == payment_id)
                .order_by(w.received_at, w.id)).mappings()]
        for row in rows:
            row["received_at"] = from_db(row["received_at"])
        return rows

    def routing_decisions_for(self, payment_id: str) -> list[dict[str, Any]]:
        """The routing decisions recorded for the payment, oldest first."""
        d = routing_decisions.c
        with self._begin() as conn:
            return [{"decision": m["decision"], "created_at": from_db(m["created_at"])}
                    for m in conn.execute(sa.select(d.decision, d.created_at)
                                          .where(d.payment_id == payment_id)
                                          .order_by(d.id)).mappings()]

    # --- reconciliation ----------------------------------------------------------------

    def reconciliation_runs(self, *, providers: Collection[str] | None = None,
                            limit: int = 100) -> list[ReconciliationRun]:
        """The recorded runs (newest first) with their counts; with *providers*, only
        runs that read lines of (or found differences for) those accounts."""
        t, lines = reconciliation_results.c, settlement_lines.c
        with self._begin() as conn:
            line_q = sa.select(lines.run_key, sa.func.count(), sa.func.min(lines.created_at))
            diff_q = sa.select(
                t.run_key, sa.func.count(),
                sa.func.sum(sa.case((t.resolved.is_(False), 1), else_=0)),
                sa.func.sum(sa.case((t.healed.is_(True), 1), else_=0)),
                sa.func.min(t.created_at))
            if providers is not None:
                line_q = line_q.where(lines.provider.in_(sorted(providers)))
                diff_q = diff_q.where(t.provider.in_(sorted(providers)))
            counted = {k: (int(n), at) for k, n, at in
                       conn.execute(line_q.group_by(lines.run_key))}
            diffs = {k: (int(n), int(u or 0), int(h or 0), at) for k, n, u, h, at in
                     conn.execute(diff_q.group_by(t.run_key))}
        runs = []
        for key in set(counted) | set(diffs):
            n_lines, line_at = counted.get(key, (0, None))
            n, unresolved, healed, diff_at = diffs.get(key, (0, 0, 0, None))
            started = min((x for x in (line_at, diff_at) if x is not None), default=None)
            runs.append(ReconciliationRun(key, n_lines, n, unresolved, healed,
                                          opt_from_db(started)))
        runs.sort(key=lambda r: (r.started_at is not None, r.started_at, r.run_key),
                  reverse=True)
        return runs[:limit]

    def differences(self, run_key: str, query: DifferenceQuery | None = None, *,
                    providers: Collection[str] | None = None, after_id: int = 0,
                    limit: int = 100) -> list[Difference]:
        """The differences of *run_key* matching *query*, by id above *after_id*
        (keyset), each with how an operator resolved it."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError(f"must be 1 to {MAX_PAGE}", field="limit")
        query = query or DifferenceQuery()
        t, res = reconciliation_results.c, reconciliation_resolutions.c
        where: list[sa.ColumnElement[bool]] = [t.run_key == run_key, t.id > after_id]
        if query.category:
            where.append(t.category == query.category)
        if query.provider:
            where.append(t.provider == query.provider)
        if query.state:
            where.append(t.resolved.is_(query.state == "resolved"))
        if providers is not None:
            where.append(t.provider.in_(sorted(providers)))
        select = (sa.select(t.id, t.run_key, t.item_key, t.provider, t.category, t.line_no,
                            t.payment_id, t.provider_reference, t.order_reference, t.expected,
                            t.actual, t.detail, t.resolved, t.healed, res.action, res.operator,
                            res.note, res.at, res.refund_id)
                  .select_from(reconciliation_results.outerjoin(
                      reconciliation_resolutions, res.result_id == t.id))
                  .where(*where).order_by(t.id).limit(limit))
        with self._begin() as conn:
            return [Difference(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
                               r[10], r[11], bool(r[12]), bool(r[13]), r[14], r[15],
                               r[16] or "", opt_from_db(r[17]), r[18])
                    for r in conn.execute(select)]

    def difference(self, result_id: int) -> Difference:
        """One difference by its id (``NotFoundError`` when there is none)."""
        with self._begin() as conn:
            key = conn.scalar(sa.select(reconciliation_results.c.run_key)
                              .where(reconciliation_results.c.id == result_id))
        if key is None:
            raise NotFoundError(f"difference {result_id} not found")
        found = self.differences(key, after_id=result_id - 1, limit=1)
        if not found or found[0].id != result_id:  # pragma: no cover - read just now
            raise NotFoundError(f"difference {result_id} not found")
        return found[0]

    def resolve_difference(self, result_id: int, *, action: str, operator: str,
                           note: str = "", refund_id: str | None = None,
                           at: datetime | None = None) -> Difference:
        """Record that *operator* resolved difference *result_id* by *action* (one of
        :data:`RESOLUTIONS`; ``accepted`` needs a *note*), and mark it resolved, in one
        transaction. A difference is resolved once: a second time is refused."""
        if action not in RESOLUTIONS:
            raise ValidationError(f"must be one of {', '.join(RESOLUTIONS)}", field="action")
        if action == "accepted" and not note.strip():
            raise ValidationError("accepting a difference needs a note saying why",
                                  field="note")
        if not operator:
            raise ValidationError("must name the operator", field="operator")
        when = to_db(at, "at") if at is not None else utc_now()
        t = reconciliation_results.c
        with self._begin(write=True) as conn:
            row = conn.execute(sa.select(t.run_key, t.resolved).where(t.id == result_id)
                               ).first()
            if row is None:
                raise NotFoundError(f"difference {result_id} not found")
            done = conn.scalar(sa.select(reconciliation_resolutions.c.action)
                               .where(reconciliation_resolutions.c.result_id == result_id))
            if done is not None:
                raise ValidationError(f"difference {result_id} was resolved already "
                                      f"({done})", field="result_id")
            conn.execute(sa.insert(reconciliation_resolutions).values(
                result_id=result_id, run_key=row[0], action=action, note=note.strip(),
                operator=operator, refund_id=refund_id, at=when))
            conn.execute(sa.update(reconciliation_results).where(t.id == result_id)
                         .values(resolved=True,
                                 **({"healed": True} if action == "healed" else {})))
        return self.difference(result_id)

