"""Driving flows: one implementation of the logic, a sync and an async driver.

Everything pasarela does with a provider is written once, as a generator of
*steps*: an :class:`httpx.Request` to send, or a :class:`Sleep` for a backoff. The
drivers only perform steps: :func:`drive` with :class:`httpx.Client`,
:func:`adrive` with :class:`httpx.AsyncClient` (running the logic between two
steps in a worker thread, so the store's blocking calls never stall the event
loop). Transport exceptions are thrown back into the generator at the step that
raised them, so retry decisions and error mapping are shared too.

:func:`run_flow` wraps an adapter's flow: it sets the provider's timeout on each
request, records every exchange (redacted), maps transport failures — a failure
before the request left is ``created_nothing``; a timeout after it was sent is an
:class:`~pasarela.errors.UnknownOutcomeError` — and retries operations the
provider declares safe, with the same idempotency key.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
import attrs
import httpx

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


__all__ = ["Exchange", "Sleep", "Step", "Steps", "adrive", "drive", "redact_exchange", "run_flow"]

T = TypeVar("T")


@attrs.frozen
class Sleep:
    """A step that waits (a retry backoff)."""

    seconds: float


Step = httpx.Request | Sleep
#: A generator of steps returning T: the shape of every operation.
Steps = Generator[Step, httpx.Response | None, T]


# --- drivers --------------------------------------------------------------------


def drive(steps: Steps[T], client: httpx.Client) -> T:
    """Run *steps* to completion with a sync client."""
    try:
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                step = steps.send(None)
                continue
            try:
                response = client.send(step)
                response.read()
            except httpx.HTTPError as exc:
                step = steps.throw(exc)
                continue
            step = steps.send(response)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


_DONE = object()


def _advance(steps: Steps[Any], how: str, value: Any) -> tuple[object, Any]:
    # StopIteration cannot cross a thread boundary into a future; turn it into data.
    try:
        if how == "send":
            return None, steps.send(value)
        return None, steps.throw(value)
    except StopIteration as stop:
        return _DONE, stop.value


async def adrive(steps: Steps[T], client: httpx.AsyncClient, *, inline: bool = False) -> T:
    """Run *steps* to completion with an async client.

    The steps between two exchanges (store reads and writes) run in a worker
    thread, so the event loop stays free; with *inline* they run on the loop
    itself, which saves the thread hops when they are short and local (an
    embedded SQLite store's write batch: under the GIL a thread adds no
    parallelism, only handoffs).
    """
    async def advance(how: str, value: Any) -> tuple[object, Any]:
        if inline:
            return _advance(steps, how, value)
        return await anyio.to_thread.run_sync(_advance, steps, how, value)

    marker, step = await advance("send", None)
    while marker is not _DONE:
        if isinstance(step, Sleep):
            await anyio.sleep(step.seconds)
            marker, step = await advance("send", None)
            continue
        try:
            response = await client.send(step)
            await response.aread()
        except httpx.HTTPError as exc:
            marker, step = await advance("throw", exc)
            continue
        marker, step = await advance("send", response)
    return step  # type: ignore[no-any-return]


# --- redaction ------------------------------------------------------------------

_MASK = "[redacted]"


def _masking(keys: frozenset[str]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json.loads`` object hook that masks the value of every key in *keys*
    (any case, at any depth) as it parses."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {k: (_MASK if k.lower() in keys else v) for k, v in pairs}
    return hook


def _redact_text(text: str, keys: frozenset[str], secrets: Iterable[str]) -> str:
    if not text:
        return text
    lowered = text.lower()
    # Mask while parsing only if a key to mask can be in it (a search answer can be
    # long); an escaped key name is not looked for, so any escape means "can be".
    masking = "\\u" in text or any(f'"{key}"' in lowered for key in keys)
    try:
        data = json.loads(text, object_pairs_hook=_masking(keys) if masking else None)
    except ValueError:
        out = text
        for key in keys:  # form-encoded bodies: key=value
            out = re.sub(
                rf"(?i)(^|&)({re.escape(key)}(?:%5B[^=&]*%5D|\[[^=&]*\])*)=[^&]*",
                rf"\1\2={_MASK}",
                out,
            )
    else:
        out = json.dumps(data, ensure_ascii=False, sort_keys=True)
    for secret in secrets:
        if secret:
            out = out.replace(secret, _MASK)
    return out


def redact_exchange(
    provider: Provider,
    request: httpx.Request,
    response: httpx.Response | None,
) -> tuple[dict[str, str], str, dict[str, str], str]:
    """Redacted request headers and body, response headers and body."""
    secrets = provider.settings.secret_values()
    keys = frozenset(k.lower() for k in provider.secret_fields)
    headers = frozenset(h.lower() for h in provider.secret_headers)

    def clean_headers(items: httpx.Headers) -> dict[str, str]:
        return {k: (_MASK if k.lower() in headers else v) for k, v in items.items()}

    req_body = _redact_text(request.content.decode("utf-8", "replace"), keys, secrets)
    if response is None:
        return clean_headers(request.headers), req_body, {}, ""
    resp_body = _redact_text(response.content.decode("utf-8", "replace"), keys, secrets)
    return clean_headers(request.headers), req_body, clean_headers(response.headers), resp_body


# --- running an adapter's flow ----------------------------------------------------

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
    ``settings.max_retries`` times.
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
            hinted = isinstance(exc, RateLimitedError) and exc.retry_after
            wait = exc.retry_after if hinted else None  # type: ignore[attr-defined]
            yield Sleep((wait if wait is not None else CALL_RETRY.seconds(attempt)) * sleep_scale)


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
            exc.provider = provider.name
        raise


def _map_transport(provider: Provider, operation: Operation, exc: httpx.HTTPError) -> ProviderError:
    if isinstance(exc, _NOT_SENT):
        return ProviderUnavailableError(
            f"could not reach {provider.name}: {type(exc).__name__}",
            provider=provider.name,
            created_nothing=True,
        )
    return UnknownOutcomeError(
        f"{operation.value} sent to {provider.name} but no answer came back: "
        f"{type(exc).__name__}",
        provider=provider.name,
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
        provider=provider.name,
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
