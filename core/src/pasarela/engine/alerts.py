"""Alerts: told before orders stall.

Five detectors, each a pure function of what the store says (:mod:`pasarela.store.
monitoring` reads it, each read bounded by an index):

``success_rate``
    a provider account × method whose share of succeeded payments, among those
    created in the last ``window`` that finished, fell more than ``drop`` below its
    own share over the ``baseline`` before that (both with at least
    ``min_finished`` finished payments);
``notifications_silent``
    an account that has payments waiting (pending, known to the provider) older
    than its normal notification delay, and from which no notification was taken
    for longer than that delay: its callback is not configured, or failing;
``unknown_overdue``
    unknown payments the resolver asked about through its whole schedule
    (:data:`pasarela.engine.jobs.RESOLVER_CHECKS`), still unknown;
``outbox_lag``
    the oldest lifecycle event not yet dispatched is older than ``outbox_lag``;
``reconciliation_differences``
    reconciliation differences no one resolved, at least ``differences`` of them.

:func:`evaluate` runs the detectors, compares the findings with the alerts firing
(the ``alerts`` table: state and history), opens the new ones, keeps the ones still
firing up to date and resolves the others; every opened and resolved alert goes to
the ``pasarela_alert`` hook and the notifiers: a log event (``alert_fired``,
``alert_resolved``) and, with ``[alerts] webhook_url``, a signed POST
(:class:`WebhookNotifier`). The worker calls :func:`evaluate` every
``[alerts] every`` (:class:`AlertJob`). The console shows them
(``/admin/alerts``) and ``/metrics`` has ``pasarela_alerts_firing``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import httpx

from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.registry import MERCHANT_SEPARATOR, merchant_of
from pasarela.retry import CALL_RETRY, Backoff
from pasarela.store.monitoring import (
    AlertRow,
    NewAlert,
    Outcome,
    Waiting,
    close_alerts,
    last_notifications,
    open_alerts,
    outcomes,
    overdue_unknowns,
    record_alerts,
    touch_alerts,
    unresolved_differences,
    waiting,
)


if TYPE_CHECKING:
    from pasarela.config.sections import AlertsConfig
    from pasarela.store import Store

__all__ = [
    "KINDS",
    "Alert",
    "AlertJob",
    "Evaluation",
    "Finding",
    "Kind",
    "LogNotifier",
    "Notifier",
    "Thresholds",
    "WebhookNotifier",
    "compare",
    "evaluate",
    "notifications_silent",
    "outbox_lagging",
    "signature",
    "success_rate_drops",
    "unknown_overdue",
    "unreconciled",
]

log = get_logger("pasarela")

_SUCCEEDED: Final = frozenset({Status.SUCCEEDED.value, Status.PARTIALLY_REFUNDED.value,
                               Status.REFUNDED.value})
_FAILED: Final = frozenset({Status.FAILED.value, Status.CANCELED.value, Status.EXPIRED.value})
#: The header of a webhook notification's signature: ``t=UNIX,v1=HEX``.
SIGNATURE_HEADER: Final = "Pasarela-Signature"


class Kind(StrEnum):
    SUCCESS_RATE = "success_rate"
    NOTIFICATIONS_SILENT = "notifications_silent"
    UNKNOWN_OVERDUE = "unknown_overdue"
    OUTBOX_LAG = "outbox_lag"
    RECONCILIATION = "reconciliation_differences"


KINDS: Final = tuple(kind.value for kind in Kind)


@attrs.frozen
class Finding:
    """What one detector found now: the alert that should be firing."""

    kind: Kind
    merchant: str
    #: What it is about: an account, ``account/method``, ``outbox``.
    subject: str
    severity: str
    value: float
    threshold: float
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.merchant, self.kind.value, self.subject)


@attrs.frozen
class Alert:
    """An alert as stored: firing while ``resolved_at`` is None."""

    id: int
    kind: str
    merchant: str
    subject: str
    severity: str
    value: float
    threshold: float
    message: str
    started_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None

    @property
    def firing(self) -> bool:
        return self.resolved_at is None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.merchant, self.kind, self.subject)

    @classmethod
    def of(cls, row: AlertRow) -> Alert:
        return cls(id=row.id, kind=row.kind, merchant=row.merchant, subject=row.subject,
                   severity=row.severity, value=row.value, threshold=row.threshold,
                   message=row.message, started_at=row.started_at,
                   last_seen_at=row.last_seen_at, resolved_at=row.resolved_at)

    def document(self, state: str) -> dict[str, Any]:
        """The JSON document the hook and the webhook get; *state* is ``firing`` or
        ``resolved``."""
        return {"id": self.id, "state": state, "kind": self.kind, "merchant": self.merchant,
                "subject": self.subject, "severity": self.severity, "value": self.value,
                "threshold": self.threshold, "message": self.message,
                "started_at": self.started_at.isoformat(),
                "resolved_at": None if self.resolved_at is None
                else self.resolved_at.isoformat()}


# --- the detectors (pure) ---------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Thresholds:
    """What the detectors compare with (``[alerts]`` gives them)."""

    min_finished: int = 20
    drop: float = 0.2
    notification_delay: timedelta = timedelta(minutes=30)
    delays: Mapping[str, timedelta] = attrs.field(factory=dict)
    min_waiting: int = 1
    outbox_lag: timedelta = timedelta(minutes=5)
    differences: int = 1

    @classmethod
    def of(cls, config: AlertsConfig) -> Thresholds:
        return cls(min_finished=config.min_finished, drop=config.drop,
                   notification_delay=config.notification_delay, delays=dict(config.delays),
                   min_waiting=config.min_waiting, outbox_lag=config.outbox_lag,
                   differences=config.differences)

    def delay_of(self, account: str) -> timedelta:
        """The normal notification delay of *account* (its own, its type's, the
        default): ``delays`` is keyed by account full name or bare name."""
        bare = account.partition(MERCHANT_SEPARATOR)[2] or account
        return self.delays.get(account) or self.delays.get(bare) or self.notification_delay


def _bare(account: str) -> str:
    return account.partition(MERCHANT_SEPARATOR)[2] if merchant_of(account) else account


def _rates(rows: Iterable[Outcome]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """``(merchant, account, method) -> (succeeded, finished)``."""
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for row in rows:
        won, done = out.get((row.merchant, row.provider, row.method), (0, 0))
        if row.status in _SUCCEEDED:
            won, done = won + row.payments, done + row.payments
        elif row.status in _FAILED:
            done += row.payments
        out[(row.merchant, row.provider, row.method)] = (won, done)
    return out


def success_rate_drops(recent: Iterable[Outcome], baseline: Iterable[Outcome],
                       limits: Thresholds) -> list[Finding]:
    """Accounts × methods whose recent success rate fell more than ``drop`` below
    their baseline's, both over at least ``min_finished`` finished payments."""
    base = _rates(baseline)
    out = []
    for key, (won, done) in sorted(_rates(recent).items()):
        then_won, then_done = base.get(key, (0, 0))
        if done < limits.min_finished or then_done < limits.min_finished:
            continue
        now_rate, then_rate = won / done, then_won / then_done
        floor = then_rate - limits.drop
        if now_rate < floor - 1e-9:  # a rate exactly at the floor is not below it
            merchant, account, method = key
            out.append(Finding(
                Kind.SUCCESS_RATE, merchant, f"{_bare(account)}/{method}", "critical",
                round(now_rate, 4), round(max(0.0, floor), 4),
                f"{_bare(account)} {method}: {now_rate:.0%} of {done} finished payments "
                f"succeeded, against {then_rate:.0%} of {then_done} before"))
    return out


