"""Calling a provider: an adapter's flow run as steps.

:func:`run_flow` wraps an adapter's flow: it sets the provider's timeout on each
request, records every exchange (redacted, :mod:`pasarela.engine.redaction`), maps
transport failures — a failure before the request left is ``created_nothing``; a
timeout after it was sent is an :class:`~pasarela.errors.UnknownOutcomeError` —
and retries operations the provider declares safe, with the same idempotency key,
on the one backoff policy :data:`pasarela.retry.CALL_RETRY` (or the provider's
``Retry-After``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from pasarela.engine import meters
from pasarela.engine.redaction import redact_exchange
from pasarela.engine.steps import Sleep, Steps
from pasarela.errors import (
    PasarelaError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    UnknownOutcomeError,
)
from pasarela.exchange import Exchange
from pasarela.provider import Flow, Operation, Provider
from pasarela.retry import CALL_RETRY


__all__ = ["may_have_acted", "run_flow"]

T = TypeVar("T")

# Failures where the request provably never reached the provider.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def run_flow(
    provider: Provider,
    operation: Operation,
    make_flow: Callable[[], Flow[T]],
    *,
    payment_id: str | None = None,
    record: Callable[[Exchange], None] | None = None,
    sleep_scale: float = 1.0,
) -> Steps[T]:
    """Drive an adapter flow as steps: timeouts, recording, error mapping, retries.

    *make_flow* builds a fresh flow for each attempt. Attempts are repeated only
    for operations in ``provider.retry_safe``, on retryable errors, up to
    ``settings.max_retries`` times. An error raised names the provider and, when
    *payment_id* is given, the payment.
    """
    safe = operation in provider.retry_safe
    retries = provider.settings.max_retries if safe else 0
    timeout = httpx.Timeout(provider.settings.timeout).as_dict()
    attempt = 0
    while True:
        attempt += 1
        try:
            return (yield from _one_attempt(
                provider, operation, make_flow(), timeout, payment_id, record, attempt
            ))
        except ProviderError as exc:
            if not exc.retryable or attempt > retries:
                raise
            hint = exc.retry_after if isinstance(exc, RateLimitedError) else None
            wait = hint if hint else CALL_RETRY.seconds(attempt)
            yield Sleep(wait * sleep_scale)


def _one_attempt(
    provider: Provider,
    operation: Operation,
    flow: Flow[T],
    timeout: dict[str, Any],
    payment_id: str | None,
    record: Callable[[Exchange], None] | None,
    attempt: int,
) -> Steps[T]:
    response: httpx.Response | None = None
    try:
        request = next(flow)
        while True:
            request.extensions = {**request.extensions, "timeout": timeout}
            started = datetime.now(UTC)
            t0 = time.perf_counter()
            error: httpx.HTTPError | None = None
            response = None
            try:
                response = yield request
            except httpx.HTTPError as exc:
                error = exc
            duration = (time.perf_counter() - t0) * 1000
            meters.called(provider.account, operation.value, duration / 1000,
                          None if response is None else response.status_code)
            if record is not None:
                record(_exchange(provider, operation, payment_id, attempt, request,
                                 response, error, started, duration))
            if error is not None:
                flow.close()
                raise _map_transport(provider, operation, error) from error
            assert response is not None
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    except PasarelaError as exc:
        if isinstance(exc, ProviderError) and exc.provider is None:
            exc.provider = provider.account
        if exc.payment_id is None:
            exc.payment_id = payment_id
        raise


def _map_transport(provider: Provider, operation: Operation, exc: httpx.HTTPError) -> ProviderError:
    if isinstance(exc, _NOT_SENT):
        return ProviderUnavailableError(
            f"could not reach {provider.account}: {type(exc).__name__}",
            provider=provider.account,
            created_nothing=True,
        )
    return UnknownOutcomeError(
        f"{operation.value} sent to {provider.account} but no answer came back: "
        f"{type(exc).__name__}",
        provider=provider.account,
        retryable=operation in provider.retry_safe,
    )


def _exchange(
    provider: Provider,
    operation: Operation,
    payment_id: str | None,
    attempt: int,
    request: httpx.Request,
    response: httpx.Response | None,
    error: Exception | None,
    started: datetime,
    duration_ms: float,
) -> Exchange:
    req_h, req_b, resp_h, resp_b = redact_exchange(provider, request, response)
    url = request.url.copy_with(query=None) if request.url.query else request.url
    return Exchange(
        provider=provider.account,
        operation=operation.value,
        payment_id=payment_id,
        attempt=attempt,
        method=request.method,
        url=str(url),
        request_headers=req_h,
        request_body=req_b,
        status_code=response.status_code if response is not None else None,
        response_headers=resp_h,
        response_body=resp_b,
        error=type(error).__name__ if error is not None else None,
        started_at=started,
        duration_ms=duration_ms,
    )


def may_have_acted(error: ProviderError) -> bool:
    """Whether a create or confirm that failed with *error* may still have made
    something at the provider: a server fault answered after the request arrived (a
    5xx) says nothing about what the provider did, so the payment is ``unknown`` and
    the resolver asks, never ``failed`` on a guess. A refusal (validation,
    authentication, a decline), a rate limit and anything the adapter marks
    ``created_nothing`` made nothing."""
    return (isinstance(error, ProviderUnavailableError)
            and not isinstance(error, RateLimitedError | UnknownOutcomeError)
            and not error.created_nothing)
