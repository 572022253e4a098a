"""Names defined on first use (to keep plugin discovery cheap) are the same object on
every read, from every import path, and behave as the eagerly defined classes did."""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys
from datetime import UTC, datetime

import attrs
import pytest


#: module -> the names it defines on first use.
LAZY: dict[str, tuple[str, ...]] = {
    "pasarela.next_action": ("ApproveInWallet", "BankTransfer", "ConfirmCard", "OpenCheckout",
                             "OpenUrl", "ScanQr", "ShowCashCode"),
    "pasarela.model": ("Customer", "Document", "Order", "Payment", "Refund", "Transition"),
    "pasarela.provider": ("CreateRequest", "ProviderPayment", "ProviderRefund", "SettlementLine",
                          "WebhookEvent", "WebhookHint"),
}
#: module -> the module that defines its lazy names.
DEFINED_IN = {"pasarela.model": "pasarela.model.records",
              "pasarela.next_action": "pasarela.next_action.kinds",
              "pasarela.provider": "pasarela.provider.values"}
CASES = [(module, name) for module, names in LAZY.items() for name in names]


@pytest.mark.parametrize(("module", "name"), CASES)
def test_a_lazy_name_is_one_object_on_every_read(module: str, name: str) -> None:
    home = importlib.import_module(module)
    first = getattr(home, name)
    assert getattr(home, name) is first
    namespace: dict[str, object] = {}
    exec(f"from {module} import {name}", namespace)  # noqa: S102 - the import statement
    assert namespace[name] is first
    assert isinstance(first, type)
    assert first.__module__ == module
    assert first.__qualname__ == name
    assert name in dir(home)
    assert name in home.__all__


