"""The store's reads and writes for watching pasarela: the alerts' inputs, the alerts'
state and history, and the gauges ``/metrics`` needs from the store.

Every read has a cost bounded by something other than the size of the payments
table, through an index:

- :func:`outcomes`: payments created in a time window, by primary key range (a
  payment's id is a ULID that starts with its creation time): the window's payments;
- :func:`open_payments` (and :func:`scrape`): the partial index of the open payments
  alone (``ix_payments_open``), whose size the expiry sweep keeps bounded;
- :func:`waiting`: the pending payments only (``ix_payments_status_*``, led by
  ``status``);
- :func:`last_notifications`: one index probe per account (``ix_webhook_deliveries_
  provider_received_at``, newest first);
- :func:`overdue_unknowns`: the unknown payments only (``ix_payments_status_next_check_at``);
- :func:`unresolved_differences`: the unresolved differences only
  (``ix_reconciliation_results_resolved_provider``);
- the ``alerts`` table: the open alerts (``ix_alerts_open``) and a page of history.

Datetimes come out timezone-aware, in UTC; no SQLAlchemy value leaves the module.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Final, NamedTuple

import sqlalchemy as sa
from ulid import ULID

from pasarela.lifecycle import Status
from pasarela.store._rows import from_db, to_db
from pasarela.store.reconcile_schema import reconciliation_results
from pasarela.store.schema import alerts, outbox, payments, webhook_deliveries


if TYPE_CHECKING:
    from pasarela.store.repository import Store


__all__ = [
    "OPEN_STATUSES",
    "AlertRow",
    "Count",
    "NewAlert",
    "Outcome",
    "Scrape",
    "TrendRow",
    "Waiting",
    "alert_history",
    "close_alerts",
    "last_notifications",
    "open_alerts",
    "open_payments",
    "outcomes",
    "overdue_unknowns",
    "record_alerts",
    "scrape",
    "touch_alerts",
    "trend_rows",
    "unresolved_differences",
    "waiting",
]

#: The statuses of a payment still waiting for an outcome.
OPEN_STATUSES: Final = (Status.PENDING.value, Status.PROCESSING.value, Status.UNKNOWN.value)


class Outcome(NamedTuple):
    merchant: str
    provider: str
    method: str
    status: str
    payments: int


class Waiting(NamedTuple):
    """Open payments of one account created before a time: how many, the oldest."""

    merchant: str
    provider: str
    payments: int
    oldest: datetime


class Count(NamedTuple):
    merchant: str
    subject: str
    payments: int
    oldest: datetime | None


class AlertRow(NamedTuple):
    id: int
    merchant: str
    kind: str
    subject: str
    severity: str
    value: float
    threshold: float
    message: str
    started_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


def _ulid_floor(at: datetime) -> str:
    ms = max(0, int(at.timestamp() * 1000))
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + bytes(10)))


def outcomes(store: Store, *, since: datetime, until: datetime) -> list[Outcome]:
    """Payments created in ``[since, until)`` per merchant, account, method and status
    (by id range: the primary key serves the window)."""
    query = (sa.select(payments.c.merchant, payments.c.provider, payments.c.method,
                       payments.c.status, sa.func.count())
             .where(payments.c.id >= _ulid_floor(since), payments.c.id < _ulid_floor(until))
             .group_by(payments.c.merchant, payments.c.provider, payments.c.method,
                       payments.c.status))
    with store.read_transaction() as conn:
        return [Outcome(m, p, me, s, int(n)) for m, p, me, s, n in conn.execute(query)]


def waiting(store: Store, *, before: datetime) -> list[Waiting]:
    """Pending payments with a provider reference (the provider has them) created
    before *before*, per merchant and account."""
    query = (sa.select(payments.c.merchant, payments.c.provider, sa.func.count(),
                       sa.func.min(payments.c.created_at))
             .where(payments.c.status == Status.PENDING.value,
                    payments.c.provider_reference.is_not(None),
                    payments.c.created_at < to_db(before, "before"))
             .group_by(payments.c.merchant, payments.c.provider))
    with store.read_transaction() as conn:
        return [Waiting(m, p, int(n), from_db(oldest)) for m, p, n, oldest in conn.execute(query)]


def last_notifications(store: Store, accounts: Iterable[str]) -> dict[str, datetime | None]:
    """When each account last sent a notification that was taken (any outcome but
    ``rejected``); None for one that never did. One index probe per account."""
    out: dict[str, datetime | None] = {}
    with store.read_transaction() as conn:
        for account in sorted(set(accounts)):
            at = conn.execute(
                sa.select(webhook_deliveries.c.received_at)
                .where(webhook_deliveries.c.provider == account,
                       webhook_deliveries.c.outcome != "rejected")
                .order_by(webhook_deliveries.c.received_at.desc()).limit(1)).scalar()
            out[account] = None if at is None else from_db(at)
    return out


def overdue_unknowns(store: Store, *, min_checks: int) -> list[Count]:
    """Unknown payments asked about at least *min_checks* times (the resolver's whole
    schedule), per merchant and account, with the oldest's creation time."""
    query = (sa.select(payments.c.merchant, payments.c.provider, sa.func.count(),
                       sa.func.min(payments.c.created_at))
             .where(payments.c.status == Status.UNKNOWN.value,
                    payments.c.check_attempts >= min_checks)
             .group_by(payments.c.merchant, payments.c.provider))
    with store.read_transaction() as conn:
        return [Count(m, p, int(n), None if o is None else from_db(o))
                for m, p, n, o in conn.execute(query)]


