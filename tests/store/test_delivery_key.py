"""A delivery is unique per provider, event key and payment (migration 0005), on
both writers and both stores; the migration carries the recorded deliveries over."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import pasarela.store as store_package
from pasarela.model import Payment
from pasarela.store import Delivery, Store
from pasarela.store import schema as t

from .conftest import Writes


def _delivery(payment_id: str | None, event_id: str = "evt-1") -> Delivery:
    return Delivery(provider="fake", event_id=event_id, event_type="paid", outcome="applied",
                    payment_id=payment_id)


def test_one_event_key_is_recorded_once_per_payment(write: Writes, store: Store,
                                                    created: Payment) -> None:
    other = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    with write() as writer:
        assert writer.record_delivery(_delivery(created.id))
        assert writer.record_delivery(_delivery(other))       # the key collides: kept
        assert writer.record_delivery(_delivery(None))        # for no known payment
        assert not writer.record_delivery(_delivery(created.id))  # a true repeat
        assert not writer.record_delivery(_delivery(None))
        assert writer.delivered_for("fake", "evt-1") == {created.id, other, ""}
        assert writer.seen_delivery("fake", "evt-1", created.id)
        assert not writer.seen_delivery("fake", "evt-1", "01HYYYYYYYYYYYYYYYYYYYYYYY")
    assert store.delivered_for("fake", "evt-1") == {created.id, other, ""}
    assert store.delivered_for("fake", "evt-2") == frozenset()
    with write() as writer:
        assert not writer.record_delivery(_delivery(other))  # recorded before it began


def _migrate(url: str, revision: str) -> None:
    config = Config()
    location = Path(store_package.__file__).with_name("migrations")
    config.set_main_option("script_location", str(location).replace("%", "%%"))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def test_migration_0005_keys_recorded_deliveries_by_their_payment(store_url: str) -> None:
    from pasarela.store.engine import normalize_url  # the URL as the store rewrites it

    url = normalize_url(store_url).render_as_string(hide_password=False)
    _migrate(url, "0004")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO webhook_deliveries (provider, event_id, event_type, payment_id, "
                "outcome, detail, received_at) VALUES ('fake', 'evt-1', 'paid', "
                "'01HAAAAAAAAAAAAAAAAAAAAAAA', 'applied', '', CURRENT_TIMESTAMP), "
                "('fake', 'evt-2', 'paid', NULL, 'unknown_payment', '', CURRENT_TIMESTAMP)"))
    finally:
        engine.dispose()
    with Store(store_url, upgrade=True) as store:
        assert store.migrations()[0] == store.migrations()[1]
        assert store.delivered_for("fake", "evt-1") == {"01HAAAAAAAAAAAAAAAAAAAAAAA"}
        assert store.delivered_for("fake", "evt-2") == {""}
        assert not store.record_delivery(_delivery("01HAAAAAAAAAAAAAAAAAAAAAAA"))
        assert not store.record_delivery(_delivery(None, "evt-2"))
        assert store.record_delivery(_delivery("01HBBBBBBBBBBBBBBBBBBBBBBB"))
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(
                t.webhook_deliveries)).scalar_one() == 3
