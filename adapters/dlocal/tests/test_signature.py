"""The signature both ways, against an independent HMAC over the documented string
(X-Login + X-Date + body, HMAC-SHA256 with the secret key, lower-case hex:
docs.dlocal.com/reference/payins-security)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from pasarela_dlocal import DlocalProvider, DlocalSettings, api

from pasarela.errors import SignatureInvalidError
from pasarela.lifecycle import Status
from pasarela.provider import WebhookHeaders


LOGIN, TRANS, SECRET, OLD = "sak223k2wdksdl2", "fm12O7G9", "sec-ret-key-1", "sec-ret-key-0"
DATE = "2018-02-20T15:44:42.310Z"
BODY = json.dumps({"id": "D-4-be8eda8c", "amount": 72.00, "status": "PAID",
                   "status_code": "200", "currency": "PEN", "order_id": "01JPAY"},
                  separators=(",", ":")).encode()
#: HMAC-SHA256 of LOGIN + DATE + BODY with SECRET, computed outside Python with
#: ``printf '%s' "$LOGIN$DATE$BODY" | openssl dgst -sha256 -hmac "$SECRET"`` and pinned.
EXPECTED = "9a4b9eb017a8c72e3cc7818ab5bd99d043e3d6760b16b199675a16a359c171d2"


def provider(**changes: object) -> DlocalProvider:
    values: dict[str, object] = {"x_login": LOGIN, "x_trans_key": TRANS, "secret_key": SECRET}
    values.update(changes)
    return DlocalProvider(DlocalSettings(**values))  # type: ignore[arg-type]


def test_the_adapter_signs_what_an_independent_hmac_gives() -> None:
    assert api.signature(SECRET, LOGIN, DATE, BODY) == EXPECTED
    assert api.authorization(SECRET, LOGIN, DATE, BODY) == (
        f"V2-HMAC-SHA256, Signature: {EXPECTED}")


def test_a_request_is_signed_over_its_own_bytes() -> None:
    dlocal = provider()
    dlocal.clock = lambda: datetime(2018, 2, 20, 15, 44, 42, 310000, tzinfo=UTC)
    request = dlocal._request("POST", "/payments", {"amount": api.loads("72.00")})
    assert request.headers["x-date"] == DATE
    body = request.content
    assert body == b'{"amount":72.00}'
    independent = hmac.new(SECRET.encode(), (LOGIN + DATE).encode() + body,
                           hashlib.sha256).hexdigest()
    assert request.headers["authorization"] == f"V2-HMAC-SHA256, Signature: {independent}"
    assert request.headers["x-version"] == "2.1"


def headers(signature: str, login: str = LOGIN) -> WebhookHeaders:
    return WebhookHeaders({"X-Login": login, "X-Date": DATE,
                           "Authorization": f"V2-HMAC-SHA256, Signature: {signature}"})


def test_a_notification_signed_by_an_independent_hmac_is_accepted() -> None:
    events = provider().parse_webhook(headers(EXPECTED), BODY, now=datetime.now(UTC))
    assert [(e.provider_reference, e.status, e.payment_id) for e in events] == [
        ("D-4-be8eda8c", Status.SUCCEEDED, "01JPAY")]


def test_a_key_being_rolled_still_verifies_and_any_other_is_refused() -> None:
    old = hmac.new(OLD.encode(), (LOGIN + DATE).encode() + BODY, hashlib.sha256).hexdigest()
    rolled = provider(webhook_secrets=(OLD,))
    assert rolled.parse_webhook(headers(old), BODY, now=datetime.now(UTC))
    with pytest.raises(SignatureInvalidError):
        provider().parse_webhook(headers(old), BODY, now=datetime.now(UTC))


@pytest.mark.parametrize("change", ["body", "login", "date", "malformed"])
def test_tampering_is_refused(change: str) -> None:
    body, hdrs = BODY, headers(EXPECTED)
    if change == "body":
        body = BODY.replace(b"\"PAID\"", b"\"REJECTED\"")
        assert body != BODY
    elif change == "login":
        hdrs = headers(EXPECTED, login="someone-else")
    elif change == "date":
        hdrs = WebhookHeaders({**dict(hdrs), "x-date": "2018-02-20T15:44:43.310Z"})
    else:
        hdrs = WebhookHeaders({**dict(hdrs), "authorization": f"Signature={EXPECTED}"})
    with pytest.raises(SignatureInvalidError):
        provider().parse_webhook(hdrs, body, now=datetime.now(UTC))
