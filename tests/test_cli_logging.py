"""The command's log handler: other libraries' lines (uvicorn's) are masked like pasarela's,
and an error never prints a traceback's local variables, in either format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from pasarela.cli import output
from pasarela.cli.output import configure_logging
from pasarela.logs import get_logger


SECRET = "whsec_this_must_never_be_printed"


class _Err:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def getvalue(self) -> str:
        return self.capsys.readouterr().err


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[_Err]:
    # An in-process uvicorn run earlier in the session may have set its own loggers'
    # levels; these tests see what the command's configuration alone does.
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield _Err(capsys)
    for name in ("pasarela", "uvicorn"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, output._CliHandler)]:
            logger.removeHandler(handler)
    logging.getLogger("uvicorn").propagate = True


def _fail_with_a_secret_in_a_local() -> None:
    secrets = (SECRET,)  # noqa: F841 (a frame's local, as in a webhook verifier)
    raise ValueError("cannot deliver to ana.quispe@example.pe")


def _log_foreign_error() -> None:
    try:
        _fail_with_a_secret_in_a_local()
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")


@pytest.mark.parametrize("as_json", [True, False])
def test_a_foreign_error_line_is_masked_and_has_no_locals(stderr: _Err,
                                                          as_json: bool) -> None:
    configure_logging(json=as_json, also=("uvicorn",))
    _log_foreign_error()
    text = stderr.getvalue()
    assert SECRET not in text
    assert "secrets =" not in text
    assert "ana.quispe@example.pe" not in text
    assert "ValueError: cannot deliver to" in text
    assert "_fail_with_a_secret_in_a_local" in text  # the stack: file, line, function
    if as_json:
        line = json.loads(text.strip().splitlines()[-1])
        assert line["logger"] == "uvicorn.error"
        assert line["level"] == "error"
        assert line["event"] == "Exception in ASGI application"
        assert line["error"].startswith("ValueError: cannot deliver to")
        assert any("_fail_with_a_secret_in_a_local" in frame for frame in line["stack"])


def test_pasarela_events_keep_their_fields_beside_foreign_lines(stderr: _Err) -> None:
    configure_logging(json=True, also=("uvicorn",))
    get_logger("pasarela.test").warning("webhook_rejected", provider="stripe", email="a@b.pe")
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    first, second = (json.loads(line) for line in stderr.getvalue().splitlines())
    assert first["event"] == "webhook_rejected"
    assert first["provider"] == "stripe"
    assert first["email"] != "a@b.pe"
    assert second == {**second, "logger": "uvicorn.error", "event": "Started server process [1]"}


def test_configuring_twice_keeps_one_handler(stderr: _Err) -> None:
    configure_logging(also=("uvicorn",))
    configure_logging(json=True, also=("uvicorn",))
    logging.getLogger("uvicorn.error").warning("once")
    assert len(stderr.getvalue().splitlines()) == 1
