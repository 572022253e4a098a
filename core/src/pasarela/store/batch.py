"""A write batch: many payments' changes in one transaction (group commit).

:meth:`Store.batch` opens one write transaction (``BEGIN IMMEDIATE`` on SQLite) and
yields a :class:`WriteBatch`: a :class:`~pasarela.store.writer.PaymentWriter`, as
the store is, so the engine applies provider reports through either with the same
code and the same rules: a transition needs the expected version and bumps it, a
delivery already recorded (in the database or earlier in the batch) raises
:class:`~pasarela.errors.ConcurrencyConflictError`, and a call that raises (those,
or bad input) queues nothing. Reads see the batch's own queued changes.

Nothing is written until the batch ends: then every queued row goes out in one
statement per table and statement shape (a many-row ``INSERT`` or ``UPDATE ... FROM``
on SQLite 3.33 on and on PostgreSQL, ``executemany`` elsewhere), and the transaction
commits. So the
webhook server can acknowledge a burst of deliveries with one commit and a handful
of statements instead of nine statements and two commits each, and the expiry sweep
can expire hundreds of payments at once.

On SQLite the batch's reads and many-row writes go through the driver
(:mod:`pasarela.store.driver`); the write transaction already excludes other
writers. On PostgreSQL the payments a batch reads are locked (``FOR UPDATE``, in id
order, so two batches never deadlock on each other's rows). If the flush fails (another
process recorded one of the deliveries first), the whole batch rolls back: the
caller applies its items one by one instead.
"""

from __future__ import annotations

import json
import operator
import re
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice, repeat
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, Final

import attrs
import sqlalchemy as sa

from pasarela.errors import ConcurrencyConflictError, NotFoundError, ValidationError
from pasarela.exchange import Exchange
from pasarela.lifecycle import Cause, Status
from pasarela.model import Method, Payment, Refund
from pasarela.money import Money
from pasarela.next_action import NextAction, next_action_from_dict
from pasarela.store._rows import (
    INSERT_DELIVERY,
    INSERT_OUTBOX,
    INSERT_TRANSITION,
    PAYMENTS_BY_ID,
    PAYMENTS_BY_REFERENCE,
    SEEN_DELIVERIES,
    STATUSES,
    TRANSITION_CHANGES,
    UPDATABLE,
    VERSIONS_BY_ID,
    change_values,
    delivery_values,
    exchange_values,
    from_db,
    payment_from_row,
    payments_update,
    refund_values,
    to_db,
    utc_now,
)
from pasarela.store._writes import (
    CHAIN_TIP,
    chain_alone,
    duplicate_delivery,
    records,
    stale_version,
    upsert_refund,
)
from pasarela.store.chain import Kind, link_all
from pasarela.store.driver import bound_rows, executemany, marks, read_payments, run
from pasarela.store.outbox import event_ids as outbox_ids
from pasarela.store.schema import exchanges as exchanges_t
from pasarela.store.schema import payments
from pasarela.store.sealing import Sealer
from pasarela.store.values import Delivery
from pasarela.store.writer import PaymentWriter


if TYPE_CHECKING:
    from pasarela.store.repository import Store


__all__ = ["WriteBatch"]

#: Rows per ``IN (...)`` list: well under SQLite's and psycopg's parameter limits.
_IN_CHUNK = 500

def _value(member: Status | Cause | Method) -> str:
    """The stored value of a lifecycle enum member (``.value`` without enum's cost)."""
    return str.__str__(member)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


def _plain(value: Any) -> Any:
    """A change value as a row holds it (``sa.null()`` is how JSON columns say NULL)."""
    return None if isinstance(value, sa.sql.elements.Null) else value


#: Payment attributes a change sets as given (after ``change_values`` checked it).
_AS_GIVEN = frozenset({"provider", "provider_reference", "error_code", "error_message",
                       "check_attempts", "network", "charged", "fx_rate"})


def _evolved(payment: Payment, changes: Mapping[str, Any], *, status: str | None,
             now: datetime) -> Payment:
    """*payment* after *changes* (as the caller passed them), as a read would return
    it: cheaper than rebuilding it from the row."""
    fields: dict[str, Any] = {"version": payment.version + 1, "updated_at": now}
    if status is not None:
        fields["status"] = STATUSES[status]
    for name, value in changes.items():
        if name in _AS_GIVEN:
            fields[name] = value
        elif name in ("expires_at", "next_check_at"):
            fields[name] = None if value is None else from_db(to_db(value, name))
        elif name == "next_action":
            fields[name] = (value if value is None or isinstance(value, NextAction)
                            else next_action_from_dict(value))
        elif name == "routing":
            fields[name] = dict(value or {})
        elif name in ("refunded", "refunded_minor"):
            minor = value.minor if isinstance(value, Money) else value
            fields["refunded"] = Money(minor, payment.amount.currency) if minor else None
        else:  # pragma: no cover - every updatable column is handled above
            raise ValidationError("cannot be changed in a batch", field=name)
    return _rebuilt(payment, fields)


