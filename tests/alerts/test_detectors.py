"""The alert detectors are pure functions: each fires exactly at its threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pasarela.engine.alerts import (
    Alert,
    Finding,
    Kind,
    Thresholds,
    compare,
    notifications_silent,
    outbox_lagging,
    signature,
    success_rate_drops,
    unknown_overdue,
    unreconciled,
)
from pasarela.store.monitoring import Outcome, Waiting


NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
LIMITS = Thresholds(min_finished=10, drop=0.2, notification_delay=timedelta(minutes=30),
                    delays={"pagoefectivo": timedelta(hours=2)}, outbox_lag=timedelta(minutes=5),
                    differences=2)


def rows(merchant: str, account: str, method: str, **statuses: int) -> list[Outcome]:
    return [Outcome(merchant, account, method, status, n) for status, n in statuses.items()]


def test_success_rate_below_its_own_baseline_fires():
    baseline = rows("", "culqi", "wallet", succeeded=90, failed=10, pending=500)
    recent = rows("", "culqi", "wallet", succeeded=6, failed=4, pending=50)  # 60% < 90-20
    found = success_rate_drops(recent, baseline, LIMITS)
    assert [(f.kind, f.merchant, f.subject, f.value, f.threshold) for f in found] == [
        (Kind.SUCCESS_RATE, "", "culqi/wallet", 0.6, 0.7)]
    assert "60% of 10 finished" in found[0].message
    assert "90% of 100" in found[0].message


@pytest.mark.parametrize(("won", "lost", "fires"), [
    (7, 3, False),   # 70% is exactly the floor (90% - 20 points): not below it
    (6, 4, True),    # 60%
    (5, 4, False),   # 9 finished: fewer than min_finished, however bad
])
def test_success_rate_threshold_and_minimum(won, lost, fires):
    baseline = rows("", "culqi", "card", succeeded=90, expired=10)
    recent = rows("", "culqi", "card", succeeded=won, canceled=lost)
    assert bool(success_rate_drops(recent, baseline, LIMITS)) is fires


def test_success_rate_compares_each_account_method_and_merchant_with_its_own():
    baseline = (rows("", "stripe", "card", succeeded=50, failed=50)          # 50%
                + rows("a", "a.stripe", "card", succeeded=99, failed=1))   # 99%
    recent = (rows("", "stripe", "card", succeeded=4, failed=6)              # 40%: fine
              + rows("a", "a.stripe", "card", succeeded=7, failed=3))      # 70%: drop
    found = success_rate_drops(recent, baseline, LIMITS)
    assert [(f.merchant, f.subject) for f in found] == [("a", "stripe/card")]


def test_no_baseline_no_alert():
    recent = rows("", "culqi", "card", failed=50)
    assert success_rate_drops(recent, [], LIMITS) == []


def waiting(account: str, n: int, age: timedelta, merchant: str = "") -> Waiting:
    return Waiting(merchant, account, n, NOW - age)


def test_silent_account_with_waiting_payments_fires():
    found = notifications_silent([waiting("culqi", 3, timedelta(hours=1))],
                                 {"culqi": NOW - timedelta(minutes=45)}, LIMITS, now=NOW)
    assert [(f.kind, f.subject, f.value, f.threshold) for f in found] == [
        (Kind.NOTIFICATIONS_SILENT, "culqi", 2700.0, 1800.0)]
    assert "/webhooks/culqi" in found[0].message
    assert "3 payment(s) wait" in found[0].message


def test_never_heard_from_counts_from_the_oldest_waiting_payment():
    found = notifications_silent([waiting("culqi", 1, timedelta(minutes=40))], {"culqi": None},
                                 LIMITS, now=NOW)
    assert [(f.subject, f.value) for f in found] == [("culqi", 2400.0)]
    assert "never" in found[0].message


@pytest.mark.parametrize(("age", "heard", "fires"), [
    (timedelta(minutes=29), None, False),                      # not waiting long enough
    (timedelta(hours=1), NOW - timedelta(minutes=30), False),  # heard exactly at the delay
    (timedelta(hours=1), NOW - timedelta(minutes=31), True),
])
def test_silence_threshold(age, heard, fires):
    found = notifications_silent([waiting("culqi", 1, age)], {"culqi": heard}, LIMITS, now=NOW)
    assert bool(found) is fires


def test_an_account_has_its_own_delay_also_under_a_merchant():
    slow = [waiting("pagoefectivo", 5, timedelta(hours=1)),
            waiting("b.pagoefectivo", 5, timedelta(hours=3), merchant="b")]
    found = notifications_silent(slow, {}, LIMITS, now=NOW)
    assert [(f.merchant, f.subject, f.threshold) for f in found] == [
        ("b", "pagoefectivo", 7200.0)]


def test_min_waiting():
    limits = Thresholds(min_waiting=3)
    assert notifications_silent([waiting("culqi", 2, timedelta(hours=5))], {}, limits,
                                now=NOW) == []
    assert notifications_silent([waiting("culqi", 3, timedelta(hours=5))], {}, limits, now=NOW)


def test_unknown_overdue_one_alert_per_merchant_and_account():
    found = unknown_overdue([("", "stripe", 2, NOW - timedelta(days=2)),
                             ("a", "a.culqi", 0, None),
                             ("a", "a.stripe", 1, NOW - timedelta(hours=8))], checks=5, now=NOW)
    assert [(f.merchant, f.subject, f.value) for f in found] == [("", "stripe", 2.0),
                                                                 ("a", "stripe", 1.0)]
    assert "asked 5 times" in found[0].message
    assert "2 d ago" in found[0].message


@pytest.mark.parametrize(("count", "age", "fires"), [
    (0, 9999.0, False), (3, 300.0, False), (3, 300.5, True)])
def test_outbox_lag(count, age, fires):
    found = outbox_lagging(count, age, LIMITS)
    assert bool(found) is fires
    if fires:
        assert (found[0].subject, found[0].threshold) == ("outbox", 300.0)


def test_unreconciled_differences_at_the_threshold():
    found = unreconciled([("pagoefectivo", 1), ("a.stripe", 2)], LIMITS)
    assert [(f.merchant, f.subject, f.value) for f in found] == [("a", "stripe", 2.0)]


def alert(kind: str, subject: str, merchant: str = "", id_: int = 1) -> Alert:
    return Alert(id=id_, kind=kind, merchant=merchant, subject=subject, severity="critical",
                 value=1.0, threshold=0.0, message="", started_at=NOW, last_seen_at=NOW)


def finding(kind: Kind, subject: str, merchant: str = "") -> Finding:
    return Finding(kind, merchant, subject, "critical", 2.0, 0.0, "now")


def test_compare_opens_new_keeps_firing_and_resolves_the_rest():
    firing = [alert("outbox_lag", "outbox", id_=1), alert("success_rate", "culqi/card", id_=2),
              alert("success_rate", "culqi/card", merchant="a", id_=3)]
    findings = [finding(Kind.OUTBOX_LAG, "outbox"),
                finding(Kind.SUCCESS_RATE, "culqi/card", merchant="b")]
    new, still, gone = compare(firing, findings)
    assert [f.key for f in new] == [("b", "success_rate", "culqi/card")]
    assert [(a.id, f.message) for a, f in still] == [(1, "now")]
    assert [a.id for a in gone] == [2, 3]


def test_signature_is_an_hmac_over_timestamp_and_body():
    import hashlib
    import hmac
    body = b'{"id":1}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", 1700000000, body) == f"t=1700000000,v1={expected}"
