"""The write batch (group commit) on both stores: it answers as the store would,
sees its own queued writes, and writes nothing until it ends."""

from __future__ import annotations

import attrs
import pytest

from pasarela.errors import ConcurrencyConflictError
from pasarela.lifecycle import Cause, Status
from pasarela.store import Delivery

from .conftest import new_payment


def test_the_batch_sees_its_own_writes(store):
    payment, _ = store.create_payment(new_payment(), fingerprint="f")
    with store.batch() as batch:
        current = batch.get_payment(payment.id)
        moved = batch.transition(payment.id, expected_version=current.version,
                                 target=Status.PENDING, cause=Cause.API,
                                 event_type="payment.pending",
                                 changes={"provider_reference": "ref-1"})
        assert batch.find_payment(provider=payment.provider,
                                  provider_reference="ref-1") == moved
        with pytest.raises(ConcurrencyConflictError):
            batch.transition(payment.id, expected_version=current.version,
                             target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                             event_type="payment.succeeded")
        done = batch.transition(payment.id, expected_version=moved.version,
                                target=Status.SUCCEEDED, cause=Cause.WEBHOOK,
                                event_type="payment.succeeded")
        assert batch.record_delivery(Delivery(provider="x", event_id="e1", event_type="t",
                                              outcome="ignored"))
        assert not batch.record_delivery(Delivery(provider="x", event_id="e1",
                                                  event_type="t", outcome="ignored"))
        # Nothing is written before the batch ends.
        assert store.get_payment(payment.id).version == payment.version
    stored = store.get_payment(payment.id, history=True)
    assert stored == attrs.evolve(done, history=stored.history)
    assert [(t.seq, t.target) for t in stored.history][-2:] == [
        (len(stored.history) - 1, Status.PENDING), (len(stored.history), Status.SUCCEEDED)]
    assert stored.provider_reference == "ref-1"
    assert store.seen_delivery("x", "e1")
