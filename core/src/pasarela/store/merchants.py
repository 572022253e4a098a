"""Merchants created at run time (``pasarela.merchants.create``): each one's
configuration, kept as JSON, sealed with the store's :class:`~pasarela.store.sealing.Sealer`
(``[privacy] keys``) when one is configured, so a secret given in clear is never
written in clear."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import sqlalchemy as sa

from pasarela.errors import ConfigurationError, ValidationError
from pasarela.store._base import StoreBase
from pasarela.store._rows import utc_now
from pasarela.store.schema import merchants


__all__ = ["Merchants"]


class Merchants(StoreBase):
    """The merchants' part of :class:`~pasarela.store.Store`."""

    def add_merchant(self, name: str, document: Mapping[str, Any]) -> None:
        """Keep merchant *name*'s configuration *document* (sealed when the store has
        a sealer). Raises ``ValidationError`` (field ``name``) when *name* is taken."""
        sealed = self.sealer is not None
        text = (self.sealer.seal(document) if self.sealer is not None
                else json.dumps(document, sort_keys=True))
        now = utc_now()
        with self._begin(write=True) as conn:
            taken = conn.execute(sa.select(merchants.c.name)
                                 .where(merchants.c.name == name)).first()
            if taken is not None:
                raise ValidationError(f"merchant {name!r} exists already", field="name")
            conn.execute(merchants.insert().values(name=name, document=text, sealed=sealed,
                                                   created_at=now, updated_at=now))

    def has_merchants_table(self) -> bool:
        """Whether the store's schema keeps merchants (a store not yet upgraded past
        migration 0007 has none, and so no merchant made at run time)."""
        with self._begin() as conn:
            return sa.inspect(conn).has_table("merchants")

    def stored_merchants(self) -> dict[str, dict[str, Any]]:
        """Every merchant created at run time: name to its configuration document.

        Raises ``ConfigurationError`` (naming ``privacy.keys``) for a sealed one that
        no configured key opens."""
        return {name: document() for name, document in self.stored_merchant_documents().items()}

    def stored_merchant_documents(self) -> dict[str, Callable[[], dict[str, Any]]]:
        """As :meth:`stored_merchants`, in one query, each document decoded (and
        unsealed) only when its function is called: a deployment of thousands of
        merchants starts without decoding them all."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(merchants.c.name, merchants.c.document,
                                          merchants.c.sealed)
                                .order_by(merchants.c.name)).all()
        return {name: partial(self._document, name, text, sealed)
                for name, text, sealed in rows}

    def _document(self, name: str, text: str, sealed: bool) -> dict[str, Any]:
        if not sealed:
            return dict(json.loads(text))
        if self.sealer is None:
            raise ConfigurationError(
                f"privacy.keys: merchant {name!r} is sealed and no key is configured",
                path="privacy.keys")
        return dict(self.sealer.open(text))
