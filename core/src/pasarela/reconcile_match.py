"""The matching engine behind :func:`pasarela.reconcile.reconcile`: one chunk of
lines at a time, each lookup and each write its own short transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from pasarela.fees import FeeSchedule
from pasarela.lifecycle import Cause, Status
from pasarela.money import Money
from pasarela.provider import ProviderPayment, SettlementLine
from pasarela.reconcile_types import (
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
    from pasarela.service import Service
    from pasarela.store import Store


__all__ = ["AMOUNT_DATE_WINDOW", "CHUNK_SIZE"]

AMOUNT_DATE_WINDOW: Final = timedelta(days=3)
#: Lines per chunk (one lookup per matching rule and one transaction per chunk).
CHUNK_SIZE: Final = 5000
#: SQLite page cache for reconciliation connections, in KiB.
SQLITE_CACHE_KIB: Final = 131072


def _content_hash(line: SettlementLine) -> str:
    fee = "" if line.fee is None else f"{line.fee.minor}{line.fee.currency}"
    text = "|".join((
        line.provider, line.provider_reference or "", line.order_reference or "",
        str(line.amount.minor), line.amount.currency, fee, line.status.strip().lower(),
        line.occurred_at.astimezone(UTC).isoformat(),
    ))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


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


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
        self.occurrences: dict[str, int] = {}
        # A run key with no lines yet: nothing of this call can have been recorded
        # by an earlier one, so the per-chunk lookup of line keys is skipped.
        with self._begin() as conn:
            self.fresh = conn.scalar(sa.select(settlement_lines.c.id).where(
                settlement_lines.c.run_key == key).limit(1)) is None

    def _line_key(self, line: SettlementLine, content: str) -> str:
        """A file's line is keyed by its line number (a re-read of the same file gives
        the same keys). An API's line, which has no stable position, is keyed by its
        content and how many identical lines came before it in this call (so a
        repeated line is still seen, and flagged a duplicate); that count is the one
        thing kept per line in memory, for API sources only."""
        if line.line_no > 0 and line.raw.get("_source") == "file":
            return f"L{line.line_no}"
        seen = self.occurrences.get(content, 0)
        self.occurrences[content] = seen + 1
        return f"H{content}#{seen}"

    # --- lookups (each one short read transaction) -----------------------------------

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[sa.Connection]:
        """A store transaction; on SQLite with a page cache big enough for the
        indexes a large run touches (the default 2 MB makes every lookup of a random
        key a read from the OS)."""
        with self.store._begin(write=write) as conn:
            if self.store.dialect == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            yield conn

    def _read(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        with self._begin() as conn:
            return list(conn.execute(query))

    def _by(self, column: sa.Column[Any], values: Sequence[str]) -> dict[str, sa.Row[Any]]:
        """Payments of the provider whose *column* is among *values* (the newest wins)."""
        found: dict[str, sa.Row[Any]] = {}
        if not values:
            return found
        query = (sa.select(*_PAYMENT_COLUMNS)
                 .where(payments.c.provider == self.provider, column.in_(values))
                 .order_by(payments.c.created_at, payments.c.id))
        for row in self._read(query):
            found[getattr(row, column.name)] = row
        return found

    def _by_amount_date(self, line: SettlementLine, taken: set[str]) -> sa.Row[Any] | None:
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
                return row
        return None

    # --- one chunk ---------------------------------------------------------------------

    def chunk(self, lines: list[SettlementLine]) -> None:
        keyed = [(self._line_key(line, content), content, line)
                 for line, content in ((line, _content_hash(line)) for line in lines)]
        with self._begin() as conn:
            recorded = set() if self.fresh else set(conn.scalars(
                sa.select(settlement_lines.c.line_key).where(
                    settlement_lines.c.run_key == self.key,
                    settlement_lines.c.line_key.in_([k for k, _, _ in keyed]))))
            fresh = [item for item in keyed if item[0] not in recorded]
            seen_before = set(conn.scalars(sa.select(settlement_lines.c.content_hash).where(
                settlement_lines.c.run_key == self.key,
                settlement_lines.c.content_hash.in_({h for _, h, _ in fresh}))))
        self.summary.skipped += len(keyed) - len(fresh)
        self.summary.lines += len(keyed)
        by_ref = self._by(payments.c.provider_reference, sorted(
            {line.provider_reference for _, _, line in fresh if line.provider_reference}))
        by_order = self._by(payments.c.order_reference, sorted(
            {line.order_reference for _, _, line in fresh
             if line.order_reference and line.provider_reference not in by_ref}))
        rows: list[dict[str, Any]] = []
        diffs: list[Difference] = []
        taken: set[str] = set()
        for line_key, content, line in fresh:
            if content in seen_before:
                category, payment, how = Category.DUPLICATE, None, None
                diffs.append(self._difference(line_key, line, None, Category.DUPLICATE,
                                              detail="the same line appears earlier"))
            else:
                seen_before.add(content)
                payment, how = self._match(line, by_ref, by_order, taken)
                if payment is not None:
                    taken.add(payment.id)
                category, diff = self._classify(line_key, line, payment)
                if diff is not None:
                    diffs.append(diff)
            self.summary.counts[category.value] += 1
            rows.append({
                "run_key": self.key, "line_key": line_key, "content_hash": content,
                "line_no": line.line_no, "provider": line.provider,
                "provider_reference": line.provider_reference,
                "order_reference": line.order_reference, "amount_minor": line.amount.minor,
                "currency": line.amount.currency,
                "fee_minor": None if line.fee is None else line.fee.minor,
                "status": line.status[:32], "occurred_at": line.occurred_at.astimezone(UTC),
                "payment_id": None if payment is None else payment.id, "matched_by": how,
                "category": category.value, "created_at": self.now,
            })
        self._write(rows, diffs)

    def _match(self, line: SettlementLine, by_ref: Mapping[str, sa.Row[Any]],
               by_order: Mapping[str, sa.Row[Any]], taken: set[str],
               ) -> tuple[sa.Row[Any] | None, str | None]:
        if line.provider_reference and line.provider_reference in by_ref:
            return by_ref[line.provider_reference], "provider_reference"
        if line.order_reference and line.order_reference in by_order:
            return by_order[line.order_reference], "order_reference"
        row = self._by_amount_date(line, taken)
        return (row, "amount_date") if row is not None else (None, None)

    def _classify(self, line_key: str, line: SettlementLine, payment: sa.Row[Any] | None,
                  ) -> tuple[Category, Difference | None]:
        said = line_status(line.status)
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

    def _heal(self, line_key: str, line: SettlementLine, payment: sa.Row[Any],
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

    def _expected_fee(self, payment: sa.Row[Any]) -> int | None:
        if payment.fee_minor is not None and payment.fee_currency == payment.currency:
            return int(payment.fee_minor)
        schedule = self.fee_schedules.get((payment.provider, payment.method))
        if schedule is None:
            return None
        return schedule.fee_minor(payment.amount_minor, payment.currency)

    def _check_fee(self, line_key: str, line: SettlementLine, payment: sa.Row[Any],
                   ) -> tuple[Category, Difference | None]:
        if line.fee is None:
            return Category.MATCHED, None
        expected = self._expected_fee(payment)
        if expected is None or abs(line.fee.minor - expected) <= self.fee_tolerance:
            return Category.MATCHED, None
        return Category.FEE_MISMATCH, self._difference(
            line_key, line, payment, Category.FEE_MISMATCH,
            expected=str(Money(expected, line.fee.currency)), actual=str(line.fee),
            detail=f"fee differs by more than {self.fee_tolerance} minor unit(s)")

    def _difference(self, line_key: str, line: SettlementLine, payment: sa.Row[Any] | None,
                    category: Category, **fields: Any) -> Difference:
        return Difference(
            category=category, provider=line.provider, item_key=line_key,
            line_no=line.line_no, payment_id=None if payment is None else payment.id,
            provider_reference=line.provider_reference, order_reference=line.order_reference,
            **fields,
        )

    # --- writing -------------------------------------------------------------------------

    def _write(self, rows: list[dict[str, Any]], diffs: list[Difference]) -> None:
        if not rows and not diffs:
            return
        with self._begin(write=True) as conn:
            if rows:
                conn.execute(self._insert(settlement_lines, "line_key"), rows)
            if diffs:
                conn.execute(self._insert(reconciliation_results, "item_key"),
                             [self._result_row(d) for d in diffs])
        for diff in diffs:
            if not diff.resolved:
                self.summary.unresolved += 1

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
        by keyset pages (``id > last``), each its own short transaction."""
        matched = sa.select(settlement_lines.c.id).where(
            settlement_lines.c.run_key == self.key,
            settlement_lines.c.payment_id == payments.c.id,
        )
        last = ""
        while True:
            query = (sa.select(*_PAYMENT_COLUMNS, payments.c.created_at)
                     .where(payments.c.provider == self.provider,
                            payments.c.status.in_(sorted(_OURS_PAID)),
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