def notifications_silent(waiting_now: Iterable[Waiting],
                         last: Mapping[str, datetime | None], limits: Thresholds, *,
                         now: datetime) -> list[Finding]:
    """Accounts with at least ``min_waiting`` payments waiting longer than their
    notification delay, and no notification taken for longer than it."""
    out = []
    for row in sorted(waiting_now, key=lambda w: (w.merchant, w.provider)):
        delay = limits.delay_of(row.provider)
        if row.payments < limits.min_waiting or now - row.oldest < delay:
            continue
        heard = last.get(row.provider)
        if heard is not None and now - heard <= delay:
            continue
        silent = (now - heard) if heard is not None else (now - row.oldest)
        since = ("never" if heard is None
                 else f"for {_duration(now - heard)} (last at {heard:%Y-%m-%d %H:%M} UTC)")
        out.append(Finding(
            Kind.NOTIFICATIONS_SILENT, row.merchant, _bare(row.provider), "critical",
            round(silent.total_seconds(), 1), delay.total_seconds(),
            f"no notification from {_bare(row.provider)} {since} while {row.payments} "
            f"payment(s) wait, the oldest for {_duration(now - row.oldest)}: is its "
            f"callback configured and reaching /webhooks/{row.provider}?"))
    return out


def unknown_overdue(counts: Iterable[tuple[str, str, int, datetime | None]], *,
                    checks: int, now: datetime) -> list[Finding]:
    """One alert per merchant and account with unknown payments past the resolver's
    whole schedule (*counts*: merchant, account, count, oldest)."""
    out = []
    for merchant, account, count, oldest in sorted(counts, key=lambda c: (c[0], c[1])):
        if count <= 0:
            continue
        age = "" if oldest is None else f", the oldest created {_duration(now - oldest)} ago"
        out.append(Finding(
            Kind.UNKNOWN_OVERDUE, merchant, _bare(account), "critical", float(count), 0.0,
            f"{count} {_bare(account)} payment(s) still unknown after the resolver asked "
            f"{checks} times{age}: ask the provider's support"))
    return out


