"""A generic CSV import of settlement lines, for the files providers email merchants.

The file's columns are named by a mapping, from a TOML file::

    [columns]                      # our field = the file's column
    provider_reference = "Operación"
    order_reference = "Pedido"
    amount = "Importe"
    currency = "Moneda"            # or, for a one-currency file: [options] currency = "PEN"
    fee = "Comisión"
    status = "Estado"
    occurred_at = "Fecha de pago"
    provider = "Pasarela"          # optional: else every line is --provider's

    [options]
    encoding = "utf-8"             # the default; "latin-1" for older exports
    delimiter = ","
    decimal = "."                  # "," for 12,50
    thousands = ","                # absent: a thousands separator is an error
    timezone = "America/Lima"      # for dates without an offset (default UTC)
    date_format = "%d/%m/%Y %H:%M" # absent: ISO 8601

or from ``--map field=column`` options (which override the file's). ``amount`` and
``occurred_at`` are required, with ``provider_reference`` or ``order_reference``.

:func:`read_csv` gives :class:`~pasarela.provider.SettlementLine` for good lines (and
the reconciliation engine their rows, :data:`~pasarela.reconcile.matching.LineRow`,
without an object per line) and collects each bad line in :attr:`CsvReport.errors`
with its line number: a line that cannot be decoded, has the wrong number of
fields, an amount with a thousands separator or too many decimals, a date that does
not parse, or a provider other than the run's. A header that lacks a mapped column
is an error of line 1 and no line is read.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from pasarela.errors import PasarelaError, ValidationError
from pasarela.money import MAX_MINOR, Money, currency_exponent
from pasarela.provider import SettlementLine
from pasarela.reconcile.matching import LineRow, line_of


__all__ = [
    "FIELDS",
    "LINE_FIELDS",
    "ColumnMap",
    "CsvError",
    "CsvLines",
    "CsvReport",
    "RowReader",
    "file_digest",
    "line_time",
    "parse_amount",
    "parse_minor",
    "read_csv",
    "row_reader",
]

FIELDS: Final = ("provider_reference", "order_reference", "amount", "currency", "fee",
                 "status", "occurred_at", "provider")
_OPTIONS: Final = ("encoding", "delimiter", "decimal", "thousands", "timezone", "date_format",
                   "currency", "status")
#: Bad lines kept with their message; more are only counted.
MAX_ERRORS: Final = 1000


class CsvError(ValidationError):
    """A mapping or file that cannot be read at all."""


@attrs.frozen(kw_only=True)
class ColumnMap:
    columns: Mapping[str, str]
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    thousands: str | None = None
    timezone: str = "UTC"
    date_format: str | None = None
    currency: str | None = None
    status: str = "paid"

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: Sequence[str] = (),
             options: Sequence[str] = ()) -> ColumnMap:
        """The mapping in TOML file *path*, with ``field=column`` *overrides* and
        ``option=value`` *options* (``currency=PEN``, ``timezone=America/Lima``)."""
        data: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise CsvError(f"cannot read the mapping {path}: {exc}",
                               field="map") from None
        columns = dict(data.get("columns", {}))
        given = dict(data.get("options", {}))
        for target, items, what in ((columns, overrides, "field=column"),
                                    (given, options, "option=value")):
            for item in items:
                name, sep, value = item.partition("=")
                if not sep or not name.strip() or not value.strip():
                    raise CsvError(f"expected {what}, got {item!r}", field="map")
                target[name.strip()] = value.strip()
        for name in columns:
            if name not in FIELDS:
                raise CsvError(f"unknown field {name!r}; one of {', '.join(FIELDS)}",
                               field=f"columns.{name}")
        for name in given:
            if name not in _OPTIONS:
                raise CsvError(f"unknown option {name!r}; one of {', '.join(_OPTIONS)}",
                               field=f"options.{name}")
        if "amount" not in columns or "occurred_at" not in columns:
            raise CsvError("the mapping needs amount and occurred_at columns", field="columns")
        if "provider_reference" not in columns and "order_reference" not in columns:
            raise CsvError("the mapping needs provider_reference or order_reference",
                           field="columns")
        if "currency" not in columns and not given.get("currency"):
            raise CsvError("map a currency column or set options.currency", field="columns")
        mapping = cls(columns={k: str(v) for k, v in columns.items()},
                      **{k: str(v) for k, v in given.items()})
        try:
            ZoneInfo(mapping.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CsvError(f"unknown time zone {mapping.timezone!r}",
                           field="options.timezone") from None
        return mapping


@attrs.define
class CsvReport:
    """Bad lines of a file, each ``(line number, message)``; ``bad`` counts them all."""

    errors: list[tuple[int, str]] = attrs.field(factory=list)
    bad: int = 0
    good: int = 0

    def add(self, line_no: int, message: str) -> None:
        self.bad += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((line_no, message))


def file_digest(path: str | Path) -> str:
    """The SHA-256 of the file (a run over the same file gets the same key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_amount(text: str, currency: str, mapping: ColumnMap, field: str) -> Money:
    """*text* as Money: the same checks as ``Money.of`` (decimals beyond the
    currency's are refused), with the currency's exponent looked up once."""
    return Money(parse_minor(text, currency, mapping, field), currency)


def parse_minor(text: str, currency: str, mapping: ColumnMap, field: str) -> int:
    """*text* in minor units of *currency*, as :func:`parse_amount` reads it. A plain
    ``[-]digits[.digits]`` is converted with integer arithmetic; anything else
    (exponents, a leading ``+`` or ``.``) goes through ``Decimal``."""
    raw = text.strip()
    whole, _, fraction = raw.partition(mapping.decimal)
    if (whole.isdigit() and fraction.isdigit() and raw.isascii()
            and len(fraction) == _exponent(currency, field)):
        # Most lines: ASCII digits, the decimal separator and the currency's decimals.
        minor: int = int(whole + fraction)
        if minor > MAX_MINOR:
            raise ValidationError("amount too large", field=field)
        return minor
    raw = raw.replace(" ", "")
    if not raw:
        raise ValidationError("is empty", field=field)
    if mapping.thousands:
        raw = raw.replace(mapping.thousands, "")
    other = "," if mapping.decimal == "." else "."
    if other in raw:
        raise ValidationError(
            f"{text.strip()!r} has a thousands separator {other!r}; set "
            f"options.thousands = {other!r} if the file uses one", field=field)
    if mapping.decimal != ".":
        raw = raw.replace(mapping.decimal, ".")
    exponent = _exponent(currency, field)
    negative = raw[0] == "-"
    whole, dot, fraction = (raw[1:] if negative else raw).partition(".")
    if (whole.isascii() and whole.isdigit() and (not dot or (
            fraction.isascii() and fraction.isdigit() and len(fraction) <= exponent))):
        minor = int(whole) * 10 ** exponent
        if fraction:
            minor += int(fraction) * 10 ** (exponent - len(fraction))
        if minor > MAX_MINOR:
            raise ValidationError("amount too large", field=field)
        return -minor if negative else minor
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValidationError(f"{text.strip()!r} is not an amount", field=field) from None
    scaled = value.scaleb(exponent)
    if not value.is_finite() or scaled != scaled.to_integral_value():
        return Money.of(raw, currency, field=field).minor  # raises the ValidationError
    if not -MAX_MINOR <= scaled <= MAX_MINOR:
        raise ValidationError("amount too large", field=field)
    return int(scaled)


@functools.lru_cache(maxsize=64)
def _exponent(currency: str, field: str) -> int:
    return currency_exponent(currency, field=f"{field}.currency")


def line_time(text: str, mapping: ColumnMap) -> tuple[datetime, str]:
    """The time of *text* in UTC, and its ``isoformat()``: *text* itself when it is
    written so already (``YYYY-MM-DDTHH:MM:SS+00:00``), which spares formatting it."""
    raw = text.strip()
    try:
        if mapping.date_format:
            value = datetime.strptime(raw, mapping.date_format)  # noqa: DTZ007 (zone below)
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        expected = mapping.date_format or "ISO 8601"
        raise ValidationError(f"{raw!r} is not a date ({expected})",
                              field="occurred_at") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(mapping.timezone))
    utc = value.astimezone(UTC)
    if (len(raw) == 25 and raw[10] == "T" and raw[19:] == "+00:00" and raw[4] == raw[7] == "-"
            and raw[13] == raw[16] == ":" and not mapping.date_format):
        # fromisoformat read four and two ASCII digits between these separators, and
        # isoformat writes them back so.
        return utc, raw
    return utc, utc.isoformat()