#: A payment's attributes in order, read all at once, and their positions.
_NAMES: Final = tuple(field.name for field in attrs.fields(Payment))
_READ_ALL: Final = operator.attrgetter(*_NAMES)
_AT: Final = {name: i for i, name in enumerate(_NAMES)}


def _rebuilt(payment: Payment, fields: Mapping[str, Any]) -> Payment:
    """``attrs.evolve(payment, **fields)``, its attributes read and set in C loops
    (two thirds of evolve's cost). No converter runs again: every value is one the
    payment holds, or one :func:`_evolved` built as the converter would."""
    values = list(_READ_ALL(payment))
    for name, value in fields.items():
        values[_AT[name]] = value
    rebuilt = object.__new__(Payment)
    deque(map(object.__setattr__, repeat(rebuilt, len(values)), _NAMES, values), maxlen=0)
    return rebuilt


#: ``VERSIONS_BY_ID`` on SQLite (read through the driver), up to its ``IN`` list.
_VERSIONS_SQL: Final = (
    "SELECT payments.id, payments.version, (SELECT coalesce(max(transitions.seq), 0) "
    "FROM transitions WHERE transitions.payment_id = payments.id), payments.chain_seq, "
    "payments.chain_hash FROM payments WHERE payments.id IN ")


def _fetch(conn: sa.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """The rows of *sql* (SQLite), as the driver's tuples: for columns that SQLAlchemy
    returns as the driver does (strings, integers), without its per-row results."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


#: Whether SQLite takes ``UPDATE ... FROM`` (3.33 on), and with it 32,766 parameters.
UPDATE_FROM: Final = sqlite3.sqlite_version_info >= (3, 33, 0)

#: Whether a PostgreSQL batch writes a table's rows in one statement, each column's
#: values bound as one array (``INSERT ... SELECT ... FROM unnest(...)``, ``UPDATE
#: ... FROM unnest(...)``), rather than psycopg's ``executemany``, which runs the
#: statement once per row on the server. The SQL is the same for any number of rows,
#: with a parameter per column, so psycopg converts it once and prepares it on the
#: server like any repeated statement (tests turn it off to compare).
POSTGRES_MANY_ROWS: Final = True

#: A named parameter in SQL compiled for psycopg (``%(name)s``).
_NAMED: Final = re.compile(r"%\((\w+)\)s")


def _many_rows(conn: sa.Connection) -> bool:
    """Whether this connection's batch writes many rows per statement."""
    if conn.dialect.name == "sqlite":
        return UPDATE_FROM
    return (POSTGRES_MANY_ROWS and conn.dialect.name == "postgresql"
            and conn.dialect.paramstyle == "pyformat")


def _typed(compiled: Any, name: str) -> str:
    """A parameter of parameter *name*'s type (PostgreSQL), sent in binary (psycopg's
    ``%b``: an array as text escapes each element with a regular expression):
    ``%b::VARCHAR``, spelled as the dialect casts a bound value (a string's length
    left out, so an overlong value is refused by its column, not cut short by the
    cast); ``+ "[]"`` for an array."""
    dialect = compiled.dialect
    impl = compiled.binds[name].type._unwrapped_dialect_impl(dialect)
    if impl._type_affinity is sa.String and getattr(impl, "length", None):
        impl = sa.String()
    spelled = dialect.type_compiler_instance.process(impl, identifier_preparer=compiled.preparer)
    return f"%b::{spelled}"


#: One-row VALUES of only named parameters (each perhaps cast), as psycopg's dialect
#: renders them: what is left after taking the parameters out.
_PARAMETER: Final = re.compile(r"%\(\w+\)s(?:::[A-Z][A-Z ]*[A-Z])?")


def _columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """*rows* (each *width* values) as one list per column: psycopg binds a list as an
    array (a tuple would be a record)."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    appends = [column.append for column in columns]
    for row in rows:
        for append, value in zip(appends, row, strict=True):
            append(value)
    return columns


#: SQLite's one-statement update of many payments, by the columns it sets: (SQL up to
#: its VALUES rows, one row's placeholders, [(position in a row, bind processor)], the
#: timestamp's bind processor).
_SQLITE_UPDATES: dict[tuple[str, ...], tuple[str, str, list[tuple[int, Any]], Any]] = {}


def _update_sqlite(conn: sa.Connection, names: tuple[str, ...],
                   rows: list[dict[str, Any]]) -> int:
    """``payments_update(names)`` for every row in one statement per few hundred rows
    (``UPDATE payments ... FROM (VALUES ...)``, SQLite 3.33 on) rather than one per
    row: the same columns set to the same values, converted by the same statement's
    bind processors, and only where the version is still the base one. Returns the
    rows matched (changed)."""
    dialect = conn.dialect
    cached = _SQLITE_UPDATES.get(names)
    if cached is None:
        compiled = payments_update(names).compile(dialect=dialect)
        quote = dialect.identifier_preparer.quote
        keys = ("_id", "_base", "_version", *names)
        binds = [(i, compiled.binds[key].type.dialect_impl(dialect)
                  .bind_processor(dialect)) for i, key in enumerate(keys)]
        columns = ", ".join(f"column{i + 1} AS c{i}" for i in range(len(keys)))
        sets = ", ".join([f"{quote('version')} = v.c2", f"{quote('updated_at')} = ?",
                          *(f"{quote(name)} = v.c{i}" for i, name in enumerate(names, 3))])
        cached = _SQLITE_UPDATES[names] = (
            f"UPDATE payments SET {sets} FROM (SELECT {columns} FROM (VALUES ",  # noqa: S608
            "(" + ", ".join("?" * len(keys)) + ")",
            [(i, p) for i, p in binds if p is not None],
            compiled.binds["_now"].type.dialect_impl(dialect).bind_processor(dialect))
    head, placeholders, processors, process_now = cached
    keys = ("_id", "_base", "_version", *names)
    now = rows[0]["_now"]  # the batch's one timestamp
    stamp = now if process_now is None else process_now(now)
    size = max(1, 30_000 // len(keys))
    matched = 0
    for start in range(0, len(rows), size):
        part = rows[start:start + size]
        params: list[Any] = [stamp]
        for values in bound_rows(part, keys, processors):
            params += values
        matched += run(conn, head + ", ".join([placeholders] * len(part))
                       + ")) AS v WHERE payments.id = v.c0 AND payments.version = v.c1", params)
    return matched


#: PostgreSQL's one-statement update of many payments, by the columns it sets and the
#: driver: (the SQL, [(position in a row, bind processor)], the timestamp's bind
#: processor).
_POSTGRES_UPDATES: dict[tuple[tuple[str, ...], str],
                        tuple[str, list[tuple[int, Any]], Any]] = {}


def _update_postgres(conn: sa.Connection, names: tuple[str, ...],
                     rows: list[dict[str, Any]]) -> int:
    """As :func:`_update_sqlite` on PostgreSQL: ``UPDATE payments SET ... FROM
    unnest(...) AS v (...)``, a column's values bound as one array of its type, each
    converted by the one-row statement's bind processor. Returns the rows matched."""
    dialect = conn.dialect
    keys = ("_id", "_base", "_version", *names)
    cached = _POSTGRES_UPDATES.get((names, dialect.driver))
    if cached is None:
        compiled = payments_update(names).compile(dialect=dialect)
        quote = dialect.identifier_preparer.quote
        sets = ", ".join([f"{quote('version')} = v.c2",
                          f"{quote('updated_at')} = {_typed(compiled, '_now')}",
                          *(f"{quote(name)} = v.c{i}" for i, name in enumerate(names, 3))])
        binds = [(i, compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect))
                 for i, key in enumerate(keys)]
        columns = ", ".join(f"c{i}" for i in range(len(keys)))
        cached = _POSTGRES_UPDATES[(names, dialect.driver)] = (
            f"UPDATE payments SET {sets} FROM unnest("  # noqa: S608
            + ", ".join(_typed(compiled, key) + "[]" for key in keys)
            + f") AS v ({columns}) WHERE payments.id = v.c0 AND payments.version = v.c1",
            [(i, p) for i, p in binds if p is not None],
            compiled.binds["_now"].type.dialect_impl(dialect).bind_processor(dialect))
    sql, processors, process_now = cached
    stamp = rows[0]["_now"]  # the batch's one timestamp
    return run(conn, sql, [stamp if process_now is None else process_now(stamp),
                            *_columns(bound_rows(rows, keys, processors), len(keys))])


