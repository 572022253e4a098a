"""Matching settlement lines against payments: every category, healing, re-runs."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.lifecycle import Cause, Status
from pasarela.model import Payment
from pasarela.money import Money
from pasarela.reconcile import (
    BATCH_GC_THRESHOLD,
    Category,
    batch_gc,
    differences,
    reconcile,
    run_key,
    run_totals,
)
from pasarela.store.reconcile_schema import reconciliation_results, settlement_lines
from pasarela.store.schema import outbox, transitions

from .conftest import FEES, SINCE, T0, UNTIL, line


def _count(pasarela: Pasarela, table: sa.Table) -> int:
    with pasarela.store.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def _expected_fee(payment: Payment) -> str:
    fee = payment.routing["expected_fee"]
    return str(Money(fee["minor"], fee["currency"]).decimal_string())


def _run(pasarela: Pasarela, lines: list, **kw: object):
    return reconcile(pasarela.store, lines, provider="fake", since=SINCE, until=UNTIL,
                     service=pasarela.service, chunk_size=3, **kw)


def test_every_category_and_an_idempotent_rerun(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    ok = make_payment("ok")
    heal = make_payment("heal", paid=False)
    absent = make_payment("absent")
    refunded = make_payment("refunded-there")
    amount = make_payment("amount")
    fee = make_payment("fee")
    by_order = make_payment("by-order", "55.00")
    by_amount = make_payment("by-amount", "77.70")
    assert ok.routing["expected_fee"] == {"minor": 472, "currency": "PEN"}  # 3.5 + 0.50 + IGV
    lines = [
        line(ok, fee=_expected_fee(ok), line_no=1),
        line(heal, line_no=2),
        line(refunded, status="refunded", line_no=3),
        line(amount, amount="99.00", line_no=4),
        line(fee, fee="9.99", line_no=5),
        line(ok, fee=_expected_fee(ok), line_no=6),           # a duplicate of line 1
        line(ref="cip-nobody", amount="12.00", line_no=7),    # nobody's
        line(ref="", order_ref="by-order", amount="55.00", line_no=8),
        line(ref="", amount="77.70", at=T0 + timedelta(hours=2), line_no=9),
    ]
    summary = _run(pasarela, lines)
    assert summary.counts == {
        "matched": 3, "missing_in_books": 2, "missing_at_provider": 1, "status_mismatch": 1,
        "amount_mismatch": 1, "fee_mismatch": 1, "duplicate": 1,
    }
    assert summary.healed == 1
    assert summary.unresolved == 6  # every difference but the healed payment
    found = {d.category: d for d in differences(pasarela.store, summary.run_key)}
    assert found[Category.MISSING_AT_PROVIDER].payment_id == absent.id
    assert found[Category.STATUS_MISMATCH].payment_id == refunded.id
    assert found[Category.AMOUNT_MISMATCH].expected == "PEN 100.00"
    assert found[Category.AMOUNT_MISMATCH].actual == "PEN 99.00"
    assert found[Category.FEE_MISMATCH].expected == "PEN 4.72"
    assert found[Category.DUPLICATE].line_no == 6
    with pasarela.store.engine.connect() as conn:
        how = dict(conn.execute(sa.select(settlement_lines.c.line_no,
                                          settlement_lines.c.matched_by)).all())
    assert how[8] == "order_reference"
    assert how[9] == "amount_date"
    assert how[1] == "provider_reference"
    with pasarela.store.engine.connect() as conn:
        stored = conn.execute(sa.select(settlement_lines.c.occurred_at,
                                        settlement_lines.c.created_at)
                              .where(settlement_lines.c.line_no == 1)).one()
    assert stored.occurred_at.replace(tzinfo=UTC) == lines[0].occurred_at
    assert stored.created_at is not None
    with pasarela.store.engine.connect() as conn:
        ids = set(conn.scalars(sa.select(settlement_lines.c.payment_id)))
    assert {by_order.id, by_amount.id} <= ids

    # Healing went through the lifecycle, with cause reconcile.
    healed = pasarela.get(heal.id)
    assert healed.status is Status.SUCCEEDED
    assert (healed.history[-1].source, healed.history[-1].target,
            healed.history[-1].cause) == (Status.PENDING, Status.SUCCEEDED, Cause.RECONCILE)
    assert found[Category.MISSING_IN_BOOKS].healed or any(
        d.healed for d in differences(pasarela.store, summary.run_key))

    before = [_count(pasarela, t) for t in (settlement_lines, reconciliation_results,
                                            transitions, outbox)]
    totals = run_totals(pasarela.store, summary.run_key)
    again = _run(pasarela, lines)
    assert again.skipped == len(lines)
    assert sum(again.counts.values()) == 0
    assert [_count(pasarela, t) for t in (settlement_lines, reconciliation_results,
                                          transitions, outbox)] == before
    assert run_totals(pasarela.store, summary.run_key).to_dict() == totals.to_dict()
    assert pasarela.get(heal.id).version == healed.version


def test_without_a_service_nothing_is_healed(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    pending = make_payment("p1", paid=False)
    summary = reconcile(pasarela.store, [line(pending, line_no=1)], provider="fake",
                        since=SINCE, until=UNTIL)
    assert summary.counts["missing_in_books"] == 1
    assert summary.unresolved == 1
    assert pasarela.get(pending.id).status is Status.PENDING


def test_a_failed_payment_the_provider_says_paid_is_a_status_mismatch(
        pasarela: Pasarela, make_payment: Callable[..., Payment], gateway) -> None:
    payment = make_payment("f1", paid=False)
    headers, body = gateway.settle(payment.provider_reference, "failed")
    pasarela.handle_webhook("fake", headers, body)
    assert pasarela.get(payment.id).status is Status.FAILED
    summary = _run(pasarela, [line(payment, line_no=1)])
    assert summary.counts["status_mismatch"] == 1
    assert pasarela.get(payment.id).status is Status.FAILED


def test_fee_within_tolerance_and_from_the_schedule(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    from pasarela.fees import FeeSchedule

    payment = make_payment("t1")
    summary = _run(pasarela, [line(payment, fee="4.73", line_no=1)], fee_tolerance=1)
    assert summary.counts["matched"] == 1
    # With no routing.expected_fee, the schedule gives the expected fee.
    with pasarela.store._begin(write=True) as conn:
        from pasarela.store.schema import payments

        conn.execute(sa.update(payments).values(routing=None))
    schedule = {("fake", "cash"): FeeSchedule.from_mapping(FEES)}
    other = reconcile(pasarela.store, [line(payment, fee="5.00", line_no=1)], provider="fake",
                      since=SINCE, until=UNTIL, key="other-run", fee_schedules=schedule)
    assert other.counts["fee_mismatch"] == 1


def test_run_key_depends_on_window_and_source() -> None:
    assert run_key("fake", SINCE, UNTIL) == run_key("fake", SINCE, UNTIL)
    assert run_key("fake", SINCE, UNTIL) != run_key("fake", SINCE, UNTIL, "abc")
    assert run_key("fake", SINCE, UNTIL) != run_key("fake", SINCE, UNTIL + timedelta(days=1))


def test_lines_are_read_a_chunk_at_a_time(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    payments = [make_payment(f"s-{n}") for n in range(7)]
    pulled: list[int] = []
    done: list[int] = []

    def lines():
        for n, payment in enumerate(payments, start=1):
            pulled.append(n)
            yield line(payment, line_no=n)

    reconcile(pasarela.store, lines(), provider="fake", since=SINCE, until=UNTIL,
              chunk_size=3, progress=lambda n: done.append(len(pulled)))
    assert done == [3, 6, 7]  # never more than one chunk ahead of what is written


def test_refund_lines_are_checked_against_refunds_not_the_full_amount(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    refunded = make_payment("r1")
    pasarela.refund(refunded.id, Money.of("30.00", "PEN"))
    untouched = make_payment("r2")
    summary = _run(pasarela, [
        line(refunded, amount="-30.00", status="refunded", line_no=1),  # Stripe's sign
        line(refunded, amount="150.00", status="refunded", line_no=2),  # more than paid
        line(untouched, amount="10.00", status="refunded", line_no=3),  # we refunded none
    ])
    assert summary.counts["matched"] == 1
    assert summary.counts["amount_mismatch"] == 1
    assert summary.counts["status_mismatch"] == 1


def test_a_line_recorded_by_an_earlier_call_of_the_run_makes_a_later_one_a_duplicate(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    paid = make_payment("d-1")
    first = _run(pasarela, [line(paid, line_no=1)], key="resumed")
    assert first.counts["matched"] == 1
    # The run goes on (a resumed import): line 1 again is skipped, and a line with the
    # same content further on is a duplicate of what the first call recorded.
    again = _run(pasarela, [line(paid, line_no=1), line(paid, line_no=2)], key="resumed")
    assert again.skipped == 1
    assert again.counts["duplicate"] == 1
    assert again.counts["matched"] == 0
    found = [d for d in differences(pasarela.store, "resumed")
             if d.category is Category.DUPLICATE]
    assert [d.line_no for d in found] == [2]


def test_stored_times_are_utc_to_the_microsecond(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    from datetime import timezone

    paid = make_payment("utc-1")
    lima = timezone(timedelta(hours=-5))
    at = datetime(2026, 11, 10, 10, 30, 15, 123456, tzinfo=lima)
    _run(pasarela, [line(paid, at=at, line_no=1)], key="utc")
    with pasarela.store.engine.connect() as conn:
        stored = conn.scalar(sa.select(settlement_lines.c.occurred_at)
                             .where(settlement_lines.c.run_key == "utc"))
    assert stored is not None
    assert _aware(stored) == datetime(2026, 11, 10, 15, 30, 15, 123456, tzinfo=UTC)


def test_missing_at_provider_reads_every_page(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    paid = [make_payment(f"m-{n}") for n in range(8)]
    make_payment("m-pending", paid=False)           # not paid: never missing
    listed = {paid[0].id, paid[4].id}
    summary = reconcile(pasarela.store, [line(paid[0], line_no=1), line(paid[4], line_no=2)],
                        provider="fake", since=SINCE, until=UNTIL, key="pages", chunk_size=3)
    missing = {d.payment_id for d in differences(pasarela.store, "pages")
               if d.category is Category.MISSING_AT_PROVIDER}
    assert missing == {p.id for p in paid} - listed
    assert summary.counts["missing_at_provider"] == 6
    again = reconcile(pasarela.store, [line(paid[0], line_no=1), line(paid[4], line_no=2)],
                      provider="fake", since=SINCE, until=UNTIL, key="pages", chunk_size=3)
    assert again.counts["missing_at_provider"] == 0  # recorded already


def test_api_line_keys_do_not_change_between_versions() -> None:
    """An API line is keyed by its content digest: a new formula would make a re-run
    after an upgrade record every line again."""
    from pasarela.reconcile.matching import content_hash

    digest = content_hash(line(ref="cip-1", amount="12.50", fee="0.99",
                               at=datetime(2026, 11, 10, 15, 0, tzinfo=UTC)))
    text = "fake|cip-1||1250|PEN|99PEN|paid|2026-11-10T15:00:00+00:00"
    assert digest.hex() == hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def test_batch_gc_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with batch_gc():
        assert gc.get_threshold()[0] == BATCH_GC_THRESHOLD
    assert gc.get_threshold() == before


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_a_line_s_stored_sqlite_time_is_what_sqlalchemy_writes() -> None:
    """Lines are inserted through the driver with their times as text, cut from the
    line's isoformat: the text SQLAlchemy writes for a DateTime on SQLite."""
    from datetime import timezone

    from pasarela.store.settlements import sqlite_stamp

    for at in (datetime(2026, 11, 10, 15, 0, tzinfo=UTC),
               datetime(2026, 11, 10, 15, 0, 0, 1, tzinfo=UTC),
               datetime(2026, 11, 10, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5))),
               datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)):
        utc = at.astimezone(UTC)
        assert sqlite_stamp(utc, utc.isoformat()) == utc.isoformat(" ", "microseconds")[:26]
        assert sqlite_stamp(utc, utc.isoformat()) == _sqlalchemy_sqlite_text(utc)


