"""Settlement lines from a provider's API: references in batches, exchanges recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import httpx
import pytest
import sqlalchemy as sa

from pasarela.api import Pasarela
from pasarela.errors import UnsupportedError
from pasarela.model import Payment
from pasarela.money import Money
from pasarela.provider import Flow, SettlementLine
from pasarela.reconcile import reconcile
from pasarela.reconcile.sources import provider_lines
from pasarela.store.schema import exchanges
from pasarela.testing.fake import FakeProvider

from .conftest import SINCE, T0, UNTIL


class SearchingProvider(FakeProvider):
    """Like PagoEfectivo: no settlement file; a search by the references to check."""

    settlements_by_reference = True

    def settlements(self, since: datetime, until: datetime, *,
                    references: Sequence[str] | None = None) -> Flow[Iterable[SettlementLine]]:
        refs = list(references or ())
        response = yield httpx.Request("POST", f"{self.settings.base_url}/search",
                                       json={"references": refs})
        return [SettlementLine(provider="fake", provider_reference=item["ref"],
                               order_reference=None, amount=Money.of(item["amount"], "PEN"),
                               fee=None, status="paid",
                               occurred_at=datetime.fromisoformat(item["paid_at"]))
                for item in response.json()["paid"]]


def test_references_are_searched_in_batches_and_lines_matched(
        pasarela: Pasarela, make_payment: Callable[..., Payment]) -> None:
    made = [make_payment(f"o-{n}", paid=n % 2 == 0) for n in range(5)]
    service = pasarela.service
    service.providers["fake"] = SearchingProvider(service.providers["fake"].settings)
    asked: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        refs = json.loads(request.content)["references"]
        asked.append(refs)
        return httpx.Response(200, json={"paid": [
            {"ref": ref, "amount": "100.00", "paid_at": T0.isoformat()} for ref in refs]})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        lines = provider_lines(service, client, "fake", SINCE, UNTIL, batch=2)
        summary = reconcile(service.store, lines, provider="fake", since=SINCE, until=UNTIL,
                            service=service)
    assert [len(batch) for batch in asked] == [2, 2, 1]
    assert sorted(r for batch in asked for r in batch) == sorted(
        p.provider_reference for p in made)
    assert summary.counts["matched"] == 3
    assert summary.counts["missing_in_books"] == 2
    assert summary.healed == 2
    with pasarela.store.engine.connect() as conn:
        recorded = conn.scalar(sa.select(sa.func.count()).select_from(exchanges).where(
            exchanges.c.operation == "settlements"))
    assert recorded == 3


def test_a_provider_without_settlements_is_unsupported(pasarela: Pasarela) -> None:
    service = pasarela.service

    class NoSettlements(FakeProvider):
        operations = frozenset()

    service.providers["fake"] = NoSettlements(service.providers["fake"].settings)
    with httpx.Client() as client, pytest.raises(UnsupportedError):
        list(provider_lines(service, client, "fake", SINCE, UNTIL))