#: Many-row INSERTs (SQLite, PostgreSQL), by (id of the statement, the rows' keys): (the
#: statement, kept so that its id stays its own; SQL up to its VALUES rows; one row's
#: placeholders on SQLite, the rest of the SQL on PostgreSQL; parameter names in
#: order; [(position, bind processor)]; the positions of JSON columns written by
#: :func:`json_texts`, SQLite's), or None for one that is
#: not a plain INSERT ... VALUES (it goes through executemany). Keyed by the dialect
#: and driver too: one process may hold stores of both.
_MANY_INSERTS: dict[tuple[int, tuple[str, ...], str, str],
                      tuple[Any, str, str, list[str], list[tuple[int, Any]],
                            frozenset[int]] | None] = {}

#: ``json.dumps`` with its defaults, as an encoder's settings (what it passes to the C
#: encoder it makes for each call), and that C encoder's maker (None without ``_json``).
_DUMPS: Final = json.JSONEncoder()
_MAKE_ENCODER: Final[Callable[..., Callable[[Any, int], Sequence[str]]] | None] = getattr(
    json.encoder, "c_make_encoder", None)


def json_texts(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON column's bind processor (*process*: SQLAlchemy's on SQLite, which writes
    ``json.dumps(value)``) for the rows of one statement: a dict is written by one C
    encoder made for all of them, with the settings ``json.dumps`` gives the one it
    makes for each value (the same text, byte for byte), and anything else by
    *process*. ``json.dumps`` makes an encoder for every value and runs three Python
    calls around it, a third of writing one outbox payload. Made per statement: the
    encoder's record of the containers it is in (to refuse a cycle) is its own, and an
    error ends the statement."""
    if _MAKE_ENCODER is None:  # pragma: no cover - CPython has it
        return process
    encoder = _MAKE_ENCODER(
        {} if _DUMPS.check_circular else None, _DUMPS.default, encode_basestring_ascii,
        _DUMPS.indent, _DUMPS.key_separator, _DUMPS.item_separator, _DUMPS.sort_keys,
        _DUMPS.skipkeys, _DUMPS.allow_nan)
    join = "".join

    def text(value: Any) -> Any:
        if type(value) is dict:
            return join(encoder(value, 0))
        return process(value)
    return text


def _insert(conn: sa.Connection, statement: Any, rows: list[dict[str, Any]], *,
            one_statement: bool) -> None:
    """``executemany(conn, statement, rows)`` for an INSERT; with *one_statement* where
    the dialect takes it, in one statement: on SQLite (3.33 on, so 32,766 parameters)
    ``INSERT ... VALUES (...), (...)`` per few thousand parameters, on PostgreSQL
    ``INSERT ... SELECT ... FROM unnest(...) WITH ORDINALITY ... ORDER BY`` with one
    array per column. The same SQL's columns, the same bind processors, the rows in
    the order given (as SQLAlchemy would raise them, errors included)."""
    if not (one_statement and _many_rows(conn)):
        executemany(conn, statement, rows)
        return
    sqlite = conn.dialect.name == "sqlite"
    keys = tuple(rows[0])
    key = (id(statement), keys, conn.dialect.name, conn.dialect.driver)
    if key in _MANY_INSERTS:
        cached = _MANY_INSERTS[key]
    else:
        # as executemany compiles it (no RETURNING of the new row's key)
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys),
                                     for_executemany=True)
        head, sep, group = compiled.string.rpartition(" VALUES ")
        plain = bool(sep) and not compiled.insert_prefetch
        if sqlite:
            names = list(compiled.positiontup or ())
            plain = plain and group == "(" + ", ".join("?" * len(names)) + ")"
        else:  # pyformat: named parameters, each perhaps cast
            names = _NAMED.findall(group)
            plain = plain and (_PARAMETER.sub("", group)
                               == "(" + ", " * (len(names) - 1) + ")")
            columns = ", ".join(f"c{i}" for i in range(len(names)))
            group = (f" SELECT {columns} FROM unnest("  # noqa: S608
                     + ", ".join(_typed(compiled, name) + "[]" for name in names)
                     + f") WITH ORDINALITY AS v ({columns}, n) ORDER BY n")
            sep = ""
        plain = plain and set(names) <= set(keys) and set(names) == set(compiled.binds)
        processors = [(i, compiled.binds[name].type.dialect_impl(conn.dialect)
                       .bind_processor(conn.dialect)) for i, name in enumerate(names)]
        # JSON columns written with json.dumps (no serializer of the engine's own)
        texts = (frozenset(i for i, name in enumerate(names)
                           if isinstance(compiled.binds[name].type, sa.JSON))
                 if sqlite and getattr(conn.dialect, "_json_serializer", None) is None
                 else frozenset())
        cached = _MANY_INSERTS[key] = (
            statement, head + sep, group, names,
            [(i, p) for i, p in processors if p is not None], texts) if plain else None
    if cached is None or cached[0] is not statement:
        executemany(conn, statement, rows)
        return
    _, head, group, names, binds, texts = cached
    if not sqlite:
        run(conn, head + group, _columns(bound_rows(rows, names, binds), len(names)))
        return
    if texts:
        binds = [(i, json_texts(p) if i in texts else p) for i, p in binds]
    size = max(1, 30_000 // max(1, len(names)))
    values = bound_rows(rows, names, binds)  # converted as executemany converts them
    for start in range(0, len(rows), size):
        part = min(size, len(rows) - start)
        run(conn, head + ", ".join([group] * part),
             [value for row in islice(values, part) for value in row])


class _Entry:
    """One payment in the batch: its row as read (all of it, or, for a payment the
    caller already holds, the columns the batch writes and reports), its row now,
    what changed, and the payment as a read would now return it."""

    __slots__ = ("_payment", "base_version", "changed", "row", "sealer", "seq")

    def __init__(self, row: dict[str, Any], payment: Payment | None = None, *,
                 sealer: Sealer | None = None) -> None:
        self.row = row  # the entry's own (callers hand over a fresh dict)
        self.sealer = sealer
        self.seq: int = row.pop("_seq")
        self.base_version: int = self.row["version"]
        self.changed: set[str] = set()
        self._payment = payment

    @classmethod
    def adopted(cls, payment: Payment, seq: int, chain_seq: int, chain_hash: str) -> _Entry:
        """The entry of *payment*, held by the caller and unchanged since (as
        ``__init__`` would make it, without a ``_seq`` to take out of the row)."""
        entry = cls.__new__(cls)
        entry.row = {"id": payment.id, "order_reference": payment.order_reference,
                     "provider": payment.provider, "method": _value(payment.method),
                     "status": _value(payment.status), "amount_minor": payment.amount.minor,
                     "currency": payment.amount.currency,
                     "provider_reference": payment.provider_reference,
                     "version": payment.version, "chain_seq": chain_seq,
                     "chain_hash": chain_hash}
        entry.sealer = None
        entry.seq = seq
        entry.base_version = payment.version
        entry.changed = set()
        entry._payment = payment
        return entry

    def chain(self, items: Iterable[tuple[Kind, dict[str, Any]]]) -> None:
        """Chain *items* after the payment's tip (written with the payment's row)."""
        row = self.row
        row["chain_seq"], row["chain_hash"] = link_all(
            items, seq=row["chain_seq"], prev=row["chain_hash"])
        self.changed.update(("chain_seq", "chain_hash"))

    @property
    def payment(self) -> Payment:
        if self._payment is None:
            self._payment = payment_from_row(self.row, sealer=self.sealer)
        return self._payment

    def apply(self, values: Mapping[str, Any], changes: Mapping[str, Any],
              now: datetime) -> None:
        """Apply *values* (column values) that came from *changes* (as given)."""
        for name, value in values.items():
            self.row[name] = _plain(value)
        self.row["version"] += 1
        self.row["updated_at"] = now
        self.changed.update(values)
        if self._payment is not None:
            self._payment = _evolved(self._payment, changes, status=values.get("status"),
                                     now=now)

    def payload(self) -> dict[str, Any]:
        """The outbox event's default payload (as ``default_payload`` of the payment)."""
        row = self.row
        return {"payment_id": row["id"], "order_reference": row["order_reference"],
                "provider": row["provider"], "method": row["method"], "status": row["status"],
                "amount": {"minor": row["amount_minor"], "currency": row["currency"]},
                "provider_reference": row["provider_reference"], "version": row["version"]}


