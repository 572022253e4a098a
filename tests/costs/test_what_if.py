"""An account settling abroad: the FX spread and the cross-border fee as lines of their
own (exact, half-up per payment), and ``pasarela costs --what-if`` putting several
routings side by side on the same paid orders (labelled, JSON, the single-file form,
bad values refused), scoped by the root ``--merchant``. Figures are worked out here
with Decimal, not by pasarela. On SQLite and PostgreSQL (the store fixtures)."""

from __future__ import annotations

import json
import tomllib
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pasarela.cli import main
from pasarela.errors import ConfigurationError
from pasarela.fees import FeeSchedule
from pasarela.money import Money
from pasarela.reconcile.cost_model import CostSetup, cost_report
from pasarela.store import Store

from .conftest import DEC, NOV, Planter


CENT = Decimal("0.01")
ABROAD = {"percent": "3.9", "settlement_currency": "USD", "fx_spread": "1.5",
          "cross_border": "1.0"}


def pct(amount: str, percent: str) -> Decimal:
    return (Decimal(amount) * Decimal(percent) / 100).quantize(CENT, ROUND_HALF_UP)


# --- the fee model ----------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["149.90", "0.50", "65.00", "10000.00", "0.01", "33.33"])
def test_spread_and_cross_border_are_separate_exact_lines(amount: str) -> None:
    schedule = FeeSchedule.from_mapping(ABROAD, path="providers.dlocal.fees")
    parts = schedule.breakdown(Money.of(amount, "PEN"))
    commission, fx, cross = pct(amount, "3.9"), pct(amount, "1.5"), pct(amount, "1.0")
    assert parts.commission == Money.of(str(commission), "PEN")
    assert parts.igv == Money(0, "PEN")  # an account abroad: no IGV configured
    assert parts.fx == Money.of(str(fx), "PEN")
    assert parts.cross_border == Money.of(str(cross), "PEN")
    assert parts.total == Money.of(str(commission + fx + cross), "PEN")
    minor = Money.of(amount, "PEN").minor
    assert schedule.parts_minor(minor, "PEN") == (
        int(commission * 100), 0, int(fx * 100), int(cross * 100))
    assert schedule.fee_minor(minor, "PEN") == int((commission + fx + cross) * 100)
    assert parts.to_dict()["cross_border"] == {"minor": int(cross * 100), "currency": "PEN"}


def test_each_part_rounds_half_up_on_its_own() -> None:
    # PEN 0.50: the spread 0.0075 -> 0.01, the cross-border fee 0.005 -> 0.01 (half-up,
    # not to even), so the two lines are 0.02, not the 0.0125 -> 0.01 of one sum.
    schedule = FeeSchedule.from_mapping({"settlement_currency": "USD", "fx_spread": "1.5",
                                         "cross_border": "1.0"})
    assert schedule.parts_minor(50, "PEN") == (0, 0, 1, 1)
    # and a cross-border fee of 0.5 % on PEN 1.00 is 0.005 -> 0.01
    assert FeeSchedule.from_mapping({"cross_border": "0.5"}).parts_minor(100, "PEN") == (
        0, 0, 0, 1)


def test_cross_border_applies_in_the_settlement_currency_too_and_igv_never_on_it() -> None:
    schedule = FeeSchedule.from_mapping({**ABROAD, "igv": True})
    usd = schedule.breakdown(Money.of("100.00", "USD"))  # settled as collected: no spread
    assert (usd.commission, usd.igv, usd.fx, usd.cross_border) == (
        Money.of("3.90", "USD"), Money.of("0.70", "USD"), Money(0, "USD"),
        Money.of("1.00", "USD"))  # IGV 18 % of the commission only: 0.702 -> 0.70
    assert usd.total == Money.of("5.60", "USD")
    assert "cross-border fee 1.0%" in usd.notes


def test_a_method_table_overrides_the_cross_border_fee() -> None:
    table = {**ABROAD, "cash": {"cross_border": "2.0"}}
    cash = FeeSchedule.from_mapping(table, method="cash")
    card = FeeSchedule.from_mapping(table, method="card")
    assert cash.parts_minor(10000, "PEN")[3] == 200
    assert card.parts_minor(10000, "PEN")[3] == 100


@pytest.mark.parametrize(("value", "why"), [(1.0, "strings"), ("abc", "not a number"),
                                            ("101", "from 0 to 100"), ("-1", "from 0")])
