"""Optional CIP fields are cleaned, cut or left out, never a reason to refuse
(issue #15 findings 3 and 4); mandatory ones keep their field-named errors.

The rule for each field is the table in the adapter's README.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pasarela_pagoefectivo import api
from pasarela_pagoefectivo.fields import clean_text, concept, fit
from pasarela_pagoefectivo.settings import PagoEfectivoSettings

from pasarela.engine.calls import run_flow
from pasarela.engine.steps import drive
from pasarela.errors import ProviderValidationError, ValidationError
from pasarela.lifecycle import Status
from pasarela.model import Customer, Method, Order
from pasarela.money import Money
from pasarela.provider import CreateRequest, Operation


SETTINGS = PagoEfectivoSettings(base_url="https://pre1a.services.pagoefectivo.pe",
                                access_key="a" * 20, secret_key="s", service_id=913)
NOW = datetime(2024, 12, 2, 15, 0, tzinfo=UTC)


def fields_for(request_factory: Callable[..., CreateRequest],
               order_factory: Callable[..., Order], **customer: Any) -> dict[str, Any]:
    person: dict[str, Any] = {"first_name": "Rosa", "last_name": "Quispe",
                              "email": "rosa@example.pe", "phone": "+51987654321"}
    person.update(customer)
    order = order_factory(customer=Customer(**person))
    return api.cip_fields(request_factory(order), SETTINGS, now=NOW)


# --- names (finding 3) -------------------------------------------------------------------


def test_a_31_character_first_name_is_cut_not_refused(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    name = "Maximiliana Esperanza Valentina"  # 31 characters
    assert len(name) == 31
    fields = fields_for(request_factory, order_factory, first_name=name)
    assert fields["userName"] == "Maximiliana Esperanza Valentin"
    assert len(fields["userName"].encode("utf-8")) <= 30


def test_a_60_character_last_name_is_cut_at_a_character_boundary(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    name = ("Ñúñez " * 10).strip()  # 59 characters, 2-byte letters
    fields = fields_for(request_factory, order_factory, last_name=name)
    sent = fields["userLastName"]
    assert len(sent.encode("utf-8")) <= 30
    assert name.startswith(sent)
    assert sent == sent.strip()


def test_a_cut_never_separates_a_letter_from_its_accent(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    # "q" + COMBINING ACUTE has no precomposed form: the pair stays whole or goes whole.
    name = "a" * 28 + "q\u0301" + "zz"
    fields = fields_for(request_factory, order_factory, first_name=name)
    assert fields["userName"] == "a" * 28
    assert fit("a" * 27 + "q\u0301", 30) == "a" * 27 + "q\u0301"  # 30 bytes: fits


def test_decomposed_accents_are_composed_before_counting() -> None:
    assert clean_text("Jose\u0301 Nun\u0303ez") == "José Nuñez"


def test_a_name_of_symbols_only_is_left_out(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    fields = fields_for(request_factory, order_factory, first_name="🙂🙂", last_name="\t")
    assert "userName" not in fields
    assert "userLastName" not in fields


# --- paymentConcept (finding 4) ------------------------------------------------------------


def test_concept_mark_is_ascii_and_the_whole_fits_fifty_bytes() -> None:
    text = concept("ñ" * 60, "pedido-1")
    assert text.endswith("...")
    assert "…" not in text
    assert len(text.encode("utf-8")) <= 50
    assert text == "ñ" * 23 + "..."  # 46 + 3 bytes: one more ñ would make 51


def test_concept_that_fits_is_sent_whole_with_its_spanish_letters() -> None:
    assert concept("Audífonos inalámbricos, niño", "x") == "Audífonos inalámbricos, niño"


def test_concept_drops_controls_and_emoji_and_collapses_spaces() -> None:
    assert concept("Polo\n\n talla\u200b M 🎽", "x") == "Polo talla M"
    assert concept("Oferta… hoy", "x") == "Oferta... hoy"


def test_concept_of_nothing_readable_is_the_reference() -> None:
    assert concept("🎁🎁🎁", "pedido-1042") == "Pedido pedido-1042"


def _order_or_none(description: str) -> Order | None:
    try:
        return Order(reference="pedido-1", amount=Money.of("10.00", "PEN"),
                     description=description,
                     customer=Customer(first_name="Rosa", last_name="Quispe",
                                       email="rosa@example.pe", phone="+51987654321"))
    except ValidationError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_description_gives_a_concept_of_at_most_fifty_bytes(description: str) -> None:
    order = _order_or_none(description)
    assume(order is not None)
    assert order is not None
    request = CreateRequest(payment_id="01JDQ3V6Y8K2M4N6P8R0S2T4V6", idempotency_key="k",
                            order=order, method=Method.CASH, amount=order.amount,
                            expires_at=None)
    sent = api.cip_fields(request, SETTINGS, now=NOW)["paymentConcept"]
    raw = sent.encode("utf-8")  # valid text: encodes
    assert 1 <= len(raw) <= 50
    assert "…" not in sent
    assert sent == unicodedata.normalize("NFC", sent)
    assert not unicodedata.category(sent[0]).startswith("M")  # no orphan accent
    assert all(not unicodedata.category(c).startswith("C") for c in sent)
    cleaned = clean_text(description)
    if cleaned and len(cleaned.encode("utf-8")) <= 50:
        assert sent == cleaned  # fits: sent whole
    else:  # cut with the mark, or (nothing readable fits) the reference
        assert sent == "Pedido pedido-1" or (
            sent.endswith("...") and cleaned.startswith(sent.removesuffix("...")))


# --- the other optional fields --------------------------------------------------------------


def test_a_reference_too_long_for_additional_data_is_left_out(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    reference = "𝔸" * 64  # 64 characters, 256 bytes
    order = order_factory(reference=reference)
    fields = api.cip_fields(request_factory(order), SETTINGS, now=NOW)
    assert "additionalData" not in fields
    short = api.cip_fields(request_factory(order_factory()), SETTINGS, now=NOW)
    assert short["additionalData"] == "pedido-1042"


def test_a_document_number_with_letters_is_left_out_and_the_rest_sent(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    fields = fields_for(request_factory, order_factory, document=("PAS", "AB123456"))
    assert "userDocumentType" not in fields
    assert "userDocumentNumber" not in fields
    assert fields["userName"] == "Rosa"


def test_country_is_sent_for_peru_only(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    assert fields_for(request_factory, order_factory)["userCountry"] == "PERU"
    abroad = order_factory(country="CL")
    assert "userCountry" not in api.cip_fields(request_factory(abroad), SETTINGS, now=NOW)


def test_admin_email_is_checked_with_the_settings() -> None:
    with pytest.raises(ValidationError) as caught:
        PagoEfectivoSettings(access_key="a", secret_key="b", service_id=1,
                             admin_email="x" * 95 + "@ex.pe")
    assert caught.value.field == "admin_email"
    with pytest.raises(ValidationError):
        PagoEfectivoSettings(access_key="a", secret_key="b", service_id=1,
                             admin_email="not an address")
    ok = PagoEfectivoSettings(access_key="a", secret_key="b", service_id=1,
                              admin_email="ventas@example.pe")
    assert ok.admin_email == "ventas@example.pe"


# --- mandatory fields keep their errors ------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"email": "x" * 95 + "@ex.pe"}, "customer.email"),
    ({"email": None}, "customer.email"),
    ({"phone": None}, "customer.phone"),
])
def test_mandatory_fields_are_refused_by_name(
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
    change: dict[str, Any], field: str,
) -> None:
    with pytest.raises(ProviderValidationError) as caught:
        fields_for(request_factory, order_factory, **change)
    assert set(caught.value.fields) == {field}
    assert caught.value.created_nothing


# --- through the sandbox ------------------------------------------------------------------


def test_long_names_and_concept_make_a_cip_at_the_sandbox(
    served: Any, provider: Any, client: httpx.Client,
    request_factory: Callable[..., CreateRequest], order_factory: Callable[..., Order],
) -> None:
    customer = Customer(first_name="María Fernanda de los Ángeles Rosario",  # 37
                        last_name="Quispe Mamani de la Torre y Villanueva",  # 38
                        email="rosa@example.pe", phone="+51987654321")
    order = order_factory(customer=customer,
                          description="Zapatillas de running edición limitada 🏃, talla 42, azul")
    request = request_factory(order)
    reported = drive(run_flow(provider, Operation.CREATE, lambda: provider.create(request),
                              sleep_scale=0), client)
    assert reported.status is Status.PENDING
    record = served.sandbox.cips[int(reported.reference)]
    assert record.fields["username"] == "María Fernanda de los Ángele"  # 30 bytes
    assert len(record.fields["userlastname"].encode("utf-8")) <= 30
    assert record.fields["paymentconcept"].endswith("...")
    assert len(record.fields["paymentconcept"].encode("utf-8")) <= 50
