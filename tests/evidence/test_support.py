"""``pasarela payments evidence ID --support``: what each provider's support asks for
(the account's non-secret id, the transaction code, the provider reference, the
times of create and of the last exchange in UTC and Lima time, the provider's last
error code and message), read from the store and the configuration, no secret in it.

The payments and exchanges are written through the store as each adapter records
them (its references, its documented error bodies), so every provider's ticket is
checked without a network; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasarela.cli import main
from pasarela.exchange import Exchange
from pasarela.lifecycle import Status
from pasarela.model import Method, Order, Payment
from pasarela.money import Money
from pasarela.store import Delivery, Store
from pasarela.timezones import LIMA


SECRETS = ("pe-access-SECRET-1", "pe-secret-SECRET-2", "sk_test_SECRET-3", "sk_test_SECRET-4",
           "whsec_SECRET-5", "TEST-SECRET-6", "mp-SECRET-8", "SECRET-10", "SECRET-11")
CONFIG = """
[store]
url = "{url}"
[providers.pagoefectivo]
environment = "sandbox"
access_key = "pe-access-SECRET-1"
secret_key = "pe-secret-SECRET-2"
service_id = 1028
[providers.yape]
environment = "sandbox"
public_key = "pk_test_pasarela_public"
secret_key = "sk_test_SECRET-3"
[providers.stripe]
environment = "sandbox"
api_key = "sk_test_SECRET-4"
webhook_secrets = ["whsec_SECRET-5"]
[providers.mercadopago]
environment = "sandbox"
access_token = "TEST-SECRET-6"
public_key = "TEST-public-key-7"
webhook_secrets = ["mp-SECRET-8"]
[providers.dlocal]
environment = "sandbox"
x_login = "dlocal-login-9"
x_trans_key = "SECRET-10"
secret_key = "SECRET-11"
"""

#: provider: (method, reference, the account id line, the error response, its code and
#: message as the provider wrote them, response headers).
CASES: dict[str, tuple[Method, str, str, int, dict[str, Any], str, str, dict[str, str]]] = {
    "pagoefectivo": (Method.CASH, "6745362", "Merchant service id (idService): 1028", 400,
                     {"code": "111", "message": "Solicitud con datos inválidos.",
                      "data": [{"code": "112", "message": "Requerido.", "field": "amount"}]},
                     "111", "Solicitud con datos inválidos.", {}),
    "yape": (Method.WALLET, "chr_test_OdJvefU8erMhhtBe",
             "Merchant public key: pk_test_pasarela_public", 402,
             {"object": "error", "type": "card_error", "code": "card_declined",
              "decline_code": "insufficient_funds",
              "merchant_message": "La tarjeta no tiene fondos suficientes.",
              "user_message": "Tu tarjeta no tiene fondos suficientes."},
             "card_declined", "La tarjeta no tiene fondos suficientes.", {}),
    "stripe": (Method.CARD, "pi_3NqAbcDEFghiJKL1", "Merchant account: Stripe finds the "
               "account from the PaymentIntent id", 402,
               {"error": {"type": "card_error", "code": "card_declined",
                          "decline_code": "generic_decline",
                          "message": "Your card was declined."}},
               "card_declined", "Your card was declined.", {"request-id": "req_7Hq2LmN0pQ"}),
    "mercadopago": (Method.CARD, "1319876543", "Merchant public key: TEST-public-key-7", 400,
                    {"message": "invalid parameters", "error": "bad_request", "status": 400,
                     "cause": [{"code": 4020,
                                "description": "notification_url attribute must be url valid"}]},
                    "4020", "notification_url attribute must be url valid",
                    {"x-request-id": "b1c2d3e4-mp"}),
    "dlocal": (Method.CASH, "D-4-2f6c1e0a-bd6b", "Merchant X-Login: dlocal-login-9", 400,
               {"code": 5012, "message": "Invalid param: document", "param": "document"},
               "5012", "Invalid param: document", {}),
}
T0 = datetime(2026, 11, 30, 22, 15, 0, tzinfo=UTC)


def when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC · {at.astimezone(LIMA):%Y-%m-%d %H:%M:%S} Lima"


def exchange(provider: str, payment_id: str, at: datetime, status: int, body: Any,
             headers: dict[str, str], operation: str = "create") -> Exchange:
    return Exchange(provider=provider, operation=operation, payment_id=payment_id, attempt=1,
                    method="POST", url=f"https://{provider}.example/v1/payments",
                    request_headers={"Authorization": "[redacted]"}, request_body="{}",
                    status_code=status, response_headers=headers,
                    response_body=json.dumps(body, ensure_ascii=False), error=None,
                    started_at=at, duration_ms=120.0)


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> tuple[Path, dict[str, Payment]]:
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    made = {}
    with Store(store_url, upgrade=True) as store:
        for n, (provider, case) in enumerate(CASES.items()):
            method, reference, _, status, body, _, _, headers = case
            created = T0 + timedelta(minutes=n)
            payment = Payment(
                id=f"01JEVIDENCE{n:015d}", order_reference=f"pedido-{n}",
                idempotency_key=f"k-{n}", provider=provider, method=method,
                amount=Money.of("149.90", "PEN"), status=Status.PENDING, version=1,
                created_at=created, updated_at=created, provider_reference=reference,
                order=Order(reference=f"pedido-{n}", amount=Money.of("149.90", "PEN")))
            made[provider], _ = store.create_payment(payment, fingerprint="f")
            store.record_exchanges([
                exchange(provider, payment.id, created, 201, {"id": reference}, {}),
                exchange(provider, payment.id, created + timedelta(seconds=95), status, body,
                         headers, operation="get"),
            ])
        store.record_delivery(Delivery(
            provider="pagoefectivo", event_id="6745362:cip.paid:OP-889123",
            event_type="cip.paid", outcome="applied", payment_id=made["pagoefectivo"].id))
    return path, made


@pytest.mark.parametrize("provider", list(CASES))
def test_support_text_per_provider(config: tuple[Path, dict[str, Payment]],
                                   provider: str) -> None:
    path, made = config
    payment = made[provider]
    with Store(str(_url(path))) as store:
        exchanges = store.exchanges_for(payment.id)
        kept = store.get_payment(payment.id)
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "evidence",
                                       payment.id, "--support"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    _, reference, account_line, status, _, code, message, headers = CASES[provider]
    assert account_line in text
    assert f"Provider reference: {kept.provider_reference}" in text
    assert any(line.startswith("Transaction code (") and line.endswith(f"): {reference}")
               for line in text.splitlines())
    assert f"Created: {when(kept.created_at)}" in text
    assert f"Last exchange: {when(exchanges[-1]['started_at'])}" in text
    assert f"HTTP {status}" in text
    assert f"Last error code: {code}\n" in text
    assert f"Last error message: {message}\n" in text
    for value in headers.values():
        assert f"Request id: {value}" in text
    for secret in SECRETS:
        assert secret not in text
    if provider == "pagoefectivo":
        assert "Transaction code (CIP): 6745362" in text
        assert "Operation number: OP-889123" in text


def test_support_json_carries_the_same(config: tuple[Path, dict[str, Payment]]) -> None:
    path, made = config
    payment = made["stripe"]
    result = CliRunner().invoke(main, ["--config", str(path), "payments", "evidence",
                                       payment.id, "--support", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["provider"] == "Stripe"
    assert data["references"]["provider_reference"] == payment.provider_reference
    assert data["last_error"]["code"] == "card_declined"
    assert data["last_exchange"]["request_id"] == "req_7Hq2LmN0pQ"
    assert datetime.fromisoformat(data["created_at"]["lima"]) == payment.created_at
    for secret in SECRETS:
        assert secret not in result.stdout


def _url(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("url = "):
            return line.split('"')[1]
    raise AssertionError("no store url")
