"""``[providers.ACCOUNT] type = "NAME"``: several accounts of one provider, each with
its own settings; an account without ``type`` is the provider of its name (files
written before accounts keep working)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pasarela.api import Pasarela, validate
from pasarela.config import InvalidConfigError
from pasarela.model import Order
from pasarela.money import Money
from pasarela.testing import fake


def _config(tmp_path: Path, providers: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"store": {"url": f"sqlite:///{tmp_path / 'p.db'}"},
            "plugins": {"modules": ["pasarela.testing.fake"]}, "providers": providers, **more}


def test_an_account_without_type_is_the_provider_of_its_name(tmp_path: Path) -> None:
    with Pasarela(_config(tmp_path, {"fake": {}}), load_entrypoints=False) as app:
        assert list(app.providers) == ["fake"]
        assert app.providers["fake"].account == "fake"
        assert type(app.providers["fake"]) is fake.FakeProvider


def test_two_accounts_of_one_provider_have_their_own_settings(tmp_path: Path) -> None:
    providers = {
        "main": {"type": "fake", "max_amount": "PEN 100", "fees": {"percent": "3"}},
        "big": {"type": "fake", "min_amount": "PEN 100.01", "fees": {"percent": "1"}},
    }
    routes = [{"name": "all", "use": ["main", "big"]}]
    with Pasarela(_config(tmp_path, providers, routes=routes), load_entrypoints=False) as app:
        assert {name: a.account for name, a in app.providers.items()} == {
            "main": "main", "big": "big"}
        assert all(type(a) is fake.FakeProvider for a in app.providers.values())
        small = Order(reference="o-1", amount=Money.of("50.00", "PEN"), country="PE")
        large = Order(reference="o-2", amount=Money.of("500.00", "PEN"), country="PE")
        pick = {o.reference: [(x.provider, x.fee) for x in app.options(o)
                              if x.available and x.method.value == "card"]
                for o in (small, large)}
        assert pick["o-1"] == [("main", Money.of("1.50", "PEN"))]
        assert pick["o-2"] == [("big", Money.of("5.00", "PEN"))]


@pytest.mark.parametrize(("table", "message"), [
    ({"type": "fakee"}, "providers.acct.type: no provider named 'fakee' is installed"),
    ({"type": 7}, "providers.acct.type: expected a string"),
    ({"type": "fake", "timeout": 0}, "providers.acct.timeout: must be more than 0 seconds"),
    ({"type": "fake", "colour": "red"}, "providers.acct.colour"),
])
def test_account_errors_name_the_account(tmp_path: Path, table: dict[str, Any],
                                         message: str) -> None:
    config = _config(tmp_path, {"acct": table})
    assert any(message in problem for problem in validate(config, load_entrypoints=False))
    with pytest.raises(InvalidConfigError) as caught:
        Pasarela(config, load_entrypoints=False)
    assert any(message in problem for problem in caught.value.errors)


def test_routes_name_accounts(tmp_path: Path) -> None:
    config = _config(tmp_path, {"one": {"type": "fake"}},
                     routes=[{"name": "all", "use": ["two"]}])
    problems = validate(config, load_entrypoints=False)
    assert any("routes[0].use[0]" in p and "'two'" in p for p in problems)
