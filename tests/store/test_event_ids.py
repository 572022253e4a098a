"""Outbox event ids of a write batch: ULIDs of the batch's millisecond, counted up from
one random draw (ULID's monotonic form), unique and in the order written."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from ulid import ULID

from pasarela.lifecycle import Cause, Status
from pasarela.store import outbox

from .conftest import new_payment


def test_ids_are_ulids_of_the_batch_time_in_order() -> None:
    now = datetime(2026, 12, 2, 13, 30, 5, 123_456, tzinfo=UTC)
    ids = list(itertools.islice(outbox.event_ids(now), 2_000))
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    for value in ids[:3] + ids[-3:]:
        ulid = ULID.from_str(value)
        assert str(ulid) == value
        assert ulid.milliseconds == int(now.timestamp() * 1000)
    first = int(ULID.from_str(ids[0]))
    assert [int(ULID.from_str(v)) - first for v in ids[:4]] == [0, 1, 2, 3]


def test_counting_carries_past_the_low_half(monkeypatch) -> None:
    # a draw whose low 40 bits are the last two: the third id carries into the high half
    drawn = ((12_345 << 40) | ((1 << 40) - 2)) << 1
    monkeypatch.setattr(outbox.os, "urandom", lambda n: drawn.to_bytes(n, "big"))
    now = datetime(2026, 12, 2, tzinfo=UTC)
    ids = list(itertools.islice(outbox.event_ids(now), 4))
    values = [int(ULID.from_str(v)) for v in ids]
    assert values == [values[0] + i for i in range(4)]
    assert [str(ULID.from_int(v)) for v in values] == ids


def test_a_batch_writes_distinct_event_ids(store) -> None:
    created = [store.create_payment(new_payment(), fingerprint="f")[0] for _ in range(3)]
    with store.batch() as batch:
        for payment in created:
            batch.transition(payment.id, expected_version=payment.version,
                             target=Status.PENDING, cause=Cause.API,
                             event_type="payment.pending")
    events = store.claim_outbox(now=datetime.now(UTC), limit=100)
    mine = [e.id for e in events if e.payment_id in {p.id for p in created}
            and e.type == "payment.pending"]
    assert len(mine) == 3 == len(set(mine))
    assert all(str(ULID.from_str(e)) == e for e in mine)
