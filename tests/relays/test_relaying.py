"""The relay contract in the core, with an in-memory relay, on SQLite and PostgreSQL:
marks per relay only after an acknowledgement, a relay that is down lets its events
wait, retries on the backoff, per-payment order across claims."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from pasarela.config import load_config
from pasarela.engine import relaying
from pasarela.engine.relaying import RelayDispatcher, build_relays, start_relays
from pasarela.errors import ConfigurationError
from pasarela.events import LifecycleEvent
from pasarela.plugins import get_plugin_manager
from pasarela.relays import Ack, Relay, RelayRegistry, RelaySettings, decode_event, hookimpl
from pasarela.retry import Backoff
from pasarela.secret import Secret
from pasarela.store import Store
from tests.relays.outbox_rows import write_events


class MemoryRelay(Relay):
    type = "memory"

    def __init__(self, settings: RelaySettings) -> None:
        super().__init__(settings)
        self.received: list[LifecycleEvent] = []
        self.down = False
        self.refuse: set[str] = set()

    async def publish(self, events: Sequence[LifecycleEvent]) -> Sequence[Ack]:
        if self.down:
            raise ConnectionError(f"cannot reach {self.settings.url}")
        acks = []
        for event in events:
            ok = event.id not in self.refuse
            if ok:
                self.received.append(event)
            acks.append(Ack(event_id=event.id, ok=ok, error="" if ok else "nack"))
        return acks


def _relay(name: str, batch_size: int = 50) -> MemoryRelay:
    return MemoryRelay(RelaySettings(name=name, type="memory", url=Secret("mem://u:pw@h"),
                                     batch_size=batch_size))


@pytest.fixture
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relaying, "RELAY_RETRY", Backoff(base=0.0, cap=0.0, jitter=0.0))


def test_each_relay_marks_only_what_its_broker_acknowledged(
        store: Store, store_url: str, no_wait: None) -> None:
    write_events(store_url, payments=30, per_payment=3)
    up, down = _relay("up"), _relay("down")
    down.down = True
    dispatcher = RelayDispatcher(store, [up, down])
    assert dispatcher.run() == 90
    assert len({e.id for e in up.received}) == 90
    now = datetime.now(UTC)
    assert store.relay_lag("up", now=now)[0] == 0
    # The broker that is down: nothing dropped, everything waits (visible as lag).
    assert store.relay_lag("down", now=now)[0] == 90
    down.down = False
    total = 0
    for _ in range(10):
        total += dispatcher.run()
        if total == 90:
            break
    assert total == 90
    assert len({e.id for e in down.received}) == 90
    assert store.relay_lag("down", now=datetime.now(UTC))[0] == 0
    dispatcher.close()


def test_a_refused_event_is_retried_and_holds_back_its_payment(
        store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = write_events(store_url, payments=2, per_payment=3)
    relay = _relay("r")
    first = str(rows[0]["id"])  # payment 0's first event
    relay.refuse = {first}
    dispatcher = RelayDispatcher(store, [relay])
    dispatcher.run()
    got = {e.id for e in relay.received}
    assert first not in got
    # Its payment's later events were not handed out after it (it waits on a retry).
    assert {str(r["id"]) for r in rows if r["payment_id"] == rows[0]["payment_id"]} & got \
        == set()
    assert {str(r["id"]) for r in rows if r["payment_id"] == rows[1]["payment_id"]} <= got
    relay.refuse = set()
    monkeypatch.setattr(relaying, "RELAY_RETRY", Backoff(base=0.0, cap=0.0, jitter=0.0))
    # The retry time was set with the real backoff (about a second): not due yet.
    assert dispatcher.run() == 0
    store.mark_relay_failed("r", [(first, "test: due now", datetime.now(UTC))])
    assert dispatcher.run() == 3
    order = [e.id for e in relay.received if e.payment_id == rows[0]["payment_id"]]
    assert order == [str(r["id"]) for r in rows if r["payment_id"] == rows[0]["payment_id"]]
    dispatcher.close()


def test_claims_never_hand_out_a_later_event_of_a_held_payment(
        store: Store, store_url: str) -> None:
    rows = write_events(store_url, payments=3, per_payment=2)
    lease = timedelta(seconds=30)
    now = datetime.now(UTC)
    first = store.claim_relay("r", now=now, limit=2, lease=lease)
    assert [e.id for e in first] == [str(rows[0]["id"]), str(rows[1]["id"])]
    # Another worker: payment 2's first event, not the second events of 0 and 1.
    second = store.claim_relay("r", now=now, limit=10, lease=lease)
    assert [e.id for e in second] == [str(rows[2]["id"])]
    assert store.claim_relay("r", now=now, limit=10, lease=lease) == []
    store.mark_relayed("r", [e.id for e in first], now=now)
    third = store.claim_relay("r", now=now, limit=10, lease=lease)
    assert [e.id for e in third] == [str(rows[3]["id"]), str(rows[4]["id"])]
    # A lease that ran out hands the events out again (at least once).
    later = now + lease + timedelta(seconds=1)
    again = store.claim_relay("r", now=later, limit=10, lease=lease)
    assert {e.id for e in again} == {str(rows[2]["id"]), str(rows[3]["id"]),
                                     str(rows[4]["id"])}


def test_events_written_after_the_first_claim_are_queued(store: Store, store_url: str) -> None:
    write_events(store_url, payments=2, per_payment=1)
    relay = _relay("r")
    dispatcher = RelayDispatcher(store, [relay])
    assert dispatcher.run() == 2
    # An event whose transaction committed late, stamped before the newest one seen.
    write_events(store_url, payments=1, per_payment=1, start=7,
                 at=datetime.now(UTC) - timedelta(minutes=2))
    assert dispatcher.run() == 1
    assert dispatcher.run() == 0
    dispatcher.close()


def test_relay_errors_never_show_the_url(store: Store, store_url: str, no_wait: None,
                                         caplog: pytest.LogCaptureFixture) -> None:
    write_events(store_url, payments=1, per_payment=1)
    relay = _relay("r")
    relay.down = True
    dispatcher = RelayDispatcher(store, [relay])
    dispatcher.run()
    assert "pw" not in caplog.text
    dispatcher.close()


def test_relays_from_configuration() -> None:
    registry = RelayRegistry()
    registry.add(MemoryRelay)
    config = load_config({"relays": [{"type": "memory", "url": "env:U", "batch_size": 7,
                                      "lease": "5s"}]}, env={"U": "mem://x:secret@h"})
    [relay] = build_relays(config, registry)
    assert relay.settings.batch_size == 7
    assert relay.settings.lease == timedelta(seconds=5)
    assert "secret" not in repr(config)
    assert "secret" not in repr(relay.settings)
    two = load_config({"relays": [{"type": "memory", "url": "x"},
                                  {"type": "memory", "url": "y"}]})
    with pytest.raises(ConfigurationError, match="two relays"):
        build_relays(two, registry)
    unknown = load_config({"relays": [{"type": "carrier-pigeon", "url": "x"}]})
    with pytest.raises(ConfigurationError, match="carrier-pigeon"):
        build_relays(unknown, registry)


def test_a_relay_plugin_registers_through_the_hook(store: Store) -> None:
    class Plugin:
        @hookimpl
        def pasarela_register_relays(self, register: RelayRegistry) -> None:
            register.add(MemoryRelay)

    plugins = get_plugin_manager(env={"PASARELA_LOAD_PLUGINS": ""})
    plugins.register(Plugin(), name="memory-relay")
    config = load_config({"relays": [{"type": "memory", "url": "x"}]})
    dispatcher = start_relays(config, store, plugins)
    assert dispatcher is not None
    assert [type(r) for r in dispatcher.relays] == [MemoryRelay]
    dispatcher.close()


def test_the_message_body_carries_the_event() -> None:
    from pasarela.money import Money
    from pasarela.relays import encode_event

    event = LifecycleEvent(id="01J0000000000000000000000A", type="payment.succeeded",
                           payment_id="pay1", order_reference="o-1", provider="fake",
                           status="succeeded", amount=Money(1050, "PEN"),
                           occurred_at=datetime(2026, 1, 2, tzinfo=UTC), payload={"k": 1})
    body = decode_event(encode_event(event))
    assert body["id"] == event.id
    assert body["payment_id"] == "pay1"
    assert body["amount"] == {"minor": 1050, "currency": "PEN"}


_: Callable[..., object] = write_events


@pytest.mark.postgres
def test_a_burst_of_events_is_claimed_quickly_on_postgresql(postgres_schema_url: str) -> None:
    # 10,000 events queued by one claim: with the table's statistics left as they were
    # (empty), PostgreSQL planned the claim's select for a handful of rows and took
    # 10 to 20 seconds per claim here; refreshed, it takes a few milliseconds.
    store = Store(postgres_schema_url, upgrade=True)
    try:
        write_events(postgres_schema_url, payments=2500, per_payment=4)
        started = time.monotonic()
        claimed = store.claim_relay("r", now=datetime.now(UTC), limit=500,
                                    lease=timedelta(seconds=30))
        elapsed = time.monotonic() - started
    finally:
        store.close()
    assert len(claimed) == 500
    assert elapsed < 3.0, f"the first claim of a burst took {elapsed:.1f} s"
