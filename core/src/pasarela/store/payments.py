"""Payments: create (keyed by the idempotency key), read, change, and the one
function that changes a status, :meth:`Payments.transition`.

A transition checks the expected version (optimistic concurrency), bumps it,
appends the transition and writes the outbox event, all in one transaction,
together with whatever evidence rows the caller passes (exchanges, a webhook
delivery, a refund).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from ulid import ULID

from pasarela.errors import (
    ConcurrencyConflictError,
    IdempotencyConflictError,
    NotFoundError,
    ValidationError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Order, Payment, Refund, Transition
from pasarela.store._base import StoreBase
from pasarela.store._rows import (
    GET_PAYMENT,
    INSERT_DECISION,
    INSERT_OUTBOX,
    INSERT_TRANSITION,
    TRANSITION_CHANGES,
    UPDATABLE,
    Row,
    as_stored,
    change_values,
    delivery_values,
    exchange_values,
    payment_from_row,
    payment_values,
    transition_from_row,
    utc_now,
)
from pasarela.store._writes import (
    chain_on,
    dialect_insert,
    insert_delivery,
    insert_exchanges,
    lock_payment,
    records,
    upsert_refund,
)
from pasarela.store.chain import link_all
from pasarela.store.driver import execute
from pasarela.store.schema import payments, routing_decisions, transitions
from pasarela.store.values import Delivery


__all__ = ["Payments", "bump_version"]

#: Statements built once (SQLAlchemy then caches each one's compiled form).
_CREATE: dict[str, Any] = {}  # by dialect
_CREATE_DECIDED: dict[tuple[str, ...], Any] = {}  # PostgreSQL's, by the columns given
#: The most orders kept for the first transitions of the payments created lately.
_ORDERS_KEPT = 256
_FIND: dict[tuple[str, ...], sa.Select[Any]] = {}  # by the criteria given
_BUMP: dict[tuple[str, ...], Any] = {}  # by the columns changed


class Payments(StoreBase):
    """The payments part of :class:`~pasarela.store.Store`."""

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
        values = payment_values(payment, fingerprint, self.sealer)
        create = _CREATE.get(self.dialect)
        if create is None:
            create = _CREATE[self.dialect] = (
                dialect_insert(self.dialect, payments)
                .on_conflict_do_nothing(
                    index_elements=[payments.c.merchant, payments.c.idempotency_key])
                .returning(payments.c.id)
            )
        stored = as_stored(payment)  # built before the write transaction, not in it

        def insert_rows(conn: sa.Connection) -> bool:
            if not execute(conn, create, values):
                return False
            if decision is not None:
                execute(conn, INSERT_DECISION, {
                    "order_reference": payment.order_reference,
                    "payment_id": payment.id,
                    "decision": dict(decision), "created_at": utc_now(),
                })
            return True

        insert: Callable[[sa.Connection], bool] = insert_rows
        if decision is not None and self.dialect == "postgresql":
            # One statement, one round trip: the payment and its decision.
            insert = self._insert_with_decision(payment, values, decision)
        created = self._insert_keyed(payment, values, stored, fingerprint, insert)
        if created[1]:
            self._remember(payment, values)
        return created

    @cached_property
    def _orders(self) -> OrderedDict[str, tuple[Any, Any, Order | None]]:
        """The orders of payments this store created lately, by payment id: (the
        order column written, the personal column, the Order given)."""
        return OrderedDict()

    def _remember(self, payment: Payment, values: Mapping[str, Any]) -> None:
        """Keep *payment*'s order as written, so that its next transition's payment
        takes the Order given rather than building and validating it again."""
        if payment.order is None or not isinstance(values["order"], dict):
            return
        orders = self._orders
        orders[payment.id] = (values["order"], values["personal"], payment.order)
        while len(orders) > _ORDERS_KEPT:
            try:
                orders.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def _taken(self, payment: Payment, row: Row, fingerprint: str) -> tuple[Payment, bool]:
        """The payment holding *payment*'s key (*row*), if made with *fingerprint*."""
        if row.fingerprint != fingerprint:
            raise IdempotencyConflictError(
                f"idempotency_key: {payment.idempotency_key!r} was already used for payment "
                f"{row.id} with different parameters; use a new key for a new payment"
            )
        return payment_from_row(row, sealer=self.sealer), False

    def _insert_with_decision(self, payment: Payment, values: dict[str, Any],
                              decision: Mapping[str, Any]
                              ) -> Callable[[sa.Connection], bool]:
        """PostgreSQL's insert of a payment with its decision, for :meth:`_insert_keyed`:
        ``WITH created AS (INSERT INTO payments ... ON CONFLICT DO NOTHING RETURNING
        id) INSERT INTO routing_decisions ... SELECT ... FROM created``, the same rows
        in one round trip (a key taken inserts neither)."""
        keys = tuple(values)
        statement = _CREATE_DECIDED.get(keys)
        if statement is None:
            created = (
                dialect_insert(self.dialect, payments)
                .values({k: sa.bindparam(k, type_=payments.c[k].type) for k in keys})
                .on_conflict_do_nothing(
                    index_elements=[payments.c.merchant, payments.c.idempotency_key])
                .returning(payments.c.id)
                .cte("created")
            )
            decided = routing_decisions.c
            statement = _CREATE_DECIDED[keys] = (
                sa.insert(routing_decisions)
                .from_select(
                    ["payment_id", "order_reference", "decision", "created_at"],
                    sa.select(created.c.id,
                              sa.bindparam("_reference", type_=decided.order_reference.type),
                              sa.bindparam("_decision", type_=decided.decision.type),
                              sa.bindparam("_at", type_=decided.created_at.type)))
                .add_cte(created)
                .returning(decided.payment_id)
            )
        params = {**values, "_reference": payment.order_reference,
                  "_decision": dict(decision)}
        return lambda conn: bool(execute(conn, statement, {**params, "_at": utc_now()}))

    def _insert_keyed(self, payment: Payment, values: Mapping[str, Any], stored: Payment,
                      fingerprint: str, insert: Callable[[sa.Connection], bool]
                      ) -> tuple[Payment, bool]:
        """Run *insert* (the payment's ``INSERT ... ON CONFLICT DO NOTHING``, and what
        goes with it) in a write transaction: ``(stored, True)`` when it inserted, else
        the payment holding the key (:meth:`_taken`). On PostgreSQL a losing insert
        waited for the concurrent winner to commit, so its row is read; unless that
        winner's create was refused and released the key meanwhile: then insert again
        (five times at most)."""
        for _ in range(5):
            with self._begin(write=True) as conn:
                if insert(conn):
                    return stored, True
                row = conn.execute(
                    sa.select(payments)
                    .where(payments.c.merchant == values["merchant"],
                           payments.c.idempotency_key == payment.idempotency_key)
                ).first()
            if row is not None:
                return self._taken(payment, row, fingerprint)
        raise ConcurrencyConflictError(
            f"idempotency_key: {payment.idempotency_key!r} kept changing hands; try again")

    def get_payment(self, payment_id: str, *, history: bool = False) -> Payment:
        """The payment, with its transitions when *history*; ``NotFoundError`` if none."""
        with self._begin() as conn:
            row = conn.execute(GET_PAYMENT, {"_id": payment_id}).first()
            if row is None:
                raise NotFoundError(f"no payment {payment_id!r}")
            steps = _history(conn, payment_id) if history else ()
        return payment_from_row(row, history=tuple(steps), sealer=self.sealer)

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
        query = _FIND.get(keys)
        if query is None:
            query = _FIND[keys] = (
                sa.select(payments)
                .where(*(payments.c[k] == sa.bindparam(f"_{k}") for k in keys))
                .order_by(payments.c.created_at.desc(), payments.c.id.desc())
                .limit(1)
            )
        with self._begin() as conn:
            row = conn.execute(query, {f"_{k}": given[k] for k in keys}).first()
        return None if row is None else payment_from_row(row, sealer=self.sealer)

    def replay(self, idempotency_key: str, fingerprint: str, *,
               merchant: str = "") -> Payment | None:
        """The payment of *merchant* holding *idempotency_key*, or None when none does
        (another merchant's key of the same text is not this one's).

        Raises ``IdempotencyConflictError`` when it was made with other parameters
        (*fingerprint* differs): the check ``create_payment`` makes, without inserting.
        """
        with self._begin() as conn:
            row = conn.execute(
                sa.select(payments).where(payments.c.merchant == merchant,
                                          payments.c.idempotency_key == idempotency_key)
            ).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise IdempotencyConflictError(
                f"idempotency_key: {idempotency_key!r} was already used for payment "
                f"{row.id} with different parameters; use a new key for a new payment"
            )
        return payment_from_row(row, sealer=self.sealer)

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
        values = change_values(changes, allowed=UPDATABLE)
        with self._begin(write=True) as conn:
            lock_payment(conn, payment_id, expected_version)
            now = utc_now()
            row = bump_version(conn, payment_id, expected_version, values, now)
            if refund is not None:
                upsert_refund(conn, refund, now=now)
        return payment_from_row(row, sealer=self.sealer)

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
        values = change_values(changes or {}, allowed=TRANSITION_CHANGES)
        values["status"] = target.value
        # What needs no database is done before the write transaction, and the payment
        # is built after it: on SQLite other threads' writes wait for this one.
        evidence = [exchange_values(e, payment_id) for e in exchanges]
        with self._begin(write=True) as conn:
            now = utc_now()
            current = lock_payment(conn, payment_id, expected_version, with_seq=True)
            step = {
                "payment_id": payment_id,
                "seq": current["next_seq"],
                "source": current["status"],
                "target": target.value,
                "cause": cause.value,
                "applied": True,
                "reason": reason,
                "event_id": event_id,
                "version": expected_version + 1,
                "at": now,
            }
            arrived = (None if delivery is None
                       else delivery_values(delivery, payment_id, now))
            if self.chained:
                # Chained in the order written: the delivery, the exchanges, the step.
                tip = link_all(records(arrived, evidence, step),
                               seq=current["chain_seq"], prev=current["chain_hash"])
                values["chain_seq"], values["chain_hash"] = tip
            row = bump_version(conn, payment_id, expected_version, values, now)
            if delivery is not None:
                insert_delivery(conn, delivery, payment_id=payment_id, now=now,
                                values=arrived)
            # Plain INSERTs with bound parameters, compiled once (store.driver).
            execute(conn, INSERT_TRANSITION, step)
            execute(
                conn, INSERT_OUTBOX,
                {
                    "id": str(ULID()),
                    "payment_id": payment_id,
                    "type": event_type,
                    "payload": dict(payload) if payload is not None else _payload(row),
                    "created_at": now,
                    "next_attempt_at": now,
                    "attempts": 0,
                },
            )
            insert_exchanges(conn, (), payment_id=payment_id, rows=evidence)
            if refund is not None:
                upsert_refund(conn, refund, now=now)
        return payment_from_row(row, sealer=self.sealer, known=self._orders.pop(payment_id, None))

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
        now = utc_now()
        with self._begin(write=True) as conn:
            # On PostgreSQL the row lock serialises this with transition(), so the
            # two never pick the same seq.
            current = lock_payment(conn, payment_id, None, with_seq=True)
            step = {
                "payment_id": payment_id,
                "seq": current["next_seq"],
                "source": Status(source).value,
                "target": Status(target).value,
                "cause": Cause(cause).value,
                "applied": False,
                "reason": reason,
                "event_id": event_id,
                "version": current["version"],
                "at": now,
            }
            arrived = (None if delivery is None
                       else delivery_values(delivery, payment_id, now))
            evidence = [exchange_values(e, payment_id) for e in exchanges]
            if self.chained:
                chain_on(conn, payment_id, (current["chain_seq"], current["chain_hash"]),
                         records(arrived, evidence, step))
            if delivery is not None:
                insert_delivery(conn, delivery, payment_id=payment_id, now=now,
                                values=arrived)
            execute(conn, INSERT_TRANSITION, step)
            insert_exchanges(conn, (), payment_id=payment_id, rows=evidence)

    def history(self, payment_id: str) -> list[Transition]:
        """The payment's transitions, applied and ignored, in order."""
        with self._begin() as conn:
            return _history(conn, payment_id)


