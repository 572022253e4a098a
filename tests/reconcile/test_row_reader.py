"""A file's row reader (specialised to its mapping, with the common amounts and times
read inline) gives every line what the general per-field path gives it: the same row,
or the same refusal with the same message and field."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from pasarela.errors import PasarelaError, ValidationError
from pasarela.reconcile.csv_import import (
    LINE_FIELDS,
    ColumnMap,
    line_time,
    parse_minor,
    row_reader,
)
from pasarela.reconcile.matching import LineRow


def general(fields: list[str], at: tuple[int | None, ...], mapping: ColumnMap,
            provider: str, line_no: int) -> LineRow:
    """The line of *fields* read field by field through parse_minor and line_time (the
    reader before it was specialised)."""
    owner_at, currency_at, amount_at, fee_at, reference_at, order_at, status_at, when_at = at
    assert amount_at is not None
    assert when_at is not None
    if owner_at is not None:
        owner = fields[owner_at].strip()
        if owner and owner.lower() != provider:
            raise ValidationError(f"line for provider {owner!r}, not {provider!r}",
                                  field="provider")
    currency = ((fields[currency_at].strip() if currency_at is not None else "")
                or mapping.currency or "").upper()
    amount = parse_minor(fields[amount_at], currency, mapping, "amount")
    fee_text = fields[fee_at].strip() if fee_at is not None else ""
    fee = parse_minor(fee_text, currency, mapping, "fee") if fee_text else None
    reference = (fields[reference_at].strip() if reference_at is not None else "") or None
    order = (fields[order_at].strip() if order_at is not None else "") or None
    if reference is None and order is None:
        raise ValidationError("neither provider_reference nor order_reference is given",
                              field="provider_reference")
    status = (fields[status_at].strip() if status_at is not None else "") or mapping.status
    utc, iso = line_time(fields[when_at], mapping)
    return (line_no, provider, reference, order, amount, currency, fee,
            None if fee is None else currency, status, utc, iso, True)


def outcome(read: object, *args: object) -> object:
    try:
        row = read(*args)  # type: ignore[operator]
    except PasarelaError as exc:
        return (type(exc), str(exc), exc.field)  # type: ignore[attr-defined]
    # The time's exact type and zone object too, not only its value.
    return row, type(row[9]), row[9].tzinfo


AMOUNTS = ["12.50", "12.5", "12", "0.05", "-30.50", " 12.50", "12.50 ", "1.005", "", "  ",
           "1,234.50", "1234,50", "١٢.٥٠", "+5.00", "1e2", "abc", "92233720368547758.07",
           "92233720368547758.08", "007.10"]
FEES = ["4.72", "", " ", " 1.50 ", "0.5", "x", "-1.00"]
TIMES = ["2026-11-10T15:00:00+00:00", "2026-11-10T15:00:00Z", "2026-11-10T10:00:00-05:00",
         "2026-11-10T15:00:00.250000+00:00", " 2026-11-10T15:00:00+00:00",
         "2026-11-10T15:00:00+00:00 ", "2026-13-10T15:00:00+00:00", "2026-11-10T25:00:00+00:00",
         "2026-11-10 15:00:00+00:00", "2026-11-10T15:00:00", "10/11/2026 15:00", "nonsense",
         "2026-11-10x15:00:00+00:00", "2026-1-10T15:00:00+00:00+0"]


@pytest.mark.parametrize("options", [
    {"currency": "PEN"}, {"currency": "jpy"}, {"currency": "KWD", "decimal": ","},
    {"currency": "XXQ"}, {"currency": "PEN", "thousands": ","},
    {"currency": "PEN", "date_format": "%d/%m/%Y %H:%M", "timezone": "America/Lima"},
])
def test_the_reader_gives_each_line_what_the_general_path_gives(options: dict[str, str]) -> None:
    mapping = ColumnMap.load(None, [
        "provider_reference=ref", "order_reference=order", "amount=amount", "fee=fee",
        "status=status", "occurred_at=at", "provider=owner"],
        [f"{k}={v}" for k, v in options.items()])
    header = ["owner", "ref", "order", "amount", "fee", "status", "at"]
    at = tuple(header.index(mapping.columns[f]) if f in mapping.columns else None
               for f in LINE_FIELDS)
    read = row_reader(at, mapping, "fake")
    cases = itertools.product(["", "fake", "FAKE", "other"], ["r1", "", " "], ["o1", ""],
                              AMOUNTS, FEES, ["paid", "", " Refunded "], TIMES)
    checked = 0
    for n, (owner, ref, order, amount, fee, status, when) in enumerate(cases):
        if n % 7:  # a spread of the product, every field's values all met
            continue
        fields = [owner, ref, order, amount, fee, status, when]
        assert outcome(read, fields, n) == outcome(general, fields, at, mapping, "fake", n)
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize("currency_column", [True, False])
def test_the_reader_without_optional_columns_and_with_a_currency_column(
        currency_column: bool) -> None:
    mapping = ColumnMap.load(None, ["order_reference=order", "amount=amount", "occurred_at=at"]
                             + (["currency=cur"] if currency_column else []),
                             [] if currency_column else ["currency=pen"])
    header = ["cur", "order", "amount", "at"]
    at = tuple(header.index(mapping.columns[f]) if f in mapping.columns else None
               for f in LINE_FIELDS)
    read = row_reader(at, mapping, "fake")
    for n, (cur, amount, when) in enumerate(itertools.product(
            ["PEN", "usd", " jpy ", "", "ZZZ"], AMOUNTS, TIMES)):
        fields = [cur, "o1", amount, when]
        assert outcome(read, fields, n) == outcome(general, fields, at, mapping, "fake", n)
    row = read(["PEN", "o1", "12.50", "2026-11-10T15:00:00+00:00"], 2)
    assert row[4:7] == (1250, "PEN", None)
    assert row[9] == datetime(2026, 11, 10, 15, tzinfo=UTC)