def test_a_bad_cross_border_fee_names_its_setting(value: Any, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why) as caught:
        FeeSchedule.from_mapping({"cross_border": value}, path="providers.dlocal.fees")
    assert "providers.dlocal.fees.cross_border" in str(caught.value)


def test_the_documented_example_holds() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "costs.md").read_text(
        encoding="utf-8")
    section = page.split("## Settling abroad", 1)[1].split("\n## ", 1)[0]
    table = tomllib.loads(section.split("```toml\n", 1)[1].split("```", 1)[0])
    fees = table["providers"]["dlocal"]["fees"]
    parts = FeeSchedule.from_mapping(fees).breakdown(Money.of("149.90", "PEN"))
    figures = (parts.commission, parts.fx, parts.cross_border)
    assert figures == tuple(Money.of(str(pct("149.90", fees[key])), "PEN")
                            for key in ("percent", "fx_spread", "cross_border"))
    for money in figures:
        assert f"**{Decimal(money.minor).scaleb(-2)}**" in section
    assert f"**PEN {Decimal(parts.total.minor).scaleb(-2)}**" in section


def test_the_cost_report_carries_the_cross_border_fee(store: Store, plant: Planter) -> None:
    at = NOV + timedelta(days=3)
    for minor in (14990, 6500, 50):
        plant.payment("dlocal", "cash", minor, at)
    plant.payment("dlocal", "cash", 9999, at, status="expired")  # not paid: not priced
    setup = CostSetup.from_tables({"dlocal": ABROAD})
    report = cost_report(store, NOV, DEC, setup, as_of=NOV)
    [line] = [line for line in report.lines if line.provider == "dlocal"]
    amounts = ("149.90", "65.00", "0.50")
    fx = sum(pct(a, "1.5") for a in amounts)
    cross = sum(pct(a, "1.0") for a in amounts)
    commission = sum(pct(a, "3.9") for a in amounts)
    assert (line.fx, line.cross_border) == (int(fx * 100), int(cross * 100))
    assert line.expected_fee == int((commission + fx + cross) * 100)
    assert line.total == line.expected_fee
    assert line.to_dict()["cross_border"] == {"minor": int(cross * 100), "currency": "PEN"}


# --- pasarela costs --what-if -------------------------------------------------------------

FEES = {
    "pagoefectivo": {"percent": "3.5", "fixed": "PEN 0.50", "igv": True},
    "dlocal": ABROAD,
    "mercadopago": {"percent": "2.9", "fixed": "PEN 0.50", "igv": True},
    "yape": {"percent": "2.95", "igv": True},
}
AMOUNTS = {"cash": ["149.90", "65.00", "89.00"], "wallet": ["35.00"]}
WINDOW = ["--from", "2026-11-01", "--to", "2026-12-01", "--as-of", "2026-11-01"]


def toml_fees(table: dict[str, Any]) -> str:
    return "{ " + ", ".join(f'{k} = {"true" if v is True else json.dumps(v)}'
                            for k, v in table.items()) + " }"


def routing_file(path: Path, cash: str, *, store_url: str = "sqlite://",
                 merchant: str = "") -> Path:
    """A configuration whose routes send cash to *cash* and wallets to yape."""
    prefix = f"merchants.{merchant}." if merchant else ""
    lines = [f'[store]\nurl = "{store_url}"', '[plugins]\nmodules = ["pasarela.testing.fake"]']
    for account in sorted({cash, "yape"}):
        lines.append(f'[{prefix}providers.{account}]\ntype = "fake"\n'
                     f"fees = {toml_fees(FEES[account])}")
    lines.append(f'[[{prefix}routes]]\nname = "cash"\nwhen = {{ method = "cash" }}\n'
                 f'use = ["{cash}"]')
    lines.append(f'[[{prefix}routes]]\nname = "the rest"\nuse = ["yape"]')
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return path


def plant_orders(plant: Planter, prefix: str = "") -> None:
    at = NOV + timedelta(days=5)
    for method, amounts in AMOUNTS.items():
        for amount in amounts:
            account = "pagoefectivo" if method == "cash" else "yape"
            plant.payment(f"{prefix}{account}", method, Money.of(amount, "PEN").minor, at,
                          keep_order=True)
    # neither an unpaid order nor one that did not keep its order is compared
    plant.payment(f"{prefix}pagoefectivo", "cash", 5000, at, status="expired",
                  keep_order=True)
    plant.payment(f"{prefix}pagoefectivo", "cash", 7000, at)


