"""The built-in notifiers: the log events, and the webhook's signed, retried POST."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from pasarela.engine.alerts import SIGNATURE_HEADER, LogNotifier, WebhookNotifier
from pasarela.testing.helpers import capture_events


DOC: dict[str, Any] = {"id": 7, "state": "firing", "kind": "outbox_lag", "merchant": "",
                       "subject": "outbox", "severity": "warning", "value": 600.0,
                       "threshold": 300.0, "message": "3 events", "started_at": "x",
                       "resolved_at": None}


def notifier(answers: list[int | type[Exception]], seen: list[httpx.Request],
             waits: list[float]) -> WebhookNotifier:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, type):
            raise answer("down")  # type: ignore[call-arg]
        return httpx.Response(answer)

    return WebhookNotifier("https://ops.example.pe/alerts", "whsec_ops",
                           client=httpx.Client(transport=httpx.MockTransport(handle)),
                           sleep=waits.append, clock=lambda: 1_700_000_000)


def test_the_post_is_signed_over_timestamp_and_body():
    seen: list[httpx.Request] = []
    notifier([200], seen, [])(DOC)
    [request] = seen
    assert json.loads(request.content) == DOC
    stamp, _, mac = request.headers[SIGNATURE_HEADER].partition(",v1=")
    assert stamp == "t=1700000000"
    assert mac == hmac.new(b"whsec_ops", b"1700000000." + request.content,
                           hashlib.sha256).hexdigest()


def test_server_errors_and_connection_failures_are_retried_with_backoff():
    seen: list[httpx.Request] = []
    waits: list[float] = []
    notifier([503, httpx.ConnectError, 200], seen, waits)(DOC)
    assert len(seen) == 3
    assert len(waits) == 2
    assert 0 <= waits[0] <= 0.2
    assert 0 <= waits[1] <= 0.4


def test_a_refusal_is_not_retried_and_a_failure_is_logged_not_raised():
    seen: list[httpx.Request] = []
    with capture_events() as events:
        notifier([400], seen, [])(DOC)
        notifier([500, 500, 500, 500], seen, [])(DOC)
    assert len(seen) == 1 + 4
    failed = [e for e in events if e["event"] == "alert_webhook_failed"]
    assert [(e["error"], e["attempts"]) for e in failed] == [("HTTP 400", 1), ("HTTP 500", 4)]
    assert all("whsec_ops" not in json.dumps(e, default=str) for e in events)


def test_log_notifier_events():
    with capture_events() as events:
        LogNotifier()(DOC)
        LogNotifier()({**DOC, "state": "resolved"})
    assert [(e["event"], e["kind"]) for e in events] == [("alert_fired", "outbox_lag"),
                                                         ("alert_resolved", "outbox_lag")]
