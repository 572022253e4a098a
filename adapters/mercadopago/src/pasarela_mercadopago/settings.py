"""Settings of the Mercado Pago provider: the keys of ``[providers.mercadopago]``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError
from pasarela.provider import ProviderSettings


__all__ = ["DEFAULT_BASE_URL", "DEFAULT_FEES", "MercadoPagoSettings"]

DEFAULT_BASE_URL: Final = "https://api.mercadopago.com"

#: The fee schedule used when ``fees`` is not configured: an ASSUMPTION, not a quote.
#: Mercado Pago Peru publishes its rates per product and term on its pricing page
#: (a percentage plus a fixed part, IGV added); no source this project could check
#: gives the Checkout API rates, so these are round placeholders an operator replaces
#: with the rates of their contract (README, "Fees").
DEFAULT_FEES: Final[Mapping[str, Any]] = {
    "percent": "3.99", "fixed": "PEN 1.00", "igv": True,
    "cash": {"percent": "3.99", "fixed": "PEN 1.00"},
    "wallet": {"percent": "3.99", "fixed": "PEN 0.00"},
}

_PATH = "providers.mercadopago"
#: What may go into an HTTP header as is: printable ASCII, no space.
_HEADER_SAFE: Final = re.compile(r"^[\x21-\x7e]+$")


def _positive(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError("must be a positive number of seconds",
                                 path=f"{_PATH}.{attribute.name}")


def _default_fees() -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in DEFAULT_FEES.items()}


@attrs.frozen(kw_only=True)
class MercadoPagoSettings(ProviderSettings):
    """``[providers.mercadopago]``.

    Attributes:
        access_token: the application's Access Token (``TEST-...`` for test
            credentials, ``APP_USR-...`` for production), sent as ``Bearer``.
        public_key: the application's Public Key: it creates Yape tokens
            (``/platforms/pci/yape/v1/payment?public_key=``), as MercadoPago.js does.
        base_url: Mercado Pago's API, or the local sandbox's address.
        webhook_secrets: the application's webhook secret (several while rotating).
        webhook_tolerance: how many seconds a notification's ``ts`` may be off.
        notification_url: where Mercado Pago notifies (``source_news=webhooks`` is
            appended so that only Webhooks, not IPN, arrive).
        statement_descriptor: what the card statement shows.
    """

    access_token: str = attrs.field(repr=False, metadata={"secret": True})
    public_key: str = ""
    base_url: str = DEFAULT_BASE_URL
    webhook_tolerance: int = attrs.field(default=300, validator=_positive)
    notification_url: str | None = None
    statement_descriptor: str | None = None
    fees: Mapping[str, Any] = attrs.field(factory=_default_fees)

    def __attrs_post_init__(self) -> None:
        token = self.access_token
        if not isinstance(token, str) or not token.startswith(("TEST-", "APP_USR-")):
            raise ConfigurationError("must be a Mercado Pago access token (TEST-... or "
                                     "APP_USR-...)", path=f"{_PATH}.access_token")
        # Checked here, so building headers cannot fail later with the token in a frame.
        if not _HEADER_SAFE.match(token):
            raise ConfigurationError("must be printable ASCII without spaces",
                                     path=f"{_PATH}.access_token")
        if self.public_key and not _HEADER_SAFE.match(self.public_key):
            raise ConfigurationError("must be printable ASCII without spaces",
                                     path=f"{_PATH}.public_key")
        if self.environment == "production" and token.startswith("TEST-"):
            raise ConfigurationError("environment is production but the token is a test "
                                     "token (TEST-...)", path=f"{_PATH}.access_token")
