"""The optional parts of pasarela, and the one error when a part is used without them.

``pip install pasarela`` is the library, the SQLite store and the ``pasarela`` command.
The rest comes with an extra of the ``pasarela`` distribution (the adapters have a
``sandbox`` extra of their own)::

    pip install 'pasarela[server]'     # pasarela serve, create_app: webhooks, pages, /metrics
    pip install 'pasarela[sandbox]'    # the sandbox toolkit, pasarela sandbox NAME
    pip install 'pasarela[postgres]'   # the PostgreSQL store (psycopg 3)
    pip install 'pasarela[django]'     # the Django webhook view
    pip install 'pasarela[testing]'    # the pytest plugin's fixtures, ProviderConformance

A part used without its extra raises :class:`MissingExtraError`, a
:class:`ModuleNotFoundError` (so ``except ImportError`` still catches it) whose message
names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Final


__all__ = ["EXTRAS", "MissingExtraError", "require"]

#: What each extra of the ``pasarela`` distribution makes work.
EXTRAS: Final[dict[str, str]] = {
    "server": "the webhook server, the payment page, the console and /metrics",
    "sandbox": "the sandbox toolkit and `pasarela sandbox NAME`",
    "postgres": "the PostgreSQL store",
    "django": "the Django webhook view",
    "testing": "the pytest plugin's fixtures and the conformance suite",
}


class MissingExtraError(ModuleNotFoundError):
    """*feature* was used, but a module of *extra* is not installed.

    ``str(error)`` is ``"<feature> needs the '<extra>' extra: pip install
    '<distribution>[<extra>]'"``; ``name`` is the missing module when known.
    """

    def __init__(self, feature: str, extra: str, *, name: str | None = None,
                 distribution: str = "pasarela") -> None:
        self.feature = feature
        self.extra = extra
        self.distribution = distribution
        super().__init__(
            f"{feature} needs the {extra!r} extra: pip install '{distribution}[{extra}]'",
            name=name)


def require(extra: str, feature: str, *modules: str) -> None:
    """Import each of *modules*, or raise :class:`MissingExtraError` naming *extra*."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(feature, extra, name=exc.name or module) from exc