def unresolved_differences(store: Store) -> list[tuple[str, int]]:
    """``(account, count)`` of reconciliation differences no one resolved yet."""
    query = (sa.select(reconciliation_results.c.provider, sa.func.count())
             .where(reconciliation_results.c.resolved.is_(False))
             .group_by(reconciliation_results.c.provider))
    with store.read_transaction() as conn:
        return [(p, int(n)) for p, n in conn.execute(query)]


_OPEN: Final = (sa.select(payments.c.merchant, payments.c.provider, payments.c.method,
                          payments.c.status, sa.func.count())
                # literal, the partial index's own condition, so the planner takes it
                .where(sa.text("status IN ('pending', 'processing', 'unknown')"))
                .group_by(payments.c.merchant, payments.c.provider, payments.c.method,
                          payments.c.status))
_LAG: Final = (sa.select(sa.func.count(), sa.func.min(outbox.c.created_at))
               .where(outbox.c.dispatched_at.is_(None)))


def open_payments(store: Store) -> list[Outcome]:
    """Open payments (pending, processing, unknown) per merchant, account, method and
    status: the ``/metrics`` gauge."""
    with store.read_transaction() as conn:
        return [Outcome(m, p, me, s, int(n)) for m, p, me, s, n in conn.execute(_OPEN)]


class Scrape(NamedTuple):
    """What one ``/metrics`` scrape reads from the store."""

    open_payments: list[Outcome]
    #: Undispatched lifecycle events, and the age in seconds of the oldest.
    outbox_events: int
    outbox_age: float
    alerts: list[AlertRow]


def scrape(store: Store, *, now: datetime) -> Scrape:
    """The gauges of ``/metrics``, in one read transaction, each by an index: the open
    payments (``ix_payments_status_*``), the outbox backlog (``ix_outbox_pending``),
    the alerts firing (``ix_alerts_open``)."""
    with store.read_transaction() as conn:
        waiting = [Outcome(m, p, me, s, int(n)) for m, p, me, s, n in conn.execute(_OPEN)]
        count, oldest = conn.execute(_LAG).one()
        firing = [_row(r) for r in conn.execute(_FIRING)]
    age = 0.0 if not count or oldest is None else max(0.0, (now - from_db(oldest))
                                                        .total_seconds())
    return Scrape(waiting, int(count or 0), age, firing)


class TrendRow(NamedTuple):
    """One payment, as the console's trends count it."""

    provider: str
    method: str
    network: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    amount_minor: int
    currency: str
    #: The fee routing expected (minor units of *currency*), when it said one.
    fee_minor: int | None


def trend_rows(store: Store, *, merchant: str, since: datetime, until: datetime,
               limit: int) -> list[TrendRow]:
    """*merchant*'s payments created in ``[since, until)``, at most *limit* of them
    (the newest), by ``ix_payments_merchant_created_at``: the window's rows only."""
    query = (sa.select(payments.c.provider, payments.c.method, payments.c.network,
                       payments.c.status, payments.c.created_at, payments.c.updated_at,
                       payments.c.expires_at, payments.c.amount_minor, payments.c.currency,
                       payments.c.routing)
             .where(payments.c.merchant == merchant,
                    payments.c.created_at >= to_db(since, "since"),
                    payments.c.created_at < to_db(until, "until"))
             .order_by(payments.c.created_at.desc()).limit(limit))
    out = []
    with store.read_transaction() as conn:
        for p, m, n, st, c, u, e, minor, cur, routing in conn.execute(query):
            fee = (routing or {}).get("expected_fee") if isinstance(routing, dict) else None
            fee_minor = (int(fee["minor"]) if isinstance(fee, dict) and fee.get("currency") == cur
                         and isinstance(fee.get("minor"), int | str) else None)
            out.append(TrendRow(p, m, n, st, from_db(c), from_db(u),
                                None if e is None else from_db(e), int(minor), cur, fee_minor))
    return out


