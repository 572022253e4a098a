"""Every read the rest of pasarela makes of the store's tables, besides the
:class:`~pasarela.store.Store` methods: the metrics (``/metrics``), the operator
dashboard, the worker's counts and late-refund candidates, routing health, and the
reconciliation reports (differences, run totals, costs, the references a
settlement search asks for). The matching engine's own reads and writes are in
:mod:`pasarela.store.settlements`.

Each function is one read transaction (the streaming ones hold theirs while the
caller iterates) and answers plain values: no table, column or SQLAlchemy row
crosses this module. Datetimes come out timezone-aware, in UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import sqlalchemy as sa
from ulid import ULID

from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.registry import MERCHANT_SEPARATOR, qualified
from pasarela.store._rows import CHECKED, from_db, to_db
from pasarela.store.reconcile_schema import reconciliation_results, settlement_lines
from pasarela.store.schema import (
    exchanges,
    outbox,
    payments,
    refunds,
    routing_decisions,
    transitions,
    webhook_deliveries,
)
from pasarela.store.sealing import opened_order


if TYPE_CHECKING:
    from pasarela.store.repository import Store


__all__ = [
    "Attention",
    "CostPayment",
    "Dashboard",
    "EvidenceRows",
    "ForOperator",
    "LatencyTotals",
    "Metrics",
    "OperatorList",
    "PaymentCount",
    "RecentPayment",
    "Rejection",
    "ResultRow",
    "RoutedOrder",
    "RunCounts",
    "Silence",
    "cost_payments",
    "dashboard",
    "due_for_check_count",
    "due_for_expiry_count",
    "due_refund_check_count",
    "evidence_rows",
    "metrics",
    "needing_operator",
    "payment_counts",
    "provider_latency",
    "provider_references",
    "refund_candidates",
    "rejected_counts",
    "result_rows",
    "routed_orders",
    "run_counts",
    "silent_providers",
]

#: Rows per fetch of the streaming reads (a server-side cursor on PostgreSQL).
_YIELD: Final = 2000


# --- payments by provider, method and status (metrics, routing health) --------------


class PaymentCount(NamedTuple):
    provider: str
    method: str
    status: str
    payments: int


def payment_counts(store: Store, *, created_since: datetime | None = None
                   ) -> list[PaymentCount]:
    """How many payments there are per provider, method and status; with
    *created_since*, of those created since then (chosen by id, a ULID that starts
    with its creation time, so the primary key serves the window)."""
    with store.read_transaction() as conn:
        return _payment_counts(conn, created_since)


def _payment_counts(conn: sa.Connection, created_since: datetime | None
                    ) -> list[PaymentCount]:
    query = (sa.select(payments.c.provider, payments.c.method, payments.c.status,
                       sa.func.count())
             .group_by(payments.c.provider, payments.c.method, payments.c.status))
    if created_since is not None:
        since_ms = max(0, int(created_since.timestamp() * 1000))
        query = query.where(
            payments.c.id >= str(ULID.from_bytes(since_ms.to_bytes(6, "big") + bytes(10))))
    return [PaymentCount(p, m, s, int(n)) for p, m, s, n in conn.execute(query)]


# --- metrics ----------------------------------------------------------------------


def rejected_counts(store: Store) -> dict[str, int]:
    """Webhook deliveries rejected (forged, stale, malformed), per provider."""
    with store.read_transaction() as conn:
        return _rejected_counts(conn)


def _rejected_counts(conn: sa.Connection) -> dict[str, int]:
    query = (sa.select(webhook_deliveries.c.provider, sa.func.count())
             .where(webhook_deliveries.c.outcome == "rejected")
             .group_by(webhook_deliveries.c.provider))
    return {provider: int(count) for provider, count in conn.execute(query)}


class LatencyTotals(NamedTuple):
    """Recorded provider calls of one provider and operation (of those read)."""

    provider: str
    operation: str
    #: The highest exchange id read (the next read starts after it).
    last_id: int
    calls: int
    seconds: float
    #: How many took at most each bucket's bound, in the order the bounds were given.
    buckets: tuple[int, ...]


def provider_latency(store: Store, *, after_id: int, bounds: Sequence[float]
                     ) -> list[LatencyTotals]:
    """Totals of the exchanges recorded with an id above *after_id*, per provider and
    operation, counted into the latency *bounds* (seconds)."""
    with store.read_transaction() as conn:
        return _provider_latency(conn, after_id, bounds)


def _provider_latency(conn: sa.Connection, after_id: int, bounds: Sequence[float]
                      ) -> list[LatencyTotals]:
    seconds = exchanges.c.duration_ms / 1000.0
    buckets = [sa.func.sum(sa.case((seconds <= bound, 1), else_=0)) for bound in bounds]
    query = (
        sa.select(exchanges.c.provider, exchanges.c.operation, sa.func.max(exchanges.c.id),
                  sa.func.count(), sa.func.sum(seconds), *buckets)
        .where(exchanges.c.id > after_id)
        .group_by(exchanges.c.provider, exchanges.c.operation)
    )
    return [LatencyTotals(provider, operation, int(last), int(count), float(total or 0.0),
                          tuple(int(c or 0) for c in counts))
            for provider, operation, last, count, total, *counts in conn.execute(query)]


class Metrics(NamedTuple):
    payments: list[PaymentCount]
    rejected: dict[str, int]
    latency: list[LatencyTotals]


def metrics(store: Store, *, exchanges_after: int, bounds: Sequence[float]) -> Metrics:
    """:func:`payment_counts`, :func:`rejected_counts` and :func:`provider_latency`,
    in one read transaction (one scrape of ``/metrics``)."""
    with store.read_transaction() as conn:
        return Metrics(_payment_counts(conn, None), _rejected_counts(conn),
                       _provider_latency(conn, exchanges_after, bounds))


# --- the dashboard ----------------------------------------------------------------


class RecentPayment(NamedTuple):
    provider: str
    method: str
    status: str
    created_at: datetime
    updated_at: datetime
    amount_minor: int
    currency: str
    routing: Mapping[str, Any] | None


class Attention(NamedTuple):
    """A payment someone may need to look at (unknown, or pending too long)."""

    id: str
    provider: str
    method: str
    status: str
    created_at: datetime
    order_reference: str
    check_attempts: int


class Rejection(NamedTuple):
    provider: str
    detail: str
    received_at: datetime


class Dashboard(NamedTuple):
    recent: list[RecentPayment]
    attention: list[Attention]
    rejections: list[Rejection]


def _merchant_accounts(column: sa.ColumnElement[str], merchant: str
                       ) -> sa.ColumnElement[bool]:
    """*column* (an account's full name) is one of *merchant*'s accounts."""
    if merchant:
        return column.startswith(qualified(merchant, ""), autoescape=True)
    return ~column.contains(MERCHANT_SEPARATOR, autoescape=True)


def dashboard(store: Store, *, since: datetime, stale_before: datetime,
              attention_limit: int = 50, rejections_limit: int = 20,
              merchant: str = "") -> Dashboard:
    """In one read transaction, of *merchant*'s payments and accounts only (``""``:
    the implicit merchant's): the payments created since *since*; the unknown
    payments and those pending since before *stale_before* (oldest first); the
    latest rejected webhook deliveries (newest first)."""
    recent = (
        sa.select(payments.c.provider, payments.c.method, payments.c.status,
                  payments.c.created_at, payments.c.updated_at, payments.c.amount_minor,
                  payments.c.currency, payments.c.routing)
        .where(payments.c.merchant == merchant,
               payments.c.created_at >= to_db(since, "since"))
    )
    attention = (
        sa.select(payments.c.id, payments.c.provider, payments.c.method, payments.c.status,
                  payments.c.created_at, payments.c.order_reference, payments.c.check_attempts)
        .where(payments.c.merchant == merchant,
               sa.or_(payments.c.status == Status.UNKNOWN.value,
                      sa.and_(payments.c.status == Status.PENDING.value,
                              payments.c.created_at < to_db(stale_before, "stale_before"))))
        .order_by(payments.c.created_at)
        .limit(attention_limit)
    )
    rejections = (
        sa.select(webhook_deliveries.c.provider, webhook_deliveries.c.detail,
                  webhook_deliveries.c.received_at)
        .where(webhook_deliveries.c.outcome == "rejected",
               _merchant_accounts(webhook_deliveries.c.provider, merchant))
        .order_by(webhook_deliveries.c.received_at.desc(), webhook_deliveries.c.id.desc())
        .limit(rejections_limit)
    )
    with store.read_transaction() as conn:
        return Dashboard(
            recent=[RecentPayment(p, m, s, from_db(c), from_db(u), int(a), cur, r)
                    for p, m, s, c, u, a, cur, r in conn.execute(recent)],
            attention=[Attention(i, p, m, s, from_db(c), o, int(n))
                       for i, p, m, s, c, o, n in conn.execute(attention)],
            rejections=[Rejection(p, d, from_db(at)) for p, d, at in conn.execute(rejections)],
        )


# --- the worker -------------------------------------------------------------------


def _count(store: Store, *where: sa.ColumnElement[bool]) -> int:
    query = sa.select(sa.func.count()).select_from(payments).where(*where)
    with store.read_transaction() as conn:
        return int(conn.execute(query).scalar_one())


def due_for_expiry_count(store: Store, *, now: datetime) -> int:
    """How many payments :meth:`Store.due_for_expiry` would hand out at *now* (those
    other workers hold are not counted)."""
    at = to_db(now, "now")
    return _count(store, payments.c.status == Status.PENDING.value, payments.c.expires_at <= at,
                  sa.or_(payments.c.claimed_until.is_(None), payments.c.claimed_until <= at))


def due_for_check_count(store: Store, *, now: datetime) -> int:
    """How many payments :meth:`Store.due_for_check` would hand out at *now*."""
    at = to_db(now, "now")
    return _count(store, payments.c.status.in_(CHECKED),
                  payments.c.next_check_at <= at)


def due_refund_check_count(store: Store, *, now: datetime) -> int:
    """How many refunds :meth:`Store.due_refund_checks` would hand out at *now*."""
    query = (sa.select(sa.func.count()).select_from(refunds)
             .where(refunds.c.status == RefundStatus.PENDING.value,
                    refunds.c.next_check_at <= to_db(now, "now")))
    with store.read_transaction() as conn:
        return int(conn.execute(query).scalar_one())


# --- what needs an operator (doctor, dashboard) --------------------------------------


class ForOperator(NamedTuple):
    """An unknown payment or a pending refund the resolver has asked about through its
    whole schedule without an answer (or whose provider cannot be asked)."""

    #: ``payment`` or ``refund``.
    kind: str
    #: The payment's id, or the refund's.
    id: str
    payment_id: str
    provider: str
    status: str
    created_at: datetime
    check_attempts: int
    next_check_at: datetime | None


class OperatorList(NamedTuple):
    """How many there are, and the oldest of them (oldest first)."""

    total: int
    oldest: list[ForOperator]


def needing_operator(store: Store, *, min_checks: int, limit: int = 10,
                     merchant: str | None = None) -> tuple[OperatorList, OperatorList]:
    """``(payments, refunds)`` needing an operator, in one read transaction: unknown
    payments and pending refunds asked about at least *min_checks* times (the engine
    says how many exhaust the resolver's schedule), each with its *limit* oldest; of
    *merchant*'s payments only when given."""
    mine = sa.true() if merchant is None else payments.c.merchant == merchant
    unknown = sa.and_(payments.c.status == Status.UNKNOWN.value,
                      payments.c.check_attempts >= min_checks, mine)
    stuck = sa.and_(refunds.c.status == RefundStatus.PENDING.value,
                    refunds.c.check_attempts >= min_checks, mine)
    joined = refunds.join(payments, refunds.c.payment_id == payments.c.id)
    with store.read_transaction() as conn:
        paid_count = conn.execute(sa.select(sa.func.count()).select_from(payments)
                                  .where(unknown)).scalar_one()
        paid = conn.execute(
            sa.select(payments.c.id, payments.c.id, payments.c.provider, payments.c.status,
                      payments.c.created_at, payments.c.check_attempts,
                      payments.c.next_check_at)
            .where(unknown).order_by(payments.c.created_at, payments.c.id).limit(limit))
        payment_rows = [ForOperator("payment", i, p, prov, st, from_db(c), int(n),
                                    None if at is None else from_db(at))
                        for i, p, prov, st, c, n, at in paid]
        refund_count = conn.execute(sa.select(sa.func.count()).select_from(joined)
                                    .where(stuck)).scalar_one()
        held = conn.execute(
            sa.select(refunds.c.id, refunds.c.payment_id, payments.c.provider,
                      refunds.c.status, refunds.c.created_at, refunds.c.check_attempts,
                      refunds.c.next_check_at)
            .select_from(joined).where(stuck)
            .order_by(refunds.c.created_at, refunds.c.id).limit(limit))
        refund_rows = [ForOperator("refund", i, p, prov, st, from_db(c), int(n),
                                   None if at is None else from_db(at))
                       for i, p, prov, st, c, n, at in held]
    return (OperatorList(int(paid_count), payment_rows),
            OperatorList(int(refund_count), refund_rows))


def refund_candidates(store: Store, *, providers: Collection[str], announced_by: str,
                      max_failed: int, limit: int) -> list[tuple[str, int]]:
    """``(payment id, failed refunds)`` of the succeeded payments of *providers* that
    an outbox event of type *announced_by* announced, with no refund pending or
    done and fewer than *max_failed* failed ones; least recently updated first."""
    in_flight = sa.select(refunds.c.id).where(
        refunds.c.payment_id == payments.c.id,
        refunds.c.status.in_([RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value]),
    ).exists()
    failed = sa.select(sa.func.count()).where(
        refunds.c.payment_id == payments.c.id, refunds.c.status == RefundStatus.FAILED.value,
    ).scalar_subquery()
    announced = sa.select(outbox.c.id).where(
        outbox.c.payment_id == payments.c.id, outbox.c.type == announced_by,
    ).exists()
    query = (
        sa.select(payments.c.id, failed)
        .where(payments.c.status == Status.SUCCEEDED.value,
               payments.c.provider.in_(sorted(providers)), announced, ~in_flight,
               failed < max_failed)
        .order_by(payments.c.updated_at, payments.c.id)
        .limit(limit)
    )
    with store.read_transaction() as conn:
        return [(str(pid), int(count)) for pid, count in conn.execute(query)]


# --- reconciliation reports -------------------------------------------------------


class ResultRow(NamedTuple):
    """A difference a reconciliation run recorded (``reconciliation_results``)."""

    id: int
    category: str
    provider: str
    item_key: str
    line_no: int | None
    payment_id: str | None
    provider_reference: str | None
    order_reference: str | None
    expected: str
    actual: str
    detail: str
    resolved: bool
    healed: bool


_RESULT_COLUMNS: Final = tuple(reconciliation_results.c[name] for name in ResultRow._fields)


def result_rows(store: Store, run_key: str, *, after_id: int = 0, limit: int = 1000
                ) -> list[ResultRow]:
    """The differences recorded for *run_key* with an id above *after_id*, by id (a
    keyset page: pass the last id for the next)."""
    t = reconciliation_results
    query = (sa.select(*_RESULT_COLUMNS).where(t.c.run_key == run_key, t.c.id > after_id)
             .order_by(t.c.id).limit(limit))
    with store.read_transaction() as conn:
        return [ResultRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                          bool(r[11]), bool(r[12])) for r in conn.execute(query)]


class RunCounts(NamedTuple):
    #: ``(category, provider, lines)`` of the run's settlement lines.
    lines: list[tuple[str, str, int]]
    #: The run's differences per category.
    results: dict[str, int]
    unresolved: int
    healed: int


def run_counts(store: Store, run_key: str) -> RunCounts:
    """What was recorded for *run_key* (all its runs together), in one transaction."""
    lines = settlement_lines
    t = reconciliation_results

    def count(*where: sa.ColumnElement[bool]) -> Any:
        return sa.select(sa.func.count()).select_from(t).where(t.c.run_key == run_key, *where)

    with store.read_transaction() as conn:
        by_category = [(str(c), str(p), int(n)) for c, p, n in conn.execute(
            sa.select(lines.c.category, lines.c.provider, sa.func.count())
            .where(lines.c.run_key == run_key)
            .group_by(lines.c.category, lines.c.provider))]
        results = {str(c): int(n) for c, n in conn.execute(
            sa.select(t.c.category, sa.func.count()).where(t.c.run_key == run_key)
            .group_by(t.c.category))}
        return RunCounts(
            lines=by_category,
            results=results,
            unresolved=int(conn.scalar(count(t.c.resolved.is_(False))) or 0),
            healed=int(conn.scalar(count(t.c.healed.is_(True))) or 0),
        )


class CostPayment(NamedTuple):
    provider: str
    method: str
    currency: str
    status: str
    amount_minor: int
    created_at: datetime
    routing: Mapping[str, Any] | None
    #: The fee a settlement line (not a duplicate) gave for the payment, if any.
    actual_fee: int | None


def _window(since: datetime, until: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (payments.c.created_at >= to_db(since, "since"),
            payments.c.created_at < to_db(until, "until"))


def _stream(store: Store, query: sa.Select[Any]) -> Iterator[Sequence[Any]]:
    with store.read_transaction() as conn:
        yield from conn.execution_options(yield_per=_YIELD).execute(query)


def cost_payments(store: Store, since: datetime, until: datetime) -> Iterator[CostPayment]:
    """Every payment created in ``[since, until)`` with the fee its settlement lines
    charged; streamed (the read transaction stays open while the caller iterates)."""
    actual = (sa.select(settlement_lines.c.payment_id,
                        sa.func.max(settlement_lines.c.fee_minor).label("fee"))
              .where(settlement_lines.c.payment_id.is_not(None),
                     settlement_lines.c.fee_minor.is_not(None),
                     settlement_lines.c.category != "duplicate")
              .group_by(settlement_lines.c.payment_id).subquery())
    query = (sa.select(payments.c.provider, payments.c.method, payments.c.currency,
                       payments.c.status, payments.c.amount_minor, payments.c.created_at,
                       payments.c.routing, actual.c.fee)
             .select_from(payments.outerjoin(actual, actual.c.payment_id == payments.c.id))
             .where(*_window(since, until)))
    for p, m, cur, s, a, c, r, fee in _stream(store, query):
        yield CostPayment(p, m, cur, s, a, from_db(c), r, fee)


class RoutedOrder(NamedTuple):
    method: str
    currency: str
    routing: Mapping[str, Any] | None
    #: The order as stored (``Order.to_dict()``).
    order: Mapping[str, Any]
    created_at: datetime


def routed_orders(store: Store, since: datetime, until: datetime, *,
                  statuses: Collection[str]) -> Iterator[RoutedOrder]:
    """The payments created in ``[since, until)`` in one of *statuses* that keep
    their order; streamed, as :func:`cost_payments`."""
    query = (sa.select(payments.c.method, payments.c.currency, payments.c.routing,
                       payments.c.order, payments.c.personal, payments.c.created_at)
             .where(*_window(since, until), payments.c.status.in_(sorted(statuses)),
                    payments.c.order.is_not(None)))
    for m, cur, r, o, sealed, c in _stream(store, query):  # the personal part opened
        yield RoutedOrder(m, cur, r, opened_order(o, sealed, store.sealer) or {}, from_db(c))


def provider_references(store: Store, provider: str, *, created_from: datetime,
                        created_before: datetime, after: str = "", limit: int = 500
                        ) -> list[str]:
    """The distinct provider references above *after* (in order) of *provider*'s
    payments created in ``[created_from, created_before)``: a keyset page."""
    query = (sa.select(payments.c.provider_reference)
             .where(payments.c.provider == provider,
                    payments.c.provider_reference.is_not(None),
                    payments.c.provider_reference > after,
                    payments.c.created_at >= to_db(created_from, "created_from"),
                    payments.c.created_at < to_db(created_before, "created_before"))
             .group_by(payments.c.provider_reference)
             .order_by(payments.c.provider_reference).limit(limit))
    with store.read_transaction() as conn:
        return [str(r) for r in conn.scalars(query)]


# --- pending payments no webhook speaks for (pasarela doctor) -------------------------


class Silence(NamedTuple):
    """A provider with payments pending past its notification delay and no webhook
    received since the oldest of them was created."""

    provider: str
    pending: int
    oldest: datetime
    last_delivery: datetime | None


def silent_providers(store: Store, delays: Mapping[str, float], *, now: datetime
                     ) -> list[Silence]:
    """For each provider in *delays* (seconds it normally takes to notify), the pending
    payments older than that delay, when no delivery from it arrived since the oldest
    was created: the sign of a callback URL not configured at the provider."""
    out: list[Silence] = []
    with store.read_transaction() as conn:
        for provider, delay in sorted(delays.items()):
            before = to_db(now, "now") - timedelta(seconds=delay)
            pending = conn.execute(
                sa.select(sa.func.count(), sa.func.min(payments.c.created_at))
                .where(payments.c.provider == provider,
                       payments.c.status == Status.PENDING.value,
                       payments.c.created_at <= before)
            ).one()
            if not pending[0]:
                continue
            oldest = from_db(pending[1])
            last = conn.scalar(sa.select(sa.func.max(webhook_deliveries.c.received_at))
                               .where(webhook_deliveries.c.provider == provider))
            last_at = from_db(last) if last is not None else None
            if last_at is None or last_at < oldest:
                out.append(Silence(provider, int(pending[0]), oldest, last_at))
    return out


# --- the cost analysis's reads (pasarela costs) ------------------------------------


class CostRefund(NamedTuple):
    """A refund that went through, with its payment's provider and method."""

    provider: str
    method: str
    currency: str
    amount_minor: int
    created_at: datetime


def cost_refunds(store: Store, since: datetime, until: datetime) -> list[CostRefund]:
    """The refunds created in ``[since, until)`` that succeeded (what a provider
    charges a refund fee for)."""
    query = (sa.select(payments.c.provider, payments.c.method, refunds.c.currency,
                       refunds.c.amount_minor, refunds.c.created_at)
             .select_from(refunds.join(payments, payments.c.id == refunds.c.payment_id))
             .where(refunds.c.created_at >= to_db(since, "since"),
                    refunds.c.created_at < to_db(until, "until"),
                    refunds.c.status == RefundStatus.SUCCEEDED.value))
    with store.read_transaction() as conn:
        return [CostRefund(p, m, cur, int(a), from_db(c)) for p, m, cur, a, c in
                conn.execute(query)]


class CostDispute(NamedTuple):
    """A payment a settlement line reports charged back (once, whatever the runs)."""

    provider: str
    method: str
    currency: str
    #: The amount the line took back.
    amount_minor: int
    occurred_at: datetime


def cost_disputes(store: Store, since: datetime, until: datetime, *,
                  words: Collection[str]) -> list[CostDispute]:
    """The payments settlement lines report as charged back (a status in *words*,
    lower case) at a time in ``[since, until)``: one per payment, its largest amount
    and first date across reconciliation runs."""
    lines = (sa.select(settlement_lines.c.payment_id,
                       sa.func.max(settlement_lines.c.amount_minor).label("amount"),
                       sa.func.min(settlement_lines.c.occurred_at).label("at"))
             .where(settlement_lines.c.payment_id.is_not(None),
                    sa.func.lower(settlement_lines.c.status).in_(sorted(words)),
                    settlement_lines.c.occurred_at >= to_db(since, "since"),
                    settlement_lines.c.occurred_at < to_db(until, "until"))
             .group_by(settlement_lines.c.payment_id).subquery())
    query = (sa.select(payments.c.provider, payments.c.method, payments.c.currency,
                       lines.c.amount, lines.c.at)
             .select_from(lines.join(payments, payments.c.id == lines.c.payment_id)))
    with store.read_transaction() as conn:
        return [CostDispute(p, m, cur, int(a), from_db(at)) for p, m, cur, a, at in
                conn.execute(query)]


class OptimizeOrder(NamedTuple):
    provider: str
    method: str
    currency: str
    status: str
    amount_minor: int
    #: The order as stored (``Order.to_dict()``), None when not kept.
    order: Mapping[str, Any] | None
    created_at: datetime


def optimize_orders(store: Store, since: datetime, until: datetime) -> Iterator[OptimizeOrder]:
    """Every payment created in ``[since, until)`` with its provider, status and
    order (the personal part opened); streamed, as :func:`cost_payments`."""
    query = (sa.select(payments.c.provider, payments.c.method, payments.c.currency,
                       payments.c.status, payments.c.amount_minor, payments.c.order,
                       payments.c.personal, payments.c.created_at)
             .where(*_window(since, until)).order_by(payments.c.created_at, payments.c.id))
    for p, m, cur, s, a, o, sealed, c in _stream(store, query):
        opened = opened_order(o, sealed, store.sealer) if o is not None else None
        yield OptimizeOrder(p, m, cur, s, int(a), opened, from_db(c))


class CostAmount(NamedTuple):
    provider: str
    method: str
    currency: str
    status: str
    #: ``YYYY-MM`` of the creation time, in UTC.
    month: str
    amount_minor: int
    #: The fee a settlement line (not a duplicate) gave for the payment, if any.
    actual_fee: int | None
    #: The expected fee the routing decision stored, if any.
    stored_fee: int | None


def _utc_month(store: Store, column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    if store.engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM")
    return sa.func.strftime("%Y-%m", column)  # SQLite keeps UTC, as text


def cost_amounts(store: Store, since: datetime, until: datetime) -> Iterator[CostAmount]:
    """:func:`cost_payments` for a million rows: the month worked out by the database
    and the stored expected fee read from the routing decision there, so that no
    datetime or JSON document is built per payment; streamed."""
    actual = (sa.select(settlement_lines.c.payment_id,
                        sa.func.max(settlement_lines.c.fee_minor).label("fee"))
              .where(settlement_lines.c.payment_id.is_not(None),
                     settlement_lines.c.fee_minor.is_not(None),
                     settlement_lines.c.category != "duplicate")
              .group_by(settlement_lines.c.payment_id).subquery())
    stored = payments.c.routing[("expected_fee", "minor")].as_integer()
    query = (sa.select(payments.c.provider, payments.c.method, payments.c.currency,
                       payments.c.status, _utc_month(store, payments.c.created_at),
                       payments.c.amount_minor, actual.c.fee, stored)
             .select_from(payments.outerjoin(actual, actual.c.payment_id == payments.c.id))
             .where(*_window(since, until)))
    for row in _stream(store, query):
        yield CostAmount(*row)


# --- a payment's evidence (pasarela payments evidence) ---------------------------------


class EvidenceRows(NamedTuple):
    """What the store holds about one payment besides its model, each part oldest first,
    as plain dicts (column name: value; datetimes as the database returned them)."""

    #: Whether its order's personal data is sealed in the store.
    sealed: bool
    transitions: tuple[dict[str, Any], ...]
    deliveries: tuple[dict[str, Any], ...]
    decisions: tuple[dict[str, Any], ...]
    settlement_lines: tuple[dict[str, Any], ...]
    differences: tuple[dict[str, Any], ...]


def evidence_rows(store: Store, payment_id: str) -> EvidenceRows:
    """The transitions, webhook deliveries, routing decisions, settlement lines and
    reconciliation differences of *payment_id*, in one read transaction."""

    def rows(conn: sa.Connection, query: sa.Select[Any]) -> tuple[dict[str, Any], ...]:
        return tuple(dict(row._mapping) for row in conn.execute(query))

    with store.read_transaction() as conn:
        sealed = conn.execute(sa.select(payments.c.personal.is_not(None))
                              .where(payments.c.id == payment_id)).scalar()
        return EvidenceRows(
            sealed=bool(sealed),
            transitions=rows(conn, sa.select(transitions)
                             .where(transitions.c.payment_id == payment_id)
                             .order_by(transitions.c.seq)),
            deliveries=rows(conn, sa.select(webhook_deliveries)
                            .where(webhook_deliveries.c.payment_id == payment_id)
                            .order_by(webhook_deliveries.c.received_at,
                                      webhook_deliveries.c.id)),
            decisions=rows(conn, sa.select(routing_decisions)
                           .where(routing_decisions.c.payment_id == payment_id)
                           .order_by(routing_decisions.c.id)),
            settlement_lines=rows(conn, sa.select(settlement_lines)
                                  .where(settlement_lines.c.payment_id == payment_id)
                                  .order_by(settlement_lines.c.created_at,
                                            settlement_lines.c.id)),
            differences=rows(conn, sa.select(reconciliation_results)
                             .where(reconciliation_results.c.payment_id == payment_id)
                             .order_by(reconciliation_results.c.created_at,
                                       reconciliation_results.c.id)),
        )
