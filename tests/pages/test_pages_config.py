"""The pages are switched on by the configuration's [pages] section (env: secrets)."""

from __future__ import annotations

from datetime import timedelta

from pasarela.config import load_config
from pasarela.web.pay_page import PageSettings


def test_pages_section_with_env_secrets():
    config = load_config({"pages": {"page_secret": "env:PAGE", "admin_token": "env:ADMIN",
                                    "stale_after": "2h", "poll_seconds": 3}},
                         env={"PAGE": "page-secret-123", "ADMIN": "admin-token-456"})
    settings = PageSettings.from_config(config.pages, environ={})
    assert settings.page_secret == "page-secret-123"
    assert settings.admin_token == "admin-token-456"
    assert settings.stale_after == timedelta(hours=2)
    assert settings.poll_seconds == 3
    assert "page-secret-123" not in repr(config)


def test_without_a_section_the_environment_decides():
    config = load_config({})
    assert PageSettings.from_config(config.pages, environ={}).page_secret is None
    from_env = PageSettings.from_config(config.pages, environ={"PASARELA_PAGE_SECRET": "x"})
    assert from_env.page_secret == "x"


def test_bad_pages_setting_names_its_path():
    import pytest

    from pasarela.config import InvalidConfigError

    with pytest.raises(InvalidConfigError, match=r"pages\.poll_seconds"):
        load_config({"pages": {"poll_seconds": "often"}})
