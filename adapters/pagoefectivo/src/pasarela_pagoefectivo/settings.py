"""PagoEfectivo settings: the ``[providers.pagoefectivo]`` table of ``pasarela.toml``.

Validators raise :class:`pasarela.errors.ValidationError` naming the setting (the
configuration loader reports it as ``providers.pagoefectivo.<key>``). Every key of
:class:`pasarela.provider.ProviderSettings` applies (``environment``,
``base_url``, ``timeout``, ``max_retries``, ``expiry``, ``min_amount``,
``max_amount``, ``fees``, ``webhook_secrets``), plus PagoEfectivo's credentials and
request options. ``secret_key`` signs the authorization hash *and* the payment
notifications (PE spec v1.1 §5.1.1 and §5.2); extra ``webhook_secrets`` are
accepted on notifications while a key is being rotated.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Final

import attrs

from pasarela.errors import ConfigurationError, ValidationError
from pasarela.provider import ProviderSettings


__all__ = ["BASE_URLS", "LANGUAGES", "ORIGINS", "PagoEfectivoSettings"]

#: PE spec v1.1 §4.1 (integration) and §4.2 (production).
BASE_URLS: Final = {
    "sandbox": "https://pre1a.services.pagoefectivo.pe",
    "production": "https://services.pagoefectivo.pe",
}
#: ``Accept-Language`` values of the spec.
LANGUAGES: Final = ("es-PE", "en-US")
#: ``Origin`` values of the spec.
ORIGINS: Final = ("web", "android", "ios")

_PATH = "providers.pagoefectivo"
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _required_text(name: str, max_len: int | None = None) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("is required", field=name)
        if max_len is not None and len(value) > max_len:
            raise ValidationError(f"at most {max_len} characters", field=name)

    return check


def _admin_email(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # adminEmail: AN 1-100 (PE spec v1.1 §5.1.2); a setting, so refused at load.
    if value is None:
        return
    if not isinstance(value, str) or not _EMAIL.match(value) or len(value) > 100:
        raise ValidationError("must be an email address of at most 100 characters",
                              field="admin_email")


def _service_id(value: object) -> int:
    # idService is N(4), sent as a JSON number.
    if isinstance(value, bool):
        raise ValidationError("must be a number", field="service_id")
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise ValidationError(f"must be a number, got {value!r}", field="service_id") from None
    if not 1 <= number <= 9999:
        raise ValidationError("must have 1 to 4 digits", field="service_id")
    return number


def _one_of(name: str, allowed: tuple[str, ...]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValidationError(f"must be one of {', '.join(allowed)}, got {value!r}", field=name)

    return check


def _positive(name: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValidationError("must be a positive integer", field=name)

    return check


@attrs.frozen(kw_only=True)
class PagoEfectivoSettings(ProviderSettings):
    """Settings of the PagoEfectivo adapter.

    Attributes:
        access_key: ``accessKey`` issued by PagoEfectivo (secret).
        secret_key: ``secretKey``; enters the authorization hash and signs
            notifications; never sent (secret).
        service_id: ``idService``, the merchant's service number (1 to 4 digits).
        language: ``Accept-Language`` sent on CIP requests: ``es-PE`` or ``en-US``.
        origin: ``Origin`` header of a CIP creation: ``web``, ``android`` or ``ios``.
        admin_email: ``adminEmail``, a merchant address that gets a copy of each CIP
            email; optional.
        token_refresh_margin: a cached token is renewed this long before its
            ``tokenExpires``.
        search_batch_size: CIPs per ``/v1/cips/search`` request (reconciling, get_many).
    """

    access_key: str = attrs.field(
        repr=False, metadata={"secret": True}, validator=_required_text("access_key", 100)
    )
    secret_key: str = attrs.field(
        repr=False, metadata={"secret": True}, validator=_required_text("secret_key")
    )
    service_id: int = attrs.field(converter=_service_id)
    language: str = attrs.field(default="es-PE", validator=_one_of("language", LANGUAGES))
    origin: str = attrs.field(default="web", validator=_one_of("origin", ORIGINS))
    admin_email: str | None = attrs.field(default=None, validator=_admin_email)
    token_refresh_margin: timedelta = timedelta(minutes=5)
    search_batch_size: int = attrs.field(default=50, validator=_positive("search_batch_size"))

    @property
    def api_base(self) -> str:
        """``base_url`` if set, else PagoEfectivo's host for ``environment``."""
        if self.base_url:
            return self.base_url.rstrip("/")
        try:
            return BASE_URLS[self.environment]
        except KeyError:
            raise ConfigurationError(
                f"no base_url and unknown environment {self.environment!r} "
                f"(one of {', '.join(BASE_URLS)})",
                path=f"{_PATH}.environment",
            ) from None

    def notification_secrets(self) -> tuple[str, ...]:
        """Keys a notification's ``PE-Signature`` may be made with, current first."""
        return (self.secret_key, *(s for s in self.webhook_secrets if s and s != self.secret_key))