def _history(conn: sa.Connection, payment_id: str) -> list[Transition]:
    query = (
        sa.select(transitions)
        .where(transitions.c.payment_id == payment_id)
        .order_by(transitions.c.seq)
    )
    return [transition_from_row(row) for row in conn.execute(query)]


def _payload(row: Mapping[str, Any]) -> dict[str, Any]:
    """``default_payload`` of the payment in *row*, read from the row itself (the
    payment is built once the transaction is over)."""
    return {
        "payment_id": row["id"],
        "order_reference": row["order_reference"],
        "provider": row["provider"],
        "method": row["method"],
        "status": row["status"],
        "amount": {"minor": row["amount_minor"], "currency": row["currency"]},
        "provider_reference": row["provider_reference"],
        "version": row["version"],
    }


def bump_version(conn: sa.Connection, payment_id: str, expected_version: int,
          values: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
    """``UPDATE payments`` with *values*, the version bumped; the new row."""
    keys = tuple(sorted(values))
    update = _BUMP.get(keys)
    if update is None:
        update = _BUMP[keys] = (
            sa.update(payments)
            .where(payments.c.id == sa.bindparam("_id"),
                   payments.c.version == sa.bindparam("_version"))
            .values(version=payments.c.version + 1, updated_at=sa.bindparam("_now"),
                    **{key: sa.bindparam(key) for key in keys})
            .returning(*payments.c)
        )
    params = {"_id": payment_id, "_version": expected_version, "_now": now, **values}
    rows = execute(conn, update, params)
    if not rows:  # pragma: no cover - the row is locked or the writer is alone
        raise ConcurrencyConflictError(
            f"payment {payment_id} moved past version {expected_version}; reload and retry"
        )
    return rows[0]