def outbox_lagging(count: int, age_seconds: float, limits: Thresholds) -> list[Finding]:
    """The outbox's oldest undispatched event older than ``outbox_lag``."""
    if count <= 0 or age_seconds <= limits.outbox_lag.total_seconds():
        return []
    return [Finding(Kind.OUTBOX_LAG, "", "outbox", "warning", round(age_seconds, 1),
                    limits.outbox_lag.total_seconds(),
                    f"{count} lifecycle event(s) not dispatched, the oldest for "
                    f"{_duration(timedelta(seconds=age_seconds))}: is pasarela worker running?")]


def unreconciled(counts: Iterable[tuple[str, int]], limits: Thresholds) -> list[Finding]:
    """Accounts with at least ``differences`` unresolved reconciliation differences."""
    out = []
    for account, count in sorted(counts):
        if count < limits.differences:
            continue
        out.append(Finding(
            Kind.RECONCILIATION, merchant_of(account), _bare(account), "warning",
            float(count), float(limits.differences),
            f"{count} reconciliation difference(s) of {_bare(account)} not resolved"))
    return out


def compare(firing: Sequence[Alert], findings: Sequence[Finding]
            ) -> tuple[list[Finding], list[tuple[Alert, Finding]], list[Alert]]:
    """``(to open, still firing with what is found now, to resolve)``."""
    found = {f.key: f for f in findings}
    open_keys = {a.key for a in firing}
    new = [f for f in findings if f.key not in open_keys]
    still = [(a, found[a.key]) for a in firing if a.key in found]
    gone = [a for a in firing if a.key not in found]
    return new, still, gone


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


# --- notifiers ----------------------------------------------------------------------------


class Notifier(Protocol):
    def __call__(self, document: Mapping[str, Any]) -> None: ...


class LogNotifier:
    """``alert_fired`` (warning) and ``alert_resolved`` (info) log events."""

    def __call__(self, document: Mapping[str, Any]) -> None:
        fields = {k: document[k] for k in ("id", "kind", "merchant", "subject", "severity",
                                           "value", "threshold", "message")}
        if document["state"] == "firing":
            log.warning("alert_fired", **fields)
        else:
            log.info("alert_resolved", **fields)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=TIMESTAMP,v1=HEX``: HMAC-SHA256 with *secret* over ``TIMESTAMP.`` + *body*."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@attrs.define
class WebhookNotifier:
    """POST each alert document as JSON to *url*, signed in the
    ``Pasarela-Signature`` header (:func:`signature`), retried on a connection
    failure or a 5xx/429 answer with :data:`pasarela.retry.CALL_RETRY`, up to
    *attempts* times; a 4xx answer is not retried. Failures are logged
    (``alert_webhook_failed``), never raised."""

    url: str
    secret: str = attrs.field(repr=False)
    attempts: int = 4
    timeout: float = 5.0
    backoff: Backoff = CALL_RETRY
    client: httpx.Client | None = attrs.field(default=None, repr=False)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time

    def __call__(self, document: Mapping[str, Any]) -> None:
        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        client = self.client or httpx.Client(timeout=self.timeout)
        try:
            for attempt in range(1, self.attempts + 1):
                headers = {"Content-Type": "application/json", "User-Agent": "pasarela-alerts",
                           SIGNATURE_HEADER: signature(self.secret, int(self.clock()), body)}
                try:
                    response = client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                else:
                    if response.status_code < 300:
                        return
                    error = f"HTTP {response.status_code}"
                    if response.status_code < 500 and response.status_code != 429:
                        break
                if attempt < self.attempts:
                    self.sleep(self.backoff.seconds(attempt))
            log.warning("alert_webhook_failed", alert_id=document.get("id"), error=error,
                        attempts=attempt)
        finally:
            if self.client is None:
                client.close()


