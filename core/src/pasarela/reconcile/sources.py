"""Where settlement lines come from, besides CSV files: the provider's own API.

:func:`provider_lines` drives the adapter's ``settlements`` flow (recording every
exchange, redacted, in the store). A provider whose settlements take the
references to check (PagoEfectivo: no settlement file, a search by CIP numbers) is
given the references of our payments of that provider created in the window (and
:data:`LOOKBACK` before it: a code issued earlier may be paid in the window), read
in keyset pages of *batch* references, one flow per page: neither the references
nor the lines are ever all in memory.

Stripe lists balance transactions and Yape (Culqi) its charges, each with fees; a
provider that lists no settlements gets an ``UnsupportedError`` here (use a CSV file).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import httpx

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.exchange import Exchange
from pasarela.provider import Flow, Operation, SettlementLine
from pasarela.store import queries


if TYPE_CHECKING:
    from pasarela.engine.context import Service


__all__ = ["LOOKBACK", "provider_lines", "references_in_window"]

#: How long before the window a payment may have been created and still be paid in it.
LOOKBACK: Final = timedelta(days=30)


def references_in_window(service: Service, provider: str, since: datetime, until: datetime,
                         *, batch: int = 500) -> Iterator[list[str]]:
    """Provider references of our payments of *provider* created in
    ``[since - LOOKBACK, until)``, in pages of *batch*."""
    last = ""
    while True:
        page = queries.provider_references(
            service.store, provider, created_from=(since - LOOKBACK).astimezone(UTC),
            created_before=until.astimezone(UTC), after=last, limit=batch)
        if not page:
            return
        last = page[-1]
        yield page


def provider_lines(service: Service, client: httpx.Client, provider: str, since: datetime,
                   until: datetime, *, batch: int = 500) -> Iterator[SettlementLine]:
    """The settlement lines *provider* reports for ``[since, until)``."""
    adapter = service.provider(provider)
    if not adapter.supports(Operation.SETTLEMENTS):
        raise adapter.unsupported(Operation.SETTLEMENTS)
    by_reference = adapter.settlements_by_reference
    pages: Iterable[list[str] | None] = (
        references_in_window(service, provider, since, until, batch=batch)
        if by_reference else [None])
    line_no = 0
    for page in pages:
        exchanges: list[Exchange] = []

        def flow(page: list[str] | None = page) -> Flow[Iterable[SettlementLine]]:
            if page is None:
                return adapter.settlements(since, until)
            return adapter.settlements(since, until, references=page)

        try:
            lines: Iterable[SettlementLine] = drive(
                run_flow(adapter, Operation.SETTLEMENTS, flow, record=exchanges.append,
                         sleep_scale=service.sleep_scale), client)
        finally:
            service.store.record_exchanges(exchanges)
        for line in lines:
            line_no += 1
            yield SettlementLine(
                provider=provider, provider_reference=line.provider_reference,
                order_reference=line.order_reference, amount=line.amount, fee=line.fee,
                status=line.status, occurred_at=line.occurred_at, line_no=line_no,
                raw=line.raw)
