"""Secret settings are masked in any repr, so a traceback's local variables never show them."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import traceback

from pasarela.config.structure import structure_settings
from pasarela.secret import Secret, seal
from pasarela.testing.fake import FakeSettings


def test_a_secret_is_its_text_for_use_and_masked_in_repr() -> None:
    secret = Secret("whsec_abcdefgh")
    assert secret == "whsec_abcdefgh"
    assert f"{secret}" == "whsec_abcdefgh"
    assert hmac.new(secret.encode(), b"x", hashlib.sha256).digest() == hmac.new(
        b"whsec_abcdefgh", b"x", hashlib.sha256).digest()
    assert repr(secret) == "'***'"
    assert "whsec" not in repr((secret, [secret], {"k": secret}))
    again = pickle.loads(pickle.dumps(secret))  # noqa: S301 (our own bytes)
    assert isinstance(again, Secret)
    assert again == secret


def test_seal_wraps_strings_lists_and_tuples_only() -> None:
    assert isinstance(seal("a"), Secret)
    assert all(isinstance(v, Secret) for v in seal(("a", "b")))
    assert seal(None) is None
    assert seal(3) == 3


def test_configured_secret_fields_never_show_in_a_traceback_with_locals() -> None:
    settings = structure_settings(
        "fake", {"api_key": "env:FAKE_KEY", "webhook_secrets": ["whsec_one_secret_value"]},
        FakeSettings, env={"FAKE_KEY": "sk_live_do_not_print_me"})
    assert settings.api_key == "sk_live_do_not_print_me"
    assert isinstance(settings.api_key, Secret)
    assert all(isinstance(v, Secret) for v in settings.webhook_secrets)

    def verify(secrets: tuple[str, ...], key: str) -> None:
        raise ValueError("signature does not match")

    try:
        verify(settings.webhook_secrets, settings.api_key)
    except ValueError as exc:
        text = "".join(traceback.TracebackException.from_exception(
            exc, capture_locals=True).format())
    assert "secrets = ('***',)" in text  # the frame's locals were printed, masked
    assert "sk_live_do_not_print_me" not in text
    assert "whsec_one_secret_value" not in text
    assert "sk_live_do_not_print_me" not in repr(settings)
