"""The quickstarts' example apps, run end to end against the three sandboxes: a cash,
a wallet and a card payment, webhooks delivered over loopback to the app."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pasarela.testing.helpers import serve_app


EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def _sandboxes(pasarela_sandbox: Callable[..., Any], hooks: str) -> dict[str, Any]:
    from pasarela_pagoefectivo.sandbox import create_app as pagoefectivo
    from pasarela_stripe.sandbox import create_app as stripe
    from pasarela_yape.sandbox import create_app as yape

    return {
        "pagoefectivo": pasarela_sandbox(pagoefectivo, webhook_url=f"{hooks}/pagoefectivo"),
        "yape": pasarela_sandbox(yape, webhook_url=f"{hooks}/yape"),
        "stripe": pasarela_sandbox(stripe, webhook_url=f"{hooks}/stripe"),
    }


def _write_config(folder: Path, served: dict[str, Any]) -> Path:
    """The pasarela.toml the quickstart tells you to write, with the banners' values."""
    lines = ['[store]\nurl = "sqlite:///shop.db"\n',
             '[checkout]\npreference = ["pagoefectivo", "yape", "stripe"]\n']
    for name, one in served.items():
        lines.append(f"[providers.{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in one.settings().items()]
        lines.append("")
    path = folder / "pasarela.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _wait(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


CUSTOMER = {"first_name": "Rosa", "last_name": "Quispe", "email": "rosa@example.pe",
            "phone": "+51 987 654 321"}


def test_the_fastapi_quickstart_takes_cash_wallet_and_card(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        pasarela_sandbox: Callable[..., Any]) -> None:
    pytest.importorskip("fastapi")
    port = _free_port()
    served = _sandboxes(pasarela_sandbox, f"http://127.0.0.1:{port}/pasarela/webhooks")
    config = _write_config(tmp_path, served)
    monkeypatch.setenv("PASARELA_CONFIG", str(config))
    shop = _load("fastapi_shop_under_test", EXAMPLES / "fastapi_shop.py")
    try:
        with serve_app(shop.app, port=port) as url, httpx.Client(base_url=url,
                                                                 timeout=20) as client:
            offered = client.get("/checkout/pedido-1/options", params={"amount": "149.90"})
            assert {o["method"] for o in offered.json() if o["available"]} == {
                "cash", "wallet", "card"}

            answer = client.post("/checkout", json={"reference": "pedido-1",
                                                    "amount": "149.90", "method": "cash",
                                                    **CUSTOMER})
            cash = answer.json()
            assert cash.get("status") == "pending", answer.text
            code = cash["next_action"]["code"]
            served["pagoefectivo"].post(f"/cips/{code}/pay")  # Rosa pays at an agent
            _wait(lambda: client.get("/orders/pedido-1").json()["paid"], "the CIP webhook")

            wallet = client.post("/checkout", json={
                "reference": "pedido-2", "amount": "35.00", "method": "wallet", **CUSTOMER,
                "params": {"phone": "900000001", "code": "425251"}}).json()
            assert wallet["status"] == "succeeded"

            card = client.post("/checkout", json={
                "reference": "pedido-3", "amount": "320.00", "method": "card", **CUSTOMER,
                "params": {"payment_method": "pm_card_visa"}}).json()
            assert card["status"] == "succeeded"
            # Observers ran inline, after commit: the order was found by its reference.
            assert client.get("/orders/pedido-2").json()["paid"] is True
            assert client.get("/orders/pedido-3").json()["paid"] is True

            refused = client.post("/checkout", json={"reference": "pedido-4", "amount": "1.005",
                                                     "method": "cash", **CUSTOMER})
            assert refused.status_code == 422
            assert refused.json()["detail"]["field"] == "amount"
    finally:
        sys.modules.pop("fastapi_shop_under_test", None)


def _with_lifespan(app: Any) -> Any:
    """Django's ASGI handler speaks no lifespan protocol; answer it for uvicorn."""
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapped


def test_the_django_quickstart_takes_cash_wallet_and_card(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        pasarela_sandbox: Callable[..., Any]) -> None:
    django = pytest.importorskip("django")
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    if not settings.configured:
        settings.configure(DEBUG=False, SECRET_KEY="quickstart", ALLOWED_HOSTS=["*"],
                           ROOT_URLCONF="pasarela_no_urls", INSTALLED_APPS=[],
                           MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
                           USE_TZ=True)
        django.setup()
    port = _free_port()
    # Django's URLs end with a slash.
    served = _sandboxes(pasarela_sandbox, f"http://127.0.0.1:{port}/pasarela/webhooks")
    for name, one in served.items():
        one.config(webhook_url=f"http://127.0.0.1:{port}/pasarela/webhooks/{name}/")
    config = _write_config(tmp_path, served)
    monkeypatch.setenv("PASARELA_CONFIG", str(config))
    shop = _load("django_shop_under_test", EXAMPLES / "django_shop.py")
    try:
        with override_settings(ROOT_URLCONF="django_shop_under_test", ALLOWED_HOSTS=["*"]), \
                serve_app(_with_lifespan(get_asgi_application()), port=port) as url, \
                httpx.Client(base_url=url, timeout=20) as client:
            answer = client.post("/checkout/", json={"reference": "pedido-1",
                                                     "amount": "149.90", "method": "cash",
                                                     **CUSTOMER})
            cash = answer.json()
            assert cash.get("status") == "pending", answer.text
            served["pagoefectivo"].post(f"/cips/{cash['next_action']['code']}/pay")
            _wait(lambda: client.get("/orders/pedido-1/").json().get("paid") is True,
                  "the CIP webhook")
            wallet = client.post("/checkout/", json={
                "reference": "pedido-2", "amount": "35.00", "method": "wallet", **CUSTOMER,
                "params": {"phone": "900000001", "code": "425251"}}).json()
            assert wallet["status"] == "succeeded"
            card = client.post("/checkout/", json={
                "reference": "pedido-3", "amount": "320.00", "method": "card", **CUSTOMER,
                "params": {"payment_method": "pm_card_visa"}}).json()
            assert card["status"] == "succeeded"
            assert client.get("/orders/pedido-3/").json()["paid"] is True
    finally:
        shop.pasarela.close()
        sys.modules.pop("django_shop_under_test", None)
