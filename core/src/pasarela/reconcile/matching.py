"""The matching engine behind :func:`pasarela.reconcile.reconcile`: one chunk of
lines at a time, each lookup and each write its own short transaction.

Built for a million lines against a million payments in under 30 s and 400 MB on
SQLite (``bench/bench_reconcile.py``):

- the hot statements (payments by reference, inserting the lines) are plain SQL run
  through the driver with tuples, not SQLAlchemy Core (whose per-row parameter and
  result processing costs more than the database's work);
- payments of a chunk are looked up with one bound array (SQLite ``json_each``,
  PostgreSQL ``= ANY``), not thousands of expanded parameters;
- duplicates are found in memory: the run keeps the 16-byte content digest of every
  line it has seen (about 90 MB for a million lines), so ``settlement_lines`` needs
  no index on a random key, only ``(run_key, line_key)`` (idempotency) and
  ``(run_key, payment_id)`` (which payments a run matched);
- payments no line matched are found by walking the primary key once (see
  :meth:`_Run.missing_at_provider`);
- everything else (matching by amount and date, differences, healing) is rare and
  stays on SQLAlchemy Core.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import sqlalchemy as sa

from pasarela.fees import FeeSchedule
from pasarela.lifecycle import Cause, Status
from pasarela.money import Money
from pasarela.provider import ProviderPayment, SettlementLine
from pasarela.reconcile.vocabulary import (
    _OURS_PAID,
    _OURS_REFUNDED,
    Category,
    Difference,
    Summary,
    line_status,
)
from pasarela.store.reconcile_schema import reconciliation_results, settlement_lines
from pasarela.store.schema import payments


if TYPE_CHECKING:
    from pasarela.engine.service import Service
    from pasarela.store import Store


__all__ = ["AMOUNT_DATE_WINDOW", "CHUNK_SIZE"]

AMOUNT_DATE_WINDOW: Final = timedelta(days=3)
#: Lines per chunk (one lookup per matching rule and one transaction per chunk).
CHUNK_SIZE: Final = 10000
#: SQLite page cache for reconciliation connections, in KiB.
SQLITE_CACHE_KIB: Final = 32768


def _content_hash(line: SettlementLine, utc: datetime | None = None) -> bytes:
    """The line's content digest (16 bytes; stored as 32 hex digits): two lines with
    the same digest are the same line, the later a duplicate. *utc* is the line's
    ``occurred_at`` in UTC, when the caller has it already."""
    amount, fee = line.amount, line.fee
    when = (utc or line.occurred_at.astimezone(UTC)).isoformat()
    fees = "" if fee is None else f"{fee.minor}{fee.currency}"
    text = (f"{line.provider}|{line.provider_reference or ''}|{line.order_reference or ''}|"
            f"{amount.minor}|{amount.currency}|{fees}|{line.status.strip().lower()}|{when}")
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _chunks(items: Iterable[SettlementLine], size: int) -> Iterator[list[SettlementLine]]:
    chunk: list[SettlementLine] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_PAYMENT_COLUMNS: Final = (
    payments.c.id, payments.c.provider, payments.c.method, payments.c.provider_reference,
    payments.c.order_reference, payments.c.amount_minor, payments.c.currency,
    payments.c.status,
    # Extracted by the database (json_extract / ->): no JSON decoding per row here.
    payments.c.routing[("expected_fee", "minor")].as_integer().label("fee_minor"),
    payments.c.routing[("expected_fee", "currency")].as_string().label("fee_currency"),
)

#: The same columns, for the per-chunk lookups run as plain SQL through the driver
#: (``{fee}`` is the dialect's JSON extraction of ``routing.expected_fee.minor`` when
#: its currency is the payment's: the :class:`_Payment` fields, in order).
_PAYMENT_SQL: Final = (
    "SELECT id, provider, method, provider_reference, order_reference, amount_minor, "
    "currency, status, {fee} AS expected_fee "
    "FROM payments WHERE provider = {p} AND {column} {in_array} ORDER BY created_at, id"
)
_SQLITE_SQL: Final = {
    "p": "?", "in_array": "IN (SELECT value FROM json_each(?))",
    "fee": "CASE WHEN json_extract(routing, '$.expected_fee.currency') = currency "
           "THEN json_extract(routing, '$.expected_fee.minor') END",
}
_POSTGRES_SQL: Final = {
    "p": "%s", "in_array": "= ANY(%s)",
    "fee": "CASE WHEN routing -> 'expected_fee' ->> 'currency' = currency "
           "THEN CAST(routing -> 'expected_fee' ->> 'minor' AS BIGINT) END",
}
#: Inserting a chunk's lines (executemany with a tuple per line, in ``_LINE_COLUMNS``
#: order); a line recorded already (a concurrent run of the same key) is left alone.
_INSERT_LINES: Final = ("INSERT INTO settlement_lines ({columns}) VALUES ({marks}) "
                        "ON CONFLICT (run_key, line_key) DO NOTHING")
_LINE_COLUMNS: Final = (
    "run_key", "line_key", "content_hash", "line_no", "provider", "provider_reference",
    "order_reference", "amount_minor", "currency", "fee_minor", "status", "occurred_at",
    "payment_id", "matched_by", "category", "created_at",
)


class _Payment(NamedTuple):
    """What matching needs of a payment."""

    id: str
    provider: str
    method: str
    provider_reference: str | None
    order_reference: str
    amount_minor: int
    currency: str
    status: str
    #: ``routing.expected_fee`` in the payment's currency, else the fee schedule's.
    expected_fee: int | None


#: How many distinct status words a run remembers the meaning of.
_STATUS_WORDS_KEPT: Final = 256

#: Each category's value, for the rows written (not an enum property per line).
_CATEGORY: Final = {category: category.value for category in Category}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_time(value: datetime) -> str:
    """*value* as SQLAlchemy stores a ``DateTime`` in SQLite (UTC, no offset)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class _Run:
    """The state of one :func:`reconcile` call."""

    def __init__(self, store: Store, *, provider: str, key: str, service: Service | None,
                 fee_schedules: Mapping[tuple[str, str], FeeSchedule],
                 fee_tolerance: int, now: datetime) -> None:
        self.store = store
        self.provider = provider
        self.key = key
        self.service = service
        self.fee_schedules = fee_schedules
        self.fee_tolerance = fee_tolerance
        self.now = now
        self.summary = Summary(run_key=key, provider=provider)
        self.sqlite = store.dialect == "sqlite"
        words = _SQLITE_SQL if self.sqlite else _POSTGRES_SQL
        self._payment_sql = {
            column: _PAYMENT_SQL.format(column=column, **words)
            for column in ("provider_reference", "order_reference")}
        mark = "?" if self.sqlite else "%s"
        self._insert_lines_sql = _INSERT_LINES.format(
            columns=", ".join(_LINE_COLUMNS), marks=", ".join([mark] * len(_LINE_COLUMNS)))
        #: An API line's key counts the identical lines before it in this call.
        self.occurrences: dict[bytes, int] = {}
        #: The content digest of every line of the run (this call's and, on a re-run,
        #: those recorded before): a line whose digest is here is a duplicate. A dict,
        #: not a set: a dict holding only bytes (and None) is not tracked by the cyclic
        #: garbage collector, while a set of a million digests is walked entry by entry
        #: in every full collection (about 60 ms each, several seconds over a run).
        self.seen: dict[bytes, None] = {}
        self._said: dict[str, str] = {}
        # A run key with no lines yet: nothing of this call can have been recorded
        # by an earlier one, so the per-chunk lookup of line keys is skipped.
        with self._begin() as conn:
            self.fresh = conn.scalar(sa.select(settlement_lines.c.id).where(
                settlement_lines.c.run_key == key).limit(1)) is None
        if not self.fresh:
            self._load_seen()

    def _load_seen(self) -> None:
        """The digests of the lines recorded for this run already, in keyset pages."""
        t = settlement_lines
        last = 0
        while True:
            with self._begin() as conn:
                page = conn.execute(sa.select(t.c.id, t.c.content_hash).where(
                    t.c.run_key == self.key, t.c.id > last).order_by(t.c.id)
                    .limit(CHUNK_SIZE)).all()
            if not page:
                return
            last = page[-1][0]
            self.seen.update(dict.fromkeys(bytes.fromhex(digest) for _, digest in page))

    def _line_key(self, line: SettlementLine, content: bytes) -> str:
        """A file's line is keyed by its line number (a re-read of the same file gives
        the same keys). An API's line, which has no stable position, is keyed by its
        content and how many identical lines came before it in this call (so a
        repeated line is still seen, and flagged a duplicate); that count is kept
        per line in memory, for API sources only."""
        if line.line_no > 0 and line.raw.get("_source") == "file":
            return f"L{line.line_no}"
        seen = self.occurrences.get(content, 0)
        self.occurrences[content] = seen + 1
        return f"H{content.hex()}#{seen}"

    # --- lookups (each one short read transaction) -----------------------------------

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """A store transaction; on SQLite with a page cache big enough for the index
        pages a chunk touches (the default 2 MB is not; a bigger one only adds to the
        run's memory, since every index the run writes grows at its end)."""
        with self.store._begin(write=write) as conn:
            if self.sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            yield conn

    def _read(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        with self._begin() as conn:
            return list(conn.execute(query))

    def _payment(self, row: sa.Row[Any]) -> _Payment:
        """A row of :data:`_PAYMENT_COLUMNS` as a :class:`_Payment`."""
        expected: int | None = None
        if row.fee_minor is not None and row.fee_currency == row.currency:
            expected = int(row.fee_minor)
        return self._with_fee(_Payment(
            row.id, row.provider, row.method, row.provider_reference, row.order_reference,
            row.amount_minor, row.currency, row.status, expected))

    def _with_fee(self, payment: _Payment) -> _Payment:
        """*payment*, whose routing has no expected fee, with the fee schedule's."""
        if payment.expected_fee is not None:
            return payment
        schedule = self.fee_schedules.get((payment.provider, payment.method))
        if schedule is None:
            return payment
        return payment._replace(
            expected_fee=schedule.fee_minor(payment.amount_minor, payment.currency))

    def _by(self, column: str, values: Sequence[str]) -> dict[str, _Payment]:
        """Payments of the provider whose *column* is among *values* (the newest wins):
        one statement with the values as one array parameter, run on the driver's
        cursor (plain tuples, no per-row work here)."""
        found: dict[str, _Payment] = {}
        if not values:
            return found
        array: Any = json.dumps(values) if self.sqlite else list(values)
        with self._begin() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(self._payment_sql[column], (self.provider, array))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        at = 3 if column == "provider_reference" else 4
        make, with_fee = _Payment._make, self._with_fee
        for row in rows:
            payment = make(row)
            found[row[at]] = payment if row[8] is not None else with_fee(payment)
        return found

    def _by_amount_date(self, line: SettlementLine, taken: set[str]) -> _Payment | None:
        at = line.occurred_at.astimezone(UTC)
        already = sa.select(settlement_lines.c.id).where(
            settlement_lines.c.run_key == self.key,
            settlement_lines.c.payment_id == payments.c.id,
        )
        query = (sa.select(*_PAYMENT_COLUMNS)
                 .where(payments.c.provider == self.provider,
                        payments.c.amount_minor == line.amount.minor,
                        payments.c.currency == line.amount.currency,
                        payments.c.created_at <= at,
                        payments.c.created_at >= at - AMOUNT_DATE_WINDOW,
                        ~already.exists())
                 .order_by(payments.c.created_at.desc(), payments.c.id.desc())
                 .limit(len(taken) + 1))
        for row in self._read(query):
            if row.id not in taken:
                return self._payment(row)
        return None

    # --- one chunk ---------------------------------------------------------------------

    def chunk(self, lines: list[SettlementLine]) -> None:
        sqlite, line_key = self.sqlite, self._line_key
        keyed: list[tuple[str, bytes, SettlementLine, Any]] = []
        for line in lines:
            utc = line.occurred_at.astimezone(UTC)
            content = _content_hash(line, utc)
            # SQLite stores a DateTime as SQLAlchemy does: "YYYY-MM-DD HH:MM:SS.ffffff".
            stamp = utc.isoformat(" ", "microseconds")[:26] if sqlite else utc
            keyed.append((line_key(line, content), content, line, stamp))
        fresh = keyed
        if not self.fresh:
            with self._begin() as conn:
                recorded = set(conn.scalars(sa.select(settlement_lines.c.line_key).where(
                    settlement_lines.c.run_key == self.key,
                    settlement_lines.c.line_key.in_([item[0] for item in keyed]))))
            fresh = [item for item in keyed if item[0] not in recorded]
        self.summary.skipped += len(keyed) - len(fresh)
        self.summary.lines += len(keyed)
        by_ref = self._by("provider_reference", sorted(
            {item[2].provider_reference for item in fresh if item[2].provider_reference}))
        by_order = self._by("order_reference", sorted(
            {item[2].order_reference for item in fresh
             if item[2].order_reference and item[2].provider_reference not in by_ref}))
        rows: list[tuple[Any, ...]] = []
        diffs: list[Difference] = []
        taken: set[str] = set()
        counts = dict.fromkeys(Category, 0)
        seen, key, classify = self.seen, self.key, self._classify
        now = _sqlite_time(self.now) if sqlite else self.now.astimezone(UTC)
        for line_key_, content, line, stamp in fresh:
            payment: _Payment | None = None
            how: str | None = None
            reference = line.provider_reference
            if content in seen:
                category = Category.DUPLICATE
                diffs.append(self._difference(line_key_, line, None, Category.DUPLICATE,
                                              detail="the same line appears earlier"))
            else:
                seen[content] = None
                if reference and reference in by_ref:
                    payment, how = by_ref[reference], "provider_reference"
                else:
                    payment, how = self._match(line, by_order, taken)
                if payment is not None:
                    taken.add(payment.id)
                category, diff = classify(line_key_, line, payment)
                if diff is not None:
                    diffs.append(diff)
            counts[category] += 1
            amount, fee = line.amount, line.fee
            rows.append((
                key, line_key_, content.hex(), line.line_no, line.provider, reference,
                line.order_reference, amount.minor, amount.currency,
                None if fee is None else fee.minor, line.status[:32], stamp,
                None if payment is None else payment.id, how, _CATEGORY[category], now,
            ))
        for category, count in counts.items():
            if count:
                self.summary.counts[category.value] += count
        self._write(rows, diffs)

    def _match(self, line: SettlementLine, by_order: Mapping[str, _Payment], taken: set[str],
               ) -> tuple[_Payment | None, str | None]:
        """A line whose provider reference matched nothing (see :meth:`chunk`)."""
        if line.order_reference and line.order_reference in by_order:
            return by_order[line.order_reference], "order_reference"
        payment = self._by_amount_date(line, taken)
        return (payment, "amount_date") if payment is not None else (None, None)

    def _classify(self, line_key: str, line: SettlementLine, payment: _Payment | None,
                  ) -> tuple[Category, Difference | None]:
        said = self._said.get(line.status)
        if said is None:
            said = line_status(line.status)
            if len(self._said) < _STATUS_WORDS_KEPT:
                self._said[line.status] = said
        if payment is None:
            category = Category.MISSING_IN_BOOKS if said == "paid" else Category.STATUS_MISMATCH
            return category, self._difference(
                line_key, line, None, category, actual=f"{said} {line.amount}",
                detail="no payment of ours matches this line")
        if said == "refunded":
            # A refund line is money going back: any part of the payment (Stripe writes
            # it negative), in the payment's currency.
            amount_ok = (payment.currency == line.amount.currency
                         and 0 < abs(line.amount.minor) <= payment.amount_minor)
        else:
            amount_ok = (payment.amount_minor == line.amount.minor
                         and payment.currency == line.amount.currency)
        if not amount_ok:
            ours = Money(payment.amount_minor, payment.currency)
            return Category.AMOUNT_MISMATCH, self._difference(
                line_key, line, payment, Category.AMOUNT_MISMATCH, expected=str(ours),
                actual=str(line.amount), detail="amount or currency differs")
        if said == "paid" and payment.status not in _OURS_PAID:
            return self._heal(line_key, line, payment)
        if (said == "refunded" and payment.status not in _OURS_REFUNDED) or (said in (
                "failed", "other") and payment.status in _OURS_PAID):
            return Category.STATUS_MISMATCH, self._difference(
                line_key, line, payment, Category.STATUS_MISMATCH, expected=payment.status,
                actual=line.status, detail="the provider reports another status")
        if said == "refunded":  # the payment's fee schedule says nothing of refunds
            return Category.MATCHED, None
        return self._check_fee(line_key, line, payment)

    def _heal(self, line_key: str, line: SettlementLine, payment: _Payment,
              ) -> tuple[Category, Difference]:
        before = payment.status
        if self.service is not None:
            current = self.store.get_payment(payment.id)
            moved = self.service._apply_report(
                current,
                ProviderPayment(status=Status.SUCCEEDED,
                                reference=line.provider_reference or current.provider_reference,
                                raw_status=f"settlement line {line.line_no}: {line.status}",
                                amount=line.amount),
                Cause.RECONCILE, event_id=f"reconcile:{self.key[:16]}:{line_key}"[:128],
            )
            if moved.status.value in _OURS_PAID:
                self.summary.healed += 1
                return Category.MISSING_IN_BOOKS, self._difference(
                    line_key, line, payment, Category.MISSING_IN_BOOKS, expected=before,
                    actual=line.status, resolved=True, healed=True,
                    detail=f"healed: {before} -> {moved.status.value} (cause reconcile)")
            return Category.STATUS_MISMATCH, self._difference(
                line_key, line, payment, Category.STATUS_MISMATCH, expected=before,
                actual=line.status, detail=f"the lifecycle refuses {before} -> succeeded")
        return Category.MISSING_IN_BOOKS, self._difference(
            line_key, line, payment, Category.MISSING_IN_BOOKS, expected=before,
            actual=line.status, detail="paid at the provider; not healed (no service)")

    def _check_fee(self, line_key: str, line: SettlementLine, payment: _Payment,
                   ) -> tuple[Category, Difference | None]:
        if line.fee is None:
            return Category.MATCHED, None
        expected = payment.expected_fee
        if expected is None or abs(line.fee.minor - expected) <= self.fee_tolerance:
            return Category.MATCHED, None
        return Category.FEE_MISMATCH, self._difference(
            line_key, line, payment, Category.FEE_MISMATCH,
            expected=str(Money(expected, line.fee.currency)), actual=str(line.fee),
            detail=f"fee differs by more than {self.fee_tolerance} minor unit(s)")

    def _difference(self, line_key: str, line: SettlementLine, payment: _Payment | None,
                    category: Category, **fields: Any) -> Difference:
        return Difference(
            category=category, provider=line.provider, item_key=line_key,
            line_no=line.line_no, payment_id=None if payment is None else payment.id,
            provider_reference=line.provider_reference, order_reference=line.order_reference,
            **fields,
        )

    # --- writing -------------------------------------------------------------------------

    def _write(self, rows: list[tuple[Any, ...]], diffs: list[Difference]) -> None:
        if not rows and not diffs:
            return
        with self._begin(write=True) as conn:
            if rows:
                conn.exec_driver_sql(self._insert_lines_sql, rows)
            if diffs:
                conn.execute(self._insert(reconciliation_results, "item_key"),
                             [self._result_row(d) for d in diffs])
        self.summary.unresolved += sum(1 for diff in diffs if not diff.resolved)

    def _insert(self, table: sa.Table, key: str) -> Any:
        return self.store._insert(table).on_conflict_do_nothing(
            index_elements=[table.c.run_key, table.c[key]])

    def _result_row(self, diff: Difference) -> dict[str, Any]:
        return {
            "run_key": self.key, "item_key": diff.item_key, "provider": diff.provider,
            "category": diff.category.value, "line_no": diff.line_no,
            "payment_id": diff.payment_id, "provider_reference": diff.provider_reference,
            "order_reference": diff.order_reference, "expected": diff.expected[:128],
            "actual": diff.actual[:128], "detail": diff.detail, "resolved": diff.resolved,
            "healed": diff.healed, "created_at": self.now,
        }

    # --- payments no line matched --------------------------------------------------------

    def missing_at_provider(self, since: datetime, until: datetime, chunk_size: int) -> None:
        """Paid payments created in the window that no line of the run matched; read
        by keyset pages (``id > last``), each its own short transaction.

        Provider and status are compared as ``column || ''`` so that no index on
        them is used: SQLite would otherwise pick ``(provider, ...)`` and, for every
        page, read all the provider's payments and sort them by id. Walking the
        primary key from ``last`` reads each payment once over all pages."""
        matched = sa.select(settlement_lines.c.id).where(
            settlement_lines.c.run_key == self.key,
            settlement_lines.c.payment_id == payments.c.id,
        )
        last = ""
        while True:
            query = (sa.select(*_PAYMENT_COLUMNS, payments.c.created_at)
                     .where((payments.c.provider + "") == self.provider,
                            (payments.c.status + "").in_(sorted(_OURS_PAID)),
                            payments.c.created_at >= since.astimezone(UTC),
                            payments.c.created_at < until.astimezone(UTC),
                            payments.c.id > last, ~matched.exists())
                     .order_by(payments.c.id).limit(chunk_size))
            page = self._read(query)
            if not page:
                return
            last = page[-1].id
            diffs = [Difference(
                category=Category.MISSING_AT_PROVIDER, provider=self.provider,
                item_key=f"P{row.id}", payment_id=row.id,
                provider_reference=row.provider_reference, order_reference=row.order_reference,
                expected=f"{row.status} {Money(row.amount_minor, row.currency)}",
                actual="no line", detail=f"created {_aware(row.created_at).isoformat()}",
            ) for row in page]
            with self._begin() as conn:
                known = set(conn.scalars(sa.select(reconciliation_results.c.item_key).where(
                    reconciliation_results.c.run_key == self.key,
                    reconciliation_results.c.item_key.in_([d.item_key for d in diffs]))))
            fresh = [d for d in diffs if d.item_key not in known]
            self.summary.counts[Category.MISSING_AT_PROVIDER.value] += len(fresh)
            self._write([], fresh)
