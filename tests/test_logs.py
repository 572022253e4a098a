"""The library's logs: standard logging, silent by default, masked before any handler."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from pasarela.logs import get_logger, mask_fields


SECRETS = ("sk_live_abc", "s3cr3t", "45678912", "987654321", "rosa@example.pe", "whsec_x")


def test_fields_are_masked_and_secrets_removed() -> None:
    out = mask_fields({
        "api_key": "sk_live_abc",
        "phone": "+51987654321",
        "email": "rosa@example.pe",
        "document": ["DNI", "45678912"],
        "nested": {"secret_key": "s3cr3t", "userPhone": "987654321"},
        "note": "paid by rosa@example.pe",
        "otp": 123456,
        "provider": "pagoefectivo",
        "attempts": 3,
    })
    text = repr(out)
    for secret in (*SECRETS, "123456"):
        assert secret not in text
    assert out["provider"] == "pagoefectivo"
    assert out["attempts"] == 3
    assert out["phone"] == "***321"
    assert out["email"] == "r***@example.pe"
    assert out["note"] == "paid by r***@example.pe"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False)


# A host's process: an operation that logs at every level, a failure with a secret in
# a local variable of the frame that raised, and an event naming a customer.
LOGS_SOMETHING = """
from pasarela.logs import get_logger
log = get_logger("pasarela.engine")
def deliver(secrets=("whsec_x",)):
    raise ValueError("refused for rosa@example.pe")
log.debug("debug_event", email="rosa@example.pe")
log.info("payment_transition", payment_id="p1", email="rosa@example.pe", api_key="sk_live_abc")
log.warning("webhook_rejected", provider="stripe", document="45678912")
try:
    deliver()
except ValueError:
    log.exception("webhook_failed", provider="stripe")
"""


def test_a_host_that_configures_nothing_sees_nothing() -> None:
    result = _run(LOGS_SOMETHING)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_basic_config_shows_masked_key_value_events() -> None:
    result = _run("import logging\nlogging.basicConfig(level=logging.INFO)\n" + LOGS_SOMETHING)
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "payment_transition payment_id=p1 email=r***@example.pe api_key=[redacted]" in err
    assert "webhook_rejected provider=stripe document=****912" in err
    assert "webhook_failed provider=stripe error='ValueError: refused for r***@example.pe'" in err
    assert "debug_event" not in err
    for secret in SECRETS:
        assert secret not in err
    assert "Traceback" not in err  # a stack of file:line, never frames with their locals


def test_a_level_set_on_pasarela_is_obeyed() -> None:
    result = _run("import logging\nlogging.basicConfig(level=logging.DEBUG)\n"
                  "logging.getLogger('pasarela').setLevel(logging.CRITICAL)\n" + LOGS_SOMETHING)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_structlog_host_gets_the_same_masked_events() -> None:
    result = _run(textwrap.dedent("""
        import logging, structlog
        handler = logging.StreamHandler()
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.ExtraAdder()]))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    """) + LOGS_SOMETHING)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    transition = next(e for e in events if e["pasarela"]["event"] == "payment_transition")
    assert transition["pasarela"] == {"event": "payment_transition", "payment_id": "p1",
                                      "email": "r***@example.pe", "api_key": "[redacted]"}
    for secret in SECRETS:
        assert secret not in result.stderr


def test_records_carry_the_masked_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pasarela")
    get_logger("pasarela.test").info("payment_created", payment_id="p1",
                                     email="rosa@example.pe")
    [record] = [r for r in caplog.records if r.name == "pasarela.test"]
    assert record.pasarela == {"event": "payment_created", "payment_id": "p1",  # type: ignore[attr-defined]
                               "email": "r***@example.pe"}
    assert record.getMessage() == "payment_created payment_id=p1 email=r***@example.pe"
    assert record.funcName == "test_records_carry_the_masked_fields"  # the caller's line


def test_the_cli_renders_json_lines_without_locals(capsys: pytest.CaptureFixture[str]) -> None:
    from pasarela.cli.output import configure_logging

    configure_logging(json=True)
    try:
        log = get_logger("pasarela.web")

        def fail(secret: str = "whsec_x") -> None:  # noqa: S107 - a local to keep out
            raise RuntimeError("bad signature")

        try:
            fail()
        except RuntimeError:
            log.exception("webhook_failed", provider="stripe")
    finally:
        for handler in list(logging.getLogger("pasarela").handlers):
            if not isinstance(handler, logging.NullHandler):
                logging.getLogger("pasarela").removeHandler(handler)
        logging.getLogger("pasarela").setLevel(logging.NOTSET)
    [line] = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["event"] == "webhook_failed"
    assert event["level"] == "error"
    assert event["error"] == "RuntimeError: bad signature"
    assert any("in fail" in frame for frame in event["stack"])
    assert "whsec_x" not in line
