"""A payment records the network it runs on; options() say it with who collects it;
``pay(..., network=)`` asks for one."""

from __future__ import annotations

import pytest

from pasarela.errors import UnsupportedError, ValidationError
from pasarela.model import Method

from .conftest import make_order


def test_the_payment_records_its_providers_network(make_sync) -> None:
    p = make_sync()
    cash = p.pay(make_order("pedido-n1"), method="cash", idempotency_key="n1")
    assert cash.network == "pagoefectivo"
    assert p.get(cash.id).network == "pagoefectivo"
    card = p.pay(make_order("pedido-n2"), method="card", idempotency_key="n2")
    assert card.network is None  # the brand comes with the card


def test_a_network_asked_for_is_recorded_and_one_not_taken_is_refused(make_sync) -> None:
    p = make_sync()
    plin = p.pay(make_order("pedido-n3"), method="wallet", network="plin",
                 idempotency_key="n3")
    assert plin.network == "plin"
    with pytest.raises(UnsupportedError) as refused:
        p.pay(make_order("pedido-n4"), method="wallet", network="tunki", idempotency_key="n4")
    assert "does not take wallet on tunki" in str(refused.value)
    with pytest.raises(ValidationError) as bad:
        p.pay(make_order("pedido-n5"), method="wallet", network="Not A Name",
              idempotency_key="n5")
    assert bad.value.field == "network"


def test_options_name_the_network_and_the_collector(make_sync) -> None:
    p = make_sync()
    by_method = {o.method: o for o in p.options(make_order("pedido-n6"))}
    cash = by_method[Method.CASH]
    assert cash.network == "pagoefectivo"
    assert cash.label == "Código PagoEfectivo, cobrado por Fake provider"
    assert cash.label_in("en") == "PagoEfectivo code, collected by Fake provider"
