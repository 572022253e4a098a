"""Shared fixtures for the core and cross-package tests."""

from __future__ import annotations

# --- store fixtures (owned by the store; keep this block together) -------------------
#
# ``store`` is a fresh, migrated :class:`pasarela.store.Store`, once on SQLite (a file
# under tmp_path) and once on PostgreSQL (marker ``postgres``). Each PostgreSQL test
# gets its own schema ``pasarela_t_<hex>`` (selected with the libpq ``options``
# search_path), dropped afterwards, so parallel runs never collide. The server is
# ``PASARELA_TEST_POSTGRES_URL`` (default below); when it cannot be reached the test
# is skipped, except with ``CI=true``, where that is a failure.
import os
import secrets
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
import sqlalchemy as sa

from pasarela.store import Store
from pasarela.store.engine import normalize_url


DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return os.environ.get("PASARELA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@cache
def _postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (asked once per session)."""
    engine = sa.create_engine(
        normalize_url(postgres_base_url()),
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return " ".join(f"{type(exc.orig or exc).__name__}: {exc.orig or exc}".split())
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Skip (or, with CI=true, fail) the current test when PostgreSQL is unreachable."""
    reason = _postgres_unreachable()
    if reason is None:
        return
    url = normalize_url(postgres_base_url()).render_as_string(hide_password=True)
    message = (
        f"PostgreSQL test database {url} unreachable ({reason}); "
        "set PASARELA_TEST_POSTGRES_URL"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def postgres_schema_urls() -> Iterator[Callable[[], str]]:
    """Make store URLs, each on a fresh, empty schema (all dropped afterwards)."""
    require_postgres()
    base = normalize_url(postgres_base_url())
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    schemas: list[str] = []

    def make() -> str:
        schema = f"pasarela_t_{secrets.token_hex(6)}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_schema_url(postgres_schema_urls: Callable[[], str]) -> str:
    """A store URL whose search_path is a fresh, empty schema (dropped afterwards)."""
    return postgres_schema_urls()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pasarela.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty database, on each backend."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_schema_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store_factory(store_url: str) -> Iterator[Callable[..., Store]]:
    """Open (migrated) stores on the test's database; all are closed afterwards."""
    opened: list[Store] = []

    def make(*, upgrade: bool = True) -> Store:
        store = Store(store_url, upgrade=upgrade)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: Callable[..., Store]) -> Store:
    """A fresh, migrated store, on SQLite and on PostgreSQL."""
    return store_factory()


# --- end of store fixtures -----------------------------------------------------------


@pytest.fixture(autouse=True)
def _reset_pasarela_logging() -> Iterator[None]:
    """The CLI configures the ``pasarela`` logger; give every test the defaults back."""
    import logging

    logger = logging.getLogger("pasarela")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
