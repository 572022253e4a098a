"""pasarela-dlocal: dLocal for pasarela (cards, PagoEfectivo, bank transfers and Yape in
Peru, charged in soles or US dollars), with a local sandbox.

Installed, it registers the ``dlocal`` provider through the ``pasarela`` entry point
group::

    [providers.dlocal]
    x_login = "env:DLOCAL_X_LOGIN"
    x_trans_key = "env:DLOCAL_X_TRANS_KEY"
    secret_key = "env:DLOCAL_SECRET_KEY"
    currency_to_charge = "USD"      # optional: charge PEN prices in dollars
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pasarela.hookspecs import hookimpl
from pasarela_dlocal.errors import ERROR_CODES, REJECTIONS
from pasarela_dlocal.provider import DlocalProvider, RefundBank
from pasarela_dlocal.settings import API_VERSION, DlocalSettings


if TYPE_CHECKING:
    from pathlib import Path

    from pasarela.registry import ProviderRegistry


__all__ = [
    "API_VERSION",
    "ERROR_CODES",
    "REJECTIONS",
    "SETTLEMENT_MAPPING",
    "DlocalProvider",
    "DlocalSettings",
    "RefundBank",
    "pasarela_register_providers",
]

#: The CSV mapping of dLocal's "Settlement - Cross-border Payins Model" report, for
#: ``pasarela reconcile --provider dlocal --file REPORT.csv --mapping ...`` (dLocal
#: documents no API for it: the report comes by e-mail or SFTP). See the README for
#: what of it is unverified. (A Path, made when first read: pathlib is not discovery's.)
SETTLEMENT_MAPPING: Path


def __getattr__(name: str) -> Any:
    if name == "SETTLEMENT_MAPPING":
        from pathlib import Path  # noqa: PLC0415

        return Path(__file__).with_name("settlement.toml")
    raise AttributeError(f"module 'pasarela_dlocal' has no attribute {name!r}")


@hookimpl
def pasarela_register_providers(register: ProviderRegistry) -> None:
    """Register :class:`DlocalProvider`."""
    register.add(DlocalProvider)
