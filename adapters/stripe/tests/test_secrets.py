"""Secrets never in a frame or a repr: a failed verification's traceback, formatted with
every frame's local variables (as a console log or an error tracker prints it), shows no
webhook secret and no API key; neither does ``repr`` of the settings or the provider."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from typing import Any

import pytest
from pasarela_stripe import StripeProvider, StripeSettings
from pasarela_stripe.webhooks import signature_header, verify

from pasarela.errors import SignatureInvalidError
from pasarela.provider import WebhookHeaders


API_KEY = "sk_test_never_print_this_api_key_0001"
SECRETS = ("whsec_first_secret_never_printed", "whsec_second_secret_never_printed")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
                   "created": T, "data": {"object": {"id": "pi_1", "object": "payment_intent",
                                                     "status": "succeeded"}}}).encode()


def _provider() -> StripeProvider:
    # built directly, as a host may: nothing wrapped the values beforehand
    return StripeProvider(StripeSettings(api_key=API_KEY, webhook_secrets=SECRETS))


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.TracebackException.from_exception(
        exc, capture_locals=True).format())


def _assert_clean(text: str) -> None:
    for secret in (API_KEY, *SECRETS):
        assert secret not in text
    # and not a prefix of one either (a truncated repr would still leak most of it)
    assert "whsec_first" not in text
    assert "whsec_second" not in text


@pytest.mark.parametrize("header", [
    pytest.param(signature_header(BODY, ["whsec_someone_else"], T), id="wrong-secret"),
    pytest.param(signature_header(BODY, [SECRETS[0]], T - 3600), id="stale"),
    pytest.param("t=abc,v1=00", id="malformed"),
    pytest.param("", id="missing"),
])
def test_a_failed_verification_shows_no_secret_in_any_frame(header: str) -> None:
    headers = WebhookHeaders({"Stripe-Signature": header} if header else {})
    with pytest.raises(SignatureInvalidError) as info:
        _provider().parse_webhook(headers, BODY, now=NOW)
    text = _formatted(info.value)
    assert "parse_webhook" in text  # the frames were printed
    assert "verify" in text
    assert "self = " in text  # with their locals
    _assert_clean(text)


def test_the_verify_function_masks_what_it_was_given() -> None:
    """Called on its own with a plain list, the frame where it raises shows the
    secrets masked."""
    headers = WebhookHeaders({"Stripe-Signature": signature_header(BODY, ["whsec_x"], T)})
    with pytest.raises(SignatureInvalidError) as info:
        verify(headers, BODY, list(SECRETS), now=NOW)
    text = _formatted(info.value)
    assert "secrets = " in text
    _assert_clean(text)


def test_a_genuine_delivery_still_verifies_with_either_secret() -> None:
    for secret in SECRETS:
        headers = WebhookHeaders({"Stripe-Signature": signature_header(BODY, [secret], T)})
        assert [e.event_id for e in _provider().parse_webhook(headers, BODY, now=NOW)] == [
            "evt_1"]
    generated = (s for s in SECRETS)  # any iterable, consumed once
    headers = WebhookHeaders({"Stripe-Signature": signature_header(BODY, [SECRETS[1]], T)})
    assert verify(headers, BODY, generated, now=NOW) == T


def test_repr_of_settings_and_provider_shows_no_secret() -> None:
    provider = _provider()
    _assert_clean(repr(provider.settings))
    _assert_clean(repr(provider))
    _assert_clean(str(provider.settings))


@pytest.mark.parametrize(("changes", "path"), [
    ({"api_key": "sk_test_clave_ñandú_0001"}, "providers.stripe.api_key"),
    ({"api_key": "sk_test_with space"}, "providers.stripe.api_key"),
    ({"api_key": "sk_test_line\nbreak"}, "providers.stripe.api_key"),
    ({"api_version": "2023-08-16\r\nX-Injected: 1"}, "providers.stripe.api_version"),
    ({"api_version": "latest"}, "providers.stripe.api_version"),
])
def test_header_values_are_checked_when_configured_never_when_sent(
    changes: dict[str, str], path: str
) -> None:
    """A key or version that no header can carry is refused by the settings (the
    message names the field, never the value), instead of failing while the request's
    headers, the key among them, are a local variable of the frame that raises."""
    from pasarela.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        StripeSettings(**{"api_key": API_KEY, **changes})
    assert info.value.path == path
    _assert_clean(str(info.value))
    assert changes.get("api_key", "\x00") not in str(info.value)
    assert StripeSettings(api_key=API_KEY, api_version="2024-09-30.acacia").api_version


def test_a_refused_request_shows_no_key_in_any_frame(served: Any, sandbox_key: str,
                                                     webhook_secret: str) -> None:
    """Stripe answers 401 to a wrong key: the error's traceback, printed with every
    frame's locals (the request built, the provider, the response), shows no key."""
    import httpx

    from pasarela.engine.calls import run_flow
    from pasarela.engine.steps import drive
    from pasarela.errors import AuthenticationError
    from pasarela.model import Method, Order
    from pasarela.money import Money
    from pasarela.provider import CreateRequest, Operation

    provider = StripeProvider(StripeSettings(api_key=API_KEY, base_url=served.url,
                                             webhook_secrets=SECRETS, max_retries=0))
    order = Order(reference="r-401", amount=Money.of("20.00", "PEN"))
    request = CreateRequest(payment_id="01JD401", idempotency_key="r-401", order=order,
                            method=Method.CARD, amount=order.amount, expires_at=None)
    with httpx.Client() as client, pytest.raises(AuthenticationError) as info:
        drive(run_flow(provider, Operation.CREATE, lambda: provider.create(request)), client)
    text = _formatted(info.value)
    assert "create" in text  # the adapter's frames are there
    _assert_clean(text)
