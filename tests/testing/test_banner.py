"""The start-up banner: URL, credentials, webhooks, control routes, pasarela.toml."""

from __future__ import annotations

import tomllib
from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from pasarela.testing.sandbox import banner, toml_table


def snippet(text: str) -> dict[str, object]:
    """The TOML the banner shows after "In pasarela.toml:", parsed."""
    block = text.split("In pasarela.toml:\n", 1)[1].split("\n\nCtrl+C", 1)[0]
    parsed: dict[str, object] = tomllib.loads("\n".join(line[2:] for line in block.splitlines()))
    return parsed


def test_the_banner_shows_url_credentials_routes_and_config(
    toy_factory: Callable[..., Starlette]
) -> None:
    app = toy_factory()
    text = banner(app.state.sandbox, "http://127.0.0.1:8899", app.state.control)
    assert text.startswith("Toy Payments sandbox at http://127.0.0.1:8899\n")
    assert "api_key         toy_test_0123456789" in text
    assert "webhook_secret  toy-webhook-secret" in text
    assert "--webhook-url http://127.0.0.1:8000/webhooks/toy" in text
    for route in ("/_control/config", "/_control/webhooks/flush", "/_control/items/{id}/ship"):
        assert route in text
    assert snippet(text) == {"providers": {"toy": {
        "environment": "sandbox", "base_url": "http://127.0.0.1:8899",
        "api_key": "toy_test_0123456789", "webhook_secret": "toy-webhook-secret"}}}


def test_the_banner_says_where_webhooks_go(toy_factory: Callable[..., Starlette]) -> None:
    app = toy_factory(webhook_url="http://127.0.0.1:8000/webhooks/toy")
    text = banner(app.state.sandbox, "http://127.0.0.1:1")
    assert "Webhooks go to http://127.0.0.1:8000/webhooks/toy" in text
    assert "recorded, not sent" not in text


@pytest.mark.parametrize(("name", "credentials"), [
    ("pagoefectivo", {"access_key": "PESANDBOXACCESSKEY01", "service_id": 1028,
                      "secret_key": "sandbox-secret-key-do-not-use-in-production"}),
    ("yape", {"public_key": "pk_test_pasarela_sandbox",
              "secret_key": "sk_test_pasarela_sandbox"}),
    ("stripe", {"api_key": "sk_test_pasarela_sandbox",
                "webhook_secrets": ["whsec_pasarela_sandbox"]}),
])
def test_every_adapter_sandbox_shows_its_credentials(name: str,
                                                    credentials: dict[str, object]) -> None:
    from pasarela.testing.sandbox.runner import load_factory

    app = load_factory(name)()
    text = banner(app.state.sandbox, "http://127.0.0.1:8800", app.state.control)
    table = snippet(text)["providers"][name]  # type: ignore[index]
    assert table == {"environment": "sandbox", "base_url": "http://127.0.0.1:8800",
                     **credentials}
    for value in credentials.values():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        assert f"  {shown}" in text.split("Webhooks")[0]  # in the credentials block


def test_toml_values() -> None:
    table = toml_table("x", {"s": 'a "quoted" ñ', "n": 3, "f": 0.5, "b": True,
                             "l": ["p", "q"]})
    assert tomllib.loads(table)["providers"]["x"] == {
        "s": 'a "quoted" ñ', "n": 3, "f": 0.5, "b": True, "l": ["p", "q"]}
    assert table.startswith("[providers.x]\n")
