"""Reading ``pasarela.toml``.

The file is read with :mod:`tomllib` and structured with cattrs into frozen attrs
classes. TOML is typed, so values are not coerced: ``service_id = "1028"`` is an
error where an integer is expected. A few strings are converted:

- ``"env:NAME"`` anywhere: the value of the environment variable ``NAME`` (then
  coerced to the field's type, so ``"env:SERVICE_ID"`` can fill an integer);
- durations ``"48h"``, ``"30m"``, ``"2d"``, ``"90s"`` (or ``"1h30m"``) for
  :class:`~datetime.timedelta` fields;
- amounts ``"PEN 0.50"`` for :class:`~pasarela.money.Money` fields;
- a lone string where a list of strings is expected (``webhook_secrets``).

Every error names its dotted path (``providers.pagoefectivo.service_id: expected an
integer``), all errors are collected into one :class:`InvalidConfigError`, and no
message or ``repr`` carries a secret.

Provider tables stay raw in :attr:`Config.providers` until the provider class is
known; :func:`structure_settings` (or :meth:`Config.provider_settings`) turns one
into the provider's :class:`~pasarela.provider.ProviderSettings` subclass.
"""

from __future__ import annotations

from pasarela.config.errors import InvalidConfigError
from pasarela.config.loading import check_config, load_config, merchant_from_table
from pasarela.config.sections import (
    DEFAULT_STORE_URL,
    CheckoutConfig,
    Config,
    EventsConfig,
    PluginsConfig,
    RouteConfig,
    StoreConfig,
)
from pasarela.config.sections import MerchantConfig as MerchantConfig
from pasarela.config.sections import PagesConfig as PagesConfig
from pasarela.config.sections import PrivacyConfig as PrivacyConfig
from pasarela.config.sections import WorkerConfig as WorkerConfig
from pasarela.config.structure import ENVIRONMENTS as ENVIRONMENTS
from pasarela.config.structure import S as S
from pasarela.config.structure import parse_duration, structure_settings


__all__ = [
    "DEFAULT_STORE_URL",
    "CheckoutConfig",
    "Config",
    "EventsConfig",
    "InvalidConfigError",
    "MerchantConfig",
    "PluginsConfig",
    "RouteConfig",
    "StoreConfig",
    "check_config",
    "load_config",
    "merchant_from_table",
    "parse_duration",
    "structure_settings",
]