def _sqlalchemy_sqlite_text(utc: datetime) -> str:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    process = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return str(process(utc.replace(tzinfo=None)))


def test_a_file_s_rows_and_its_lines_reconcile_alike(
        pasarela: Pasarela, make_payment: Callable[..., Payment], tmp_path: Path) -> None:
    """A CSV file is matched from its rows; the same file's SettlementLines, given as a
    list, go through rows_of: both record the same lines and differences."""
    from pasarela.reconcile.csv_import import ColumnMap, CsvReport, read_csv

    ok, fee, amount = make_payment("f-ok"), make_payment("f-fee"), make_payment("f-amount")
    make_payment("f-absent")
    at = (T0 + timedelta(hours=1)).isoformat()
    path = tmp_path / "s.csv"
    path.write_text(
        "ref,order,amount,fee,status,at\n"
        f"{ok.provider_reference},,100.00,{_expected_fee(ok)},paid,{at}\n"
        f"{fee.provider_reference},,100.00,9.99,paid,{at}\n"
        f"{amount.provider_reference},,99.00,,paid,{at}\n"
        f"{ok.provider_reference},,100.00,{_expected_fee(ok)},paid,{at}\n"
        f",f-ok,100.00,,Pagado,2026-11-10 11:00:00\n")
    columns = ColumnMap.load(None, ["provider_reference=ref", "order_reference=order",
                                    "amount=amount", "fee=fee", "status=status",
                                    "occurred_at=at"], ["currency=PEN"])
    kept = []
    for key, lines in (("rows", read_csv(path, columns, provider="fake", report=CsvReport())),
                       ("lines", list(read_csv(path, columns, provider="fake",
                                               report=CsvReport())))):
        summary = reconcile(pasarela.store, lines, provider="fake", since=SINCE, until=UNTIL,
                            key=key, chunk_size=2)
        with pasarela.store.engine.connect() as conn:
            stored = [tuple(row) for row in conn.execute(
                sa.select(*[c for c in settlement_lines.c if c.name not in (
                    "id", "run_key", "created_at")])
                .where(settlement_lines.c.run_key == key).order_by(settlement_lines.c.id))]
        kept.append((summary.counts, stored, [
            d.to_dict() for d in differences(pasarela.store, key)]))
    assert kept[0] == kept[1]
    counts = kept[0][0]
    assert (counts["matched"], counts["fee_mismatch"], counts["amount_mismatch"],
            counts["duplicate"], counts["missing_at_provider"]) == (2, 1, 1, 1, 1)
