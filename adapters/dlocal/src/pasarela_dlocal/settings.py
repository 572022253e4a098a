"""Settings of the dLocal provider: the keys of ``[providers.dlocal]`` in pasarela.toml."""

from __future__ import annotations

import re
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError
from pasarela.provider import ProviderSettings


__all__ = ["API_VERSION", "DEFAULT_BASE_URL", "SANDBOX_BASE_URL", "DlocalSettings"]

#: The ``X-Version`` header every request sends (docs.dlocal.com/reference/payins-security).
API_VERSION: Final = "2.1"
DEFAULT_BASE_URL: Final = "https://api.dlocal.com"
SANDBOX_BASE_URL: Final = "https://sandbox.dlocal.com"

_PATH = "providers.dlocal"
#: What an HTTP header can carry as is: printable ASCII, no space.
_HEADER_SAFE: Final = re.compile(r"^[\x21-\x7e]+$")
_CHARGE: Final = ("USD",)
_BANKS: Final = ("BC", "IO")


def _header_safe(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    # Checked here, so building a request's headers cannot fail later with a key in
    # that frame's local variables (the message never shows the value).
    if not isinstance(value, str) or not value or not _HEADER_SAFE.match(value):
        raise ConfigurationError("must be printable ASCII without spaces",
                                 path=f"{_PATH}.{attribute.name}")


def _charge(instance: Any, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and value not in _CHARGE:
        raise ConfigurationError(f"must be one of {', '.join(_CHARGE)} or unset (charge in "
                                 "the order's currency)", path=f"{_PATH}.{attribute.name}")


def _bank(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in _BANKS:
        raise ConfigurationError(f"must be one of {', '.join(_BANKS)} (BCP or another bank)",
                                 path=f"{_PATH}.{attribute.name}")


@attrs.frozen(kw_only=True)
class DlocalSettings(ProviderSettings):
    """``[providers.dlocal]``.

    Attributes:
        x_login, x_trans_key: the API credentials sent as ``X-Login`` and ``X-Trans-Key``.
        secret_key: signs every request (``V2-HMAC-SHA256``); with *webhook_secrets*,
            the keys a notification's signature may match (several while one is rolled).
        currency_to_charge: ``"USD"`` charges the customer in US dollars for an order
            priced in soles (dLocal converts; its rate is recorded on the payment's next
            action); unset charges in the order's currency. A ``pay(...,
            currency_to_charge=...)`` parameter overrides it for one payment.
        bank: the bank-transfer method: ``BC`` (BCP) or ``IO`` (another bank).
        notification_url: where dLocal POSTs the payment on each change (unset: the URL
            configured in dLocal's dashboard).
    """

    x_login: str = attrs.field(validator=_header_safe)
    x_trans_key: str = attrs.field(repr=False, metadata={"secret": True},
                                   validator=_header_safe)
    secret_key: str = attrs.field(repr=False, metadata={"secret": True},
                                  validator=_header_safe)
    base_url: str = DEFAULT_BASE_URL
    currency_to_charge: str | None = attrs.field(default=None, validator=_charge)
    bank: str = attrs.field(default="BC", validator=_bank)
    notification_url: str | None = None

    def signing_keys(self) -> tuple[str, ...]:
        """The keys a notification may be signed with: the secret key first, then the
        webhook secrets (a key being rolled), without repeats."""
        keys = [self.secret_key, *self.webhook_secrets]
        return tuple(dict.fromkeys(k for k in keys if k))