def read_csv(path: str | Path, mapping: ColumnMap, *, provider: str,
             report: CsvReport) -> CsvLines:
    """The good lines of *path*, read as they are iterated (one line in memory at a
    time); the bad ones recorded in *report*. Lines of another provider than
    *provider* are bad lines."""
    return CsvLines(path, mapping, provider=provider, report=report)


class CsvLines:
    """The lines of a settlement file (see :func:`read_csv`): iterated, each a
    :class:`~pasarela.provider.SettlementLine`; :meth:`settlement_rows` gives the same
    lines as the engine reads them. Each pass reads the file again."""

    def __init__(self, path: str | Path, mapping: ColumnMap, *, provider: str,
                 report: CsvReport) -> None:
        self.path = path
        self.mapping = mapping
        self.provider = provider
        self.report = report

    def __iter__(self) -> Iterator[SettlementLine]:
        return map(line_of, self.settlement_rows())

    def settlement_rows(self) -> Iterator[LineRow]:
        """The good lines as :data:`~pasarela.reconcile.matching.LineRow` tuples."""
        mapping, provider, report = self.mapping, self.provider, self.report
        with open(self.path, "rb") as fh:
            header_bytes = fh.readline()
            try:
                header_text = header_bytes.decode(mapping.encoding).lstrip("\ufeff")
            except UnicodeDecodeError as exc:
                report.add(1, f"cannot decode the header as {mapping.encoding}: {exc.reason}")
                return
            header = [h.strip() for h in next(csv.reader([header_text],
                                                         delimiter=mapping.delimiter), [])]
            missing = [f"{field} -> {column!r}" for field, column in mapping.columns.items()
                       if column not in header]
            if missing:
                report.add(1, "the header lacks mapped column(s): " + ", ".join(missing)
                           + f" (columns: {', '.join(header)})")
                return
            index = {field: header.index(column) for field, column in mapping.columns.items()}
            read = row_reader(tuple(index.get(field) for field in LINE_FIELDS),
                              mapping, provider)
            width = len(header)
            position = 1

            def decoded() -> Iterator[str]:
                nonlocal position
                for position, raw in enumerate(fh, start=2):  # read by the csv loop below
                    try:
                        text = raw.decode(mapping.encoding)
                    except UnicodeDecodeError as exc:
                        report.add(position, f"not {mapping.encoding} at byte {exc.start}: "
                                             "check the file's encoding")
                        continue
                    if not text.isspace():  # a blank line is skipped
                        yield text

            good = 0
            try:
                for fields in csv.reader(decoded(), delimiter=mapping.delimiter):
                    line_no = position
                    if len(fields) != width:
                        report.add(line_no, f"expected {width} fields, found {len(fields)}")
                        continue
                    try:
                        row = read(fields, line_no)
                    except PasarelaError as exc:
                        report.add(line_no, str(exc))
                        continue
                    good += 1
                    yield row
            finally:
                report.good += good


