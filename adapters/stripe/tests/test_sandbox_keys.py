"""The sandbox invents nothing: every key of every answer and every event it sends is a
property its schema names in Stripe's OpenAPI spec (2023-08-16), at any depth, and its
objects carry every key Stripe's own fixtures for that version carry.

openapi-core's validation (``test_openapi.py``, the ``client`` fixture) lets unknown
keys through, because Stripe's schemas never say ``additionalProperties``; the key
check (``StripeSpec.invented_keys``) closes that gap, here for every endpoint and in
the ``client`` fixture for every exchange of every other test.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pasarela_stripe.sandbox import StripeSandbox

from .conftest import StripeSpec


KEY = "sk_test_pasarela_4eC39HqLyjWDarjtT1zdp7dc"
AUTH = {"Authorization": f"Bearer {KEY}"}
FORM = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}

#: The objects the sandbox makes, by the name of their schema and fixture.
OBJECTS = ("payment_intent", "charge", "refund", "balance_transaction", "event")


class Seen:
    """Every answer over the wire, each checked for invented keys as it arrives."""

    def __init__(self, spec: StripeSpec) -> None:
        self.spec = spec
        self.answers: list[tuple[str, httpx.Response]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        name = f"{request.method} {self.spec.path_pattern(request.method, request.url.path)}"
        self.answers.append((f"{name} {response.status_code}", response))

    def routes(self) -> set[str]:
        return {name for name, _ in self.answers}


def _drive(client: httpx.Client, url: str, sandbox: StripeSandbox) -> None:
    """Every endpoint, each in the states the adapter meets: successes, refusals,
    declines, 3-D Secure, pending and failed refunds, faults, the rate limit."""
    def post(path: str, body: str, key: str | None = None) -> httpx.Response:
        headers = {**FORM, **({"Idempotency-Key": key} if key else {})}
        return client.post(f"{url}{path}", content=body.encode(), headers=headers)

    def create(extra: str = "", key: str | None = None) -> dict[str, Any]:
        body = "amount=1500&currency=pen&payment_method_types[]=card&metadata[payment_id]=p1"
        answer: dict[str, Any] = post("/v1/payment_intents", body + extra, key).json()
        return answer

    paid = create("&payment_method=pm_card_visa&confirm=true&description=Aud%C3%ADfonos")
    open_ = create()
    client.get(f"{url}/v1/payment_intents/{open_['id']}", headers=AUTH)
    post(f"/v1/payment_intents/{open_['id']}/confirm", "payment_method=pm_card_chargeDeclined")
    post(f"/v1/payment_intents/{open_['id']}/confirm",
         "payment_method=pm_card_threeDSecure2Required&return_url=https://tienda.pe/v")
    post(f"/v1/payment_intents/{open_['id']}/cancel", "")
    post(f"/v1/payment_intents/{open_['id']}/cancel", "")  # 400 with the intent in it
    create("&payment_method=pm_card_authenticationRequired&confirm=true")
    create("&payment_method=pm_card_visa&confirm=true&capture_method=manual")
    create("&payment_method=pm_card_bogus&confirm=true")  # 400 resource_missing
    create("&payment_method=pm_card_chargeDeclinedInsufficientFunds&confirm=true")  # 402
    client.get(f"{url}/v1/payment_intents/search", headers=AUTH,
               params={"query": 'metadata["payment_id"]:"p1"', "limit": "2"})
    refund = post("/v1/refunds", f"payment_intent={paid['id']}&amount=100"
                  "&metadata[refund_id]=r1", key="refund:r1").json()
    sandbox.configure({"refund_status": "pending"})
    pending = post("/v1/refunds", f"payment_intent={paid['id']}&amount=100").json()
    httpx.post(f"{url}/_control/refunds/{pending['id']}/settle", json={"status": "failed"})
    post("/v1/refunds", f"payment_intent={paid['id']}&amount=999999")  # more than is left
    client.get(f"{url}/v1/refunds/{refund['id']}", headers=AUTH)
    client.get(f"{url}/v1/refunds/{pending['id']}", headers=AUTH)
    client.get(f"{url}/v1/refunds/re_missing", headers=AUTH)
    client.get(f"{url}/v1/refunds", headers=AUTH, params={"payment_intent": paid["id"],
                                                          "limit": "1"})
    client.get(f"{url}/v1/charges/{paid['latest_charge']}", headers=AUTH)
    client.get(f"{url}/v1/balance_transactions", headers=AUTH,
               params={"limit": "5", "expand[]": "data.source"})
    client.get(f"{url}/v1/balance_transactions", headers=AUTH)
    client.get(f"{url}/v1/events/{next(iter(sandbox.account.events))}", headers=AUTH)
    sandbox.knobs.update({"fail_next": 1})
    create()  # 500 api_error
    sandbox.knobs.update({"rate_limit_next": 1})
    create()  # 429 rate_limit


@pytest.fixture
def seen(stripe_spec: StripeSpec, client: httpx.Client, sandbox: StripeSandbox) -> Seen:
    recorder = Seen(stripe_spec)
    client.event_hooks["response"].append(recorder)
    _drive(client, sandbox.url, sandbox)  # type: ignore[attr-defined]
    return recorder


def test_every_endpoint_was_asked_in_success_and_error(seen: Seen) -> None:
    """The drive above reaches every route of the sandbox's API (so the checks below
    cover them all), and the error answers too."""
    routes = seen.routes()
    for expected in (
        "POST /v1/payment_intents 200", "POST /v1/payment_intents 402",
        "POST /v1/payment_intents 400", "POST /v1/payment_intents 500",
        "POST /v1/payment_intents 429", "GET /v1/payment_intents/{intent} 200",
        "POST /v1/payment_intents/{intent}/confirm 402",
        "POST /v1/payment_intents/{intent}/confirm 200",
        "POST /v1/payment_intents/{intent}/cancel 200",
        "POST /v1/payment_intents/{intent}/cancel 400",
        "GET /v1/payment_intents/search 200", "POST /v1/refunds 200", "POST /v1/refunds 400",
        "GET /v1/refunds/{refund} 200", "GET /v1/refunds/{refund} 404", "GET /v1/refunds 200",
        "GET /v1/charges/{charge} 200", "GET /v1/balance_transactions 200",
        "GET /v1/events/{id} 200",
    ):
        assert expected in routes


def test_no_answer_has_a_key_the_spec_does_not_name(seen: Seen) -> None:
    invented = {name: seen.spec.invented_in_response(r) for name, r in seen.answers}
    assert {name: keys for name, keys in invented.items() if keys} == {}


def _events(sandbox: StripeSandbox) -> list[dict[str, Any]]:
    return list(sandbox.account.events.values())


def test_no_event_has_a_key_the_spec_does_not_name(seen: Seen, sandbox: StripeSandbox,
                                                    stripe_spec: StripeSpec) -> None:
    """Each event as sent (its envelope; its ``data.object`` against the schema of the
    object it carries; ``previous_attributes`` against that object's properties)."""
    events = _events(sandbox)
    assert {e["type"] for e in events} >= {
        "payment_intent.created", "payment_intent.succeeded", "payment_intent.payment_failed",
        "payment_intent.requires_action", "payment_intent.canceled", "charge.succeeded",
        "charge.failed", "charge.refunded", "refund.updated",
        "payment_intent.amount_capturable_updated"}
    for event in events:
        body, _ = sandbox.signed(event)
        sent = json.loads(body)
        obj = sent["data"]["object"]
        found = stripe_spec.invented_keys("event", sent, event["type"])
        found += stripe_spec.invented_keys(obj["object"], obj, f"{event['type']}.data.object")
        previous = sent["data"].get("previous_attributes") or {}
        found += stripe_spec.invented_keys(obj["object"], previous,
                                           f"{event['type']}.data.previous_attributes")
        assert found == []


def _missing(fixture: Any, made: Any, where: str) -> list[str]:
    """Keys *fixture* has that *made* lacks, wherever both have an object."""
    if not (isinstance(fixture, dict) and isinstance(made, dict)):
        return []
    out = [f"{where}.{key}" for key in fixture if key not in made]
    for key, value in fixture.items():
        if key in made and key != "metadata":  # metadata is the caller's own
            out.extend(_missing(value, made[key], f"{where}.{key}"))
    return out


def test_objects_carry_every_key_stripes_fixtures_carry(
    seen: Seen, sandbox: StripeSandbox, stripe_fixtures: dict[str, Any]
) -> None:
    account = sandbox.account
    made: dict[str, list[dict[str, Any]]] = {
        "payment_intent": list(account.intents.values()),
        "charge": list(account.charges.values()),
        "refund": list(account.refunds.values()),
        "balance_transaction": list(account.balance_transactions.values()),
        "event": _events(sandbox),
    }
    for name in OBJECTS:
        assert made[name], name
        fixture = stripe_fixtures[name]
        if name == "event":  # the fixture's event carries a plan: compare the envelope
            fixture = {k: v for k, v in fixture.items() if k != "data"}
        for obj in made[name]:
            assert _missing(fixture, obj, name) == []


@pytest.mark.parametrize(("schema", "obj", "expected"), [
    pytest.param("payment_intent", {"id": "pi_1", "object": "payment_intent", "qr": "x"},
                 ["payment_intent.qr"], id="top-level"),
    pytest.param("payment_intent", {"object": "payment_intent", "next_action": {
        "type": "redirect_to_url", "redirect_to_url": {"url": "u", "qr": "x"}}},
        ["payment_intent.next_action.redirect_to_url.qr"], id="nested-anyof"),
    pytest.param("charge", {"object": "charge", "refunds": {
        "object": "list", "data": [{"object": "refund", "id": "re_1", "invented": 1}]}},
        ["charge.refunds.data[0].invented"], id="in-a-list"),
    pytest.param("balance_transaction", {"object": "balance_transaction", "source": {
        "object": "refund", "id": "re_1", "invented": 1}},
        ["balance_transaction.source.invented"], id="expanded-source"),
    pytest.param("payment_intent", {"object": "payment_intent", "metadata": {"any": "key"},
                                    "next_action": {"use_stripe_sdk": {"free": "form"}}},
                 [], id="free-form-objects"),
])
def test_the_key_check_catches_an_invented_key(stripe_spec: StripeSpec, schema: str,
                                               obj: dict[str, Any], expected: list[str]) -> None:
    assert stripe_spec.invented_keys(schema, obj) == expected


def test_the_wire_check_refuses_an_answer_with_an_invented_key(stripe_spec: StripeSpec,
                                                               stripe_fixtures: dict[str, Any],
                                                               wire: Any) -> None:
    fixture = stripe_fixtures["refund"]
    request = httpx.Request("GET", f"https://api.stripe.com/v1/refunds/{fixture['id']}",
                            headers=AUTH)
    wire.on_response(httpx.Response(200, json=fixture, request=request))  # genuine: fine
    invented = httpx.Response(200, json={**fixture, "refund_url": "x"}, request=request)
    with pytest.raises(AssertionError, match="refund_url"):
        wire.on_response(invented)