# --- alert state ------------------------------------------------------------------------

_COLUMNS: Final = (alerts.c.id, alerts.c.merchant, alerts.c.kind, alerts.c.subject,
                   alerts.c.severity, alerts.c.value, alerts.c.threshold, alerts.c.message,
                   alerts.c.started_at, alerts.c.last_seen_at, alerts.c.resolved_at)


def _row(r: Sequence[object]) -> AlertRow:
    resolved = r[10]
    return AlertRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),  # type: ignore[call-overload]
                    float(r[5]), float(r[6]), str(r[7]),  # type: ignore[arg-type]
                    from_db(r[8]), from_db(r[9]),  # type: ignore[arg-type]
                    None if resolved is None else from_db(resolved))  # type: ignore[arg-type]


_FIRING: Final = (sa.select(*_COLUMNS).where(alerts.c.resolved_at.is_(None))
                  .order_by(alerts.c.started_at, alerts.c.id))


def open_alerts(store: Store, *, merchant: str | None = None) -> list[AlertRow]:
    """The alerts firing now (of *merchant* only, when given), oldest first."""
    where: list[sa.ColumnElement[bool]] = [alerts.c.resolved_at.is_(None)]
    if merchant is not None:
        where.append(alerts.c.merchant == merchant)
    query = sa.select(*_COLUMNS).where(*where).order_by(alerts.c.started_at, alerts.c.id)
    with store.read_transaction() as conn:
        return [_row(r) for r in conn.execute(query)]


def alert_history(store: Store, *, merchant: str | None = None, limit: int = 100
                  ) -> list[AlertRow]:
    """The *limit* alerts that started last (firing or resolved), newest first."""
    query = sa.select(*_COLUMNS)
    if merchant is not None:
        query = query.where(alerts.c.merchant == merchant)
    query = query.order_by(alerts.c.started_at.desc(), alerts.c.id.desc()).limit(limit)
    with store.read_transaction() as conn:
        return [_row(r) for r in conn.execute(query)]


class NewAlert(NamedTuple):
    merchant: str
    kind: str
    subject: str
    severity: str
    value: float
    threshold: float
    message: str


def record_alerts(store: Store, fired: Collection[NewAlert], *, now: datetime
                  ) -> list[AlertRow]:
    """Open one alert per *fired* (none already open for its merchant, kind and
    subject: those are skipped); the rows opened."""
    at = to_db(now, "now")
    out: list[AlertRow] = []
    with store.transaction() as conn:
        for item in fired:
            exists = conn.execute(
                sa.select(alerts.c.id).where(
                    alerts.c.resolved_at.is_(None), alerts.c.merchant == item.merchant,
                    alerts.c.kind == item.kind, alerts.c.subject == item.subject)).first()
            if exists is not None:
                continue
            new_id = conn.execute(alerts.insert().values(
                merchant=item.merchant, kind=item.kind, subject=item.subject,
                severity=item.severity, value=item.value, threshold=item.threshold,
                message=item.message, started_at=at, last_seen_at=at,
                resolved_at=None)).inserted_primary_key[0]  # type: ignore[index]
            out.append(AlertRow(int(new_id), item.merchant, item.kind, item.subject,
                                item.severity, item.value, item.threshold, item.message,
                                now, now, None))
    return out


def touch_alerts(store: Store, seen: Collection[tuple[int, float, str]], *, now: datetime
                 ) -> None:
    """Alerts still firing: ``(id, value, message)`` as last seen."""
    if not seen:
        return
    at = to_db(now, "now")
    with store.transaction() as conn:
        for alert_id, value, message in seen:
            conn.execute(alerts.update().where(alerts.c.id == alert_id,
                                               alerts.c.resolved_at.is_(None))
                         .values(value=value, message=message, last_seen_at=at))


def close_alerts(store: Store, ids: Collection[int], *, now: datetime) -> int:
    """Resolve the open alerts *ids*; how many were still open."""
    if not ids:
        return 0
    with store.transaction() as conn:
        result = conn.execute(alerts.update().where(alerts.c.id.in_(sorted(ids)),
                                                    alerts.c.resolved_at.is_(None))
                              .values(resolved_at=to_db(now, "now")))
    return int(result.rowcount)