#: The fields a row reader reads, in the order of its ``at`` positions.
LINE_FIELDS: Final = ("provider", "currency", "amount", "fee", "provider_reference",
                       "order_reference", "status", "occurred_at")

#: A file's row reader: the line of its fields and line number.
RowReader: TypeAlias = Callable[[list[str], int], LineRow]


def row_reader(at: tuple[int | None, ...], mapping: ColumnMap, provider: str) -> RowReader:
    """The reader of a file's lines: *at* holds the position of each of
    :data:`LINE_FIELDS` in the file's header (None: not mapped).

    Specialised to the mapping: the positions, the file's currency (when it is an
    option, not a column) and its exponent are bound once, and the common forms are
    read inline: an amount or fee of ASCII digits with the currency's decimals, a
    time written ``YYYY-MM-DDTHH:MM:SS+00:00``. Anything else goes through
    :func:`parse_minor` and :func:`line_time`, which read it (or refuse it) as before;
    the inline forms give what they give (a test holds the two to the same rows)."""
    owner_at, currency_at, amount_at, fee_at, reference_at, order_at, status_at, when_at = at
    if amount_at is None or when_at is None:  # pragma: no cover (ColumnMap.load requires both)
        raise CsvError("the mapping needs amount and occurred_at columns", field="columns")
    amount_i, when_i = amount_at, when_at
    fixed_currency = (mapping.currency or "").upper()
    decimal, default_status = mapping.decimal, mapping.status
    iso_times = not mapping.date_format
    fromisoformat = datetime.fromisoformat
    exponents: dict[str, int] = {}  # those of the currencies known (others: None below)
    for known in [fixed_currency] if currency_at is None else []:
        with contextlib.suppress(ValidationError):
            exponents[known] = _exponent(known, "amount")
    fixed_exponent = exponents.get(fixed_currency)

    def exponent_of(currency: str) -> int | None:
        # None for a currency unknown: parse_minor then says which error the line has.
        if currency not in exponents:
            try:
                exponents[currency] = _exponent(currency, "amount")
            except ValidationError:
                return None
        return exponents[currency]

    def row(fields: list[str], line_no: int) -> LineRow:
        if owner_at is not None:
            owner = fields[owner_at].strip()
            if owner and owner.lower() != provider:
                raise ValidationError(f"line for provider {owner!r}, not {provider!r}",
                                      field="provider")
        if currency_at is None:
            currency, exponent = fixed_currency, fixed_exponent
        else:
            currency = (fields[currency_at].strip() or mapping.currency or "").upper()
            exponent = exponents[currency] if currency in exponents else exponent_of(currency)
        # The amount and the fee as parse_minor reads them, its first case inline: ASCII
        # digits, the decimal separator and the currency's decimals (spaces around fail
        # isdigit and go the long way, as does anything else).
        text = fields[amount_i]
        whole, _, fraction = text.partition(decimal)
        if not (len(fraction) == exponent and whole.isdigit() and fraction.isdigit()
                and text.isascii() and (amount := int(whole + fraction)) <= MAX_MINOR):
            amount = parse_minor(text, currency, mapping, "amount")
        fee: int | None = None
        if fee_at is not None and (text := fields[fee_at]) and (text := text.strip()):
            whole, _, fraction = text.partition(decimal)
            if not (len(fraction) == exponent and whole.isdigit() and fraction.isdigit()
                    and text.isascii() and (fee := int(whole + fraction)) <= MAX_MINOR):
                fee = parse_minor(text, currency, mapping, "fee")
        reference = (fields[reference_at].strip() if reference_at is not None else "") or None
        order = (fields[order_at].strip() if order_at is not None else "") or None
        if reference is None and order is None:
            raise ValidationError("neither provider_reference nor order_reference is given",
                                  field="provider_reference")
        status = (fields[status_at].strip() if status_at is not None else "") or default_status
        raw = fields[when_i]
        if (iso_times and len(raw) == 25 and raw[10] == "T" and raw[19:] == "+00:00"
                and raw[4] == raw[7] == "-" and raw[13] == raw[16] == ":"):
            # As line_time reads it: parsed in UTC (fromisoformat's own timezone.utc, which
            # is UTC) and its own isoformat().
            try:
                utc, iso = fromisoformat(raw), raw
            except ValueError:
                utc, iso = line_time(raw, mapping)  # raises its error
        else:
            utc, iso = line_time(raw, mapping)
        return (line_no, provider, reference, order, amount, currency, fee,
                None if fee is None else currency, status, utc, iso, True)

    return row
