"""Flows: one implementation, two drivers; transport failures mapped; exchanges redacted."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import httpx
import pytest

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import adrive, drive
from pasarela.errors import (
    DeclinedError,
    ProviderUnavailableError,
    UnknownOutcomeError,
)
from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation
from pasarela.testing.fake import FakeGateway, FakeProvider, FakeSettings


def request(scenario: str, *, method: Method = Method.CARD, key: str = "k") -> CreateRequest:
    order = Order(reference="o-1", amount=Money.of("20.00", "PEN"),
                  customer=Customer(first_name="Rosa", last_name="Quispe",
                                    email="rosa@example.pe"))
    return CreateRequest(payment_id="01JPAYMENT", idempotency_key=key, order=order,
                         method=method, amount=order.amount, expires_at=None,
                         params={"scenario": scenario})


def run_both(scenario: str, **kwargs):
    """Run the same create through the sync and the async driver, each on a fresh gateway."""
    results = []
    for mode in ("sync", "async"):
        gateway = FakeGateway()
        provider = FakeProvider(FakeSettings(**kwargs))
        exchanges: list[Exchange] = []
        steps = run_flow(provider, Operation.CREATE, lambda p=provider: p.create(request(scenario)),
                         payment_id="01JPAYMENT", record=exchanges.append, sleep_scale=0)
        try:
            if mode == "sync":
                with httpx.Client(transport=gateway.transport()) as client:
                    outcome = drive(steps, client)
            else:
                async def go(steps=steps, gateway=gateway):
                    async with httpx.AsyncClient(transport=gateway.transport()) as client:
                        return await adrive(steps, client)
                outcome = anyio.run(go)
        except Exception as exc:
            outcome = exc
        results.append((outcome, exchanges, gateway))
    return results


@pytest.mark.parametrize(("scenario", "expected"), [
    ("succeed", Status.SUCCEEDED),
    ("pending", Status.PENDING),
])
def test_parity_success(scenario, expected):
    (sync_out, sync_ex, _), (async_out, async_ex, _) = run_both(scenario)
    assert sync_out.status is async_out.status is expected
    assert sync_out.reference == async_out.reference
    assert [e.status_code for e in sync_ex] == [e.status_code for e in async_ex] == [200]


@pytest.mark.parametrize(("scenario", "error", "calls"), [
    ("decline", DeclinedError, 1),
    ("5xx", ProviderUnavailableError, 3),         # retried: create carries an idempotency key
    ("connect_error", ProviderUnavailableError, 3),
    ("malformed", ProviderUnavailableError, 3),
])
def test_parity_errors(scenario, error, calls):
    (sync_out, sync_ex, sync_gw), (async_out, async_ex, async_gw) = run_both(scenario)
    assert type(sync_out) is type(async_out) is error
    # Transport failures and the adapter's own errors alike name provider and payment.
    assert (sync_out.provider, sync_out.payment_id) == ("fake", "01JPAYMENT")
    assert (async_out.provider, async_out.payment_id) == ("fake", "01JPAYMENT")
    assert len(sync_ex) == len(async_ex) == calls
    assert len(sync_gw.calls) == len(async_gw.calls) == calls


def test_5xx_once_then_safe_retry_with_same_key():
    for outcome, exchanges, gateway in run_both("5xx_once"):
        assert outcome.status is Status.SUCCEEDED
        assert [e.status_code for e in exchanges] == [503, 200]
        assert len(gateway.payments) == 1


def test_connect_error_created_nothing():
    for outcome, _, gateway in run_both("connect_error", max_retries=0):
        assert isinstance(outcome, ProviderUnavailableError)
        assert outcome.created_nothing
        assert gateway.payments == {}


def test_timeout_after_send_is_unknown_never_failed():
    for outcome, exchanges, gateway in run_both("timeout", max_retries=0):
        assert isinstance(outcome, UnknownOutcomeError)
        assert not outcome.created_nothing
        assert exchanges[0].error == "ReadTimeout"
        assert len(gateway.payments) == 1  # it did reach the provider


def test_exchanges_are_redacted():
    (_, exchanges, _), _ = run_both("succeed")
    exchange = exchanges[0]
    assert exchange.request_headers["authorization"] == "[redacted]"
    assert "fake_sk_test_123" not in exchange.request_body + exchange.response_body
    assert exchange.started_at <= datetime.now(UTC)
    assert exchange.duration_ms >= 0


def test_exchanges_keep_every_number_as_written():
    """The recorded bodies are the evidence of what was sent and answered: a number keeps
    its digits (as floats, 149.90 became 149.9 and a 16-digit amount lost its cents)."""
    from pasarela.engine.redaction import redact_exchange

    body = ('{"amount":1234567890123456.78,"fee":149.90,"big":12345678901234567890,'
            '"card":{"otp":"123456","rate":0.000001,"e":1e5},"list":[1.50,2],"name":"Ñuñoa"}')
    request = httpx.Request("POST", "https://api.example.pe/v1/x", content=body.encode())
    response = httpx.Response(200, content=b'{"amount": 25.00, "id": "p1"}', request=request)
    provider = FakeProvider(FakeSettings())
    provider.secret_fields = ("otp",)
    _, sent, _, answered = redact_exchange(provider, request, response)
    assert sent == ('{"amount": 1234567890123456.78, "big": 12345678901234567890, '
                    '"card": {"e": 1e5, "otp": "[redacted]", "rate": 0.000001}, "fee": 149.90, '
                    '"list": [1.50, 2], "name": "Ñuñoa"}')
    assert answered == '{"amount": 25.00, "id": "p1"}'
    # Text spelling a marker is text: only this call's markers become numbers.
    trap = '{"trap":"\\u00000123456789abcdef:0\\u0000","x":1.5}'
    trapped = httpx.Request("POST", "https://api.example.pe/v1/x", content=trap.encode())
    assert redact_exchange(provider, trapped, None)[1] == trap.replace(",", ", ").replace(
        '":', '": ')
    # Without a fraction anywhere, the same sorted-key JSON as before.
    plain = httpx.Request("POST", "https://api.example.pe/v1/x", content=b'{"b":1,"a":"x"}')
    assert redact_exchange(provider, plain, None)[1] == '{"a": "x", "b": 1}'


def test_timeout_retried_with_same_key_creates_one_payment():
    for outcome, exchanges, gateway in run_both("timeout", max_retries=1):
        # The retry carries the same Idempotency-Key and gets the first answer back.
        assert outcome.status is Status.SUCCEEDED
        assert [e.error for e in exchanges] == ["ReadTimeout", None]
        assert len(gateway.payments) == 1