class WriteBatch:
    """Queued writes over one open transaction; see the module docs."""

    def __init__(self, store: Store, conn: sa.Connection) -> None:
        """A batch over *conn*, a write transaction of *store* (:meth:`Store.batch`
        opens both)."""
        self._conn = conn
        self._sealer = store.sealer
        self._sqlite = store.dialect == "sqlite"
        self._lock = not self._sqlite
        self._chained = store.chained
        self._now = utc_now()
        self._event_ids = outbox_ids(self._now)
        self._entries: dict[str, _Entry] = {}
        self._by_reference: dict[tuple[str, str], str | None] = {}
        # (provider, event id) -> the payment keys it was recorded for ("" for none)
        self._seen: dict[tuple[str, str], set[str]] = {}
        self._checked: set[tuple[str, str]] = set()
        self._deliveries: list[dict[str, Any]] = []
        self._transitions: list[dict[str, Any]] = []
        self._outbox: list[dict[str, Any]] = []
        self._exchanges: list[dict[str, Any]] = []
        self._refunds: list[Refund] = []

    @property
    def now(self) -> datetime:
        """The batch's timestamp (every row it writes carries it)."""
        return self._now

    # --- reads ---------------------------------------------------------------------

    def prefetch(self, provider: str, *, references: Iterable[str] = (),
                 event_ids: Iterable[str] = ()) -> None:
        """Load (and on PostgreSQL lock) the payments with these provider references
        and learn which of these deliveries were recorded, a few statements for all."""
        refs = sorted({r for r in references if (provider, r) not in self._by_reference})
        for part in _chunks(refs):
            found: dict[str, Mapping[str, Any]] = {}
            rows = (self._rows(PAYMENTS_BY_REFERENCE, {"_provider": provider, "_refs": part})
                    if self._lock or not self._sqlite else
                    self._take(read_payments(
                        self._conn, "WHERE payments.provider = ? AND "
                        f"payments.provider_reference IN ({marks(part)})", [provider, *part])))
            for row in rows:
                # The newest, as Store.find_payment answers when several share one.
                known = found.get(row["provider_reference"])
                if known is None or (row["created_at"], row["id"]) > (known["created_at"],
                                                                       known["id"]):
                    found[row["provider_reference"]] = row
            for ref in part:
                hit = found.get(ref)
                self._by_reference[(provider, ref)] = None if hit is None else hit["id"]
        ids = sorted({e for e in event_ids if (provider, e) not in self._checked})
        for part in _chunks(ids):
            if self._sqlite:
                seen = list(self._conn.exec_driver_sql(
                    "SELECT event_id, payment_key FROM webhook_deliveries "  # noqa: S608
                    f"WHERE provider = ? AND event_id IN ({marks(part)})", (provider, *part)))
            else:
                seen = list(self._conn.execute(
                    SEEN_DELIVERIES, {"_provider": provider, "_ids": part}))
            for event_id, key in seen:
                self._seen.setdefault((provider, event_id), set()).add(key)
            self._checked.update((provider, e) for e in part)

    def adopt(self, held: Sequence[Payment]) -> list[Payment]:
        """*held* as they are now (locked on PostgreSQL), in the order given, leaving
        out those that no longer exist. A payment whose version has not moved since
        the caller read it is taken as is (a job's claimed payments: no second full
        read); the others are read again."""
        fresh: list[str] = []
        given = {p.id: p for p in held if p.id not in self._entries}
        query = (VERSIONS_BY_ID.order_by(payments.c.id).with_for_update() if self._lock
                 else VERSIONS_BY_ID)
        entries = self._entries
        for part in _chunks(sorted(given)):
            found = (_fetch(self._conn, _VERSIONS_SQL + f"({marks(part)})", part)
                     if self._sqlite else self._conn.execute(query, {"_ids": part}))
            for pid, version, seq, chain_seq, chain_hash in found:
                payment = given[pid]
                if version == payment.version:
                    entries[pid] = _Entry.adopted(payment, int(seq), int(chain_seq),
                                                  chain_hash)
                else:
                    fresh.append(pid)
        self.lock_payments(fresh)
        return [self._entries[p.id].payment for p in held if p.id in self._entries]

    def lock_payments(self, payment_ids: Iterable[str]) -> list[Payment]:
        """The payments with these ids that exist (locked on PostgreSQL), by id."""
        wanted = sorted(set(payment_ids))
        for part in _chunks([p for p in wanted if p not in self._entries]):
            if self._sqlite:
                self._take(read_payments(
                    self._conn, f"WHERE payments.id IN ({marks(part)})", part))
            else:
                for _ in self._rows(PAYMENTS_BY_ID, {"_ids": part}):
                    pass
        return [self._entries[p].payment for p in wanted if p in self._entries]

    def _rows(self, query: sa.Select[Any], params: Mapping[str, Any]
              ) -> Iterator[Mapping[str, Any]]:
        """Rows of a payments query, each taken into the batch (the batch's own
        version wins over the database's for a payment it holds already)."""
        if self._lock:
            query = query.order_by(payments.c.id).with_for_update(of=payments)
        for row in self._conn.execute(query, params).mappings():
            entry = self._entries.get(row["id"])
            if entry is None:
                entry = self._entries[row["id"]] = _Entry(dict(row), sealer=self._sealer)
            yield entry.row

    def _take(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """As :meth:`_rows`, for rows read through the driver (SQLite)."""
        taken = []
        for row in rows:
            entry = self._entries.get(row["id"])
            if entry is None:
                entry = self._entries[row["id"]] = _Entry(row, sealer=self._sealer)
            taken.append(entry.row)
        return taken

    def _entry(self, payment_id: str) -> _Entry:
        if payment_id not in self._entries:
            self.lock_payments([payment_id])
            if payment_id not in self._entries:
                raise NotFoundError(f"no payment {payment_id!r}")
        return self._entries[payment_id]

    def get_payment(self, payment_id: str, *, history: bool = False) -> Payment:
        if history:
            raise ValidationError("a write batch does not read histories", field="history")
        return self._entry(payment_id).payment

    def find_payment(self, *, provider: str | None = None,
                     provider_reference: str | None = None,
                     idempotency_key: str | None = None) -> Payment | None:
        if provider is None or provider_reference is None or idempotency_key is not None:
            raise ValidationError("a write batch finds payments by provider and reference",
                                  field="provider_reference")
        if (provider, provider_reference) not in self._by_reference:
            self.prefetch(provider, references=[provider_reference])
        payment_id = self._by_reference[(provider, provider_reference)]
        return None if payment_id is None else self._entries[payment_id].payment

    def seen_delivery(self, provider: str, event_id: str,
                      payment_id: str | None = None) -> bool:
        keys = self.delivered_for(provider, event_id)
        return bool(keys) if payment_id is None else payment_id in keys

    def delivered_for(self, provider: str, event_id: str) -> frozenset[str]:
        if (provider, event_id) not in self._checked:
            self.prefetch(provider, event_ids=[event_id])
        return frozenset(self._seen.get((provider, event_id), ()))

    # --- writes (queued) ---------------------------------------------------------------

    def _queue_delivery(self, delivery: Delivery, payment_id: str | None
                        ) -> dict[str, Any]:
        values = delivery_values(delivery, payment_id, self._now)
        if delivery.event_id is not None:
            event = (delivery.provider, delivery.event_id)
            if values["payment_key"] in self.delivered_for(*event):
                raise duplicate_delivery(delivery)
            self._seen.setdefault(event, set()).add(values["payment_key"])
        self._deliveries.append(values)
        return values

    def _chain(self, payment_id: str | None, items: list[tuple[Kind, dict[str, Any]]]
               ) -> None:
        """Chain evidence rows queued for *payment_id* (on its tip), or alone for
        none (or a payment that does not exist)."""
        if not self._chained or not items:
            return
        entry = None
        if payment_id is not None:
            try:
                entry = self._entry(payment_id)
            except NotFoundError:
                entry = None
        if entry is None:
            for kind, row in items:
                chain_alone(kind, row)
        else:
            entry.chain(items)

    def _step(self, entry: _Entry, *, source: str, target: str, cause: Cause, applied: bool,
              reason: str, event_id: str | None) -> dict[str, Any]:
        entry.seq += 1
        step = {
            "payment_id": entry.row["id"], "seq": entry.seq, "source": source,
            "target": target, "cause": _value(cause), "applied": applied,
            "reason": reason, "event_id": event_id, "version": entry.row["version"],
            "at": self._now,
        }
        self._transitions.append(step)
        return step

    def _check_version(self, entry: _Entry, expected_version: int) -> None:
        if entry.row["version"] != expected_version:
            raise stale_version(entry.row["id"], entry.row["version"], expected_version)

    def _checked_refund(self, refund: Refund | None) -> None:
        """Refuse a bad *refund* now, as the store does, not when the batch is written."""
        if refund is not None:
            refund_values(refund, self._now)

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
        """As :meth:`Store.transition`, queued. Everything is checked before
        anything is queued: a call that raises leaves the batch as it was."""
        entry = self._entries.get(payment_id) or self._entry(payment_id)
        self._check_version(entry, expected_version)
        values = change_values(changes or {}, allowed=TRANSITION_CHANGES)
        values["status"] = _value(target if type(target) is Status else Status(target))
        evidence = [exchange_values(e, payment_id) for e in exchanges] if exchanges else []
        self._checked_refund(refund)
        arrived = None if delivery is None else self._queue_delivery(delivery, payment_id)
        source = entry.row["status"]
        self._apply(entry, values, changes or {})
        step = self._step(entry, source=source, target=values["status"], cause=cause,
                          applied=True, reason=reason, event_id=event_id)
        if self._chained:  # on the payment's tip (_chain's, for the entry in hand)
            entry.chain(records(arrived, evidence, step))
        self._outbox.append({
            "id": next(self._event_ids), "payment_id": payment_id, "type": event_type,
            "payload": dict(payload) if payload is not None else entry.payload(),
            "created_at": self._now, "next_attempt_at": self._now, "attempts": 0,
        })
        self._exchanges += evidence
        if refund is not None:
            self._refunds.append(refund)
        return entry.payment

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
        """As :meth:`Store.record_ignored`, queued (checked first, as transition)."""
        entry = self._entry(payment_id)
        steps = _value(Status(source)), _value(Status(target))
        evidence = [exchange_values(e, payment_id) for e in exchanges]
        arrived = None if delivery is None else self._queue_delivery(delivery, payment_id)
        step = self._step(entry, source=steps[0], target=steps[1], cause=Cause(cause),
                          applied=False, reason=reason, event_id=event_id)
        self._chain(payment_id, records(arrived, evidence, step))
        self._exchanges += evidence

    def update_payment(self, payment_id: str, *, expected_version: int,
                       refund: Refund | None = None, **changes: Any) -> Payment:
        """As :meth:`Store.update_payment`, queued (checked first, as transition)."""
        values = change_values(changes, allowed=UPDATABLE)
        entry = self._entry(payment_id)
        self._check_version(entry, expected_version)
        self._checked_refund(refund)
        if refund is not None:
            self._refunds.append(refund)
        self._apply(entry, values, changes)
        return entry.payment

    def _apply(self, entry: _Entry, values: Mapping[str, Any],
               changes: Mapping[str, Any]) -> None:
        old = (entry.row["provider"], entry.row["provider_reference"])
        entry.apply(values, changes, self._now)
        new = (entry.row["provider"], entry.row["provider_reference"])
        if new != old:  # find_payment by reference sees the change, as a read would
            if self._by_reference.get(old) == entry.row["id"]:
                self._by_reference[old] = None
            if new[1] is not None:
                self._by_reference[new] = entry.row["id"]

    def record_delivery(self, delivery: Delivery) -> bool:
        """As :meth:`Store.record_delivery`, queued: False for one recorded already."""
        try:
            values = self._queue_delivery(delivery, None)
        except ConcurrencyConflictError:
            return False
        self._chain(values["payment_id"], [("delivery", values)])
        return True

    def record_exchanges(self, exchanges: Iterable[Exchange]) -> None:
        """As :meth:`Store.record_exchanges`, queued."""
        rows = [exchange_values(e, None) for e in exchanges]
        by_payment: dict[str | None, list[tuple[Kind, dict[str, Any]]]] = {}
        for row in rows:
            by_payment.setdefault(row["payment_id"], []).append(("exchange", row))
        for pid in sorted(by_payment, key=lambda p: p or ""):
            self._chain(pid, by_payment[pid])
        self._exchanges += rows

    # --- the flush ---------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything queued (the caller's transaction then commits)."""
        conn = self._conn
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        tips: list[dict[str, Any]] = []  # chained records only: the version stays
        for pid, entry in self._entries.items():
            if entry.row["version"] == entry.base_version:
                if entry.changed:
                    tips.append({"_id": pid, "_seq": entry.row["chain_seq"],
                                 "_hash": entry.row["chain_hash"]})
                continue
            names = tuple(sorted(entry.changed))
            row = entry.row
            params = {n: row[n] for n in names}  # (half the cost of a ** merge)
            params["_id"], params["_base"] = pid, entry.base_version
            params["_version"], params["_now"] = row["version"], self._now
            shapes.setdefault(names, []).append(params)
        for names, rows in shapes.items():
            if not _many_rows(conn):
                matched = executemany(conn, payments_update(names), rows)
            elif self._sqlite:
                matched = _update_sqlite(conn, names, rows)
            else:
                matched = _update_postgres(conn, names, rows)
            if conn.dialect.supports_sane_multi_rowcount and matched != len(rows):
                raise ConcurrencyConflictError(
                    "a payment in the batch changed under it; nothing was applied")
        if tips:
            executemany(conn, CHAIN_TIP, tips)
        try:
            if self._deliveries:
                _insert(conn, INSERT_DELIVERY, self._deliveries, one_statement=True)
        except sa.exc.IntegrityError as exc:
            raise ConcurrencyConflictError(
                "another process recorded one of the batch's deliveries first; nothing "
                "was applied") from exc
        if self._transitions:
            _insert(conn, INSERT_TRANSITION, self._transitions, one_statement=True)
        if self._outbox:
            _insert(conn, INSERT_OUTBOX, self._outbox, one_statement=True)
        if self._exchanges:
            conn.execute(sa.insert(exchanges_t), self._exchanges)
        for refund in self._refunds:
            upsert_refund(conn, refund, now=self._now)


#: mypy checks here that a write batch is a PaymentWriter (the store checks itself).
_WRITER: type[PaymentWriter] = WriteBatch
