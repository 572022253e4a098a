"""Settings of the Stripe provider: the keys of ``[providers.stripe]`` in pasarela.toml."""

from __future__ import annotations

import re
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError
from pasarela.provider import ProviderSettings


__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "StripeSettings"]

#: The Stripe API version every request pins (``Stripe-Version``): the version of
#: the OpenAPI spec the adapter is tested against.
API_VERSION = "2023-08-16"
DEFAULT_BASE_URL = "https://api.stripe.com"

_PATH = "providers.stripe"
#: What may go into an HTTP header as is: printable ASCII, no space.
_HEADER_SAFE: Final = re.compile(r"^[\x21-\x7e]+$")
#: ``2023-08-16``, or with a release name (``2024-09-30.acacia``).
_VERSION: Final = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")


def _positive(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError("must be a positive number of seconds",
                                 path=f"{_PATH}.{attribute.name}")


def _descriptor_suffix(
    instance: Any, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None and not (1 <= len(value) <= 22):
        raise ConfigurationError("must have 1 to 22 characters", path=f"{_PATH}.{attribute.name}")


@attrs.frozen(kw_only=True)
class StripeSettings(ProviderSettings):
    """``[providers.stripe]``.

    Attributes:
        api_key: the secret key (``sk_test_...`` in the sandbox environment,
            ``sk_live_...`` in production; restricted ``rk_`` keys work too).
        base_url: Stripe's API, or the local sandbox's address.
        api_version: the ``Stripe-Version`` header sent with every request.
        webhook_secrets: the endpoint signing secrets (``whsec_...``); several
            while one is rolled.
        webhook_tolerance: how many seconds a signed timestamp may be off, in the
            past or the future.
        return_url: where 3-D Secure sends the customer back (redirect flows).
        statement_descriptor_suffix: what the customer's statement shows after the
            account's prefix.
    """

    api_key: str = attrs.field(repr=False, metadata={"secret": True})
    base_url: str = DEFAULT_BASE_URL
    api_version: str = API_VERSION
    webhook_tolerance: int = attrs.field(default=300, validator=_positive)
    return_url: str | None = None
    statement_descriptor_suffix: str | None = attrs.field(
        default=None, validator=_descriptor_suffix
    )

    def __attrs_post_init__(self) -> None:
        key = self.api_key
        if not isinstance(key, str) or not key.startswith(("sk_", "rk_")):
            raise ConfigurationError(
                "must be a Stripe secret key (sk_... or rk_...)", path=f"{_PATH}.api_key"
            )
        # Checked here, so building a request's headers cannot fail later with the key
        # in that frame's local variables (the message never shows the key).
        if not _HEADER_SAFE.match(key):
            raise ConfigurationError("must be printable ASCII without spaces (as Stripe's "
                                     "keys are)", path=f"{_PATH}.api_key")
        if not isinstance(self.api_version, str) or not _VERSION.match(self.api_version):
            raise ConfigurationError("must be a Stripe API version such as 2023-08-16",
                                     path=f"{_PATH}.api_version")
        live = key.startswith(("sk_live_", "rk_live_"))
        if self.environment == "production" and not live:
            raise ConfigurationError(
                "environment is production but the key is not a live key",
                path=f"{_PATH}.api_key",
            )
        if self.environment != "production" and live:
            raise ConfigurationError(
                f"a live key is refused in the {self.environment!r} environment",
                path=f"{_PATH}.api_key",
            )
