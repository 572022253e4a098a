"""The generic CSV import: mappings, bad lines with their line numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pasarela.money import Money
from pasarela.reconcile.csv_import import ColumnMap, CsvError, CsvReport, read_csv


HEADER = "Operación,Pedido,Importe,Comisión,Estado,Fecha,Pasarela\n"


def write(tmp_path: Path, text: str | bytes, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def mapping(**options: str) -> ColumnMap:
    return ColumnMap.load(None, [
        "provider_reference=Operación", "order_reference=Pedido", "amount=Importe",
        "fee=Comisión", "status=Estado", "occurred_at=Fecha", "provider=Pasarela",
    ], [f"{k}={v}" for k, v in ({"currency": "PEN"} | options).items()])


def test_good_and_bad_lines_with_line_numbers(tmp_path: Path) -> None:
    body = (HEADER
            + "cip-1,p-1,100.00,4.72,paid,2026-11-10T10:00:00-05:00,fake\n"       # 2 good
            + "cip-2,p-2,\"1,234.50\",4.72,paid,2026-11-10T10:00:00Z,fake\n"     # 3 thousands
            + "cip-3,p-3,12.345,0.10,paid,2026-11-10T10:00:00Z,fake\n"            # 4 decimals
            + "cip-4,p-4,10.00,0.10,paid,10/11/2026,fake\n"                       # 5 date
            + "cip-5,p-5,10.00,0.10,paid,2026-11-10T10:00:00Z,culqi\n"            # 6 provider
            + "cip-6,p-6,10.00,0.10,paid\n"                                       # 7 fields
            ).encode() + "cip-7,Año,10.00,0.10,paid,2026-11-10T10:00:00Z,fake\n".encode(
                "latin-1")                                                         # 8 encoding
    body += b"cip-8,p-8,20.00,,paid,2026-11-10 10:00:00,fake\n"                  # 9 good, naive
    report = CsvReport()
    lines = list(read_csv(write(tmp_path, body), mapping(), provider="fake", report=report))
    assert [(line.line_no, line.provider_reference) for line in lines] == [(2, "cip-1"),
                                                                           (9, "cip-8")]
    assert lines[0].occurred_at == datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
    assert lines[0].amount == Money.of("100.00", "PEN")
    assert lines[0].fee == Money.of("4.72", "PEN")
    assert lines[1].fee is None
    assert lines[1].occurred_at == datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
    errors = dict(report.errors)
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]
    assert "thousands separator" in errors[3]
    assert errors[4].startswith("amount:")
    assert "not a date" in errors[5]
    assert "culqi" in errors[6]
    assert "expected 7 fields, found 5" in errors[7]
    assert "utf-8" in errors[8]
    assert (report.good, report.bad) == (2, 6)


def test_thousands_separator_and_decimal_comma_when_declared(tmp_path: Path) -> None:
    body = HEADER.replace(",", ";") + "cip-1;p-1;1.234,50;4,72;paid;10/11/2026 10:00;fake\n"
    columns = mapping(delimiter=";", decimal=",", thousands=".", date_format="%d/%m/%Y %H:%M",
                      timezone="America/Lima")
    report = CsvReport()
    [line] = read_csv(write(tmp_path, body), columns, provider="fake", report=report)
    assert line.amount == Money.of("1234.50", "PEN")
    assert line.fee == Money.of("4.72", "PEN")
    assert line.occurred_at == datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # Lima is UTC-5
    assert report.bad == 0


def test_a_header_without_a_mapped_column_reads_nothing(tmp_path: Path) -> None:
    body = "Operación,Importe,Fecha\ncip-1,10.00,2026-11-10T10:00:00Z\n"
    report = CsvReport()
    assert list(read_csv(write(tmp_path, body), mapping(), provider="fake",
                         report=report)) == []
    [(line_no, message)] = report.errors
    assert line_no == 1
    assert "Pedido" in message
    assert "Comisión" in message


def test_mapping_from_toml_with_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[columns]\namount = "Monto"\noccurred_at = "Fecha"\n'
                 'provider_reference = "Ref"\n[options]\ncurrency = "USD"\n', "m.toml")
    columns = ColumnMap.load(path, ["amount=Importe"])
    assert columns.columns["amount"] == "Importe"
    assert columns.currency == "USD"


@pytest.mark.parametrize(("overrides", "message"), [
    (["amount=Importe", "occurred_at=Fecha"], "provider_reference or order_reference"),
    (["amount=Importe", "occurred_at=Fecha", "colour=Color"], "unknown field"),
    (["amount=Importe"], "amount and occurred_at"),
    (["nonsense"], "field=column"),
    (["amount=I", "occurred_at=F", "order_reference=P"], "currency"),
])
def test_bad_mappings(overrides: list[str], message: str) -> None:
    with pytest.raises(CsvError, match=message):
        ColumnMap.load(None, overrides)



# --- amounts: the integer fast path agrees with Money.of -------------------------------


@pytest.mark.parametrize("text", [
    "12", "12.5", "12.50", "-30.50", "-0.05", "0", "007.10", "1.005", "12.", ".5", "+5.00",
    "1e2", "1E-2", "--1", "1.2.3", "abc", "NaN", "Infinity", "١٢.٥٠", "12.5 ", " 1 0.00",
    "99999999999999999999.99",
])
@pytest.mark.parametrize("currency", ["PEN", "JPY", "KWD"])
def test_amounts_parse_as_money_of_does(text: str, currency: str) -> None:
    from pasarela.errors import ValidationError
    from pasarela.reconcile.csv_import import parse_amount

    try:
        expected: Money | str = Money.of(text.strip().replace(" ", ""), currency)
    except ValidationError:
        expected = "refused"
    try:
        got: Money | str = parse_amount(text, currency, mapping(), "amount")
    except ValidationError:
        got = "refused"
    assert got == expected
    if isinstance(got, Money):
        assert (type(got), got.minor, got.currency, hash(got)) == (
            Money, expected.minor, expected.currency, hash(expected))  # type: ignore[union-attr]
        assert type(got.minor) is int


def test_a_file_line_carries_money_and_utc_times(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "cip-1,p-1,-30.50,1.5,paid,2026-11-10T10:00:00.25-05:00,fake\n")
    [line] = read_csv(path, mapping(), provider="fake", report=CsvReport())
    assert line.amount == Money.of("-30.50", "PEN")
    assert line.fee == Money.of("1.50", "PEN")
    assert line.occurred_at == datetime(2026, 11, 10, 15, 0, 0, 250000, tzinfo=UTC)
    assert line.raw == {"_source": "file"}


# --- rows: what the engine reads of a file ---------------------------------------------


@pytest.mark.parametrize("when", [
    "2026-11-10T15:00:00+00:00", "2026-11-10T15:00:00Z", "2026-11-10T10:00:00-05:00",
    "2026-11-10T15:00:00.250000+00:00", "2026-11-10T15:00:00.25+00:00",
    "2026-11-10 15:00:00+00:00", "2026-11-10T15:00+00:00", "2026-11-10T15:00:00",
    "2026-W46-2T15:00:00+00:00", "20261110T150000+00:00",
])
def test_a_row_carries_its_utc_time_and_its_isoformat(tmp_path: Path, when: str) -> None:
    from pasarela.reconcile.matching import line_of, rows_of

    path = write(tmp_path, HEADER + f"cip-1,p-1,100.00,4.72,paid,{when},fake\n")
    report = CsvReport()
    [row] = read_csv(path, mapping(), provider="fake", report=report).settlement_rows()
    assert report.good == 1
    utc, iso = row[9], row[10]
    assert utc.tzinfo is UTC
    assert iso == utc.isoformat()
    # The rows and the lines of a file are the same lines.
    [line] = read_csv(path, mapping(), provider="fake", report=CsvReport())
    assert line_of(row) == line
    assert list(rows_of([line])) == [row]


def test_an_amount_past_the_store_s_integers_is_a_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "cip-1,p-1,92233720368547758.08,1.00,paid,"
                                    "2026-11-10T15:00:00Z,fake\n")
    report = CsvReport()
    assert list(read_csv(path, mapping(), provider="fake", report=report)) == []
    assert report.bad == 1
    assert "amount too large" in report.errors[0][1]
