"""dLocal through the core: the payment stores the network, the amount charged in USD
and dLocal's rate (a Decimal); a cash refund's bank details go through
``Pasarela.refund(..., bank=...)`` to dLocal's refund body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pasarela_dlocal
import pytest

from pasarela import Pasarela
from pasarela.errors import ProviderValidationError
from pasarela.lifecycle import Status
from pasarela.model import RefundStatus
from pasarela.money import Money
from pasarela.store import Store

from .conftest import make_order


@pytest.fixture
def shop(served: Any, tmp_path: Path) -> Iterator[Pasarela]:
    url = f"sqlite:///{tmp_path / 'pasarela.db'}"
    config = {"store": {"url": url},
              "providers": {"dlocal": {**served.settings(), "max_retries": 0,
                                       "currency_to_charge": "USD"}}}
    app = Pasarela(config, plugins=[pasarela_dlocal], load_entrypoints=False,
                   store=Store(url, upgrade=True))
    app.service.sleep_scale = 0
    try:
        yield app
    finally:
        app.close()


def test_a_usd_charged_cash_payment_keeps_the_charge_and_the_rate(shop: Pasarela) -> None:
    payment = shop.pay(make_order(), method="cash", idempotency_key="usd-1")
    assert payment.status is Status.PENDING
    assert payment.network == "pagoefectivo"
    assert payment.amount == Money.of("149.90", "PEN")
    assert payment.charged == Money.of("40.00", "USD")
    assert payment.fx_rate == Decimal("0.266845")
    assert isinstance(payment.fx_rate, Decimal)
    again = shop.get(payment.id)  # read back from the store
    assert (again.network, again.charged, again.fx_rate) == (
        "pagoefectivo", Money.of("40.00", "USD"), Decimal("0.266845"))


def test_a_cash_refund_takes_its_bank_details_through_the_core(
        shop: Pasarela, served: Any) -> None:
    payment = shop.pay(make_order(), method="cash", idempotency_key="refund-1",
                       currency_to_charge="PEN")
    served.control("POST", f"/payments/{payment.provider_reference}/pay")
    assert shop.sync(payment.id).status is Status.SUCCEEDED
    bank = {"beneficiary_name": "Rosa Quispe", "bank": "BCP",
            "bank_account": "19112345678012", "bank_account_type": "S"}
    refund = shop.refund(payment.id, Money.of("49.90", "PEN"), reason="devolución", bank=bank)
    assert refund.status is RefundStatus.PENDING
    sent = [e["request_body"] for e in shop.store.exchanges_for(payment.id)
            if e["operation"] == "refund"]
    sent = [json.loads(b) if isinstance(b, str) else b for b in sent]
    assert len(sent) == 1
    assert (sent[0]["beneficiary_name"], sent[0]["bank"]) == ("[redacted]", "BCP")
    assert sent[0]["bank_account"] == "[redacted]"  # personal data never stored in clear


def test_incomplete_bank_details_are_refused_naming_the_field(
        shop: Pasarela, served: Any) -> None:
    payment = shop.pay(make_order(), method="cash", idempotency_key="refund-2",
                       currency_to_charge="PEN")
    served.control("POST", f"/payments/{payment.provider_reference}/pay")
    shop.sync(payment.id)
    with pytest.raises(ProviderValidationError) as refused:
        shop.refund(payment.id, bank={"bank": "BCP"})
    assert "bank.bank_account" in refused.value.fields
