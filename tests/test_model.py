"""Model validation: documents, phones, emails, orders; each error names its field."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from pasarela.errors import ValidationError
from pasarela.model import Customer, Document, Order
from pasarela.model.records import split_e164
from pasarela.money import Money
from pasarela.next_action import (
    ApproveInWallet,
    ConfirmCard,
    OpenUrl,
    ScanQr,
    ShowCashCode,
    next_action_from_dict,
)


def customer(**overrides):
    data = {"first_name": "Rosa", "last_name": "Quispe", "email": "rosa@example.pe",
            "phone": "+51 987 654 321", "document": ("DNI", "45678912")}
    data.update(overrides)
    return Customer(**data)


class TestDocument:
    def test_dni_with_check_character_is_normalised(self):
        # python-stdnum accepts the printed 9th check character and we keep 8 digits.
        from stdnum.pe import cui

        check = cui.calc_check_digits("45678912")
        assert Document("DNI", "45678912" + check[0]).number == "45678912"

    def test_dni_wrong_check_character(self):
        from stdnum.pe import cui

        good = cui.calc_check_digits("45678912")
        wrong = next(c for c in "0123456789" if c not in good)
        with pytest.raises(ValidationError, match="DNI") as info:
            Document("DNI", "45678912" + wrong)
        assert info.value.field == "customer.document"

    @pytest.mark.parametrize("number", ["20512333797", "20100047218"])
    def test_valid_ruc(self, number):
        assert Document("RUC", number).number == number

    def test_ruc_bad_check_digit(self):
        with pytest.raises(ValidationError, match="RUC"):
            Document("RUC", "20512333798")

    @pytest.mark.parametrize(("kind", "number"), [("CE", "1234"), ("PAS", "AB!12345"),
                                                  ("XX", "123")])
    def test_other_documents(self, kind, number):
        with pytest.raises(ValidationError):
            Document(kind, number)

    def test_ce_and_passport_ok(self):
        assert Document("ce", "001234567").kind == "CE"
        assert Document("PAS", "ab12345").number == "AB12345"


class TestCustomer:
    def test_phone_kept_in_e164(self):
        c = customer()
        assert c.phone == "+51987654321"
        assert c.is_peruvian_mobile
        assert c.national_phone == "987654321"

    def test_phone_parts_are_the_calling_code_and_the_national_number(self):
        import phonenumbers

        assert customer().phone_parts == ("+51", "987654321")
        assert customer(phone=None).phone_parts is None
        checked = 0
        # Every region's example numbers, Italy's leading zero and the shared +1 and +7
        # included: the split of the E.164 text is what the numbering plan says.
        for region in sorted(phonenumbers.SUPPORTED_REGIONS):
            for kind in (phonenumbers.PhoneNumberType.FIXED_LINE,
                         phonenumbers.PhoneNumberType.MOBILE):
                example = phonenumbers.example_number_for_type(region, kind)
                if example is None or not phonenumbers.is_valid_number(example):
                    continue
                e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                c = customer(phone=e164)
                assert c.phone_parts == (f"+{example.country_code}",
                                         phonenumbers.national_significant_number(example))
                assert c.national_phone == c.phone_parts[1]
                checked += 1
        assert checked > 400
        assert split_e164("+390612345678") == ("+39", "0612345678")
        for bad in ("51987654321", "+", "+0123", "+51 987", "+５１９８７"):
            with pytest.raises(ValueError, match=r"not an E\.164"):
                split_e164(bad)

    def test_landline_is_not_a_mobile(self):
        assert not customer(phone="+51 1 4567890").is_peruvian_mobile

    @pytest.mark.parametrize(("field", "value"), [("phone", "12"), ("email", "rosa@"),
                                                  ("first_name", "")])
    def test_errors_name_the_field(self, field, value):
        with pytest.raises(ValidationError) as info:
            customer(**{field: value})
        assert info.value.field == f"customer.{field}"

    def test_round_trip(self):
        c = customer()
        assert Customer.from_dict(c.to_dict()) == c


class TestOrder:
    def test_amount_must_be_money(self):
        with pytest.raises(ValidationError) as info:
            Order(reference="x", amount=149.9)  # type: ignore[arg-type]
        assert info.value.field == "amount"

    def test_amount_positive(self):
        with pytest.raises(ValidationError, match="greater than zero"):
            Order(reference="x", amount=Money(0, "PEN"))

    def test_naive_expiry_refused(self):
        with pytest.raises(ValidationError) as info:
            Order(reference="x", amount=Money(100, "PEN"),
                  expires_at=datetime(2026, 1, 1))  # noqa: DTZ001
        assert info.value.field == "expires_at"

    def test_country_code(self):
        with pytest.raises(ValidationError) as info:
            Order(reference="x", amount=Money(100, "PEN"), country="PER")
        assert info.value.field == "country"

    def test_round_trip_and_frozen(self):
        order = Order(reference="pedido-1", amount=Money.of("149.90", "PEN"),
                      customer=customer(), metadata={"sku": "A1"},
                      expires_at=datetime(2026, 1, 1, tzinfo=UTC))
        assert Order.from_dict(order.to_dict()) == order
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            order.reference = "other"  # type: ignore[misc]


class TestNextAction:
    def test_round_trip(self):
        action = ShowCashCode(code="123", amount=Money(100, "PEN"),
                              expires_at=datetime(2026, 1, 1, tzinfo=UTC), url="https://x",
                              instructions={"es": ("a", "b")})
        assert next_action_from_dict(action.to_dict()) == action
        qr = ScanQr(qr_data="000201", expires_at=None)
        assert next_action_from_dict(qr.to_dict()) == qr

    def test_to_dict_is_attrs_asdict_with_datetimes_and_money_written_out(self):
        from pasarela.next_action import BankTransfer, OpenCheckout

        def serialize(instance, field, value):
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, Money):
                return {"minor": value.minor, "currency": value.currency}
            return value

        moment = datetime(2026, 12, 4, 15, 30, 5, 123456, tzinfo=UTC)
        lines = {"es": ("Paga en agente", "Código: 123"), "zh": ("去代理点付款",), "en": ()}
        actions = [
            ShowCashCode(code="123", amount=Money(14990, "PEN"), expires_at=moment,
                         url="https://x", qr_data="123", instructions=lines),
            ShowCashCode(code="9", amount=Money(1, "USD"), expires_at=None),
            ScanQr(qr_data="000201", expires_at=moment, wallets=("yape", "plin"),
                   instructions=lines),
            ApproveInWallet(wallet="yape", instructions={"es": ("Abre Yape",)}),
            ConfirmCard(client_secret="pi_1_secret_x", step="authenticate", url=None),
            OpenUrl(url="https://pago.example/1"),
            OpenCheckout(provider="culqi", script_url="https://js.example",
                         settings={"publicKey": "pk_test_1", "amount": 14990, "order": "o"},
                         expires_at=moment, cash_code="C1", instructions=lines),
            BankTransfer(bank="BCP", amount=Money(25000, "PEN"), expires_at=moment,
                         account="191-1", account_label="CCI", holder="Tienda SAC",
                         reference="DL1", instructions=lines),
        ]
        # What the types do not promise is still written as attrs.asdict writes it.
        odd = ShowCashCode(code="8", amount=Money(1, "PEN"), expires_at=None,
                           instructions={"es": ["a", moment], "en": (moment, "b"),
                                         "zh": {"c"}})
        for action in [*actions, odd]:
            expected = attrs.asdict(action, value_serializer=serialize)
            expected["type"] = action.type
            data = action.to_dict()
            assert data == expected
            assert list(data) == list(expected)  # the same order, ``type`` last
        for action in actions:
            assert next_action_from_dict(action.to_dict()) == action

    def test_secret_not_in_repr(self):
        assert "pi_secret" not in repr(ConfirmCard(client_secret="pi_secret_abc"))

    def test_every_variant_round_trips(self):
        actions = [
            ApproveInWallet(wallet="yape", instructions={"es": ("Abre Yape",)}),
            ConfirmCard(client_secret="pi_1_secret_x", step="authenticate", url="https://3ds"),
            OpenUrl(url="https://pago.example/1"),
            ScanQr(qr_data="000201", expires_at=datetime(2026, 1, 1, tzinfo=UTC),
                   wallets=("plin",)),
        ]
        for action in actions:
            assert next_action_from_dict(action.to_dict()) == action
        assert next_action_from_dict(None) is None
        assert next_action_from_dict({}) is None

    def test_one_public_home(self):
        import pasarela
        from pasarela import model, next_action

        names = {"ApproveInWallet", "ConfirmCard", "NextAction", "OpenUrl", "ScanQr",
                 "ShowCashCode", "next_action_from_dict", "qr_svg"}
        assert names <= set(next_action.__all__)
        assert not names & set(model.__all__)
        assert not [name for name in names if hasattr(model, name) and name != "NextAction"]
        assert pasarela.NextAction is next_action.NextAction
        assert attrs.fields(model.Payment).next_action.type == "NextAction | None"


def test_qr_rendered_on_demand_from_what_it_encodes():
    action = ShowCashCode(code="123", amount=Money(100, "PEN"), expires_at=None,
                          qr_data="https://pago.example/123")
    assert action.qr_svg is not None
    assert action.qr_svg.startswith("<svg")
    assert "qr_svg" not in action.to_dict()  # stored: the data, not the picture
    assert ShowCashCode(code="1", amount=Money(1, "PEN"), expires_at=None).qr_svg is None
