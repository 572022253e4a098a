"""``pasarela customers``: forget (erasure on request), rotate-key and new-key, end to
end through the command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.model import Customer, Order, Payment
from pasarela.money import Money
from pasarela.store.personal import ERASED
from pasarela.store.sealing import new_key
from pasarela.testing.fake import FakeGateway, FakePlugin


PERSONAL = ("rosa@example.pe", "987654321", "45678912", "Quispe")


def _config(tmp_path: Path, store_url: str, *keys: str) -> Path:
    from pasarela.store import Store

    Store(store_url, upgrade=True).close()  # `pasarela db upgrade`
    path = tmp_path / "pasarela.toml"
    listed = ", ".join(f'"{k}"' for k in keys)
    path.write_text(f"""
[store]
url = "{store_url}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
max_retries = 0
[privacy]
keys = [{listed}]
""", encoding="utf-8")
    return path


def _pay(config: Path, ref: str = "pedido-77") -> Payment:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    with Pasarela(str(config), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=FakeGateway().transport()) as p:
        return p.pay(Order(reference=ref, amount=Money.of("149.90", "PEN"),
                           description="Audífonos", customer=customer),
                     method="cash", idempotency_key=f"key-{ref}")


def _dump(store_url: str) -> str:
    """Every row of payments, exchanges and refunds, as text."""
    from pasarela.store import Store
    from pasarela.store import schema as t

    with Store(store_url) as store, store.engine.connect() as conn:
        return json.dumps([[list(r) for r in conn.execute(sa.select(table))]
                           for table in (t.payments, t.exchanges, t.refunds)],
                          default=str, ensure_ascii=False)


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "in-clear"])
def test_forget_erases_the_customer_and_keeps_the_books(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, sealed: bool
) -> None:
    monkeypatch.setenv("PASARELA_DATA_KEY", new_key())
    config = _config(tmp_path, store_url, *(["env:PASARELA_DATA_KEY"] if sealed else []))
    payment = _pay(config)
    other = _pay(config, "pedido-78")
    assert ("rosa@example.pe" in _dump(store_url)) is not sealed

    code, out = _run(config, "customers", "forget", "pedido-77", "--json")
    assert code == 0, out
    assert json.loads(out) == {"reference": "pedido-77", "erased": [payment.id],
                               "already_erased": []}

    with Pasarela(str(config), plugins=[FakePlugin()], load_entrypoints=False,
                  transport=FakeGateway().transport()) as p:
        after = p.get(payment.id)
        assert after.order is not None
        assert after.order.customer is None
        assert (after.amount, after.status, after.provider_reference) == (
            payment.amount, payment.status, payment.provider_reference)
        assert after.history[-1].reason == ERASED
        assert p.get(other.id).order.customer is not None  # type: ignore[union-attr]
        mine = json.dumps([after.order.to_dict(), *p.store.exchanges_for(payment.id)],
                          default=str, ensure_ascii=False)
    for value in PERSONAL:
        assert value not in mine

    code, out = _run(config, "customers", "forget", "pedido-77", "--json")  # again
    assert code == 0, out
    assert json.loads(out) == {"reference": "pedido-77", "erased": [],
                               "already_erased": [payment.id]}
    code, out = _run(config, "customers", "forget", "pedido-none")
    assert code == 1
    assert "no payment with order reference 'pedido-none'" in out


def test_rotate_key_then_the_old_key_can_go(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLD_KEY", new_key())
    monkeypatch.setenv("NEW_KEY", new_key())
    old = _config(tmp_path, store_url, "env:OLD_KEY")
    payment = _pay(old)
    dump = _dump(store_url)
    assert not any(value in dump for value in PERSONAL)

    both = _config(tmp_path, store_url, "env:NEW_KEY", "env:OLD_KEY")
    code, out = _run(both, "customers", "rotate-key", "--batch", "1", "--json")
    assert code == 0, out
    assert json.loads(out)["rotated"] == 1

    new = _config(tmp_path, store_url, "env:NEW_KEY")
    code, out = _run(new, "payments", "show", payment.id, "--json")
    assert code == 0, out
    with Pasarela(str(new), plugins=[FakePlugin()], load_entrypoints=False) as p:
        assert p.get(payment.id).order == payment.order


def test_a_wrong_key_is_an_error_naming_the_setting(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASARELA_DATA_KEY", new_key())
    payment = _pay(_config(tmp_path, store_url, "env:PASARELA_DATA_KEY"))
    monkeypatch.setenv("PASARELA_DATA_KEY", new_key())
    code, out = _run(_config(tmp_path, store_url, "env:PASARELA_DATA_KEY"),
                     "payments", "show", payment.id)
    assert code == 1
    assert "privacy.keys: none of the 1 configured key opens" in " ".join(out.split())


def test_new_key_prints_a_usable_key(tmp_path: Path, store_url: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _run(tmp_path / "absent.toml", "customers", "new-key")
    assert code == 0, out
    monkeypatch.setenv("PASARELA_DATA_KEY", out.strip())
    code, out = _run(_config(tmp_path, store_url, "env:PASARELA_DATA_KEY"), "config", "check")
    assert code == 0, out
    monkeypatch.setenv("PASARELA_DATA_KEY", "not-a-key")
    code, out = _run(_config(tmp_path, store_url, "env:PASARELA_DATA_KEY"), "config", "check")
    assert code == 1
    assert "privacy.keys[0]" in out
    assert "not-a-key" not in out
