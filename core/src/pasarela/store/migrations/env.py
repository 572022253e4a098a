"""Alembic environment for the pasarela store.

Run programmatically by :meth:`pasarela.store.Store.upgrade`, which passes its own
connection in ``config.attributes["connection"]``. Without one (a developer running
``alembic`` by hand with ``-x url=...`` or ``sqlalchemy.url``), an engine is made
from the URL with the store's engine settings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from pasarela.store import reconcile_schema  # noqa: F401  (registers its tables on metadata)
from pasarela.store.engine import create_engine
from pasarela.store.schema import metadata


config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
