"""A mixed storm over HTTP: valid deliveries (with repeats), forged ones and signed
pathological ones, concurrently through the server's group commit, on SQLite and
PostgreSQL. 2xx exactly for the valid ones; every payment ends exactly once in its state.

``PASARELA_STORM_PAYMENTS`` scales it (default 60); the figures are printed with ``-s``.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from pasarela.lifecycle import Status
from pasarela.store.schema import transitions
from pasarela.testing.fake import FakeGateway, sign_fake_webhook
from pasarela.web.app import create_app

from .conftest import make_order
from .test_asgi import client_for


PAYMENTS = int(os.environ.get("PASARELA_STORM_PAYMENTS", "60"))
MAX_BODY = 65536
Delivery = tuple[str, dict[str, str], bytes]


def _pathological(index: int) -> bytes:
    """Validly signed bodies that are not events the provider could have sent."""
    bodies = [
        b"[" * 5000 + b"]" * 5000,                                   # deeper than recursion
        json.dumps({"id": {"x": 1}, "type": 7, "data": []}).encode(),  # wrong types
        b'{"id": "evt_x", "type": "payment.succeeded", "data": ',    # truncated
        b"\xff\xfe not utf-8 \x00",                                   # not text
        b"",                                                          # empty
        json.dumps({"id": "evt_" + "9" * 5000, "type": "payment.succeeded",
                    "data": {"id": "fp_1", "status": "succeeded",
                             "amount": int("9" * 400), "currency": "PEN"}}).encode(),
        json.dumps({"id": "evt_nul\u0000", "type": "payment.succeeded",
                    "data": {"id": "fp_\u0000", "status": "succeeded", "amount": 1,
                             "currency": "PEN"}}).encode(),
        b" " * (MAX_BODY + 1),                                        # over the limit
    ]
    return bodies[index % len(bodies)]


def _forged(headers: dict[str, str], body: bytes, stamp: int, index: int) -> Delivery:
    kind = index % 4
    if kind == 0:  # tampered signature
        signature = headers["Fake-Signature"]
        return ("tampered", {**headers, "Fake-Signature": signature[:-6] + "abcdef"}, body)
    if kind == 1:  # another secret
        return ("other-secret", sign_fake_webhook(body, "whsec_attacker", stamp), body)
    if kind == 2:  # an hour old, correctly signed with the real secret: a replay
        return ("stale", sign_fake_webhook(body, "whsec_fake_123", stamp - 3600), body)
    return ("unsigned", {"Content-Type": "application/json"}, body)


def _storm(gateway: FakeGateway, refs: list[str], seed: int) -> list[tuple[str, Delivery]]:
    rng = random.Random(seed)
    stamp = int(gateway.clock().timestamp())
    valid = [gateway.settle(ref) for ref in refs]
    out: list[tuple[str, Delivery]] = [("valid", ("fake", h, b)) for h, b in valid]
    out += [("valid", ("fake", h, b)) for h, b in rng.sample(valid, len(valid) // 3)]
    for i in range(len(refs) // 2):
        headers, body = rng.choice(valid)
        _kind, forged_headers, forged_body = _forged(headers, body, stamp, i)
        out.append(("forged", ("fake", forged_headers, forged_body)))
    for i in range(len(refs) // 2):
        body = _pathological(i)
        out.append(("pathological", ("fake", sign_fake_webhook(body, "whsec_fake_123", stamp),
                                     body)))
    rng.shuffle(out)
    return out


async def _run(p: Any, gateway: FakeGateway, url: str) -> None:
    refs = [(await p.pay(make_order(f"storm-{i}"), method="cash",
                         idempotency_key=f"storm-{i}")).provider_reference
            for i in range(PAYMENTS)]
    storm = _storm(gateway, refs, seed=PAYMENTS)
    answers: list[tuple[str, int]] = []
    limit = anyio.CapacityLimiter(16)  # sixteen connections at once
    started = time.perf_counter()
    async with client_for(create_app(p, max_body=MAX_BODY)) as client:

        async def post(kind: str, delivery: Delivery) -> None:
            _, headers, body = delivery
            async with limit:
                response = await client.post("/webhooks/fake", headers=headers, content=body)
            answers.append((kind, response.status_code))

        async with anyio.create_task_group() as tg:
            for kind, delivery in storm:
                tg.start_soon(post, kind, delivery)
    elapsed = time.perf_counter() - started
    by_kind: dict[str, Counter[int]] = {}
    for kind, code in answers:
        by_kind.setdefault(kind, Counter())[code] += 1
    print(f"\nstorm on {p.service.store.dialect}: {len(answers)} deliveries in {elapsed:.2f} s "
          f"({len(answers) / elapsed:.0f}/s): "
          + ", ".join(f"{kind} {dict(sorted(codes.items()))}" for kind, codes in
                      sorted(by_kind.items())))
    assert set(by_kind["valid"]) == {200}, by_kind
    assert all(400 <= code < 500 for code in by_kind["forged"]), by_kind
    assert all(400 <= code < 500 for code in by_kind["pathological"]), by_kind
    assert sum(by_kind["valid"].values()) == PAYMENTS + PAYMENTS // 3
    for ref in refs:
        payment = p.service.store.find_payment(provider="fake", provider_reference=ref)
        assert payment is not None
        assert payment.status is Status.SUCCEEDED
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            moves = conn.execute(
                sa.select(transitions.c.payment_id, sa.func.count())
                .where(transitions.c.target == "succeeded", transitions.c.applied.is_(True))
                .group_by(transitions.c.payment_id)).all()
    finally:
        engine.dispose()
    assert len(moves) == PAYMENTS
    assert {count for _, count in moves} == {1}  # never applied twice


@pytest.mark.anyio
async def test_a_mixed_storm_gets_2xx_exactly_for_the_valid_deliveries(
        make_async, gateway, sqlite_url):
    await _run(make_async(), gateway, sqlite_url)


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_mixed_storm_on_postgresql(make_async, gateway, postgres_schema_url):
    await _run(make_async(url=postgres_schema_url), gateway, postgres_schema_url)
