"""The base cassette configuration scrubs secrets and keeps every other byte."""

from __future__ import annotations

from pasarela.testing.cassettes import SECRET_HEADERS, base_vcr_config, scrub_body


def test_secret_fields_masked_decimals_kept():
    body = b'{"amount":149.90,"otp":123456,"nested":{"api_key":"sk_1"},"email":"rosa@example.pe"}'
    out = scrub_body(body, {"otp", "api_key"}, ["never-there"])
    assert out == (b'{"amount":149.90,"otp":"[redacted]","nested":{"api_key":"[redacted]"},'
                   b'"email":"r***@example.pe"}')


def test_secret_values_masked_in_any_body():
    assert scrub_body("token=abc123&x=1", (), ["abc123"]) == "token=[redacted]&x=1"


def test_config_filters_headers_and_scrubs_both_ways():
    config = base_vcr_config(secret_fields={"otp"}, secret_values=["sk_test_9"])
    assert ("authorization", "[redacted]") in config["filter_headers"]
    assert "pe-signature" in SECRET_HEADERS
    response = {"body": {"string": b'{"otp":"1","key":"sk_test_9"}'},
                "headers": {"Set-Cookie": ["a=b"]}}
    cleaned = config["before_record_response"](response)
    assert cleaned["body"]["string"] == b'{"otp":"[redacted]","key":"[redacted]"}'
    assert cleaned["headers"]["Set-Cookie"] == ["[redacted]"]
    assert "record_mode" not in config  # the command line decides
