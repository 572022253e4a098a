"""``costs profile`` against counts made by hand on the worked example's store."""

from __future__ import annotations

from typing import Any

from pasarela.reconcile.cost_model import CostSetup
from pasarela.reconcile.profile import as_rows, profile
from pasarela.store import Store

from .conftest import DEC, NOV, Planter
from .test_worked_example import example_tables, plant_example


def test_profile_matches_hand_counts(store: Store, plant: Planter) -> None:
    plant_example(plant)
    data: dict[str, Any] = profile(store, NOV, DEC,
                                   CostSetup.from_tables(example_tables())).to_dict()
    # 200 cash + 10 card paid in PEN, 1 card in USD; 10 expired cash attempts
    assert (data["orders"], data["attempts"]) == (211, 221)
    assert data["success_rate"] == "95.48%"  # 211 / 221
    pen, usd = data["currencies"]["PEN"], data["currencies"]["USD"]
    assert (pen["orders"], pen["volume"]) == (210, "PEN 27000.00")
    assert pen["average_ticket"] == "PEN 128.57"  # 27,000.00 / 210 = 128.571...
    assert pen["monthly_orders"] == "210"
    assert pen["share_of_orders"] == "99.53%"  # 210 / 211
    assert pen["refund_rate"] == "1.90%"  # 4 / 210
    assert pen["refunded_rate"] == "1.85%"  # 500.00 / 27,000.00
    assert pen["dispute_rate"] == "10.00%"  # 1 of 10 card payments
    assert pen["disputed_rate"] == "10.00%"  # 200.00 of 2,000.00
    assert (usd["orders"], usd["volume"], usd["dispute_rate"]) == (1, "USD 100.00", "0.00%")
    assert data["methods"]["cash"]["share_of_orders"] == "94.79%"  # 200 / 211
    assert data["methods"]["card"]["orders"] == 11
    assert data["methods"]["card"]["share_of_volume"] == {"PEN": "7.41%", "USD": "100.00%"}
    assert data["settlement"]["pagoefectivo"]["cash"] == {"cycle": "T+2", "currency": None}
    assert data["settlement"]["culqi"]["card"] == {"cycle": "T+7", "currency": None}
    assert data["settlement"]["dlocal"]["card"] == {"cycle": "T+0", "currency": "PEN"}
    rows = dict(as_rows(data))
    assert rows["month.2026-11.PEN.orders"] == "210"
    assert rows["settlement.culqi.card"] == "T+7"
