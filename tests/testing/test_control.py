"""The shared control routes, driven over loopback HTTP on a toy sandbox."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import httpx
import pytest

from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox


def test_the_index_lists_knobs_counts_and_every_route(toy: ServedSandbox) -> None:
    toy.http.post("/v1/items")
    index = toy.control("GET", "").json()
    assert index["sandbox"] == "toy"
    assert index["counts"] == {"items": 1, "webhooks": 0, "held": 0}
    assert index["calls"] == {"create": 1}
    assert index["knobs"]["max_items"] == 10
    routes = "\n".join(index["routes"])
    for path in ("/_control/config", "/_control/clock", "/_control/faults",
                 "/_control/webhooks", "/_control/webhooks/flush", "/_control/webhooks/replay",
                 "/_control/reset", "/_control/items/{id}/ship"):
        assert path in routes


def test_config_reads_sets_and_refuses_naming_the_knob(toy: ServedSandbox) -> None:
    assert toy.control("GET", "/config").json()["latency"] == 0.0
    assert toy.config(latency=0.01, max_items=3)["max_items"] == 3
    assert toy.sandbox.knobs.latency == 0.01
    refused = toy.control("POST", "/config", json={"max_items": -1})
    assert refused.status_code == 400
    assert refused.json() == {"error": "max_items: must be a whole number from 0, not -1"}
    assert toy.control("POST", "/config", content=b"[1]").status_code == 400


def test_latency_is_added_after_the_work(toy: ServedSandbox) -> None:
    toy.config(latency=0.3)
    with pytest.raises(httpx.ReadTimeout):
        toy.http.post("/v1/items", timeout=0.1)
    assert len(toy.sandbox.items) == 1  # done, but the answer came too late


def test_the_clock_advances_and_sets(toy: ServedSandbox) -> None:
    before = datetime.fromisoformat(toy.control("GET", "/clock").json()["now"])
    moved = toy.post("/clock", advance=3600)
    assert moved["offset"] == 3600
    assert datetime.fromisoformat(moved["now"]) - before >= timedelta(hours=1)
    item = toy.http.post("/v1/items").json()
    assert datetime.fromisoformat(item["created"]) - before >= timedelta(hours=1)
    target = toy.post("/clock", set="2031-01-01T00:00:00-05:00")["now"]
    assert target.startswith("2031-01-01T05:00:00")
    assert toy.control("POST", "/clock", json={"set": "2031-01-01T00:00:00"}).status_code == 400
    assert toy.control("POST", "/clock", json={"advance": "soon"}).status_code == 400


def test_one_shot_faults_and_the_fail_knobs(toy: ServedSandbox) -> None:
    toy.fault("create", "500", times=2)
    assert [toy.http.post("/v1/items").status_code for _ in range(3)] == [500, 500, 201]
    toy.config(fail_next=1)
    assert [toy.http.post("/v1/items").status_code for _ in range(2)] == [500, 201]
    toy.config(fail_rate=1.0)
    assert toy.http.post("/v1/items").status_code == 500
    assert toy.sandbox.calls["create"] == 6
    assert len(toy.sandbox.items) == 2
    toy.config(fail_rate=0.0)
    toy.fault("create", "hang_after", seconds=5)
    with pytest.raises(httpx.ReadTimeout):
        toy.http.post("/v1/items", timeout=0.2)
    assert len(toy.sandbox.items) == 3  # done, then the answer was held
    bad = toy.control("POST", "/faults", json={"operation": "refund", "kind": "500"})
    assert bad.json()["error"].startswith("operation: unknown operation 'refund'")
    bad = toy.control("POST", "/faults", json={"operation": "create", "kind": "500", "times": 0})
    assert bad.json()["error"] == "times: must be at least 1, not 0"


def test_webhooks_log_flush_and_replay(toy: ServedSandbox,
                                       pasarela_receiver: WebhookReceiver) -> None:
    toy.config(webhook_url=pasarela_receiver.url)
    item = toy.http.post("/v1/items").json()["id"]
    (sent,) = toy.post(f"/items/{item}/ship")["webhooks"]
    assert sent["status"] == "delivered"  # a control call answers once it is delivered
    assert len(pasarela_receiver.deliveries) == 1
    toy.config(hold_webhooks=True)
    (held,) = toy.post(f"/items/{item}/ship")["webhooks"]
    assert held["status"] == "held"
    assert toy.control("GET", "/webhooks").json()["held"] == 1
    (flushed,) = toy.post("/webhooks/flush")["webhooks"]
    assert flushed["status"] == "delivered"
    (again,) = toy.post("/webhooks/replay", event_id=sent["event_id"])["webhooks"]
    assert again["duplicate"]
    assert again["status"] == "delivered"
    bodies = pasarela_receiver.bodies
    assert bodies[0] == bodies[2]
    assert json.loads(bodies[1])["item"]["state"] == "shipped"
    assert [d["status"] for d in toy.webhooks()] == ["delivered"] * 3
    missing = toy.control("POST", "/webhooks/replay", json={"event_id": "ev_nope"})
    assert missing.status_code == 404


def test_delayed_webhooks_are_waited_for_only_on_request(
    toy: ServedSandbox, pasarela_receiver: WebhookReceiver
) -> None:
    toy.config(webhook_url=pasarela_receiver.url, delay_webhooks=0.3)
    item = toy.http.post("/v1/items").json()["id"]
    started = time.monotonic()
    (sent,) = toy.post(f"/items/{item}/ship")["webhooks"]
    assert sent["status"] == "scheduled"
    assert pasarela_receiver.deliveries == []
    (logged,) = toy.webhooks()  # ?wait=1: after the deliveries under way
    assert logged["status"] == "delivered"
    assert time.monotonic() - started >= 0.3


def test_reset_goes_back_to_the_start(toy_factory: object, pasarela_sandbox: object) -> None:
    served = pasarela_sandbox(toy_factory, seed=3, max_items=4)  # type: ignore[operator]
    served.config(max_items=9, fail_next=5)
    served.http.post("/v1/items")
    served.post("/clock", advance=60)
    served.fault("create", "500")
    assert served.post("/reset") == {"reset": True}
    index = served.control("GET", "").json()
    assert index["knobs"]["max_items"] == 4  # as created, not the default
    assert index["knobs"]["fail_next"] == 0
    assert index["counts"]["items"] == 0
    assert index["faults"] == []
    assert index["calls"] == {"create": 0}
    assert served.control("GET", "/clock").json()["offset"] == 0
