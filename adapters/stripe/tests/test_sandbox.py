"""The sandbox over real loopback HTTP; every exchange is checked against Stripe's spec."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
from pasarela_stripe.sandbox import StripeSandbox, create_app

from pasarela.testing.helpers import ManualClock


KEY = "sk_test_pasarela_4eC39HqLyjWDarjtT1zdp7dc"
AUTH = {"Authorization": f"Bearer {KEY}"}
FORM = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}


def post(client: httpx.Client, url: str, body: str, key: str | None = None,
         headers: dict[str, str] | None = None) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(url, content=body.encode(), headers={**FORM, **extra, **(headers or {})})


def create(client: httpx.Client, base: str, body: str = "", key: str | None = None,
           amount: int = 1500, currency: str = "pen") -> httpx.Response:
    text = f"amount={amount}&currency={currency}&payment_method_types[]=card" + (
        "&" + body if body else "")
    return post(client, f"{base}/v1/payment_intents", text, key)


# --- authentication ---------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    None,
    "Bearer sk_test_someone_elses_key_1234",
    "Bearer sk_live_51NotForTheSandbox000000",
    "Token abc",
])
def test_requests_without_the_test_key_get_401(sandbox_url: str, header: str | None) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if header:
        headers["Authorization"] = header
    # a plain client: a request without credentials is outside Stripe's spec
    response = httpx.post(f"{sandbox_url}/v1/payment_intents",
                           content=b"amount=1500&currency=pen", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "sk_live_51NotForTheSandbox000000" not in response.text


def test_basic_auth_with_the_key_as_user_works(client: httpx.Client, sandbox_url: str) -> None:
    response = client.get(f"{sandbox_url}/v1/payment_intents/pi_missing", auth=(KEY, ""))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


# --- PaymentIntents -------------------------------------------------------------------------


def test_create_answers_a_payment_intent(client: httpx.Client, sandbox_url: str) -> None:
    response = create(client, sandbox_url, "metadata[payment_id]=p1&description=Aud%C3%ADfonos")
    assert response.status_code == 200
    intent = response.json()
    assert intent["object"] == "payment_intent"
    assert intent["id"].startswith("pi_")
    assert intent["client_secret"].startswith(intent["id"] + "_secret_")
    assert (intent["amount"], intent["currency"], intent["status"]) == (
        1500, "pen", "requires_payment_method")
    assert intent["metadata"] == {"payment_id": "p1"}
    assert intent["description"] == "Audífonos"
    assert response.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(("pm", "status"), [
    ("pm_card_visa", "succeeded"),
    ("pm_card_mastercard", "succeeded"),
    ("pm_card_authenticationRequired", "requires_action"),
])
def test_confirm_outcomes(client: httpx.Client, sandbox_url: str, pm: str, status: str) -> None:
    intent = create(client, sandbox_url).json()
    response = post(client, f"{sandbox_url}/v1/payment_intents/{intent['id']}/confirm",
                    f"payment_method={pm}")
    assert response.status_code == 200
    confirmed = response.json()
    assert confirmed["status"] == status
    if status == "succeeded":
        assert confirmed["amount_received"] == 1500
        assert confirmed["latest_charge"].startswith("ch_")
        charge = client.get(f"{sandbox_url}/v1/charges/{confirmed['latest_charge']}",
                            headers=AUTH).json()
        brand = "visa" if pm == "pm_card_visa" else "mastercard"
        assert charge["payment_method_details"]["card"]["brand"] == brand
    else:
        assert confirmed["next_action"]["type"] == "use_stripe_sdk"


@pytest.mark.parametrize(("pm", "code", "decline_code"), [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
])
def test_declines_answer_402_card_errors(client: httpx.Client, sandbox_url: str, pm: str,
                                         code: str, decline_code: str) -> None:
    response = create(client, sandbox_url, f"payment_method={pm}&confirm=true")
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == (
        "card_error", code, decline_code)
    assert error["message"]
    intent = error["payment_intent"]
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["decline_code"] == decline_code
    again = client.get(f"{sandbox_url}/v1/payment_intents/{intent['id']}", headers=AUTH).json()
    assert again["status"] == "requires_payment_method"


def test_three_d_secure_redirect_and_completion(client: httpx.Client, sandbox_url: str) -> None:
    intent = create(client, sandbox_url, "payment_method=pm_card_authenticationRequired"
                    "&confirm=true&return_url=https%3A%2F%2Ftienda.pe%2Fvuelta").json()
    assert intent["status"] == "requires_action"
    redirect = intent["next_action"]["redirect_to_url"]
    assert redirect["return_url"] == "https://tienda.pe/vuelta"
    page = client.get(redirect["url"])
    assert page.status_code == 200
    assert intent["id"] in page.text
    # the customer presses the button on the page: a form post, then back to the shop
    done = client.post(f"{sandbox_url}/_control/payment_intents/{intent['id']}/authenticate",
                       data={"outcome": "succeed"})
    assert done.status_code == 303
    assert done.headers["location"].startswith("https://tienda.pe/vuelta?payment_intent=")
    assert "redirect_status=succeeded" in done.headers["location"]
    final = client.get(f"{sandbox_url}/v1/payment_intents/{intent['id']}", headers=AUTH).json()
    assert final["status"] == "succeeded"


def test_failed_authentication_leaves_requires_payment_method(client: httpx.Client,
                                                             sandbox_url: str) -> None:
    intent = create(client, sandbox_url,
                    "payment_method=pm_card_authenticationRequired&confirm=true").json()
    failed = client.post(f"{sandbox_url}/_control/payment_intents/{intent['id']}/authenticate",
                         json={"outcome": "fail"}).json()
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_cancel_and_cancel_again(client: httpx.Client, sandbox_url: str) -> None:
    intent = create(client, sandbox_url).json()
    url = f"{sandbox_url}/v1/payment_intents/{intent['id']}/cancel"
    canceled = post(client, url, "cancellation_reason=abandoned").json()
    assert canceled["status"] == "canceled"
    assert canceled["cancellation_reason"] == "abandoned"
    again = post(client, url, "")
    assert again.status_code == 400
    error = again.json()["error"]
    assert error["code"] == "payment_intent_unexpected_state"
    assert error["payment_intent"]["status"] == "canceled"


def test_a_succeeded_intent_cannot_be_canceled(client: httpx.Client, sandbox_url: str) -> None:
    intent = create(client, sandbox_url, "payment_method=pm_card_visa&confirm=true").json()
    response = post(client, f"{sandbox_url}/v1/payment_intents/{intent['id']}/cancel", "")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "payment_intent_unexpected_state"


@pytest.mark.parametrize(("body", "param", "code"), [
    ("currency=pen", "amount", "parameter_missing"),
    ("amount=12x&currency=pen", "amount", "parameter_invalid_integer"),
    ("amount=150&currency=pen", "amount", "amount_too_small"),
    ("amount=49&currency=usd", "amount", "amount_too_small"),
    ("amount=100000000&currency=usd", "amount", "amount_too_large"),
    ("amount=1500&currency=xyz", "currency", None),
    ("amount=1500&currency=pen&payment_method=pm_card_nonsense", "payment_method",
     "resource_missing"),
    ("amount=1500&currency=pen&surprise=1", "surprise", "parameter_unknown"),
])
def test_parameter_errors(sandbox_url: str, body: str, param: str, code: str | None) -> None:
    # a plain client: these requests are deliberately outside Stripe's spec
    response = httpx.post(f"{sandbox_url}/v1/payment_intents", content=body.encode(),
                          headers=FORM)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error.get("code") == code


def test_search_by_metadata(client: httpx.Client, sandbox_url: str) -> None:
    wanted = create(client, sandbox_url, "metadata[payment_id]=01JD%22X").json()
    create(client, sandbox_url, "metadata[payment_id]=other")
    result = client.get(f"{sandbox_url}/v1/payment_intents/search", headers=AUTH,
                        params={"query": 'metadata["payment_id"]:"01JD\\"X"'}).json()
    assert [i["id"] for i in result["data"]] == [wanted["id"]]


def test_unknown_paths_answer_stripe_404(sandbox_url: str) -> None:
    response = httpx.get(f"{sandbox_url}/v1/customers", headers=AUTH)
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]


# --- idempotency ------------------------------------------------------------------------


def test_same_key_same_params_replays_the_first_answer(client: httpx.Client,
                                                       sandbox: StripeSandbox) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    first = create(client, url, "metadata[payment_id]=p1", key="pedido-1")
    second = create(client, url, "metadata[payment_id]=p1", key="pedido-1")
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert len(sandbox.account.intents) == 1


def test_same_key_other_params_is_an_idempotency_error(client: httpx.Client,
                                                      sandbox_url: str) -> None:
    create(client, sandbox_url, key="pedido-2", amount=1500)
    response = create(client, sandbox_url, key="pedido-2", amount=2500)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"


def test_same_key_on_another_endpoint_is_an_idempotency_error(client: httpx.Client,
                                                             sandbox_url: str) -> None:
    intent = create(client, sandbox_url, key="pedido-3").json()
    response = post(client, f"{sandbox_url}/v1/payment_intents/{intent['id']}/cancel", "",
                    key="pedido-3")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"


def test_declines_are_replayed_but_validation_failures_are_not(sandbox: StripeSandbox) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    with httpx.Client() as plain:
        declined = create(plain, url, "payment_method=pm_card_chargeDeclined&confirm=true",
                          key="k-declined")
        replay = create(plain, url, "payment_method=pm_card_chargeDeclined&confirm=true",
                        key="k-declined")
        assert declined.status_code == replay.status_code == 402
        assert replay.json() == declined.json()
        assert len(sandbox.account.intents) == 1
        refused = post(plain, f"{url}/v1/payment_intents", "amount=1&currency=pen", key="k-bad")
        assert refused.status_code == 400
        # the refusal was not saved: the same key may now carry a valid request
        assert create(plain, url, key="k-bad").status_code == 200


def test_saved_answers_expire_after_24_hours(serve: Any) -> None:
    clock = ManualClock(datetime.fromtimestamp(1_800_000_000, UTC))
    url = serve(create_app(clock=clock, seed=1)).url
    with httpx.Client() as plain:
        create(plain, url, key="old-key", amount=1500)
        clock.now += timedelta(hours=23)
        assert create(plain, url, key="old-key", amount=2500).status_code == 400
        clock.now += timedelta(hours=2)
        fresh = create(plain, url, key="old-key", amount=2500)
    assert fresh.status_code == 200
    assert fresh.json()["amount"] == 2500


# --- fault knobs ---------------------------------------------------------------------------


def test_rate_limit_knob_answers_429_with_retry_after(client: httpx.Client,
                                                      sandbox: StripeSandbox) -> None:
    sandbox.knobs.update({"rate_limit_next": 1, "retry_after": 3})
    url = sandbox.url  # type: ignore[attr-defined]
    limited = create(client, url, key="k-429")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "3"
    assert limited.json()["error"]["code"] == "rate_limit"
    # not saved: the same key goes through afterwards
    assert create(client, url, key="k-429").status_code == 200


def test_error_knob_answers_500_before_execution(client: httpx.Client,
                                                 sandbox: StripeSandbox) -> None:
    sandbox.knobs.update({"fail_next": 2})
    url = sandbox.url  # type: ignore[attr-defined]
    assert create(client, url, key="k-500").status_code == 500
    assert create(client, url, key="k-500").status_code == 500
    assert create(client, url, key="k-500").status_code == 200
    assert len(sandbox.account.intents) == 1


def test_500_after_fault_does_the_work_then_answers_a_saved_5xx(client: httpx.Client,
                                                               sandbox: StripeSandbox) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/faults",
               json={"operation": "POST /v1/payment_intents", "kind": "500_after"})
    first = create(client, url, key="k-500-after")
    assert first.status_code == 500
    assert first.json()["error"]["type"] == "api_error"
    assert first.headers["stripe-should-retry"] == "false"
    assert len(sandbox.account.intents) == 1  # done all the same
    again = create(client, url, key="k-500-after")  # the same key: the saved 5xx replayed
    assert (again.status_code, again.headers["idempotent-replayed"]) == (500, "true")
    assert len(sandbox.account.intents) == 1


def test_latency_knob_delays_after_the_work_is_done(sandbox: StripeSandbox) -> None:
    sandbox.knobs.update({"latency": 0.4})
    url = sandbox.url  # type: ignore[attr-defined]
    with httpx.Client(timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        create(impatient, url, key="k-slow")
    # the request was executed all the same: an unknown outcome for the client
    assert len(sandbox.account.intents) == 1
    sandbox.knobs.update({"latency": 0})
    with httpx.Client() as patient:
        replay = create(patient, url, key="k-slow")
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(sandbox.account.intents) == 1


def test_config_endpoint_reads_and_sets_knobs(sandbox_url: str) -> None:
    changed = httpx.post(f"{sandbox_url}/_control/config", json={"latency": 0.005})
    assert changed.json()["latency"] == 0.005
    assert httpx.get(f"{sandbox_url}/_control/config").json()["latency"] == 0.005
    refused = httpx.post(f"{sandbox_url}/_control/config", json={"no_such_knob": 1})
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("no_such_knob: no such knob")
    unit = httpx.post(f"{sandbox_url}/_control/config", json={"latency_ms": 5})
    assert "did you mean latency?" in unit.json()["error"]
    wrong = httpx.post(f"{sandbox_url}/_control/config", json={"refund_status": "maybe"})
    assert wrong.json()["error"].startswith("refund_status: must be one of succeeded, pending")


# --- refunds -------------------------------------------------------------------------------


def test_partial_then_full_refund_then_nothing_left(client: httpx.Client,
                                                    sandbox_url: str) -> None:
    intent = create(client, sandbox_url, "payment_method=pm_card_visa&confirm=true").json()
    first = post(client, f"{sandbox_url}/v1/refunds",
                 f"payment_intent={intent['id']}&amount=500&metadata[refund_id]=r1").json()
    assert (first["object"], first["status"], first["amount"]) == ("refund", "succeeded", 500)
    assert first["payment_intent"] == intent["id"]
    assert first["metadata"] == {"refund_id": "r1"}
    too_much = post(client, f"{sandbox_url}/v1/refunds",
                    f"payment_intent={intent['id']}&amount=1001")
    assert too_much.status_code == 400
    assert too_much.json()["error"]["param"] == "amount"
    rest = post(client, f"{sandbox_url}/v1/refunds", f"payment_intent={intent['id']}").json()
    assert rest["amount"] == 1000
    charge = client.get(f"{sandbox_url}/v1/charges/{intent['latest_charge']}",
                        headers=AUTH).json()
    assert (charge["amount_refunded"], charge["refunded"]) == (1500, True)
    none_left = post(client, f"{sandbox_url}/v1/refunds", f"payment_intent={intent['id']}")
    assert none_left.json()["error"]["code"] == "charge_already_refunded"


def test_refund_of_an_unpaid_intent_is_refused(client: httpx.Client, sandbox_url: str) -> None:
    intent = create(client, sandbox_url).json()
    response = post(client, f"{sandbox_url}/v1/refunds", f"payment_intent={intent['id']}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "payment_intent"


def test_refunds_are_listed_by_payment_intent_newest_first_page_by_page(
    client: httpx.Client, sandbox_url: str
) -> None:
    paid = [create(client, sandbox_url, "payment_method=pm_card_visa&confirm=true").json()
            for _ in range(2)]
    made = [post(client, f"{sandbox_url}/v1/refunds",
                 f"payment_intent={paid[0]['id']}&amount=100&metadata[refund_id]=r{n}").json()
            for n in range(3)]
    post(client, f"{sandbox_url}/v1/refunds", f"payment_intent={paid[1]['id']}&amount=100")

    def page(**params: str) -> dict[str, Any]:
        answer: dict[str, Any] = client.get(f"{sandbox_url}/v1/refunds", headers=AUTH,
                                            params=params).json()
        return answer

    first = page(payment_intent=paid[0]["id"], limit="2")
    assert (first["object"], first["url"], first["has_more"]) == ("list", "/v1/refunds", True)
    assert [r["id"] for r in first["data"]] == [made[2]["id"], made[1]["id"]]
    rest = page(payment_intent=paid[0]["id"], limit="2", starting_after=first["data"][-1]["id"])
    assert ([r["id"] for r in rest["data"]], rest["has_more"]) == ([made[0]["id"]], False)
    assert rest["data"][0]["metadata"] == {"refund_id": "r0"}
    assert len(page()["data"]) == 4
    by_charge = page(charge=paid[1]["latest_charge"])
    assert [r["payment_intent"] for r in by_charge["data"]] == [paid[1]["id"]]
    missing = client.get(f"{sandbox_url}/v1/refunds", headers=AUTH,
                         params={"payment_intent": "pi_missing"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"


def test_pending_refund_settles_by_control(client: httpx.Client, sandbox: StripeSandbox) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/config", json={"refund_status": "pending"})
    intent = create(client, url, "payment_method=pm_card_visa&confirm=true").json()
    refund = post(client, f"{url}/v1/refunds", f"payment_intent={intent['id']}").json()
    assert refund["status"] == "pending"
    settled = httpx.post(f"{url}/_control/refunds/{refund['id']}/settle",
                         json={"status": "succeeded"}).json()
    assert settled["status"] == "succeeded"
    fetched = client.get(f"{url}/v1/refunds/{refund['id']}", headers=AUTH).json()
    assert fetched["status"] == "succeeded"
    types = [e["type"] for e in httpx.get(f"{url}/_control/events").json()]
    assert types[-1] == "refund.updated"


def test_processing_knob_and_settle(client: httpx.Client, sandbox: StripeSandbox) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/config", json={"processing": True})
    intent = create(client, url, "payment_method=pm_card_visa&confirm=true").json()
    assert intent["status"] == "processing"
    done = httpx.post(f"{url}/_control/payment_intents/{intent['id']}/settle",
                      json={"outcome": "succeed"}).json()
    assert done["status"] == "succeeded"


# --- objects against Stripe's schemas ------------------------------------------------------


def test_every_object_the_sandbox_made_matches_its_schema(
    client: httpx.Client, sandbox: StripeSandbox, stripe_spec: Any
) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    ok = create(client, url, "payment_method=pm_card_visa&confirm=true").json()
    post(client, f"{url}/v1/refunds", f"payment_intent={ok['id']}&amount=100")
    create(client, url, "payment_method=pm_card_chargeDeclined&confirm=true")
    create(client, url, "payment_method=pm_card_authenticationRequired&confirm=true")
    account = sandbox.account
    for obj in account.intents.values():
        stripe_spec.validate_object("payment_intent", obj)
    for obj in account.charges.values():
        stripe_spec.validate_object("charge", obj)
    for obj in account.refunds.values():
        stripe_spec.validate_object("refund", obj)
    assert len(account.events) >= 8
    for event in account.events.values():
        stripe_spec.validate_object("event", event)
        kind = event["data"]["object"]["object"]
        stripe_spec.validate_object(kind, event["data"]["object"])


# --- webhooks ------------------------------------------------------------------------------


def _events_of(deliveries: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in deliveries]


def test_webhooks_are_signed_so_stripe_sdk_accepts_them(
    client: httpx.Client, sandbox: StripeSandbox, receiver: Any, webhook_secret: str
) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/webhook", json={"url": receiver.url, "secret": webhook_secret})
    intent = create(client, url, "payment_method=pm_card_visa&confirm=true").json()
    deliveries = receiver.wait(3)
    types = [e["type"] for e in _events_of(deliveries)]
    assert types == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]
    for headers, body in deliveries:
        event = stripe.Webhook.construct_event(body, headers["stripe-signature"], webhook_secret)
        assert event["object"] == "event"
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, headers["stripe-signature"], "whsec_other")
    succeeded = next(e for e in _events_of(deliveries) if e["type"] == "payment_intent.succeeded")
    assert succeeded["data"]["object"]["id"] == intent["id"]
    assert succeeded["data"]["object"]["status"] == "succeeded"


def test_rotation_signs_with_every_secret(sandbox: StripeSandbox, receiver: Any,
                                          client: httpx.Client) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/webhook",
               json={"url": receiver.url, "secrets": ["whsec_old", "whsec_new"]})
    create(client, url)
    headers, body = receiver.wait(1)[0]
    assert headers["stripe-signature"].count("v1=") == 2
    for secret in ("whsec_old", "whsec_new"):
        stripe.Webhook.construct_event(body, headers["stripe-signature"], secret)


def test_duplicate_and_reorder_knobs(sandbox: StripeSandbox, receiver: Any,
                                     client: httpx.Client) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/config", json={
        "webhook_url": receiver.url, "hold_webhooks": True,
        "duplicate_webhooks": 1, "reorder_webhooks": True})
    create(client, url, "payment_method=pm_card_visa&confirm=true")
    assert receiver.deliveries == []
    results = httpx.post(f"{url}/_control/webhooks/flush").json()["webhooks"]
    assert len(results) == 6
    assert all(r["status"] == "delivered" for r in results)
    ids = [e["id"] for e in _events_of(receiver.wait(6))]
    created_order = list(sandbox.account.events)
    # each event twice, newest first
    assert ids == [i for i in reversed(created_order) for _ in range(2)]


def test_signature_fault_knob(sandbox: StripeSandbox, receiver: Any, client: httpx.Client,
                              webhook_secret: str) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/_control/config", json={
        "webhook_url": receiver.url, "webhook_signature": "stale", "webhook_retries": 0})
    create(client, url)
    headers, body = receiver.wait(1)[0]
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(body, headers["stripe-signature"], webhook_secret)


def test_rejected_deliveries_are_retried_and_recorded(sandbox: StripeSandbox, receiver: Any,
                                                      client: httpx.Client) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    answers = iter([500, 200])
    receiver.handler = lambda headers, body: next(answers)
    httpx.post(f"{url}/_control/config", json={"webhook_url": receiver.url})
    intent = create(client, url).json()
    receiver.wait(2)
    sandbox.courier.wait(1)
    listed = httpx.get(f"{url}/_control/events", params={"object": intent["id"]}).json()
    assert [a["status"] for a in listed[0]["deliveries"][0]["attempts"]] == [500, 200]
    assert listed[0]["deliveries"][0]["status"] == "delivered"


def test_events_listing_gives_signed_deliveries_to_replay(
    sandbox: StripeSandbox, client: httpx.Client, webhook_secret: str
) -> None:
    url = sandbox.url  # type: ignore[attr-defined]
    create(client, url)
    listed = httpx.get(f"{url}/_control/events", params={"type": "payment_intent.created"}).json()
    assert len(listed) == 1
    event = stripe.Webhook.construct_event(
        listed[0]["body"], listed[0]["headers"]["Stripe-Signature"], webhook_secret)
    assert event["type"] == "payment_intent.created"
    fetched = client.get(f"{url}/v1/events/{listed[0]['id']}", headers=AUTH).json()
    assert fetched == json.loads(listed[0]["body"])


# --- a newcomer's first payment ----------------------------------------------------------


def test_the_banner_settings_make_a_first_payment(pasarela_sandbox: Any,
                                                  pasarela_factory: Any) -> None:
    """The sandbox started as ``pasarela sandbox stripe`` does, configured with what its
    banner prints: the first payment succeeds, and its signed events verify."""
    from pasarela.model import Order
    from pasarela.money import Money

    served = pasarela_sandbox(create_app)
    pasarela = pasarela_factory(served)
    payment = pasarela.pay(Order(reference="first", amount=Money.of("149.90", "PEN"),
                                 description="Audífonos"),
                           method="card", idempotency_key="first",
                           payment_method="pm_card_visa")
    assert payment.status.value == "succeeded"
    events = httpx.get(f"{served.url}/_control/events").json()
    assert events
    for item in events:
        assert pasarela.handle_webhook("stripe", item["headers"],
                                       item["body"].encode()).status_code == 200