def expected(cash: str) -> dict[str, int]:
    """The route's figures, in céntimos, from FEES: cash at *cash*, wallets at yape."""
    out = {"fees": 0, "fx_spread": 0, "cross_border": 0, "volume": 0}
    for method, amounts in AMOUNTS.items():
        table = FEES[cash if method == "cash" else "yape"]
        for amount in amounts:
            fixed = Decimal(table["fixed"].split()[1]) if "fixed" in table else Decimal(0)
            commission = (Decimal(amount) * Decimal(table["percent"]) / 100 + fixed
                          ).quantize(CENT, ROUND_HALF_UP)
            igv = (commission * Decimal("0.18")).quantize(CENT, ROUND_HALF_UP) if table.get(
                "igv") else Decimal(0)
            out["fees"] += int((commission + igv) * 100)
            if "fx_spread" in table:
                out["fx_spread"] += int(pct(amount, table["fx_spread"]) * 100)
            if "cross_border" in table:
                out["cross_border"] += int(pct(amount, table["cross_border"]) * 100)
            out["volume"] += int(Decimal(amount) * 100)
    return out


@pytest.fixture
def shop(tmp_path: Path, store: Store, plant: Planter, store_url: str) -> Path:
    plant_orders(plant)
    return routing_file(tmp_path / "pasarela.toml", "pagoefectivo", store_url=store_url)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_three_routes_side_by_side(shop: Path, tmp_path: Path) -> None:
    files = {label: routing_file(tmp_path / f"{cash}.toml", cash) for label, cash in (
        ("PagoEfectivo direct", "pagoefectivo"), ("through dLocal", "dlocal"),
        ("through Mercado Pago", "mercadopago"))}
    args = [a for label, path in files.items() for a in ("--what-if", f"{label}={path}")]
    result = run("--config", str(shop), "costs", *WINDOW, *args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    comparison = data["comparison"]
    assert data["what_if"] is None  # the one-file summary is for one file
    assert comparison["orders"] == 4
    names = [r["name"] for r in comparison["routes"]]
    assert names == ["current routing", *files]
    for route, cash in zip(comparison["routes"],
                           ("pagoefectivo", "pagoefectivo", "dlocal", "mercadopago"),
                           strict=True):
        want = expected(cash)
        got = {key: route[key]["PEN"]["minor"] for key in want}
        assert got == want, route["name"]
        total = want["fees"] + want["fx_spread"] + want["cross_border"]
        assert route["total"]["PEN"] == {"minor": total, "currency": "PEN"}
        rate = (Decimal(total) * 100 / want["volume"]).quantize(Decimal("0.001"),
                                                                ROUND_HALF_UP)
        assert route["effective_rate"]["PEN"] == f"{rate}%"
        assert (route["orders"], route["unroutable"], route["unpriced"]) == (4, 0, 0)
        assert route["split"] == {cash: 3, "yape": 1}
    totals = {r["name"]: r["total"]["PEN"]["minor"] for r in comparison["routes"]}
    assert comparison["cheapest"] == {"PEN": min(totals, key=lambda n: (totals[n],
                                                                       names.index(n)))}
    table = " ".join(result.stderr.split())  # the people's table went to stderr
    for text in ("current routing", "through dLocal", "cross-border fee", "FX spread",
                 "effective cost", "unroutable", "Cheapest in PEN"):
        assert text in table


def test_one_file_keeps_its_summary_and_gets_the_table(shop: Path, tmp_path: Path) -> None:
    other = routing_file(tmp_path / "dlocal.toml", "dlocal")
    result = run("--config", str(shop), "costs", *WINDOW, "--what-if", str(other), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    want_now, want_other = expected("pagoefectivo"), expected("dlocal")
    # the stored routing decisions carried no expected fee: the summary says so (0)
    assert data["what_if"]["orders"] == 4
    assert data["what_if"]["other"] == {"PEN": {"minor": want_other["fees"]
                                                + want_other["fx_spread"]
                                                + want_other["cross_border"],
                                                "currency": "PEN"}}
    [now, then] = data["comparison"]["routes"]
    assert then["name"] == str(other)  # unlabelled: named by its path
    assert now["fees"]["PEN"]["minor"] == want_now["fees"]


def test_an_order_a_route_cannot_take_is_unroutable(shop: Path, tmp_path: Path) -> None:
    # One account up to PEN 100.00: the PEN 149.90 order is unroutable, not priced.
    small = tmp_path / "small.toml"
    small.write_text('[plugins]\nmodules = ["pasarela.testing.fake"]\n'
                     '[providers.dlocal]\ntype = "fake"\nmax_amount = "PEN 100.00"\n'
                     f"fees = {toml_fees(ABROAD)}\n"
                     '[[routes]]\nname = "all"\nuse = ["dlocal"]\n', encoding="utf-8")
    result = run("--config", str(shop), "costs", *WINDOW, "--what-if", f"small={small}",
                 "--json")
    assert result.exit_code == 0, result.output
    [now, route] = json.loads(result.stdout)["comparison"]["routes"]
    assert (now["orders"], now["unroutable"]) == (4, 0)
    assert (route["orders"], route["unroutable"]) == (3, 1)
    taken = ("65.00", "89.00", "35.00")
    assert route["volume"]["PEN"]["minor"] == sum(Money.of(a, "PEN").minor for a in taken)
    assert route["cross_border"]["PEN"]["minor"] == sum(int(pct(a, "1.0") * 100)
                                                        for a in taken)


@pytest.mark.parametrize(("value", "message"), [
    ("=x.toml", "empty label"), ("label=missing.toml", "is not a file"),
    ("missing.toml", "is not a file")])
def test_bad_what_if_values_are_usage_errors(shop: Path, value: str, message: str) -> None:
    result = run("--config", str(shop), "costs", *WINDOW, "--what-if", value)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_label_given_twice_is_refused(shop: Path, tmp_path: Path) -> None:
    other = routing_file(tmp_path / "dlocal.toml", "dlocal")
    result = run("--config", str(shop), "costs", *WINDOW, "--what-if", f"x={other}",
                 "--what-if", f"x={other}")
    assert result.exit_code == 2
    assert "given twice" in result.output


# --- --merchant ---------------------------------------------------------------------------


def test_costs_follow_the_root_merchant(tmp_path: Path, store: Store, plant: Planter,
                                        store_url: str) -> None:
    plant_orders(plant)  # the deployment's own
    plant_orders(plant, prefix="a.")  # merchant a's
    plant.payment("a.pagoefectivo", "cash", 100000, NOV + timedelta(days=6),
                  keep_order=True)  # one more of a's, so the two differ
    path = routing_file(tmp_path / "pasarela.toml", "pagoefectivo", store_url=store_url)
    text = path.read_text(encoding="utf-8")
    merchant = routing_file(tmp_path / "a.toml", "pagoefectivo", merchant="a")
    path.write_text(text + "\n" + merchant.read_text(encoding="utf-8").split(
        "\n\n", 2)[2], encoding="utf-8")
    other = routing_file(tmp_path / "dlocal.toml", "dlocal")

    def report(*scope: str) -> dict[str, Any]:
        result = run("--config", str(path), *scope, "costs", *WINDOW, "--what-if",
                     f"d={other}", "--json")
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    mine, theirs = report(), report("--merchant", "a")
    assert {r["provider"] for r in mine["rows"]} == {"pagoefectivo", "yape"}
    assert {r["provider"] for r in theirs["rows"]} == {"a.pagoefectivo", "a.yape"}
    assert mine["comparison"]["orders"] == 4
    assert theirs["comparison"]["orders"] == 5
    assert theirs["comparison"]["routes"][0]["volume"]["PEN"]["minor"] == (
        expected("pagoefectivo")["volume"] + 100000)
    # a's payments priced by a's fee tables (the same figures here), never unpriced
    assert theirs["comparison"]["routes"][0]["unpriced"] == 0
    for command in ("profile", "optimize"):
        result = run("--config", str(path), "--merchant", "a", "costs", command, *WINDOW[:4],
                     "--json")
        assert result.exit_code == 0, result.output
        assert "yape" in result.stdout
    profile_a = json.loads(run("--config", str(path), "--merchant", "a", "costs", "profile",
                               *WINDOW[:4], "--json").stdout)
    profile_root = json.loads(run("--config", str(path), "costs", "profile", *WINDOW[:4],
                                  "--json").stdout)
    assert profile_a != profile_root
    unknown = run("--config", str(path), "--merchant", "zz", "costs", *WINDOW)
    assert unknown.exit_code == 1
    assert "no merchant 'zz'" in unknown.output
