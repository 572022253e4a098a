"""Persistence: SQLAlchemy Core tables, Alembic migrations and the :class:`Store`."""

from __future__ import annotations

from pasarela.store.repository import Delivery, OutboxEvent, Store


__all__ = ["Delivery", "OutboxEvent", "Store"]
