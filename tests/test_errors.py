"""The one error hierarchy: drawn in the module docstring, codes, customer messages."""

from __future__ import annotations

import inspect
import re

import pytest

from pasarela import errors
from pasarela.errors import (
    DeclinedError,
    ErrorCode,
    PasarelaError,
    ProviderError,
    UnknownOutcomeError,
    ValidationError,
)


def error_classes():
    return [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
            if issubclass(obj, PasarelaError)]


def test_every_error_class_is_drawn_in_the_tree():
    doc = errors.__doc__ or ""
    drawn = set(re.findall(r"[├└─ ]\s*([A-Z][A-Za-z]+Error)\b", doc)) | {"PasarelaError"}
    assert {cls.__name__ for cls in error_classes()} == drawn


def test_the_drawn_parents_are_the_real_ones():
    lines = (errors.__doc__ or "").splitlines()
    stack: list[tuple[int, str]] = []
    for line in lines:
        match = re.search(r"([A-Z][A-Za-z]+Error)\b", line)
        if not match or ("├" not in line and "└" not in line and line.strip() != match[1]):
            continue
        depth = match.start(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert issubclass(getattr(errors, match[1]), getattr(errors, stack[-1][1])), line
        stack.append((depth, match[1]))
    assert len(stack) >= 1


@pytest.mark.parametrize("code", [
    "validation", "configuration", "plugin_load", "authentication", "provider_unavailable",
    "timeout_unknown_outcome", "rate_limited", "declined", "insufficient_funds", "expired",
    "amount_out_of_range", "unsupported_currency", "unsupported_method", "not_found",
    "idempotency_conflict", "signature_invalid", "illegal_transition", "concurrency_conflict",
])
def test_required_codes_exist(code):
    assert ErrorCode(code).value == code


def test_customer_messages_in_spanish_and_english():
    declined = DeclinedError("issuer said no", code=ErrorCode.INSUFFICIENT_FUNDS,
                             provider="stripe", provider_code="insufficient_funds")
    assert "Fondos insuficientes" in declined.customer_message("es")
    assert "Insufficient funds" in declined.customer_message("en-US")
    assert "issuer said no" not in declined.customer_message("es")  # provider text stays out
    assert declined.to_dict()["provider_code"] == "insufficient_funds"


def test_retryable_flags_and_builtin_bases():
    assert not UnknownOutcomeError("lost").created_nothing
    assert ProviderError("x", created_nothing=True).created_nothing
    err = ValidationError("bad", field="customer.phone")
    assert isinstance(err, ValueError)
    assert err.field == "customer.phone"
    assert str(err) == "customer.phone: bad"


#: What a class needs besides its message.
REQUIRED: dict[type[PasarelaError], dict[str, str]] = {
    ValidationError: {"field": "customer.phone"},
    errors.PluginLoadError: {"plugin": "plin"},
    errors.IllegalTransitionError: {"source": "failed", "target": "succeeded"},
}


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_attribute_is_declared_by_the_constructor(cls):
    """Nothing needs setting after construction (nor a ``type: ignore`` to read it)."""
    exc = cls("message", **REQUIRED.get(cls, {}))
    declared = set(vars(exc))
    assert {"message", "code", "retryable", "provider", "provider_code", "provider_message",
            "http_status", "payment_id"} <= declared
    if issubclass(cls, ProviderError):
        assert {"created_nothing", "provider_reference"} <= declared
    if issubclass(cls, errors.RateLimitedError):
        assert "retry_after" in declared
    if issubclass(cls, errors.ProviderValidationError):
        assert "fields" in declared
    if issubclass(cls, DeclinedError):
        assert "decline_code" in declared


def test_provider_validation_error_takes_a_message_then_the_fields():
    exc = errors.ProviderValidationError(
        "Plin needs the customer's Peruvian mobile number",
        fields={"customer.phone": "a Peruvian mobile is required"}, provider="plin")
    assert exc.fields == {"customer.phone": "a Peruvian mobile is required"}
    assert exc.created_nothing is True
    assert exc.code is ErrorCode.VALIDATION
    assert errors.RateLimitedError("slow down", retry_after=2.5).retry_after == 2.5
    assert ProviderError("x", payment_id="01JPAY").to_dict()["payment_id"] == "01JPAY"
