"""The Yape provider's settings: the ``[providers.yape]`` table of ``pasarela.toml``.

```toml
[providers.yape]
environment = "sandbox"              # or "production"
acquirer = "culqi"                   # who carries the Yape payment (only Culqi for now)
base_url = "http://127.0.0.1:8802"   # Culqi API host; empty: https://api.culqi.com
secure_url = ""                      # Culqi tokens host; empty: base_url, or https://secure.culqi.com
public_key = "env:CULQI_PUBLIC_KEY"  # pk_test_... / pk_live_...
secret_key = "env:CULQI_SECRET_KEY"  # sk_test_... / sk_live_...
checkout_script_url = ""             # Culqi's Custom Checkout script; empty: see below
expiry = "15m"                       # QR order validity and the wait for an approval code
max_amount = "PEN 500.00"
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from pasarela.errors import ValidationError
from pasarela.provider import ProviderSettings, imported_on_use


if TYPE_CHECKING:
    import httpx
else:
    httpx = imported_on_use("httpx", globals())


__all__ = ["CULQI_API_URL", "CULQI_CHECKOUT_URL", "CULQI_SECURE_URL", "YapeSettings"]

CULQI_API_URL = "https://api.culqi.com"
CULQI_SECURE_URL = "https://secure.culqi.com"
#: Culqi's Custom Checkout script (Checkout v4, ``checkout.culqi.com/js/v4``, is being
#: retired): it draws the wallet QR of an order (README, "Verified against").
CULQI_CHECKOUT_URL = "https://js.culqi.com/checkout-js"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _key(prefix: str, field: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not (
            value.startswith((f"{prefix}_test_", f"{prefix}_live_"))
        ):
            # Never echo the value: it may be a secret.
            raise ValidationError(
                f"must be a Culqi key starting with {prefix}_test_ or {prefix}_live_",
                field=field,
            )

    return check


def _known_acquirer(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    from pasarela_yape.acquirer import ACQUIRERS  # noqa: PLC0415 (acquirer imports settings)

    if value not in ACQUIRERS:
        raise ValidationError(
            f"unknown acquirer {value!r}; one of {', '.join(sorted(ACQUIRERS))}",
            field="acquirer",
        )


@attrs.frozen(kw_only=True)
class YapeSettings(ProviderSettings):
    """Credentials and hosts of the acquirer that carries Yape payments.

    Attributes:
        public_key: Culqi public key (``pk_test_``/``pk_live_``), used for Yape tokens.
        secret_key: Culqi secret key (``sk_test_``/``sk_live_``), used for charges,
            orders and refunds. Secret: kept out of ``repr`` and scrubbed from records.
        acquirer: which acquirer implementation carries the payments (``culqi``).
        secure_url: the tokens host; empty means ``base_url`` when that is set (the
            sandbox serves both), else ``https://secure.culqi.com``.
        checkout_script_url: the checkout script the customer page loads for a wallet
            QR order; empty means the sandbox's stand-in (``{base_url}/checkout-js``)
            when ``base_url`` is on loopback, else Culqi's Custom Checkout
            (:data:`CULQI_CHECKOUT_URL`).
    """

    public_key: str = attrs.field(validator=_key("pk", "public_key"))
    secret_key: str = attrs.field(
        repr=False, metadata={"secret": True}, validator=_key("sk", "secret_key")
    )
    acquirer: str = attrs.field(default="culqi", validator=_known_acquirer)
    secure_url: str = ""
    checkout_script_url: str = ""

    def __attrs_post_init__(self) -> None:
        live = "_live_" in self.public_key or "_live_" in self.secret_key
        test = "_test_" in self.public_key or "_test_" in self.secret_key
        if live and test:
            raise ValidationError(
                "public_key and secret_key must both be test keys or both live keys",
                field="secret_key",
            )
        if (self.environment == "production") != live:
            raise ValidationError(
                "production needs live keys (pk_live_/sk_live_) and live keys need "
                f"environment = \"production\" (it is {self.environment!r})",
                field="environment",
            )

    @property
    def api_url(self) -> str:
        return (self.base_url or CULQI_API_URL).rstrip("/")

    @property
    def tokens_url(self) -> str:
        return (self.secure_url or self.base_url or CULQI_SECURE_URL).rstrip("/")

    @property
    def checkout_url(self) -> str:
        """The checkout script for a wallet QR order (see ``checkout_script_url``)."""
        if self.checkout_script_url:
            return self.checkout_script_url
        if self.base_url and httpx.URL(self.base_url).host in _LOOPBACK:
            return f"{self.api_url}/checkout-js"
        return CULQI_CHECKOUT_URL

    @property
    def live(self) -> bool:
        return self.secret_key.startswith("sk_live_")
