"""The matching engine behind :func:`pasarela.reconcile.reconcile`: one chunk of
lines at a time, each lookup and each write its own short transaction, through
:class:`pasarela.store.settlements.SettlementRun` (which holds the SQL and says how
it is tuned).

Built for a million lines against a million payments in under 12 s and 250 MB on
SQLite (``bench/bench_reconcile.py``):

- each chunk needs one lookup per matching rule (payments by provider reference,
  then by order reference, as one array parameter each) and one write;
- duplicates are found in memory: the run keeps the 16-byte content digest of every
  line it has seen, as an integer (48 bytes each, against 64 for a bytes object:
  about 90 MB for a million lines), so ``settlement_lines`` needs no index on a
  random key;
- a line is read as a plain tuple (:data:`LineRow`): a CSV file gives its rows
  directly (no :class:`~pasarela.provider.SettlementLine` and no
  :class:`~pasarela.money.Money` per line), other sources' lines are turned into
  rows by :func:`rows_of`; a line's values go to the store as a plain tuple too;
- payments no line matched are found by walking the payments once, in keyset pages
  (see :meth:`Run.missing_at_provider`);
- everything else (matching by amount and date, differences, healing) is rare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar, runtime_checkable

from pasarela.engine.transitions import apply_report
from pasarela.fees import FeeSchedule
from pasarela.lifecycle import Cause, Status
from pasarela.money import Money
from pasarela.provider import ProviderPayment, SettlementLine
from pasarela.reconcile.vocabulary import (
    OURS_PAID,
    OURS_REFUNDED,
    Category,
    Difference,
    Summary,
    line_status,
)
from pasarela.store.settlements import (
    LINE_STATUS_WIDTH,
    PaymentFacts,
    Result,
    SettlementRun,
)


if TYPE_CHECKING:
    from pasarela.engine.context import Service
    from pasarela.store import Store


__all__ = [
    "AMOUNT_DATE_WINDOW",
    "CHUNK_SIZE",
    "FROM_FILE",
    "LineRow",
    "Run",
    "SettlementRows",
    "chunks",
    "content_hash",
    "line_of",
    "row_digest",
    "rows_of",
]

_T = TypeVar("_T")

AMOUNT_DATE_WINDOW: Final = timedelta(days=3)
#: Lines per chunk (one lookup per matching rule and one transaction per chunk).
CHUNK_SIZE: Final = 10000

#: What matching needs of a payment (``expected_fee``: ``routing.expected_fee`` in
#: the payment's currency, else the fee schedule's).
_Payment = PaymentFacts


#: A settlement line as the engine reads it: a plain tuple, in this order (one tuple
#: per line and no object inside it but strings, integers and the time):
#:
#: ``line_no``, ``provider``, ``provider_reference``, ``order_reference``,
#: ``amount_minor``, ``currency``, ``fee_minor`` (None: no fee), ``fee_currency``
#: (None without a fee), ``status`` (as the provider wrote it), ``occurred_at`` (UTC),
#: ``occurred_at.isoformat()`` of that UTC time, and whether the line is a file's
#: (keyed by its line number, see :meth:`Run._line_key`).
LineRow: TypeAlias = tuple[int, str, str | None, str | None, int, str, int | None, str | None,
                           str, datetime, str, bool]

#: A file's line says so in its ``raw`` (shared: one read-only mapping, not one per line).
FROM_FILE: Final = MappingProxyType({"_source": "file"})


@runtime_checkable
class SettlementRows(Protocol):
    """A source that gives its lines as :data:`LineRow` tuples (a CSV file) besides
    iterating them as :class:`~pasarela.provider.SettlementLine`."""

    def settlement_rows(self) -> Iterator[LineRow]: ...


def rows_of(lines: Iterable[SettlementLine]) -> Iterator[LineRow]:
    """*lines* as the engine reads them (see :data:`LineRow`)."""
    for line in lines:
        utc = line.occurred_at.astimezone(UTC)
        amount, fee = line.amount, line.fee
        yield (line.line_no, line.provider, line.provider_reference, line.order_reference,
               amount.minor, amount.currency, None if fee is None else fee.minor,
               None if fee is None else fee.currency, line.status, utc, utc.isoformat(),
               line.line_no > 0 and line.raw.get("_source") == "file")


def line_of(row: LineRow) -> SettlementLine:
    """The :class:`~pasarela.provider.SettlementLine` of *row* (the inverse of
    :func:`rows_of`, its time in UTC)."""
    line_no, provider, reference, order, minor, currency, fee, fee_currency, status, utc, \
        _, from_file = row
    return SettlementLine(
        provider=provider, provider_reference=reference, order_reference=order,
        amount=Money(minor, currency),
        fee=None if fee is None or fee_currency is None else Money(fee, fee_currency),
        status=status, occurred_at=utc, line_no=line_no, raw=FROM_FILE if from_file else {})


def row_digest(row: LineRow) -> bytes:
    """The line's content digest (16 bytes; stored as 32 hex digits): two lines with
    the same digest are the same line, the later a duplicate. Its text is fixed:
    stored digests (and the keys of API lines) must stay what earlier versions wrote."""
    _, provider, reference, order, minor, currency, fee, fee_currency, status, _, when, _ = row
    fees = "" if fee is None else f"{fee}{fee_currency}"
    text = (f"{provider}|{reference or ''}|{order or ''}|{minor}|{currency}|{fees}|"
            f"{status.strip().lower()}|{when}")
    digest = _DIGEST.copy()
    digest.update(text.encode())
    return digest.digest()


#: The 16-byte BLAKE2b a digest starts from (copying it is a third cheaper than
#: making one with its keyword argument).
_DIGEST: Final = hashlib.blake2b(digest_size=16)


def content_hash(line: SettlementLine) -> bytes:
    """The content digest of *line* (:func:`row_digest` of its row)."""
    return row_digest(next(rows_of([line])))


def chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """*items* in lists of *size* (the last one shorter)."""
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: How many distinct status words a run remembers the meaning of.
_STATUS_WORDS_KEPT: Final = 256

#: Each category's value, for the rows written (not an enum property per line).
_CATEGORY: Final = {category: category.value for category in Category}


class Run:
    """The state of one :func:`~pasarela.reconcile.reconcile` call."""

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
        self.lines = SettlementRun(store, key)
        #: An API line's key counts the identical lines before it in this call.
        self.occurrences: dict[bytes, int] = {}
        #: The content digest of every line of the run (this call's and, on a re-run,
        #: those recorded before), as an integer: a line whose digest is here is a
        #: duplicate. A dict, not a set: a dict holding only integers (and None) is not
        #: tracked by the cyclic garbage collector, while a set of a million digests is
        #: walked entry by entry in every full collection (about 60 ms each, several
        #: seconds over a run).
        self.seen: dict[int, None] = {}
        self._said: dict[str, str] = {}
        # A run key with no lines yet: nothing of this call can have been recorded
        # by an earlier one, so the per-chunk lookup of line keys is skipped.
        self.fresh = not self.lines.has_lines()
        if not self.fresh:
            self.seen.update(dict.fromkeys(
                int.from_bytes(digest)
                for digest in self.lines.recorded_digests(page=CHUNK_SIZE)))

    def _line_key(self, row: LineRow, content: bytes) -> str:
        """A file's line is keyed by its line number (a re-read of the same file gives
        the same keys). An API's line, which has no stable position, is keyed by its
        content and how many identical lines came before it in this call (so a
        repeated line is still seen, and flagged a duplicate); that count is kept
        per line in memory, for API sources only."""
        if row[11]:
            return f"L{row[0]}"
        seen = self.occurrences.get(content, 0)
        self.occurrences[content] = seen + 1
        return f"H{content.hex()}#{seen}"

    # --- lookups (each one short read transaction) -----------------------------------

    def _with_fee(self, payment: _Payment) -> _Payment:
        """*payment*, whose routing has no expected fee, with the fee schedule's."""
        if payment.expected_fee is not None:
            return payment
        schedule = self.fee_schedules.get((payment.provider, payment.method))
        if schedule is None:
            return payment
        return payment._replace(
            expected_fee=schedule.fee_minor(payment.amount_minor, payment.currency))

    def _by_reference(self, values: Sequence[str]) -> dict[str, _Payment]:
        """Payments of the provider whose provider reference is among *values* (the
        newest wins)."""
        found: dict[str, _Payment] = {}
        with_fee = self._with_fee
        for payment in self.lines.payments_by("provider_reference", self.provider, values):
            assert payment.provider_reference is not None
            found[payment.provider_reference] = (payment if payment.expected_fee is not None
                                                 else with_fee(payment))
        return found

    def _by_order(self, values: Sequence[str]) -> dict[str, _Payment]:
        """As :meth:`_by_reference`, by order reference."""
        found: dict[str, _Payment] = {}
        with_fee = self._with_fee
        for payment in self.lines.payments_by("order_reference", self.provider, values):
            found[payment.order_reference] = (payment if payment.expected_fee is not None
                                              else with_fee(payment))
        return found

    def _by_amount_date(self, row: LineRow, taken: set[str]) -> _Payment | None:
        candidates = self.lines.by_amount_and_date(
            self.provider, amount_minor=row[4], currency=row[5],
            at=row[9], window=AMOUNT_DATE_WINDOW, limit=len(taken) + 1)
        for payment in candidates:
            if payment.id not in taken:
                return self._with_fee(payment)
        return None

    # --- one chunk ---------------------------------------------------------------------

    def chunk(self, rows: list[LineRow]) -> None:
        line_key, stamp, digest = self._line_key, self.lines.stamp, row_digest
        keyed: list[tuple[str, bytes, LineRow]] = []
        for row in rows:
            content = digest(row)
            keyed.append((f"L{row[0]}" if row[11] else line_key(row, content), content, row))
        fresh = keyed
        if not self.fresh:
            recorded = self.lines.recorded_line_keys([item[0] for item in keyed])
            fresh = [item for item in keyed if item[0] not in recorded]
        self.summary.skipped += len(keyed) - len(fresh)
        self.summary.lines += len(keyed)
        by_ref = self._by_reference(sorted({item[2][2] for item in fresh if item[2][2]}))
        by_order = self._by_order(sorted(
            {row[3] for _, _, row in fresh if row[3] and row[2] not in by_ref}))
        lines: list[tuple[object, ...]] = []
        diffs: list[Difference] = []
        taken: set[str] = set()
        counts = dict.fromkeys(Category, 0)
        seen, key, classify, match = self.seen, self.key, self._classify, self._match
        number = int.from_bytes
        now_utc = self.now.astimezone(UTC)
        now = stamp(now_utc, now_utc.isoformat())
        width = LINE_STATUS_WIDTH
        duplicate, by_reference = Category.DUPLICATE, by_ref.get
        for line_key_, content, row in fresh:
            (line_no, provider, reference, order, minor, currency, fee, _, status, utc, when,
             _) = row
            payment: _Payment | None = None
            how: str | None = None
            as_number = number(content)
            if as_number in seen:
                category = duplicate
                diffs.append(self._difference(line_key_, row, None, duplicate,
                                              detail="the same line appears earlier"))
            else:
                seen[as_number] = None
                if reference and (payment := by_reference(reference)) is not None:
                    how = "provider_reference"
                else:
                    payment, how = match(row, by_order, taken)
                if payment is not None:
                    taken.add(payment[0])
                category, diff = classify(line_key_, row, payment)
                if diff is not None:
                    diffs.append(diff)
            counts[category] += 1
            # In LINE_COLUMNS order (pasarela.store.settlements).
            lines.append((
                key, line_key_, content.hex(), line_no, provider, reference, order, minor,
                currency, fee, status[:width], stamp(utc, when),
                None if payment is None else payment[0], how, _CATEGORY[category], now,
            ))
        for category, count in counts.items():
            if count:
                self.summary.counts[category.value] += count
        self._write(lines, diffs)

    def _match(self, row: LineRow, by_order: Mapping[str, _Payment], taken: set[str],
               ) -> tuple[_Payment | None, str | None]:
        """A line whose provider reference matched nothing (see :meth:`chunk`)."""
        order = row[3]
        if order and order in by_order:
            return by_order[order], "order_reference"
        payment = self._by_amount_date(row, taken)
        return (payment, "amount_date") if payment is not None else (None, None)

    def _classify(self, line_key: str, row: LineRow, payment: _Payment | None,
                  ) -> tuple[Category, Difference | None]:
        status, minor, currency = row[8], row[4], row[5]
        said = self._said.get(status)
        if said is None:
            said = line_status(status)
            if len(self._said) < _STATUS_WORDS_KEPT:
                self._said[status] = said
        if payment is None:
            category = Category.MISSING_IN_BOOKS if said == "paid" else Category.STATUS_MISMATCH
            return category, self._difference(
                line_key, row, None, category, actual=f"{said} {Money(minor, currency)}",
                detail="no payment of ours matches this line")
        if said == "refunded":
            # A refund line is money going back: any part of the payment (Stripe writes
            # it negative), in the payment's currency.
            amount_ok = (payment.currency == currency
                         and 0 < abs(minor) <= payment.amount_minor)
        else:
            amount_ok = payment.amount_minor == minor and payment.currency == currency
        if not amount_ok:
            ours = Money(payment.amount_minor, payment.currency)
            return Category.AMOUNT_MISMATCH, self._difference(
                line_key, row, payment, Category.AMOUNT_MISMATCH, expected=str(ours),
                actual=str(Money(minor, currency)), detail="amount or currency differs")
        if said == "paid":
            if payment.status not in OURS_PAID:
                return self._heal(line_key, row, payment)
        elif (said == "refunded" and payment.status not in OURS_REFUNDED) or (said in (
                "failed", "other") and payment.status in OURS_PAID):
            return Category.STATUS_MISMATCH, self._difference(
                line_key, row, payment, Category.STATUS_MISMATCH, expected=payment.status,
                actual=status, detail="the provider reports another status")
        elif said == "refunded":  # the payment's fee schedule says nothing of refunds
            return Category.MATCHED, None
        # The fee, when the line gives one.
        fee = row[6]
        if fee is None:
            return Category.MATCHED, None
        expected = payment.expected_fee
        if expected is None or abs(fee - expected) <= self.fee_tolerance:
            return Category.MATCHED, None
        fee_currency = row[7] or currency
        return Category.FEE_MISMATCH, self._difference(
            line_key, row, payment, Category.FEE_MISMATCH,
            expected=str(Money(expected, fee_currency)), actual=str(Money(fee, fee_currency)),
            detail=f"fee differs by more than {self.fee_tolerance} minor unit(s)")

    def _heal(self, line_key: str, row: LineRow, payment: _Payment,
              ) -> tuple[Category, Difference]:
        before = payment.status
        line_no, reference, minor, currency, status = row[0], row[2], row[4], row[5], row[8]
        if self.service is not None:
            current = self.store.get_payment(payment.id)
            moved = apply_report(self.service,
                current,
                ProviderPayment(status=Status.SUCCEEDED,
                                reference=reference or current.provider_reference,
                                raw_status=f"settlement line {line_no}: {status}",
                                amount=Money(minor, currency)),
                Cause.RECONCILE, event_id=f"reconcile:{self.key[:16]}:{line_key}"[:128],
            )
            if moved.status.value in OURS_PAID:
                self.summary.healed += 1
                return Category.MISSING_IN_BOOKS, self._difference(
                    line_key, row, payment, Category.MISSING_IN_BOOKS, expected=before,
                    actual=status, resolved=True, healed=True,
                    detail=f"healed: {before} -> {moved.status.value} (cause reconcile)")
            return Category.STATUS_MISMATCH, self._difference(
                line_key, row, payment, Category.STATUS_MISMATCH, expected=before,
                actual=status, detail=f"the lifecycle refuses {before} -> succeeded")
        return Category.MISSING_IN_BOOKS, self._difference(
            line_key, row, payment, Category.MISSING_IN_BOOKS, expected=before,
            actual=status, detail="paid at the provider; not healed (no service)")

    def _difference(self, line_key: str, row: LineRow, payment: _Payment | None,
                    category: Category, **fields: Any) -> Difference:
        return Difference(
            category=category, provider=row[1], item_key=line_key,
            line_no=row[0], payment_id=None if payment is None else payment.id,
            provider_reference=row[2], order_reference=row[3],
            **fields,
        )

    # --- writing -------------------------------------------------------------------------

    def _write(self, rows: list[tuple[object, ...]], diffs: list[Difference]) -> None:
        if not rows and not diffs:
            return
        self.lines.write(rows, [_result(d) for d in diffs], now=self.now)
        self.summary.unresolved += sum(1 for diff in diffs if not diff.resolved)

    # --- payments no line matched --------------------------------------------------------

    def missing_at_provider(self, since: datetime, until: datetime, chunk_size: int) -> None:
        """Paid payments created in the window that no line of the run matched; read
        by keyset pages (``id > last``), each its own short transaction, walking the
        payments once over all pages (see
        :meth:`~pasarela.store.settlements.SettlementRun.paid_unmatched`)."""
        last = ""
        while True:
            page = self.lines.paid_unmatched(self.provider, statuses=OURS_PAID, since=since,
                                             until=until, after=last, limit=chunk_size)
            if not page:
                return
            last = page[-1].facts.id
            diffs = [Difference(
                category=Category.MISSING_AT_PROVIDER, provider=self.provider,
                item_key=f"P{p.id}", payment_id=p.id,
                provider_reference=p.provider_reference, order_reference=p.order_reference,
                expected=f"{p.status} {Money(p.amount_minor, p.currency)}",
                actual="no line", detail=f"created {created_at.isoformat()}",
            ) for p, created_at in page]
            known = self.lines.known_results([d.item_key for d in diffs])
            fresh = [d for d in diffs if d.item_key not in known]
            self.summary.counts[Category.MISSING_AT_PROVIDER.value] += len(fresh)
            self._write([], fresh)


def _result(diff: Difference) -> Result:
    return Result(
        item_key=diff.item_key, provider=diff.provider, category=diff.category.value,
        line_no=diff.line_no, payment_id=diff.payment_id,
        provider_reference=diff.provider_reference, order_reference=diff.order_reference,
        expected=diff.expected, actual=diff.actual, detail=diff.detail,
        resolved=diff.resolved, healed=diff.healed)
