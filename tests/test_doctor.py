"""``pasarela doctor`` catches what stalls payments in production, each with its fix:
a wrong secret, an unreachable webhook endpoint, a pending payment no webhook speaks
for; and passes a healthy setup against the real sandboxes."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasarela.api import Pasarela
from pasarela.cli import main
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.testing.fake import FakeGateway
from pasarela.testing.helpers import ManualClock, serve_app
from pasarela.web.app import create_app


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def _config(tmp_path: Path, providers: dict[str, dict[str, Any]], *,
            modules: tuple[str, ...] = ()) -> Path:
    lines = [f'[store]\nurl = "sqlite:///{tmp_path / "doctor.db"}"']
    if modules:
        lines.append(f"[plugins]\nmodules = {_toml(list(modules))}")
    for name, table in providers.items():
        lines.append(f"[providers.{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()
                  if value is not None and not isinstance(value, dict)]
    path = tmp_path / "pasarela.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _doctor(path: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(main, ["doctor", "--config", str(path), "--json", *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def _by_name(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in checks}


@pytest.fixture
def fake_url() -> Any:
    gateway = FakeGateway()
    with serve_app(gateway.asgi()) as url:
        yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_healthy_setup_passes_with_the_public_url(tmp_path: Path, fake_url: str) -> None:
    path = _config(tmp_path, {"fake": {"base_url": fake_url}},
                   modules=("pasarela.testing.fake",))
    with Pasarela.from_config(path) as pasarela, serve_app(create_app(pasarela)) as public:
        code, checks = _doctor(path, "--public-url", public)
    assert code == 0, checks
    names = _by_name(checks)
    assert {"configuration", "store", "provider fake", "webhooks fake", "public URL",
            "webhook endpoint fake"} <= set(names)
    assert all(c["ok"] for c in checks)
    assert "credentials accepted" in names["provider fake"]["detail"]
    assert "clock skew" in names["provider fake"]["detail"]


def test_a_wrong_secret_fails_with_its_fix(tmp_path: Path, fake_url: str) -> None:
    path = _config(tmp_path, {"fake": {"base_url": fake_url, "api_key": "fake_sk_wrong"}},
                   modules=("pasarela.testing.fake",))
    code, checks = _doctor(path)
    assert code == 1
    provider = _by_name(checks)["provider fake"]
    assert not provider["ok"]
    assert "credentials refused" in provider["detail"]
    assert "providers.fake" in provider["fix"]
    assert "fake_sk_wrong" not in json.dumps(checks)  # a secret is never printed


def test_an_unreachable_webhook_endpoint_fails_with_its_fix(tmp_path: Path,
                                                            fake_url: str) -> None:
    path = _config(tmp_path, {"fake": {"base_url": fake_url}},
                   modules=("pasarela.testing.fake",))
    code, checks = _doctor(path, "--public-url", f"http://127.0.0.1:{_free_port()}/shop")
    assert code == 1
    public = _by_name(checks)["public URL"]
    assert not public["ok"]
    assert "ConnectError" in public["detail"]
    assert "reach `pasarela serve`" in public["fix"]


def test_a_misrouted_webhook_endpoint_fails(tmp_path: Path, fake_url: str) -> None:
    """A URL that answers, but not with pasarela's webhook route."""
    path = _config(tmp_path, {"fake": {"base_url": fake_url}},
                   modules=("pasarela.testing.fake",))

    async def health_only(scope: Any, receive: Callable[..., Any],
                          send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        status = 200 if scope["path"] == "/healthz" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve_app(health_only) as public:
        code, checks = _doctor(path, "--public-url", public)
    assert code == 1
    endpoint = _by_name(checks)["webhook endpoint fake"]
    assert not endpoint["ok"]
    assert "404" in endpoint["detail"]


def test_a_pending_payment_no_webhook_speaks_for_fails(tmp_path: Path, fake_url: str) -> None:
    path = _config(tmp_path, {"fake": {"base_url": fake_url}},
                   modules=("pasarela.testing.fake",))
    clock = ManualClock(datetime.now(UTC) - timedelta(hours=3))
    with Pasarela.from_config(path, clock=clock) as pasarela:
        order = Order(reference="o-1", amount=Money.of("20.00", "PEN"),
                      customer=Customer(first_name="Rosa", last_name="Quispe",
                                        email="rosa@example.pe"))
        assert pasarela.pay(order, method="cash", idempotency_key="o-1").status.value == \
            "pending"
    code, checks = _doctor(path)
    assert code == 1
    stalled = _by_name(checks)["webhooks fake"]
    assert not stalled["ok"]
    assert "1 payment(s) pending" in stalled["detail"]
    assert "last webhook from fake: never" in stalled["detail"]
    assert "/webhooks/fake" in stalled["fix"]


def test_a_configuration_that_does_not_start_fails_first(tmp_path: Path) -> None:
    path = tmp_path / "pasarela.toml"
    path.write_text('[providers.nope]\n', encoding="utf-8")
    code, checks = _doctor(path)
    assert code == 1
    assert [c["name"] for c in checks] == ["configuration"]
    assert "no provider named 'nope' is installed" in checks[0]["detail"]


@pytest.mark.parametrize("adapter", ["pagoefectivo", "yape", "stripe"])
def test_each_adapter_probes_its_sandbox(adapter: str, tmp_path: Path,
                                         pasarela_sandbox: Callable[..., Any]) -> None:
    """Each adapter's probe: accepted with the banner's credentials, refused with a
    wrong secret; the sandbox's Date header gives a small clock skew."""
    from importlib import import_module

    create_app_ = import_module(f"pasarela_{adapter}.sandbox").create_app
    # Yape's and Stripe's sandboxes take any test key unless given the one to accept.
    only = {"yape": {"secret_key": "sk_test_doctor"},
            "stripe": {"api_key": "sk_test_doctor"}}.get(adapter, {})
    served = pasarela_sandbox(create_app_, **only)
    good = served.settings()
    path = _config(tmp_path, {adapter: good})
    code, checks = _doctor(path)
    check = _by_name(checks)[f"provider {adapter}"]
    assert check["ok"], check
    assert "clock skew" in check["detail"]
    secret = next(k for k in ("secret_key", "api_key") if k in good)
    path = _config(tmp_path, {adapter: {**good, secret: good[secret] + "wrong"}})
    code, checks = _doctor(path)
    check = _by_name(checks)[f"provider {adapter}"]
    assert code == 1
    assert not check["ok"]
    assert "credentials refused" in check["detail"], check


def test_payments_and_refunds_past_the_resolver_schedule_need_an_operator(
        tmp_path: Path, fake_url: str) -> None:
    """An unknown payment and a pending refund the resolver asked about through its
    whole schedule are counted and named, with --json and without; before that, and
    on a healthy setup, the checks pass."""
    from pasarela.engine.jobs import RESOLVER_CHECKS
    from pasarela.errors import UnknownOutcomeError

    path = _config(tmp_path, {"fake": {"base_url": fake_url, "max_retries": 0}},
                   modules=("pasarela.testing.fake",))
    gateway = FakeGateway()
    clock = ManualClock(datetime.now(UTC) - timedelta(days=2))
    with Pasarela.from_config(path, clock=clock, transport=gateway.transport()) as pasarela:
        pasarela.service.sleep_scale = 0
        gateway.hide_new_payments = True        # made, answer lost, not found by search
        lost = pasarela.pay(Order(reference="o-lost", amount=Money.of("20.00", "PEN")),
                            method="card", idempotency_key="o-lost", scenario="timeout")
        gateway.hide_new_payments = False
        paid = pasarela.pay(Order(reference="o-paid", amount=Money.of("20.00", "PEN")),
                            method="card", idempotency_key="o-paid")
        gateway.lose_refund_answers = gateway.hide_new_refunds = True
        with pytest.raises(UnknownOutcomeError):
            pasarela.refund(paid.id)
        [refund] = pasarela.store.refunds_for(paid.id)
        code, checks = _doctor(path)
        assert _by_name(checks)["payments needing an operator"]["ok"]
        assert _by_name(checks)["refunds needing an operator"]["count"] == 0
        for _ in range(RESOLVER_CHECKS):
            clock.now += timedelta(hours=7)
            pasarela.resolve_due()
    code, checks = _doctor(path)
    assert code == 1
    names = _by_name(checks)
    payments, refunds = names["payments needing an operator"], names["refunds needing an operator"]
    assert not payments["ok"]
    assert (payments["count"], payments["ids"]) == (1, [lost.id])
    assert lost.id in payments["detail"]
    assert "never failed by time alone" in payments["fix"]
    assert not refunds["ok"]
    assert (refunds["count"], refunds["ids"]) == (1, [refund.id])
    text = CliRunner().invoke(main, ["doctor", "--config", str(path)]).output
    assert "FAIL payments needing an operator: 1 payments still unknown" in text
    assert "FAIL refunds needing an operator: 1 refunds still pending" in text


@pytest.mark.parametrize(("environment", "keyed", "ok", "says"), [
    ("sandbox", False, True, "stored in clear"),
    ("production", False, False, "stored in clear while fake take real payments"),
    ("production", True, True, "sealed at rest"),
])
def test_personal_data_in_clear_fails_only_with_a_production_provider(
        tmp_path: Path, fake_url: str, monkeypatch: pytest.MonkeyPatch,
        environment: str, keyed: bool, ok: bool, says: str) -> None:
    from cryptography.fernet import Fernet

    path = _config(tmp_path, {"fake": {"base_url": fake_url, "environment": environment}},
                   modules=("pasarela.testing.fake",))
    if keyed:
        monkeypatch.setenv("PASARELA_DATA_KEY", Fernet.generate_key().decode())
        path.write_text(path.read_text() + '[privacy]\nkeys = ["env:PASARELA_DATA_KEY"]\n')
    _, checks = _doctor(path)
    check = _by_name(checks)["personal data"]
    assert check["ok"] is ok
    assert says in check["detail"]
    if not keyed:
        assert "pasarela customers new-key" in check["fix"]
