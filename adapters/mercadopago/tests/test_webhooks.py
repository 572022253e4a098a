"""x-signature verification against a worked example computed apart from the adapter.

The three digests below were computed with ``openssl dgst -sha256 -hmac`` over the
manifests written out by hand from Mercado Pago's template
``id:[data.id_url];request-id:[x-request-id_header];ts:[ts_header];`` (absent parts
dropped, an alphanumeric data.id lower-cased): none of the adapter's code made them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import attrs
import pytest
from pasarela_mercadopago import MercadoPagoProvider, MercadoPagoSettings
from pasarela_mercadopago.webhooks import manifest

from pasarela.errors import ConfigurationError, SignatureInvalidError, WebhookError
from pasarela.provider import WebhookHeaders


SECRET = "pasarela-worked-example-secret"
REQUEST_ID = "bb56a2f1-6aae-46ac-982e-9dcd3581d08e"
TS = 1704908010  # the guide's example ts, in seconds
NOW = datetime.fromtimestamp(TS + 30, UTC)
#: HMAC-SHA256(SECRET, "id:1320000001;request-id:bb56...d08e;ts:1704908010;")
NUMERIC = "4d6eddf5d67a8dc5c9cc873da1c0f9c3ab7e102512b3f98c726cd3a9c89eff3a"
#: ... over "id:ord01jq4s4ky8hwq6na5pxb65b3d3;request-id:...;ts:1704908010;" (lower-cased)
ALPHANUMERIC = "45d4ad0de2d629de9ce1e89d279352a69f5476865782e1b0c362bcba2306b5c1"
#: ... over "id:1320000001;ts:1704908010;" (no x-request-id: its part dropped)
NO_REQUEST_ID = "276cdcd7ca53a71601d38de273090ac39f2df08616878e8db9a13e5ebbe4db55"


def provider(*secrets: str, tolerance: int = 300) -> MercadoPagoProvider:
    return MercadoPagoProvider(MercadoPagoSettings(
        access_token="TEST-123", webhook_secrets=secrets, webhook_tolerance=tolerance))


def body(data_id: str, action: str = "payment.updated", kind: str = "payment") -> bytes:
    return json.dumps({"id": 12345, "live_mode": False, "type": kind, "api_version": "v1",
                       "action": action, "data": {"id": data_id}}).encode()


def headers(v1: str, *, request_id: str | None = REQUEST_ID, ts: int = TS) -> WebhookHeaders:
    values = {"X-Signature": f"ts={ts},v1={v1}"}
    if request_id is not None:
        values["X-Request-Id"] = request_id
    return WebhookHeaders(values)


def test_the_manifest_is_the_documented_template() -> None:
    assert manifest("1320000001", REQUEST_ID, str(TS)) == (
        f"id:1320000001;request-id:{REQUEST_ID};ts:{TS};")
    assert manifest("ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", None, str(TS)) == (
        f"id:ord01jq4s4ky8hwq6na5pxb65b3d3;ts:{TS};")
    assert manifest(None, REQUEST_ID, str(TS)) == f"request-id:{REQUEST_ID};ts:{TS};"


@pytest.mark.parametrize(("data_id", "v1", "request_id"), [
    ("1320000001", NUMERIC, REQUEST_ID),
    ("ORD01JQ4S4KY8HWQ6NA5PXB65B3D3", ALPHANUMERIC, REQUEST_ID),
    ("1320000001", NO_REQUEST_ID, None),
])
def test_the_worked_example_verifies(data_id: str, v1: str, request_id: str | None) -> None:
    events = provider(SECRET).parse_webhook(headers(v1, request_id=request_id),
                                            body(data_id), now=NOW)
    assert [(e.provider_reference, e.verify_by_fetch, e.status) for e in events] == [
        (data_id, True, None)]
    assert events[0].type == "payment.updated"


def test_any_of_several_secrets_verifies_while_rotating() -> None:
    events = provider("the-new-secret", SECRET).parse_webhook(headers(NUMERIC),
                                                              body("1320000001"), now=NOW)
    assert events[0].provider_reference == "1320000001"
    with pytest.raises(SignatureInvalidError):
        provider("the-new-secret").parse_webhook(headers(NUMERIC), body("1320000001"),
                                                 now=NOW)


@pytest.mark.parametrize("change", ["data_id", "request_id", "ts", "digest", "no_header"])
def test_a_changed_part_is_refused(change: str) -> None:
    data_id, hdrs = "1320000001", headers(NUMERIC)
    if change == "data_id":
        data_id = "1320000002"
    elif change == "request_id":
        hdrs = headers(NUMERIC, request_id="another-request")
    elif change == "ts":
        hdrs = headers(NUMERIC, ts=TS + 1)
    elif change == "digest":
        hdrs = headers(NUMERIC[:-1] + "0")
    else:
        hdrs = WebhookHeaders({"X-Request-Id": REQUEST_ID})
    with pytest.raises(SignatureInvalidError):
        provider(SECRET).parse_webhook(hdrs, body(data_id), now=NOW)


def test_the_timestamp_tolerance() -> None:
    late = datetime.fromtimestamp(TS + 301, UTC)
    with pytest.raises(SignatureInvalidError, match="300 s"):
        provider(SECRET).parse_webhook(headers(NUMERIC), body("1320000001"), now=late)
    assert provider(SECRET, tolerance=600).parse_webhook(headers(NUMERIC),
                                                        body("1320000001"), now=late)
    # ts in milliseconds (as the guide's words say) is read as such
    ms = TS * 1000
    digest = hmac.new(SECRET.encode(), manifest("1320000001", REQUEST_ID, str(ms)).encode(),
                      hashlib.sha256).hexdigest()
    assert provider(SECRET).parse_webhook(headers(digest, ts=ms), body("1320000001"), now=NOW)


def test_malformed_bodies_and_other_topics() -> None:
    with pytest.raises(WebhookError):
        provider(SECRET).parse_webhook(headers(NUMERIC), b"not json", now=NOW)
    with pytest.raises(WebhookError):
        provider(SECRET).parse_webhook(headers(NUMERIC), json.dumps({"data": {}}).encode(),
                                       now=NOW)
    other = provider(SECRET).parse_webhook(headers(NUMERIC), body(
        "1320000001", action="merchant_order.updated", kind="merchant_order"), now=NOW)
    assert other[0].provider_reference is None
    assert not other[0].verify_by_fetch


def test_no_secret_configured_is_a_configuration_error() -> None:
    bare = attrs.evolve(provider(SECRET).settings, webhook_secrets=())
    with pytest.raises(ConfigurationError, match="webhook_secrets"):
        MercadoPagoProvider(bare).parse_webhook(headers(NUMERIC), body("1"), now=NOW)
