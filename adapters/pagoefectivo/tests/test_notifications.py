"""The payment notification: the spec's body and signed string, verification, parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pasarela_pagoefectivo import PagoEfectivoProvider, PagoEfectivoSettings
from pasarela_pagoefectivo.notifications import (
    build_notification,
    parse_notification,
    sign,
    verify,
)

from pasarela.errors import SignatureInvalidError, WebhookError
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.provider import WebhookHeaders


SECRET = "ki7/AduMGTZnDk0eRxM21cFRj73EEnXqx6Zw0rBL"
#: PE spec v1.1 §5.2's signed string, verbatim.
SIGNED = (b'{"eventType":"cip.paid","operationNumber":"1253","data":{"cip":"11546901",'
          b'"currency":"PEN","amount":22.05}}')
#: Its HMAC-SHA256 with SECRET, computed with `openssl dgst -sha256 -hmac`.
SIGNATURE = "d0c3f23bb5b057449793ec99caf7a61f72814cc8797f569b2ffc6ff296e5bfaa"
#: The spec's example body as printed (indented).
PRETTY = b"""{
    "eventType" : "cip.paid",
    "operationNumber" : "1253",
    "data" : {
        "cip" : "11546901",
        "currency" : "PEN",
        "amount" : 22.05
    }
}"""
NOW = datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
#: The spec's delivery headers, as the core passes them.
HEADERS = WebhookHeaders({"PE-Signature": SIGNATURE})


def provider(**changes: object) -> PagoEfectivoProvider:
    values: dict[str, object] = {"access_key": "ZTU0NmM3ZjBlNWFjNmMy", "secret_key": SECRET,
                                 "service_id": 913}
    values.update(changes)
    return PagoEfectivoProvider(PagoEfectivoSettings(**values))  # type: ignore[arg-type]


def test_signature_of_the_spec_signed_string() -> None:
    assert sign(SIGNED, SECRET) == SIGNATURE
    verify(HEADERS, SIGNED, [SECRET])


def test_build_notification_reproduces_the_spec_signed_string() -> None:
    body = build_notification("cip.paid", operation_number="1253", cip="11546901",
                              amount=Money.of("22.05", "PEN"))
    assert body == SIGNED


def test_build_notification_extras_and_two_decimals() -> None:
    body = build_notification("cip.paid", operation_number="7", cip="1",
                              amount=Money.of("22.50", "PEN"),
                              payment_date=datetime(2024, 12, 2, 20, 0, tzinfo=UTC),
                              transaction_code="01JDQ3V6Y8K2M4N6P8R0S2T4V6")
    assert b'"amount":22.50' in body
    assert b'"paymentDate":"2024-12-02T15:00:00-05:00"' in body
    assert b'"transactionCode":"01JDQ3V6Y8K2M4N6P8R0S2T4V6"' in body


def test_parse_the_pretty_spec_example() -> None:
    note = parse_notification(PRETTY)
    assert note.event_type == "cip.paid"
    assert note.operation_number == "1253"
    assert note.cip == "11546901"
    assert note.amount == Money.of("22.05", "PEN")
    assert note.event_id == "11546901:cip.paid:1253"
    assert note.payment_date is None
    assert note.transaction_code is None


def test_verification_is_on_the_raw_bytes() -> None:
    # The pretty body means the same JSON but is other bytes: its signature differs.
    with pytest.raises(SignatureInvalidError):
        verify(HEADERS, PRETTY, [SECRET])
    verify(WebhookHeaders({"pe-signature": sign(PRETTY, SECRET)}), PRETTY, [SECRET])


def test_tampered_body_is_refused() -> None:
    tampered = SIGNED.replace(b"22.05", b"2.05")
    with pytest.raises(SignatureInvalidError, match="does not match"):
        provider().parse_webhook(HEADERS, tampered, now=NOW)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalidError):
        provider(secret_key="another-secret").parse_webhook(
            HEADERS, SIGNED, now=NOW)


def test_missing_or_empty_header_is_refused() -> None:
    with pytest.raises(SignatureInvalidError, match="missing"):
        provider().parse_webhook(WebhookHeaders({}), SIGNED, now=NOW)
    with pytest.raises(SignatureInvalidError, match="missing"):
        provider().parse_webhook(WebhookHeaders({"PE-Signature": " "}), SIGNED, now=NOW)


def test_rotated_secret_is_accepted() -> None:
    # The key was rotated: the new secret_key is configured, the old one kept in
    # webhook_secrets while PagoEfectivo may still sign with it.
    rotated = provider(secret_key="new-secret", webhook_secrets=(SECRET,))
    [event] = rotated.parse_webhook(HEADERS, SIGNED, now=NOW)
    assert event.status is Status.SUCCEEDED
    new_signature = sign(SIGNED, "new-secret").upper()  # hex case does not matter
    rotated.parse_webhook(WebhookHeaders({"PE-Signature": new_signature}), SIGNED, now=NOW)


def test_paid_event() -> None:
    [event] = provider().parse_webhook(HEADERS, SIGNED, now=NOW)
    assert event.event_id == "11546901:cip.paid:1253"
    assert event.type == "cip.paid"
    assert event.provider_reference == "11546901"
    assert event.status is Status.SUCCEEDED
    assert event.amount == Money(2205, "PEN")
    assert event.refund is None
    assert not event.verify_by_fetch


def _signed(body: bytes) -> WebhookHeaders:
    return WebhookHeaders({"PE-Signature": sign(body, SECRET)})


def test_extras_and_numeric_cip_are_tolerated() -> None:
    body = (b'{"eventType":"cip.paid","operationNumber":"99","data":{"cip":11546901,'
            b'"currency":"USD","amount":10,"paymentDate":"2024-12-02 10:00:00-05:00",'
            b'"transactionCode":"01JD","channel":"agente"},"extra":true}')
    [event] = provider().parse_webhook(_signed(body), body, now=NOW)
    assert event.provider_reference == "11546901"
    assert event.amount == Money.of("10.00", "USD")
    assert event.occurred_at == datetime(2024, 12, 2, 15, 0, tzinfo=UTC)
    assert event.raw["data"]["transactionCode"] == "01JD"


def test_expired_event() -> None:
    body = (b'{"eventType":"cip.expired","operationNumber":"5","data":{"cip":"1",'
            b'"currency":"PEN","amount":1.00}}')
    [event] = provider().parse_webhook(_signed(body), body, now=NOW)
    assert event.status is Status.EXPIRED
    assert event.event_id == "1:cip.expired:5"


def test_refunded_event_carries_a_refund_not_a_status() -> None:
    body = (b'{"eventType":"cip.refunded","operationNumber":"6","data":{"cip":"1",'
            b'"currency":"PEN","amount":40.00}}')
    [event] = provider().parse_webhook(_signed(body), body, now=NOW)
    assert event.status is None
    assert event.amount is None  # the refunded amount is not the payment's amount
    assert event.refund is not None
    assert event.refund.status is RefundStatus.SUCCEEDED
    assert event.refund.amount == Money.of("40.00", "PEN")
    assert event.refund.payment_reference == "1"
    assert event.refund.reference == "1:cip.refunded:6"


def test_unknown_event_type_is_recorded_without_a_status() -> None:
    body = b'{"eventType":"cip.deleted","operationNumber":"8","data":{"cip":"1"}}'
    [event] = provider().parse_webhook(_signed(body), body, now=NOW)
    assert event.type == "cip.deleted"
    assert event.status is None
    assert event.amount is None
    assert event.event_id == "1:cip.deleted:8"


@pytest.mark.parametrize("body", [
    b"not json",
    b"[]",
    b'{"operationNumber":"1","data":{"cip":"1"}}',
    b'{"eventType":"cip.paid","data":{}}',
    b'{"eventType":"cip.paid","data":{"cip":"1","currency":"PEN","amount":1.005}}',
    b'{"eventType":"cip.paid","data":{"cip":"1","currency":"XYZ","amount":1}}',
    b'{"eventType":"cip.paid","data":{"cip":"1","amount":"1.00"}}',
])
def test_malformed_but_signed_bodies_are_webhook_errors(body: bytes) -> None:
    with pytest.raises(WebhookError) as caught:
        provider().parse_webhook(_signed(body), body, now=NOW)
    assert not isinstance(caught.value, SignatureInvalidError)


def test_replies() -> None:
    ok = provider().webhook_reply()
    assert ok.status_code == 200
    refused = provider().webhook_reply(SignatureInvalidError("bad"))
    assert 400 <= refused.status_code < 500


# --- signed but malformed: each a 400 of its own, naming the field (issue #16 finding 4) ---


def _paid(**changes: object) -> bytes:
    """The spec's cip.paid body with *changes* (``data.x`` names a data field; None
    removes it), as compact JSON."""
    body: dict[str, object] = {"eventType": "cip.paid", "operationNumber": "1253"}
    data: dict[str, object] = {"cip": "11546901", "currency": "PEN", "amount": 22.05}
    for key, value in changes.items():
        target, name = (data, key[5:]) if key.startswith("data_") else (body, key)
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    body["data"] = data
    return json.dumps(body, separators=(",", ":")).encode()


MALFORMED: dict[str, tuple[bytes, str]] = {
    "operationNumber an object": (_paid(operationNumber={"n": 1}), "operationNumber"),
    "operationNumber a list": (_paid(operationNumber=["1253"]), "operationNumber"),
    "operationNumber of 15 characters": (_paid(operationNumber="1" * 15), "operationNumber"),
    "operationNumber missing": (_paid(operationNumber=None), "operationNumber"),
    "a 5,000-digit cip": (_paid(data_cip="9" * 5000), "data.cip"),
    "a 15-digit cip number": (_paid(data_cip=10**14), "data.cip"),
    "a cip with letters": (_paid(data_cip="11546901A"), "data.cip"),
    "a cip object": (_paid(data_cip={"cip": "1"}), "data.cip"),
    "cip missing": (_paid(data_cip=None), "data.cip"),
    "amount an object": (_paid(data_amount={"value": 22.05}), "data.amount"),
    "amount true": (_paid(data_amount=True), "data.amount"),
    "amount negative": (_paid(data_amount=-1), "data.amount"),
    "amount zero": (_paid(data_amount=0), "data.amount"),
    "amount in exponent form": (_paid(data_amount="1e999999999"), "data.amount"),
    "amount with 17 integer digits": (_paid(data_amount="1" * 17), "data.amount"),
    "amount missing on cip.paid": (_paid(data_amount=None, data_currency=None),
                                   "data.amount"),
    "currency a number": (_paid(data_currency=604), "data.currency"),
    "currency of four letters": (_paid(data_currency="SOLES"), "data.currency"),
    "paymentDate a number": (_paid(data_paymentDate=20241202), "data.paymentDate"),
    "paymentDate not a date": (_paid(data_paymentDate="mañana"), "data.paymentDate"),
    "transactionCode an object": (_paid(data_transactionCode={"id": 1}),
                                  "data.transactionCode"),
    "transactionCode of 37 characters": (_paid(data_transactionCode="x" * 37),
                                         "data.transactionCode"),
    "eventType a number": (_paid(eventType=1), "eventType"),
    "eventType missing": (_paid(eventType=None), "eventType"),
    "data a list": (b'{"eventType":"cip.paid","operationNumber":"1","data":[]}', "data"),
    "nested 5,000 deep": (b'{"eventType":"cip.paid","x":' + b"[" * 5000 + b"]" * 5000
                          + b"}", "JSON"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_signed_but_malformed_bodies_name_the_field(case: str) -> None:
    body, field = MALFORMED[case]
    with pytest.raises(WebhookError) as caught:
        provider().parse_webhook(_signed(body), body, now=NOW)
    assert not isinstance(caught.value, SignatureInvalidError)
    assert field in caught.value.message, caught.value.message
    assert len(caught.value.message) < 200  # a 5,000-digit value is not echoed


def test_an_oversized_body_is_refused_before_parsing() -> None:
    body = _paid(data_channel="x" * 20_000)
    with pytest.raises(WebhookError, match="bytes"):
        provider().parse_webhook(_signed(body), body, now=NOW)


def test_amount_as_decimal_text_and_integer_is_money_without_floats() -> None:
    as_text = _paid(data_amount="22.05")
    [event] = provider().parse_webhook(_signed(as_text), as_text, now=NOW)
    assert event.amount == Money(2205, "PEN")
    whole = _paid(data_amount=22)
    [event] = provider().parse_webhook(_signed(whole), whole, now=NOW)
    assert event.amount == Money(2200, "PEN")


def test_a_14_digit_cip_and_a_numeric_operation_number_are_taken() -> None:
    body = _paid(data_cip=10**13, operationNumber=1253)
    [event] = provider().parse_webhook(_signed(body), body, now=NOW)
    assert event.provider_reference == str(10**13)
    assert event.event_id == f"{10**13}:cip.paid:1253"
