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
