"""The payment state machine: one table, and the pure rules around it.

Every change of status anywhere, refunds included, goes through :func:`plan` (pure:
checks the table and answers with a :class:`Plan` whose :class:`Verdict` says what
to do) and then :mod:`pasarela.engine.transitions`, the one module that writes a
status: it bumps the version and writes the transition, its cause and its outbox
event in one database transaction. The docs' diagram (``docs/lifecycle.md``) is
generated from :data:`TRANSITIONS` by :func:`mermaid`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import attrs


__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "Cause",
    "Plan",
    "Status",
    "Verdict",
    "event_type",
    "is_allowed",
    "mermaid",
    "plan",
]


class Status(StrEnum):
    CREATED = "created"
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Cause(StrEnum):
    """Who moved the payment."""

    API = "api"
    WEBHOOK = "webhook"
    JOB = "job"
    RECONCILE = "reconcile"


S = Status

#: The one table. ``unknown`` may become anything the provider reports, except that
#: time alone never makes it ``failed`` (the resolver only moves it on the
#: provider's word). ``expired`` and ``canceled`` reach ``succeeded`` only on the
#: provider's confirmation that money was taken (a late or racing payment), and
#: ``expired`` may return to ``pending`` when the provider revives it (a CIP whose
#: expiry was extended).
TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    S.CREATED: frozenset({S.PENDING, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.UNKNOWN}),
    S.PENDING: frozenset({S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED, S.UNKNOWN}),
    S.PROCESSING: frozenset({S.SUCCEEDED, S.FAILED, S.UNKNOWN}),
    S.UNKNOWN: frozenset({S.PENDING, S.PROCESSING, S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED}),
    S.EXPIRED: frozenset({S.SUCCEEDED, S.PENDING}),
    S.CANCELED: frozenset({S.SUCCEEDED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.FAILED: frozenset(),
}

#: States with no way out.
TERMINAL: Final = frozenset(s for s, out in TRANSITIONS.items() if not out)

#: Edges that only the provider's word may take (never the API or the clock).
PROVIDER_ONLY: Final = frozenset({(S.EXPIRED, S.SUCCEEDED), (S.CANCELED, S.SUCCEEDED),
                                  (S.EXPIRED, S.PENDING)})

# How far along a payment is, to tell a stale report from news. A report whose rank
# is lower than the current status's is out of order and never moves us backwards.
_RANK: Final[dict[Status, int]] = {
    S.CREATED: 0,
    S.UNKNOWN: 1,
    S.PENDING: 2,
    S.PROCESSING: 3,
    S.CANCELED: 4,
    S.EXPIRED: 4,
    S.FAILED: 5,
    S.SUCCEEDED: 5,
    S.PARTIALLY_REFUNDED: 6,
    S.REFUNDED: 7,
}


def is_allowed(source: Status, target: Status) -> bool:
    return target in TRANSITIONS[source]


def event_type(source: Status, target: Status) -> str:
    """The outbox event a transition emits. A late payment has its own type."""
    if target is S.SUCCEEDED and source in (S.EXPIRED, S.CANCELED):
        return "payment.late_succeeded"
    return f"payment.{target.value}"


class Verdict(StrEnum):
    """What :func:`plan` says to do with a status change."""

    #: Take the edge: write the transition and its event.
    APPLY = "apply"
    #: The payment is in that status already: nothing new (recorded, not applied).
    DUPLICATE = "duplicate"
    #: An out-of-order report of an earlier stage: recorded and ignored, never a
    #: move backwards.
    STALE = "stale"
    #: The table does not allow it: the caller's bug when it comes from the API or a
    #: job (:class:`~pasarela.errors.IllegalTransitionError`), recorded and ignored
    #: when a provider reports it.
    ILLEGAL = "illegal"


@attrs.frozen
class Plan:
    """What to do with a status change from *source* to *target*.

    ``event`` is the outbox event to emit, set exactly when the verdict is
    :attr:`Verdict.APPLY`.
    """

    verdict: Verdict
    source: Status
    target: Status
    event: str | None = None

    @property
    def apply(self) -> bool:
        """Whether the change is to be written (:attr:`Verdict.APPLY`)."""
        return self.verdict is Verdict.APPLY


def plan(source: Status, target: Status, *, cause: Cause, provider_confirmed: bool) -> Plan:
    """Decide whether *target* may follow *source*.

    Raises nothing: a provider's report (``provider_confirmed=True``) that the
    table does not allow comes back :attr:`Verdict.STALE` when it names an earlier
    stage and :attr:`Verdict.ILLEGAL` otherwise; both are recorded and ignored. For
    the API and jobs (``provider_confirmed=False``) an :attr:`Verdict.ILLEGAL`
    verdict is the caller's bug, raised as
    :class:`~pasarela.errors.IllegalTransitionError` by the transition path.
    ``partially_refunded`` may follow itself (another partial refund).
    """
    if source is target and source is not S.PARTIALLY_REFUNDED:
        return Plan(Verdict.DUPLICATE, source, target)
    if target is S.UNKNOWN and provider_confirmed:
        # "unknown" is ours (an answer we could not get); a provider never reports it.
        return Plan(Verdict.STALE, source, target)
    if not is_allowed(source, target):
        if provider_confirmed and _RANK[target] <= _RANK[source]:
            return Plan(Verdict.STALE, source, target)
        return Plan(Verdict.ILLEGAL, source, target)
    if (source, target) in PROVIDER_ONLY and not provider_confirmed:
        return Plan(Verdict.ILLEGAL, source, target)
    if source is S.UNKNOWN and target is S.FAILED and not provider_confirmed:
        return Plan(Verdict.ILLEGAL, source, target)
    return Plan(Verdict.APPLY, source, target, event_type(source, target))


def mermaid() -> str:
    """The state diagram, as Mermaid source, generated from :data:`TRANSITIONS`."""
    lines = ["stateDiagram-v2", "    [*] --> created"]
    for source in Status:
        for target in sorted(TRANSITIONS[source], key=list(Status).index):
            note = " : provider only" if (source, target) in PROVIDER_ONLY else ""
            lines.append(f"    {source.value} --> {target.value}{note}")
    lines.extend(f"    {s.value} --> [*]" for s in Status if s in TERMINAL)
    return "\n".join(lines) + "\n"


def render_doc() -> str:
    """``docs/lifecycle.md``: the diagram and the table, generated from the table."""
    order = list(Status).index
    rows = "\n".join(
        f"| `{s.value}` | "
        f"{', '.join(f'`{t.value}`' for t in sorted(TRANSITIONS[s], key=order)) or '(terminal)'} |"
        for s in Status
    )
    return (
        "# Payment lifecycle\n\n"
        "Generated from `pasarela.lifecycle.TRANSITIONS` by `make docs`; a test fails when\n"
        "this file is stale. Edges marked *provider only* are taken only on the provider's\n"
        "word (a late payment, a revived cash code), never by the API or the clock, and\n"
        "`unknown` never becomes `failed` by the passing of time alone.\n\n"
        "```mermaid\n" + mermaid() + "```\n\n"
        "| from | may go to |\n|---|---|\n" + rows + "\n"
    )
