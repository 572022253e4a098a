"""The runner behind ``pasarela sandbox NAME`` and ``python -m pasarela_x.sandbox``:
it binds, prints the banner, and serves the sandbox."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from pasarela_pagoefectivo.api import auth_hash, lima_timestamp

from pasarela.errors import ConfigurationError, ProviderNotFoundError
from pasarela.testing.sandbox.runner import load_factory, make_app, parse_options, run


@contextmanager
def started(command: Sequence[str]) -> Iterator[tuple[str, list[str]]]:
    """Run *command*; yield the URL from its banner's first line and the banner."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert " sandbox at http://" in first, first + (proc.stderr.read() if proc.stderr
                                                         else "")
        lines = [first.rstrip("\n")]
        while not lines[-1].startswith("Ctrl+C"):
            lines.append(proc.stdout.readline().rstrip("\n"))
        yield first.rsplit(" ", 1)[1].strip(), lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_pasarela_sandbox_serves_what_its_banner_says() -> None:
    command = [sys.executable, "-c", "from pasarela.cli import main; main()",
               "sandbox", "pagoefectivo", "--port", "0", "--option", "latency=0.01"]
    with started(command) as (url, banner):
        assert url.startswith("http://127.0.0.1:")
        start = banner.index("Credentials (public test values; only this sandbox accepts them):")
        block = banner[start + 1:banner.index("", start)]
        shown = dict(line.split(None, 1) for line in block)
        assert set(shown) == {"access_key", "secret_key", "service_id"}
        secret = shown["secret_key"].split("  (")[0]
        stamp = lima_timestamp(datetime.now(UTC))
        token = httpx.post(f"{url}/v1/authorizations", json={
            "accessKey": shown["access_key"], "idService": int(shown["service_id"]),
            "dateRequest": stamp,
            "hashString": auth_hash(int(shown["service_id"]), shown["access_key"], secret,
                                    stamp),
        })
        assert token.status_code == 201, token.text
        assert httpx.get(f"{url}/_control/config").json()["latency"] == 0.01


def test_python_m_serves_a_sandbox_with_its_webhook_url() -> None:
    hook = "http://127.0.0.1:8000/webhooks/stripe"
    command = [sys.executable, "-m", "pasarela_stripe.sandbox", "--port", "0",
               "--webhook-url", hook]
    with started(command) as (url, banner):
        assert f"Webhooks go to {hook}" in banner
        assert httpx.get(f"{url}/_control/config").json()["webhook_url"] == hook
        refused = httpx.post(f"{url}/v1/payment_intents", content=b"amount=1500")
        assert refused.status_code == 401  # the Stripe API itself, not a stub


def test_a_bad_option_is_refused_before_serving() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pasarela_yape.sandbox", "--port", "0", "--option",
         "latency=-1"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "latency: must be at least 0 seconds" in result.stderr


def test_options_parse_as_json_else_text() -> None:
    assert parse_options(["latency=0.2", "strict=false", "max_amount=PEN 5000",
                          "yape-max=100", "webhook_url="]) == {
        "latency": 0.2, "strict": False, "max_amount": "PEN 5000", "yape_max": 100,
        "webhook_url": ""}
    with pytest.raises(ConfigurationError, match="KNOB=VALUE"):
        parse_options(["latency"])


def test_factories_come_from_the_installed_providers() -> None:
    app = make_app(load_factory("yape"), webhook_url="http://127.0.0.1:1/hook",
                   options={"delay_webhooks": 2})
    assert app.state.sandbox.name == "yape"
    assert app.state.sandbox.knobs.webhook_url == "http://127.0.0.1:1/hook"
    assert app.state.sandbox.knobs.delay_webhooks == 2.0
    with pytest.raises(ProviderNotFoundError):
        run("nowhere-pay", port=0)


def test_the_command_names_what_is_wrong() -> None:
    from click.testing import CliRunner

    from pasarela.cli.commands import main

    result = CliRunner().invoke(main, ["sandbox", "nowhere-pay", "--port", "0"])
    assert result.exit_code != 0
    assert "nowhere-pay" in result.output
    bad = CliRunner().invoke(main, ["sandbox", "yape", "--port", "0", "--option", "latency"])
    assert bad.exit_code != 0
    assert "KNOB=VALUE" in bad.output
