"""The durable store: SQLAlchemy Core over SQLite (WAL) or PostgreSQL (psycopg 3).

Every method is one short database transaction; none is held across network I/O.
The one function that changes a payment's status is :meth:`Store.transition`: it
checks the expected version (optimistic concurrency), bumps it, appends the
transition and writes the outbox event, all in the same transaction, together with
whatever evidence rows the caller passes (exchanges, a webhook delivery, a refund).

Datetimes go in and come out timezone-aware, in UTC (a naive datetime is refused).
Jobs that several processes may run at once claim rows: :meth:`Store.claim_outbox`,
:meth:`Store.due_for_expiry` and :meth:`Store.due_for_check` select with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (on SQLite, writers are serialised by
``BEGIN IMMEDIATE``) and push a lease forward in the same transaction, so another
worker does not take the same rows until the lease runs out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs
import sqlalchemy as sa
from ulid import ULID

from pasarela.errors import (
    ConcurrencyConflictError,
    ConfigurationError,
    IdempotencyConflictError,
    NotFoundError,
    ValidationError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import (
    Payment,
    Refund,
    RefundStatus,
    Transition,
)
from pasarela.money import Money
from pasarela.store.batch import WriteBatch
from pasarela.store.checkpoint import Checkpointer
from pasarela.store.driver import _bound, _driver_payments, _marks
from pasarela.store.engine import (
    SETTING,
    WRITE,
    create_engine,
    display_url,
    is_memory_sqlite,
    normalize_url,
)
from pasarela.store.rows import (
    _GET_PAYMENT,
    _INSERT_DECISION,
    _INSERT_DELIVERY,
    _INSERT_OUTBOX,
    _INSERT_TRANSITION,
    _LOCK_PAYMENT,
    _LOCK_PAYMENT_FOR_UPDATE,
    _NEXT_SEQ,
    _as_stored,
    _change_values,
    _default_payload,
    _delivery_values,
    _exchange_values,
    _from_db,
    _now,
    _payment_from_row,
    _payment_values,
    _Row,
    _to_db,
)
from pasarela.store.schema import (
    exchanges as exchanges_t,
)
from pasarela.store.schema import (
    outbox,
    payments,
    refunds,
    routing_decisions,
    transitions,
    webhook_deliveries,
)


if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


__all__ = ["Delivery", "OutboxEvent", "Store"]


@attrs.frozen(kw_only=True)
class Delivery:
    """A webhook delivery to record (``event_id`` None for a rejected one)."""

    provider: str
    event_id: str | None
    event_type: str | None
    outcome: str  # applied · ignored · unknown_payment · rejected · duplicate
    detail: str = ""
    payment_id: str | None = None


@attrs.frozen(kw_only=True)
class OutboxEvent:
    """A committed lifecycle event waiting to reach the observer hooks."""

    id: str
    payment_id: str
    type: str
    payload: Mapping[str, Any]
    created_at: datetime
    attempts: int

#: Columns :meth:`Store.update_payment` may change.
_UPDATABLE: Final = frozenset(
    {
        "provider",  # failover: the next candidate takes the same payment
        "provider_reference",
        "next_action",
        "expires_at",
        "routing",
        "next_check_at",
        "check_attempts",
        "error_code",
        "error_message",
    }
)
#: Columns the ``changes`` of :meth:`Store.transition` may set.
_TRANSITION_CHANGES: Final = _UPDATABLE | {"refunded_minor"}
#: Advisory lock key serialising concurrent ``upgrade()`` calls on PostgreSQL.
_MIGRATION_LOCK: Final = 0x70617361  # "pasa"

class Store:
    """Persistence for payments and their evidence. Thread-safe; one per process.

    With ``sqlite://`` (in memory) every call is serialised on the one connection;
    it suits tests and single-threaded scripts, not a server.
    """

    #: How long a claimed outbox event stays invisible to other dispatchers.
    outbox_lease: ClassVar[timedelta] = timedelta(seconds=30)
    #: How long a payment handed out by ``due_for_expiry``/``due_for_check`` stays
    #: invisible to other workers.
    job_lease: ClassVar[timedelta] = timedelta(seconds=30)

    def __init__(self, url: str, *, upgrade: bool | None = None) -> None:
        """Connect to *url* (``sqlite:///pasarela.db`` or ``postgresql+psycopg://...``).

        ``postgresql://`` URLs are rewritten to use psycopg 3. SQLite gets WAL mode,
        a busy timeout and foreign keys on every connection. *upgrade* runs the
        Alembic migrations to head; its default is True for SQLite (the embedded
        store upgrades itself) and False for PostgreSQL (``pasarela db upgrade``).
        """
        self._url = normalize_url(url)
        self._engine = create_engine(self._url)
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._create_stmt: Any = None
        self._bump_stmts: dict[tuple[str, ...], Any] = {}
        self._find_stmts: dict[tuple[str, ...], Any] = {}
        # SQLite has one writer at a time: queue this process's writers on a lock
        # instead of letting them spin on the busy timeout. In memory, one
        # connection is shared, so every call is serialised.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite else nullcontext()
        )
        self._read_lock: AbstractContextManager[Any] = (
            self._write_lock if is_memory_sqlite(self._url) else nullcontext()
        )
        self._checkpointer = (Checkpointer(self._engine)
                              if self._sqlite and not is_memory_sqlite(self._url) else None)
        try:
            with self._begin() as conn:
                conn.execute(sa.select(1))
            if upgrade if upgrade is not None else self._sqlite:
                self.upgrade()
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Store({display_url(self._url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for reports and maintenance; prefer the methods)."""
        return self._engine

    def upgrade(self) -> None:
        """Run Alembic migrations to head."""
        # Imported here: Alembic is only needed to migrate, not to `import pasarela`.
        from alembic import command  # noqa: PLC0415
        from alembic.config import Config  # noqa: PLC0415

        config = Config()
        location = str(Path(__file__).with_name("migrations"))
        config.set_main_option("script_location", location.replace("%", "%%"))
        with self._begin(write=True) as conn:
            if not self._sqlite:
                # Two `pasarela db upgrade` at once: the second waits, then finds head.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def ping(self) -> bool:
        try:
            with self._begin() as conn:
                conn.execute(sa.select(1))
        except (sa.exc.SQLAlchemyError, ConfigurationError):
            return False
        return True

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._engine.dispose()

    # --- transactions --------------------------------------------------------------

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """One transaction; ``BEGIN IMMEDIATE`` on SQLite when *write*."""
        with self._write_lock if write else self._read_lock:
            try:
                conn = self._engine.connect()
            except sa.exc.DBAPIError as exc:
                raise ConfigurationError(
                    f"cannot connect to {display_url(self._url)}: "
                    + " ".join(str(exc.orig).split()),
                    path=SETTING,
                ) from exc
            with conn:
                if write:
                    conn.execution_options(**{WRITE: True})
                try:
                    with conn.begin():
                        yield conn
                    if write and self._checkpointer is not None:
                        self._checkpointer.notify()
                except sa.exc.OperationalError as exc:
                    text = str(exc.orig).lower()
                    if "database is locked" in text or "database is busy" in text:
                        raise ConcurrencyConflictError(
                            "the database is busy (another process holds the write lock); "
                            "retry"
                        ) from exc
                    if "no such table" in text:
                        raise self._not_migrated() from exc
                    raise
                except sa.exc.ProgrammingError as exc:
                    if getattr(exc.orig, "sqlstate", None) == "42P01":  # undefined_table
                        raise self._not_migrated() from exc
                    raise

    def _not_migrated(self) -> ConfigurationError:
        return ConfigurationError(
            f"{display_url(self._url)} has no pasarela tables; run `pasarela db upgrade`",
            path=SETTING,
        )

    def _insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT with the dialect's ON CONFLICT clauses (imported on first use)."""
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

            return sqlite_insert(table)
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        return pg_insert(table)

    def _select_for_claim(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query if self._sqlite else query.with_for_update(skip_locked=True)

    def _claim(self, query: sa.Select[Any], *, lease: Mapping[str, Any]) -> list[_Row]:
        """Rows of *query* taken for this worker: selected (``FOR UPDATE SKIP LOCKED``
        on PostgreSQL) and their *lease* columns pushed forward, in one transaction,
        so concurrent workers never take the same rows."""
        table = query.get_final_froms()[0]
        assert isinstance(table, sa.Table)
        with self._begin(write=True) as conn:
            rows = list(conn.execute(self._select_for_claim(query)).all())
            if rows:
                conn.execute(
                    sa.update(table).where(table.c.id.in_([row.id for row in rows]))
                    .values(**lease)
                )
        return rows

    @contextmanager
    def batch(self) -> Iterator[WriteBatch]:
        """One write transaction for many payments' changes, written at its end
        (see :mod:`pasarela.store.batch`). An exception rolls everything back;
        ``ConcurrencyConflictError`` from the flush means another process got there
        first: apply the items one by one."""
        with self._begin(write=True) as conn:
            batch = WriteBatch(self, conn)
            yield batch
            batch.flush()

    # --- payments --------------------------------------------------------------

    def create_payment(
        self,
        payment: Payment,
        *,
        fingerprint: str,
        decision: Mapping[str, Any] | None = None,
    ) -> tuple[Payment, bool]:
        """Insert *payment* (status ``created``) keyed by its idempotency key.

        Returns ``(payment, True)`` when inserted. When the key exists already,
        returns ``(existing, False)`` if the stored fingerprint equals
        *fingerprint*, and raises ``IdempotencyConflictError`` otherwise. Safe under
        any number of concurrent callers with one key (the unique constraint
        decides; the losers read the winner's row). A routing *decision*, when
        given, is stored with the new payment in the same transaction.
        """
        values = _payment_values(payment, fingerprint)
        if self._create_stmt is None:  # built once: SQLAlchemy caches its compiled form
            self._create_stmt = (
                self._insert(payments)
                .on_conflict_do_nothing(index_elements=[payments.c.idempotency_key])
                .returning(payments.c.id)
            )
        with self._begin(write=True) as conn:
            if conn.execute(self._create_stmt, values).first() is not None:
                if decision is not None:
                    conn.execute(_INSERT_DECISION, {
                        "order_reference": payment.order_reference, "payment_id": payment.id,
                        "decision": dict(decision), "created_at": _now(),
                    })
                return _as_stored(payment), True
            # The key is taken. On PostgreSQL the insert waited for a concurrent
            # winner to commit; this statement sees its row.
            row = conn.execute(
                sa.select(payments).where(payments.c.idempotency_key == payment.idempotency_key)
            ).one()
        if row.fingerprint != fingerprint:
            raise IdempotencyConflictError(
                f"idempotency_key: {payment.idempotency_key!r} was already used for payment "
                f"{row.id} with different parameters; use a new key for a new payment"
            )
        return _payment_from_row(row), False

    def get_payment(self, payment_id: str, *, history: bool = False) -> Payment:
        """The payment, with its transitions when *history*; ``NotFoundError`` if none."""
        with self._begin() as conn:
            row = conn.execute(_GET_PAYMENT, {"_id": payment_id}).first()
            if row is None:
                raise NotFoundError(f"no payment {payment_id!r}")
            steps = self._history(conn, payment_id) if history else ()
        return _payment_from_row(row, history=tuple(steps))

    def find_payment(
        self,
        *,
        provider: str | None = None,
        provider_reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> Payment | None:
        """The payment matching every criterion given (the newest, if several)."""
        if provider_reference is None and idempotency_key is None:
            raise ValidationError(
                "give provider_reference or idempotency_key", field="provider_reference"
            )
        given = {"provider": provider, "provider_reference": provider_reference,
                 "idempotency_key": idempotency_key}
        keys = tuple(k for k, v in given.items() if v is not None)
        query = self._find_stmts.get(keys)
        if query is None:  # one statement per combination, compiled once
            query = (
                sa.select(payments)
                .where(*(payments.c[k] == sa.bindparam(f"_{k}") for k in keys))
                .order_by(payments.c.created_at.desc(), payments.c.id.desc())
                .limit(1)
            )
            self._find_stmts[keys] = query
        with self._begin() as conn:
            row = conn.execute(query, {f"_{k}": given[k] for k in keys}).first()
        return None if row is None else _payment_from_row(row)

    def update_payment(
        self, payment_id: str, *, expected_version: int, refund: Refund | None = None,
        **changes: Any,
    ) -> Payment:
        """Change non-status fields (``provider_reference``, ``next_action``,
        ``expires_at``, ``routing``, ``next_check_at``, ``check_attempts``,
        ``error_code``, ``error_message``) with a version check and bump, and upsert
        *refund* in the same transaction (a refund reserved before its I/O: a
        concurrent refund of the same payment then conflicts instead of racing).

        ``ConcurrencyConflictError`` if the version moved on.
        """
        values = _change_values(changes, allowed=_UPDATABLE)
        with self._begin(write=True) as conn:
            self._lock_payment(conn, payment_id, expected_version)
            now = _now()
            row = self._bump(conn, payment_id, expected_version, values, now)
            if refund is not None:
                self._upsert_refund(conn, refund, now=now)
        return _payment_from_row(row)

    def _lock_payment(
        self, conn: sa.Connection, payment_id: str, expected_version: int | None
    ) -> _Row:
        """Read (and on PostgreSQL lock) the payment's status and version."""
        query = _LOCK_PAYMENT if self._sqlite else _LOCK_PAYMENT_FOR_UPDATE
        row = conn.execute(query, {"_id": payment_id}).first()
        if row is None:
            raise NotFoundError(f"no payment {payment_id!r}")
        if expected_version is not None and row.version != expected_version:
            raise ConcurrencyConflictError(
                f"payment {payment_id} is at version {row.version}, not {expected_version}: "
                "another writer changed it first; reload and retry"
            )
        return row

    def _bump(
        self,
        conn: sa.Connection,
        payment_id: str,
        expected_version: int,
        values: Mapping[str, Any],
        now: datetime,
    ) -> _Row:
        keys = tuple(sorted(values))
        update = self._bump_stmts.get(keys)
        if update is None:  # one statement per set of columns, compiled once
            update = (
                sa.update(payments)
                .where(payments.c.id == sa.bindparam("_id"),
                       payments.c.version == sa.bindparam("_version"))
                .values(version=payments.c.version + 1, updated_at=sa.bindparam("_now"),
                        **{key: sa.bindparam(key) for key in keys})
                .returning(*payments.c)
            )
            self._bump_stmts[keys] = update
        params = {"_id": payment_id, "_version": expected_version, "_now": now, **values}
        row = conn.execute(update, params).first()
        if row is None:  # pragma: no cover - the row is locked or the writer is alone
            raise ConcurrencyConflictError(
                f"payment {payment_id} moved past version {expected_version}; reload and retry"
            )
        return row

    def transition(
        self,
        payment_id: str,
        *,
        expected_version: int,
        target: Status,
        cause: Cause,
        event_type: str,
        reason: str = "",
        event_id: str | None = None,
        changes: Mapping[str, Any] | None = None,
        exchanges: Sequence[Exchange] = (),
        delivery: Delivery | None = None,
        refund: Refund | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Payment:
        """Apply one status change, atomically.

        In one transaction: ``UPDATE payments SET status, version = version + 1,
        updated_at, **changes WHERE id = ? AND version = expected_version``
        (``ConcurrencyConflictError`` when no row matched); insert the transition
        (next ``seq``, ``applied=True``); insert an outbox row of *event_type* with
        a new ULID id and *payload* (default: the payment's public fields); insert
        the *exchanges*, the *delivery* and upsert the *refund*. The caller has
        already checked the lifecycle table. Returns the new payment.

        A *delivery* whose ``(provider, event_id)`` was recorded already rolls the
        whole transaction back and raises ``ConcurrencyConflictError`` (duplicate
        delivery): reload, and the delivery will be seen.
        """
        target = Status(target)
        cause = Cause(cause)
        values = _change_values(changes or {}, allowed=_TRANSITION_CHANGES)
        values["status"] = target.value
        with self._begin(write=True) as conn:
            now = _now()
            current = self._lock_payment(conn, payment_id, expected_version)
            row = self._bump(conn, payment_id, expected_version, values, now)
            if delivery is not None:
                self._insert_delivery(conn, delivery, payment_id=payment_id, now=now)
            # Plain INSERTs with bound parameters: compiled once, cached by SQLAlchemy.
            conn.execute(
                _INSERT_TRANSITION,
                {
                    "payment_id": payment_id,
                    "seq": self._next_seq(conn, payment_id),
                    "source": current.status,
                    "target": target.value,
                    "cause": cause.value,
                    "applied": True,
                    "reason": reason,
                    "event_id": event_id,
                    "version": row.version,
                    "at": now,
                },
            )
            payment = _payment_from_row(row)
            conn.execute(
                _INSERT_OUTBOX,
                {
                    "id": str(ULID()),
                    "payment_id": payment_id,
                    "type": event_type,
                    "payload": dict(payload) if payload is not None
                    else _default_payload(payment),
                    "created_at": now,
                    "next_attempt_at": now,
                    "attempts": 0,
                },
            )
            self._insert_exchanges(conn, exchanges, payment_id=payment_id)
            if refund is not None:
                self._upsert_refund(conn, refund, now=now)
        return payment

    def record_ignored(
        self,
        payment_id: str,
        *,
        source: Status,
        target: Status,
        cause: Cause,
        reason: str,
        event_id: str | None = None,
        exchanges: Sequence[Exchange] = (),
        delivery: Delivery | None = None,
    ) -> None:
        """Append a transition with ``applied=False`` (a duplicate or stale report)
        and the evidence rows, without touching the payment or its version.

        As in :meth:`transition`, a *delivery* recorded already rolls everything
        back with ``ConcurrencyConflictError`` (duplicate delivery).
        """
        now = _now()
        with self._begin(write=True) as conn:
            # On PostgreSQL the row lock serialises this with transition(), so the
            # two never pick the same seq.
            current = self._lock_payment(conn, payment_id, None)
            if delivery is not None:
                self._insert_delivery(conn, delivery, payment_id=payment_id, now=now)
            conn.execute(
                sa.insert(transitions).values(
                    payment_id=payment_id,
                    seq=self._next_seq(conn, payment_id),
                    source=Status(source).value,
                    target=Status(target).value,
                    cause=Cause(cause).value,
                    applied=False,
                    reason=reason,
                    event_id=event_id,
                    version=current.version,
                    at=now,
                )
            )
            self._insert_exchanges(conn, exchanges, payment_id=payment_id)

    def _next_seq(self, conn: sa.Connection, payment_id: str) -> int:
        return int(conn.execute(_NEXT_SEQ, {"_id": payment_id}).scalar_one())

    def record_exchanges(self, exchanges: Iterable[Exchange]) -> None:
        rows = list(exchanges)
        if not rows:
            return
        with self._begin(write=True) as conn:
            self._insert_exchanges(conn, rows, payment_id=None)

    def _insert_exchanges(
        self, conn: sa.Connection, exchanges: Iterable[Exchange], *, payment_id: str | None
    ) -> None:
        rows = [_exchange_values(exchange, payment_id) for exchange in exchanges]
        if rows:
            conn.execute(sa.insert(exchanges_t), rows)

    def exchanges_for(self, payment_id: str) -> list[dict[str, Any]]:
        """The recorded (redacted) exchanges of a payment, oldest first."""
        query = (
            sa.select(exchanges_t)
            .where(exchanges_t.c.payment_id == payment_id)
            .order_by(exchanges_t.c.started_at, exchanges_t.c.id)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            item = dict(row._mapping)
            item["started_at"] = _from_db(row.started_at)
            item["request_headers"] = dict(row.request_headers or {})
            item["response_headers"] = dict(row.response_headers or {})
            out.append(item)
        return out

    def history(self, payment_id: str) -> list[Transition]:
        with self._begin() as conn:
            return self._history(conn, payment_id)

    def _history(self, conn: sa.Connection, payment_id: str) -> list[Transition]:
        query = (
            sa.select(transitions)
            .where(transitions.c.payment_id == payment_id)
            .order_by(transitions.c.seq)
        )
        return [
            Transition(
                payment_id=row.payment_id,
                seq=row.seq,
                source=Status(row.source),
                target=Status(row.target),
                cause=Cause(row.cause),
                at=_from_db(row.at),
                version=row.version,
                applied=bool(row.applied),
                reason=row.reason,
                event_id=row.event_id,
            )
            for row in conn.execute(query)
        ]

    # --- refunds ---------------------------------------------------------------

    def refunds_for(self, payment_id: str) -> list[Refund]:
        query = (
            sa.select(refunds)
            .where(refunds.c.payment_id == payment_id)
            .order_by(refunds.c.created_at, refunds.c.id)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [
            Refund(
                id=row.id,
                payment_id=row.payment_id,
                amount=Money(row.amount_minor, row.currency),
                status=RefundStatus(row.status),
                created_at=_from_db(row.created_at),
                reason=row.reason,
                provider_reference=row.provider_reference,
            )
            for row in rows
        ]

    def save_refund(self, refund: Refund) -> None:
        """Insert or update a refund row by id (outside a status change)."""
        with self._begin(write=True) as conn:
            self._lock_payment(conn, refund.payment_id, None)
            self._upsert_refund(conn, refund, now=_now())

    def _upsert_refund(self, conn: sa.Connection, refund: Refund, *, now: datetime) -> None:
        values = {
            "id": refund.id,
            "payment_id": refund.payment_id,
            "amount_minor": refund.amount.minor,
            "currency": refund.amount.currency,
            "status": RefundStatus(refund.status).value,
            "reason": refund.reason,
            "provider_reference": refund.provider_reference,
            "created_at": _to_db(refund.created_at, "refund.created_at"),
            "updated_at": now,
        }
        mutable = ("amount_minor", "currency", "status", "reason", "provider_reference")
        stmt = self._insert(refunds).values(**values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[refunds.c.id],
                set_={name: values[name] for name in (*mutable, "updated_at")},
            )
        )

    # --- webhooks --------------------------------------------------------------

    def seen_delivery(self, provider: str, event_id: str) -> bool:
        query = sa.select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.provider == provider,
            webhook_deliveries.c.event_id == event_id,
        )
        with self._begin() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def record_delivery(self, delivery: Delivery) -> bool:
        """Insert a delivery; False when (provider, event_id) was recorded already."""
        insert = (
            self._insert(webhook_deliveries)
            .values(**_delivery_values(delivery, None, _now()))
            .on_conflict_do_nothing(
                index_elements=[webhook_deliveries.c.provider, webhook_deliveries.c.event_id]
            )
            .returning(webhook_deliveries.c.id)
        )
        with self._begin(write=True) as conn:
            return conn.execute(insert).first() is not None

    def _insert_delivery(
        self, conn: sa.Connection, delivery: Delivery, *, payment_id: str, now: datetime
    ) -> None:
        try:
            conn.execute(_INSERT_DELIVERY, _delivery_values(delivery, payment_id, now))
        except sa.exc.IntegrityError as exc:
            raise ConcurrencyConflictError(
                f"duplicate delivery: {delivery.provider} event {delivery.event_id!r} was "
                "recorded already; nothing was applied"
            ) from exc

    # --- outbox ----------------------------------------------------------------

    def claim_outbox(self, *, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        """Undispatched events due at *now*, earliest due first. On PostgreSQL rows are
        claimed with ``FOR UPDATE SKIP LOCKED`` and their ``next_attempt_at`` pushed
        forward (a lease) so concurrent dispatchers do not take the same rows."""
        at = _to_db(now, "now")
        rows = self._claim(
            sa.select(outbox)
            .where(outbox.c.dispatched_at.is_(None), outbox.c.next_attempt_at <= at)
            # In the index's order (a fresh event is due when it is created); by
            # created_at, every claim sorted the whole backlog.
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit),
            lease={"next_attempt_at": at + self.outbox_lease},
        )
        return [
            OutboxEvent(
                id=row.id,
                payment_id=row.payment_id,
                type=row.type,
                payload=row.payload,
                created_at=_from_db(row.created_at),
                attempts=row.attempts,
            )
            for row in rows
        ]

    def mark_dispatched(self, event_ids: Sequence[str], *, now: datetime) -> None:
        if not event_ids:
            return
        at = _to_db(now, "now")
        with self._begin(write=True) as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_(list(event_ids)), outbox.c.dispatched_at.is_(None))
                .values(dispatched_at=at)
            )

    def mark_failed(self, event_id: str, *, error: str, retry_at: datetime) -> None:
        with self._begin(write=True) as conn:
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == event_id)
                .values(
                    attempts=outbox.c.attempts + 1,
                    last_error=error,
                    next_attempt_at=_to_db(retry_at, "retry_at"),
                )
            )

    def outbox_lag(self, *, now: datetime) -> tuple[int, float]:
        """(undispatched count, age in seconds of the oldest undispatched event)."""
        at = _to_db(now, "now")
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.dispatched_at.is_(None)
        )
        with self._begin() as conn:
            count, oldest = conn.execute(query).one()
        if not count or oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (at - _from_db(oldest)).total_seconds())

    # --- jobs ------------------------------------------------------------------

    def due_for_expiry(self, *, now: datetime, limit: int = 500) -> list[Payment]:
        """Pending payments whose ``expires_at`` has passed.

        Claimed: each is leased (``claimed_until``) for :attr:`job_lease`, so
        another worker does not get it meanwhile; the version is not bumped.
        """
        at = _to_db(now, "now")
        if self._sqlite:
            return self._claim_due_sqlite(at, limit)
        rows = self._claim(
            sa.select(payments)
            .where(
                payments.c.status == Status.PENDING.value,
                payments.c.expires_at <= at,
                sa.or_(payments.c.claimed_until.is_(None), payments.c.claimed_until <= at),
            )
            # By deadline only: the index's order. Adding the id would sort every
            # payment sharing a deadline (CIPs that all expire at midnight) per claim.
            .order_by(payments.c.expires_at)
            .limit(limit),
            lease={"claimed_until": at + self.job_lease},
        )
        return [_payment_from_row(row) for row in rows]

    def _claim_due_sqlite(self, at: datetime, limit: int) -> list[Payment]:
        """``due_for_expiry``'s claim on SQLite, through the driver (the same query and
        lease; writers are serialised by ``BEGIN IMMEDIATE``)."""
        with self._begin(write=True) as conn:
            stamp = _bound(conn, payments.c.expires_at, at)
            rows = _driver_payments(
                conn, "WHERE payments.status = ? AND payments.expires_at <= ? AND "
                "(payments.claimed_until IS NULL OR payments.claimed_until <= ?) "
                "ORDER BY payments.expires_at LIMIT ?",
                [Status.PENDING.value, stamp, stamp, limit], seq=False)
            if rows:
                ids = [row["id"] for row in rows]
                conn.exec_driver_sql(
                    f"UPDATE payments SET claimed_until = ? WHERE id IN ({_marks(ids)})",  # noqa: S608
                    (_bound(conn, payments.c.claimed_until, at + self.job_lease), *ids))
        return [_payment_from_row(row) for row in rows]

    def due_for_check(self, *, now: datetime, limit: int = 500) -> list[Payment]:
        """Unknown (and pending) payments whose ``next_check_at`` has passed.

        Claimed: ``next_check_at`` is pushed forward by :attr:`job_lease` (the
        resolver then sets the real next check); the version is not bumped.
        """
        at = _to_db(now, "now")
        lease_end = at + self.job_lease
        rows = self._claim(
            sa.select(payments)
            .where(
                payments.c.status.in_([Status.UNKNOWN.value, Status.PENDING.value]),
                payments.c.next_check_at <= at,
            )
            .order_by(payments.c.next_check_at, payments.c.id)
            .limit(limit),
            lease={"next_check_at": lease_end},
        )
        return [attrs.evolve(_payment_from_row(row), next_check_at=lease_end) for row in rows]

    # --- routing ---------------------------------------------------------------

    def record_decision(
        self, *, order_reference: str, payment_id: str | None, decision: Mapping[str, Any]
    ) -> None:
        with self._begin(write=True) as conn:
            conn.execute(
                sa.insert(routing_decisions).values(
                    order_reference=order_reference,
                    payment_id=payment_id,
                    decision=dict(decision),
                    created_at=_now(),
                )
            )
