"""Culqi's recorded sandbox answers (../shared/peers/culqi) through the adapter's parsers.

Every recorded charge outcome must land on the right pasarela outcome: the nine
decline codes on their normalized codes, the successes on a charge, and the genuine
HTTP 500 with its unexpected body on "provider unavailable" (or "unknown" where it
answers the money-moving charge call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pasarela_yape.culqi.acquirer import CulqiAcquirer
from pasarela_yape.culqi.api import parse_charge, parse_json, parse_refund, parse_token
from pasarela_yape.errors import ERROR_CODES

from pasarela.errors import (
    DeclinedError,
    ErrorCode,
    ProviderUnavailableError,
    UnknownOutcomeError,
)
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money


DECLINES = {
    "contact_issuer__master_card": ("contact_issuer", ErrorCode.CARD_DECLINED),
    "incorrect_cvv__master_card": ("incorrect_cvv", ErrorCode.CARD_DECLINED),
    "insufficient_funds__visa": ("insufficient_funds", ErrorCode.INSUFFICIENT_FUNDS),
    "invalid_card__diners_club": ("invalid_card", ErrorCode.CARD_DECLINED),
    "issuer_decline_operation__american_express": (
        "issuer_decline_operation", ErrorCode.CARD_DECLINED),
    "issuer_not_available__american_express": ("issuer_not_available", ErrorCode.DECLINED),
    "lost_card__visa": ("lost_card", ErrorCode.FRAUD_SUSPECTED),
    "processing_error__diners_club": ("processing_error", ErrorCode.DECLINED),
    "stolen_card__visa": ("stolen_card", ErrorCode.FRAUD_SUSPECTED),
}
SUCCESSES = ["successful__american_express", "successful__diners_club",
             "successful__master_card", "successful__visa"]


def interactions(folder: Path, name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((folder / f"{name}.yaml").read_text(encoding="utf-8"))
    return list(data["interactions"])


def as_response(interaction: dict[str, Any]) -> httpx.Response:
    """The recorded answer as an httpx.Response (its transport headers left out)."""
    recorded = interaction["response"]
    headers = {k: ", ".join(v) for k, v in recorded["headers"].items()
               if k.lower() not in ("content-encoding", "content-length")}
    request = httpx.Request(interaction["request"]["method"], interaction["request"]["uri"])
    return httpx.Response(recorded["status"]["code"], headers=headers,
                          content=recorded["body"]["string"].encode("utf-8"), request=request)


def charge_call(folder: Path, name: str) -> httpx.Response:
    found = [i for i in interactions(folder, name)
             if i["request"]["method"] == "POST" and i["request"]["uri"].endswith("/v2/charges")]
    assert len(found) == 1
    return as_response(found[0])


@pytest.mark.parametrize("name", sorted(DECLINES))
def test_each_recorded_decline_maps_to_its_normalized_code(
    culqi_cassettes: Path, name: str
) -> None:
    decline, code = DECLINES[name]
    response = charge_call(culqi_cassettes, f"ChargeTest.test_charge_create__{name}")
    assert response.status_code == 402
    with pytest.raises(DeclinedError) as caught:
        parse_json(response)
    error = caught.value
    assert error.code is code
    assert error.provider == "yape"
    assert error.provider_code == decline
    assert error.decline_code == decline
    assert error.http_status == 402
    body = response.json()
    assert error.provider_message == body["merchant_message"]
    # Culqi created (and declined) a charge: not "created nothing".
    assert body["charge_id"].startswith("chr_test_")
    assert error.created_nothing is False
    assert error.customer_message("es")
    assert error.customer_message("es") != body["user_message"]
    assert ERROR_CODES[decline] is code


def test_issuer_not_available_is_the_only_retryable_decline(culqi_cassettes: Path) -> None:
    retryable = set()
    for name in DECLINES:
        with pytest.raises(DeclinedError) as caught:
            parse_json(charge_call(culqi_cassettes, f"ChargeTest.test_charge_create__{name}"))
        if caught.value.retryable:
            retryable.add(caught.value.provider_code)
    assert retryable == {"issuer_not_available"}


def test_the_cassettes_hold_exactly_the_nine_decline_codes(culqi_cassettes: Path) -> None:
    seen = set()
    for path in culqi_cassettes.glob("ChargeTest.*.yaml"):
        for interaction in interactions(culqi_cassettes, path.stem):
            body = interaction["response"]["body"]["string"]
            if '"decline_code"' in body:
                seen.add(as_response(interaction).json()["decline_code"])
    assert seen == {decline for decline, _ in DECLINES.values()}


@pytest.mark.parametrize("name", SUCCESSES)
def test_recorded_success_with_capture_false_is_an_authorization(
    culqi_cassettes: Path, name: str
) -> None:
    # The SDK's tests sent capture=false: authorized, money not taken yet.
    response = charge_call(culqi_cassettes, f"ChargeTest.test_charge_create__{name}")
    body = parse_json(response)
    assert body["capture"] is False
    reported = parse_charge(body)
    assert reported.status is Status.PROCESSING
    assert reported.reference == body["id"]
    assert reported.amount == Money(1000, "PEN")


def test_recorded_capture_is_a_succeeded_charge(culqi_cassettes: Path) -> None:
    calls = interactions(culqi_cassettes, "ChargeTest.test_charge_capture")
    capture = next(i for i in calls if i["request"]["uri"].endswith("/capture"))
    reported = parse_charge(parse_json(as_response(capture)))
    assert reported.status is Status.SUCCEEDED
    assert reported.raw_status == "venta_exitosa"
    assert reported.reference == "chr_test_SHvFuznvdB8laU2y"
    assert reported.amount == Money(1000, "PEN")


def test_recorded_charge_created_with_capture_is_succeeded_through_the_charge_step(
    culqi_cassettes: Path, h: Any
) -> None:
    calls = interactions(culqi_cassettes, "ChargeTest.test_charge_capture")
    capture = as_response(next(i for i in calls if i["request"]["uri"].endswith("/capture")))
    acquirer = CulqiAcquirer(h.make_settings(), clock=lambda: None)  # type: ignore[arg-type]
    assert acquirer._charged(capture).status is Status.SUCCEEDED


def test_recorded_500_with_unexpected_body_is_provider_unavailable(
    culqi_cassettes: Path, h: Any
) -> None:
    name = "ChargeTest.test_charge_create__fraudulent__diners_club"
    (call,) = interactions(culqi_cassettes, name)
    response = as_response(call)
    assert response.status_code == 500
    assert "object" not in response.json()
    with pytest.raises(ProviderUnavailableError) as caught:
        parse_token(response)
    assert caught.value.retryable is True
    assert caught.value.http_status == 500
    assert caught.value.provider == "yape"
    # The same answer to the charge call (which moves money) is an unknown outcome.
    acquirer = CulqiAcquirer(h.make_settings(), clock=lambda: None)  # type: ignore[arg-type]
    with pytest.raises(UnknownOutcomeError):
        acquirer._charged(response)


def test_recorded_card_token_is_not_a_yape_token(culqi_cassettes: Path) -> None:
    (call,) = interactions(culqi_cassettes, "TokenTest.test_token_create")
    response = as_response(call)
    assert response.status_code == 201
    with pytest.raises(ProviderUnavailableError, match="Yape token"):
        parse_token(response)


def test_recorded_refund_is_a_succeeded_refund(culqi_cassettes: Path) -> None:
    calls = interactions(culqi_cassettes, "RefundTest.test_refund_create")
    call = next(i for i in calls if i["request"]["uri"].endswith("/v2/refunds"))
    refund = parse_refund(as_response(call), currency="PEN", refund_id="rf-1")
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.reference == "ref_test_SL8TtdYLrRg0qYVN"
    assert refund.amount == Money(100, "PEN")
    assert refund.payment_reference == "chr_test_7rje5SJhNW0VC3OL"
    assert refund.refund_id == "rf-1"