# --- evaluation -----------------------------------------------------------------------------


@attrs.frozen
class Evaluation:
    """What one evaluation did."""

    fired: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    firing: tuple[Alert, ...]


def detect(store: Store, limits: Thresholds, *, now: datetime, window: timedelta,
           baseline: timedelta, checks: int) -> list[Finding]:
    """Every detector over what *store* says at *now*."""
    findings = success_rate_drops(
        outcomes(store, since=now - window, until=now),
        outcomes(store, since=now - window - baseline, until=now - window), limits)
    shortest = min([limits.notification_delay, *limits.delays.values()])
    waits = waiting(store, before=now - shortest)
    findings += notifications_silent(
        waits, last_notifications(store, (w.provider for w in waits)), limits, now=now)
    findings += unknown_overdue(
        [(c.merchant, c.subject, c.payments, c.oldest)
         for c in overdue_unknowns(store, min_checks=checks)], checks=checks, now=now)
    count, age = store.outbox_lag(now=now)
    findings += outbox_lagging(count, age, limits)
    findings += unreconciled(unresolved_differences(store), limits)
    return findings


def evaluate(store: Store, config: AlertsConfig, *, now: datetime,
             notify: Sequence[Notifier] = (), checks: int | None = None) -> Evaluation:
    """Run the detectors, update the alerts' state, tell *notify* of each alert
    opened and resolved (each notifier on its own: one that raises is logged)."""
    from pasarela.engine.jobs import RESOLVER_CHECKS  # noqa: PLC0415 - jobs imports much

    limits = Thresholds.of(config)
    findings = detect(store, limits, now=now, window=config.window,
                      baseline=config.baseline,
                      checks=RESOLVER_CHECKS if checks is None else checks)
    firing = [Alert.of(row) for row in open_alerts(store)]
    new, still, gone = compare(firing, findings)
    opened = [Alert.of(row) for row in record_alerts(store, [
        NewAlert(f.merchant, f.kind.value, f.subject, f.severity, f.value, f.threshold,
                 f.message) for f in new], now=now)]
    touch_alerts(store, [(a.id, f.value, f.message) for a, f in still], now=now)
    close_alerts(store, [a.id for a in gone], now=now)
    resolved = [attrs.evolve(a, resolved_at=now) for a in gone]
    for alert, state in [*((a, "firing") for a in opened), *((a, "resolved") for a in resolved)]:
        document = alert.document(state)
        for notifier in notify:
            try:
                notifier(document)
            except Exception:  # one notifier never stops the others
                log.exception("alert_notifier_failed", alert_id=alert.id)
    now_firing = [attrs.evolve(a, value=f.value, message=f.message, last_seen_at=now)
                  for a, f in still] + opened
    return Evaluation(tuple(opened), tuple(resolved), tuple(now_firing))


def notifiers(config: AlertsConfig, hook: Notifier | None = None) -> list[Notifier]:
    """The notifiers ``[alerts]`` configures: the log (unless ``log = false``), the
    webhook (with ``webhook_url``), and *hook* (the ``pasarela_alert`` observers)."""
    out: list[Notifier] = []
    if config.log:
        out.append(LogNotifier())
    if config.webhook_url:
        out.append(WebhookNotifier(config.webhook_url, config.webhook_secret or ""))
    if hook is not None:
        out.append(hook)
    return out


class AlertJob:
    """The worker's alerts job: :func:`evaluate` at most every ``[alerts] every``
    (by the monotonic clock; the first call evaluates), with the business clock for
    *now*. Returns how many alerts it opened or resolved."""

    def __init__(self, store: Store, config: AlertsConfig, *, clock: Callable[[], datetime],
                 hook: Notifier | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.notify = notifiers(config, hook)
        self.monotonic = monotonic
        self._next = float("-inf")

    def __call__(self) -> int:
        if not self.config.enabled or self.monotonic() < self._next:
            return 0
        self._next = self.monotonic() + self.config.every.total_seconds()
        done = evaluate(self.store, self.config, now=self.clock(), notify=self.notify)
        return len(done.fired) + len(done.resolved)
