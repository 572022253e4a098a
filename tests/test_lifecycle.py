"""The state machine table, its rules, and the generated diagram."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pasarela.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    Cause,
    Plan,
    Status,
    Verdict,
    event_type,
    plan,
    render_doc,
)


DOC = Path(__file__).resolve().parents[1] / "docs" / "lifecycle.md"


def test_every_state_is_reachable_from_created():
    seen = {Status.CREATED}
    frontier = [Status.CREATED]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(Status)


def test_terminal_states():
    assert {Status.FAILED, Status.REFUNDED} == TERMINAL


def test_late_payment_has_its_own_event():
    assert event_type(Status.EXPIRED, Status.SUCCEEDED) == "payment.late_succeeded"
    assert event_type(Status.PENDING, Status.SUCCEEDED) == "payment.succeeded"


def test_late_payment_needs_the_providers_word():
    assert not plan(Status.EXPIRED, Status.SUCCEEDED, cause=Cause.JOB,
                    provider_confirmed=False).apply
    assert plan(Status.EXPIRED, Status.SUCCEEDED, cause=Cause.WEBHOOK,
                provider_confirmed=True).apply


def test_unknown_never_fails_by_time_alone():
    assert plan(Status.UNKNOWN, Status.FAILED, cause=Cause.JOB,
                provider_confirmed=False).verdict is Verdict.ILLEGAL
    assert plan(Status.UNKNOWN, Status.FAILED, cause=Cause.JOB, provider_confirmed=True).apply


def test_stale_report_is_ignored_not_an_error():
    planned = plan(Status.SUCCEEDED, Status.PENDING, cause=Cause.WEBHOOK,
                   provider_confirmed=True)
    assert (planned.apply, planned.verdict, planned.event) == (False, Verdict.STALE, None)


def test_a_repeat_is_a_duplicate():
    planned = plan(Status.PENDING, Status.PENDING, cause=Cause.WEBHOOK, provider_confirmed=True)
    assert planned == Plan(Verdict.DUPLICATE, Status.PENDING, Status.PENDING)


def test_an_applied_plan_names_its_event():
    planned = plan(Status.PENDING, Status.SUCCEEDED, cause=Cause.WEBHOOK,
                   provider_confirmed=True)
    assert planned == Plan(Verdict.APPLY, Status.PENDING, Status.SUCCEEDED, "payment.succeeded")
    assert planned.apply


def test_refunds_follow_the_table():
    """Refunds are status changes like any other: only from a captured payment."""
    def verdict(source: Status, target: Status) -> Verdict:
        return plan(source, target, cause=Cause.API, provider_confirmed=True).verdict

    assert verdict(Status.SUCCEEDED, Status.PARTIALLY_REFUNDED) is Verdict.APPLY
    assert verdict(Status.SUCCEEDED, Status.REFUNDED) is Verdict.APPLY
    # Another partial refund is news, not a repeat.
    assert verdict(Status.PARTIALLY_REFUNDED, Status.PARTIALLY_REFUNDED) is Verdict.APPLY
    assert verdict(Status.PARTIALLY_REFUNDED, Status.REFUNDED) is Verdict.APPLY
    assert verdict(Status.REFUNDED, Status.REFUNDED) is Verdict.DUPLICATE
    assert verdict(Status.REFUNDED, Status.PARTIALLY_REFUNDED) is Verdict.STALE
    for never_captured in (Status.FAILED, Status.PENDING, Status.CREATED, Status.EXPIRED):
        assert verdict(never_captured, Status.REFUNDED) is Verdict.ILLEGAL
        assert verdict(never_captured, Status.PARTIALLY_REFUNDED) is Verdict.ILLEGAL
    assert plan(Status.SUCCEEDED, Status.REFUNDED, cause=Cause.API,
                provider_confirmed=True).event == "payment.refunded"


def test_doc_is_generated_from_the_table():
    assert DOC.read_text(encoding="utf-8") == render_doc(), "run `make docs`"


_RANK = {Status.CREATED: 0, Status.UNKNOWN: 1, Status.PENDING: 2, Status.PROCESSING: 3,
         Status.CANCELED: 4, Status.EXPIRED: 4, Status.FAILED: 5, Status.SUCCEEDED: 5,
         Status.PARTIALLY_REFUNDED: 6, Status.REFUNDED: 7}
_PROVIDER_EVENTS = [s for s in Status if s is not Status.CREATED]


@given(st.lists(st.sampled_from(_PROVIDER_EVENTS), max_size=40))
def test_any_sequence_of_provider_events_never_goes_backwards(events):
    """Provider reports in any order, with duplicates: only allowed edges are taken,
    terminal states are left only by an allowed edge, and the payment never returns
    to an earlier stage except through the provider-only revival of an expired code."""
    status = Status.CREATED
    for reported in events:
        planned = plan(status, reported, cause=Cause.WEBHOOK, provider_confirmed=True)
        assert (planned.event is not None) == planned.apply
        if planned.apply:
            assert reported in TRANSITIONS[status]
            revival = (status, reported) == (Status.EXPIRED, Status.PENDING)
            if not revival and status is not Status.UNKNOWN:
                assert _RANK[reported] >= _RANK[status]
            status = reported
        else:
            assert planned.verdict in {Verdict.DUPLICATE, Verdict.STALE, Verdict.ILLEGAL}
        if status in TERMINAL:
            assert not any(plan(status, s, cause=Cause.WEBHOOK, provider_confirmed=True).apply
                           for s in Status if s is not Status.PARTIALLY_REFUNDED)


def test_the_lifecycle_page_is_what_render_doc_makes() -> None:
    # `make docs` writes docs/lifecycle.md from render_doc(): prose added by hand there is
    # lost in every build, so it belongs on another page.
    from pathlib import Path

    from pasarela.lifecycle import render_doc

    page = Path(__file__).resolve().parents[1] / "docs" / "lifecycle.md"
    assert page.read_text(encoding="utf-8") == render_doc()
