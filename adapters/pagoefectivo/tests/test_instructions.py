"""The customer's instructions: the deadline's words, made once a minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from babel.dates import format_datetime
from hypothesis import given
from hypothesis import strategies as st
from pasarela_pagoefectivo.fields import LIMA
from pasarela_pagoefectivo.instructions import instructions

from pasarela.money import Money


_ES = "EEEE d 'de' MMMM 'de' y 'a las' HH:mm"
_EN = "EEEE, MMMM d, y 'at' h:mm a"

_offsets = st.one_of(
    st.none(),  # naive: Babel reads it as UTC
    st.integers(min_value=-14 * 3600, max_value=14 * 3600).map(
        lambda s: timezone(timedelta(seconds=s))),  # seconds too, not only whole minutes
)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),  # noqa: DTZ001 - hypothesis bounds are naive
       _offsets)
def test_the_deadline_is_babels_text_of_the_exact_time(when: datetime,
                                                       offset: timezone | None) -> None:
    expires_at = when if offset is None else when.replace(tzinfo=offset)
    steps = instructions("12345678", Money(14990, "PEN"), expires_at)
    es = format_datetime(expires_at, _ES, tzinfo=LIMA, locale="es_PE")
    en = format_datetime(expires_at, _EN, tzinfo=LIMA, locale="en_US")
    assert f" antes del {es} (hora de Lima)." in steps["es"][0]
    assert f" before {en} (Lima time)." in steps["en"][0]


def test_a_minute_is_one_text_and_the_next_minute_another() -> None:
    start = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 10:30 in Lima
    texts = {instructions("1", Money(100, "PEN"), start + timedelta(seconds=s))["es"][0]
             for s in (0, 1, 59.999)}
    assert texts == {"Tu código de pago CIP es 1. Paga S/\xa01.00 antes del viernes 4 de "
                     "diciembre de 2026 a las 10:30 (hora de Lima)."}
    later = instructions("1", Money(100, "PEN"), start + timedelta(minutes=1))["es"][0]
    assert "a las 10:31 (hora de Lima)" in later