@pytest.mark.parametrize(("module", "name"), CASES)
def test_a_lazy_name_is_one_object_in_a_fresh_process(module: str, name: str) -> None:
    """Read first through the module, then by ``from ... import``, then again."""
    code = (f"import {module} as home; first = home.{name}; "
            f"from {module} import {name} as second; "
            f"assert first is second is getattr(home, {name!r}); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.split() == ["ok"]


def test_unknown_names_still_raise_attribute_error() -> None:
    from pasarela import next_action, provider

    with pytest.raises(AttributeError):
        next_action.NoSuchKind  # noqa: B018
    assert not hasattr(next_action, "Nothing")
    with pytest.raises(AttributeError):
        provider.NoSuchValue  # noqa: B018


def test_next_actions_check_compare_hash_repr_and_pickle_as_before() -> None:
    from pasarela import next_action
    from pasarela.money import Money

    code = next_action.ShowCashCode(code="123", amount=Money(500, "PEN"), expires_at=None)
    same = next_action.ShowCashCode(code="123", amount=Money(500, "PEN"), expires_at=None)
    assert isinstance(code, next_action.NextAction)
    assert isinstance(code, next_action.ShowCashCode)
    assert code == same
    url = next_action.OpenUrl(url="https://x.example")
    assert hash(url) == hash(next_action.OpenUrl(url="https://x.example"))
    assert repr(code) == ("ShowCashCode(code='123', amount=Money(minor=500, currency='PEN'), "
                          "expires_at=None, url=None)")
    assert pickle.loads(pickle.dumps(code)) == code  # noqa: S301 - our own bytes
    card = next_action.ConfirmCard(client_secret="pi_secret")
    assert "pi_secret" not in repr(card)


def test_from_dict_defines_the_kinds_in_a_fresh_process() -> None:
    """A stored next action read before any kind's name was read."""
    code = ("import sys; from pasarela.next_action import next_action_from_dict; "
            "assert 'pasarela.next_action.kinds' not in sys.modules; "
            "action = next_action_from_dict({'type': 'open_url', 'url': 'https://x.example'}); "
            "from pasarela.next_action import OpenUrl; "
            "assert type(action) is OpenUrl, type(action); print(action.url)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert out.split() == ["https://x.example"]


def test_from_dict_round_trips_every_kind() -> None:
    from pasarela import next_action
    from pasarela.money import Money

    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    actions = [
        next_action.ShowCashCode(code="1", amount=Money(100, "PEN"), expires_at=moment,
                                 instructions={"es": ("a",)}),
        next_action.ScanQr(qr_data="q", expires_at=None),
        next_action.ApproveInWallet(wallet="yape"),
        next_action.ConfirmCard(client_secret="s", step="authenticate"),
        next_action.OpenUrl(url="https://x.example"),
        next_action.OpenCheckout(provider="culqi", script_url="https://js.example",
                                 settings={"public_key": "pk", "amount": 100}),
        next_action.BankTransfer(bank="BCP", amount=Money(100, "PEN"), expires_at=moment,
                                 reference="r"),
    ]
    assert {type(a).__name__ for a in actions} == set(LAZY["pasarela.next_action"])
    for action in actions:
        assert next_action.next_action_from_dict(action.to_dict()) == action


def test_discovery_defines_no_lazy_name() -> None:
    code = ("import json, sys; from pasarela.plugins import get_plugin_manager; "
            "get_plugin_manager().providers(); "
            f"print(json.dumps(sorted(set(sys.modules) & {set(DEFINED_IN.values())!r})))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out) == []


def test_provider_values_check_compare_hash_repr_and_pickle_as_before() -> None:
    from decimal import Decimal

    from pasarela import provider
    from pasarela.errors import ValidationError, WebhookError
    from pasarela.lifecycle import Status
    from pasarela.model import RefundStatus
    from pasarela.money import Money

    answer = provider.ProviderPayment(status=Status.PENDING, reference="r1",
                                      amount=Money(100, "PEN"), network="yape")
    assert answer == provider.ProviderPayment(status=Status.PENDING, reference="r1",
                                              amount=Money(100, "PEN"), network="yape")
    assert hash(answer) == hash(attrs.evolve(answer))
    assert repr(answer).startswith("ProviderPayment(status=<Status.PENDING: 'pending'>, "
                                   "reference='r1', raw_status=''")
    assert pickle.loads(pickle.dumps(answer)) == answer  # noqa: S301 - our own bytes
    with pytest.raises(ValidationError):
        provider.ProviderPayment(status=Status.PENDING, network="Not A Network")
    with pytest.raises(ValidationError):
        provider.ProviderPayment(status=Status.PENDING, fx_rate=Decimal(0))
    refund = provider.ProviderRefund(status=RefundStatus.PENDING, refund_id="re_1")
    event = provider.WebhookEvent(event_id="e1", type="cip.paid", provider_reference=None,
                                  refund=refund)
    assert isinstance(event.refund, provider.ProviderRefund)
    with pytest.raises(WebhookError):
        provider.WebhookEvent(event_id="", type="cip.paid", provider_reference=None)
    hint = provider.WebhookHint(payment_id="pay_1")
    assert hint == provider.WebhookHint(payment_id="pay_1")
    assert repr(hint) == "WebhookHint(payment_id='pay_1', provider_reference=None)"


def test_models_check_compare_hash_repr_and_pickle_as_before() -> None:
    from pasarela import model
    from pasarela.errors import ValidationError
    from pasarela.money import Money

    order = model.Order(reference="o-1", amount=Money(1000, "PEN"), description="Pedido",
                        customer=model.Customer(first_name="Ana", last_name="Quispe",
                                                email="ana@example.pe",
                                                document=("DNI", "12345678")))
    again = model.Order(reference="o-1", amount=Money(1000, "PEN"), description="Pedido",
                        customer=model.Customer(first_name="Ana", last_name="Quispe",
                                                email="ana@example.pe",
                                                document=("DNI", "12345678")))
    assert order == again
    assert isinstance(order.customer, model.Customer)
    assert isinstance(order.customer.document, model.Document)
    assert repr(order).startswith("Order(reference='o-1', amount=Money(minor=1000, "
                                  "currency='PEN')")
    assert pickle.loads(pickle.dumps(order)) == order  # noqa: S301 - our own bytes
    with pytest.raises(ValidationError):
        model.Order(reference="", amount=Money(1000, "PEN"), description="Pedido")
    with pytest.raises(ValidationError):
        model.Customer(first_name="Ana", last_name="Quispe", email="not an e-mail")


@pytest.mark.parametrize(("module", "name"), CASES)
def test_a_lazy_class_s_annotations_resolve(module: str, name: str) -> None:
    """``typing.get_type_hints`` (what cattrs and ``attrs.resolve_types`` use) reads the
    names in the class's ``__module__``, the package, as before the move."""
    import typing

    cls = getattr(importlib.import_module(module), name)
    assert set(typing.get_type_hints(cls)) >= {field.name for field in attrs.fields(cls)}
