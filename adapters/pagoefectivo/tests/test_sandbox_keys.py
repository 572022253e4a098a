"""The sandbox invents nothing: the keys of every answer it gives, and of the
notification it sends, are those of PagoEfectivo's documented examples (issue #15).

The documented shapes are written here, each citing its section of
``shared/reference/providers.md`` §1 (PE spec v1.1 and the official demo's
screenshots). :func:`test_the_shapes_are_those_of_the_reference` checks them against
the JSON examples of that file when ``../shared`` is there (it must be on CI).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pasarela_pagoefectivo.api import auth_hash, lima_timestamp
from pasarela_pagoefectivo.sandbox import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    DEFAULT_SERVICE_ID,
)


#: A shape: a dict maps each key to the shape of its value (None: a scalar); a list
#: is the shape of its items.
Shape = Any

#: §1.3, the authorization response (PE spec v1.1).
AUTHORIZATION: Shape = {"code": None, "message": None, "data": {
    "token": None, "codeService": None, "tokenStart": None, "tokenExpires": None}}
#: §1.4, the CIP creation response (PE spec v1.1; the demo's GenerarCipResult.png).
CREATED: Shape = {"code": None, "message": None, "data": {
    "cip": None, "currency": None, "amount": None, "transactionCode": None,
    "dateExpiry": None, "cipUrl": None}}
#: §1.6, the search response (the demo's ConsultarCip.png).
SEARCHED: Shape = {"code": None, "message": None, "data": [{
    "cip": None, "transactionCode": None, "amount": None, "currency": None, "status": None,
    "statusName": None, "dateCreation": None, "dateExpiry": None, "datePayment": None,
    "dateRemoval": None, "token": None}]}
#: §1.6, update and delete (ActualizarCip.png, EliminarCip.png): an empty data object.
ACKNOWLEDGED: Shape = {"code": None, "message": None, "data": {}}
#: §1.5, the error envelope ("Respuesta de validaciones").
ERROR: Shape = {"code": None, "message": None, "data": [
    {"code": None, "message": None, "field": None}]}
#: §1.7, the notification body (PE spec v1.1 §5.2).
NOTIFICATION: Shape = {"eventType": None, "operationNumber": None, "data": {
    "cip": None, "currency": None, "amount": None}}
#: §1.7 "Extra body fields seen in practice": a simulator should send them.
NOTIFICATION_EXTRAS: Shape = {"data": {"paymentDate": None, "transactionCode": None}}


def shape(value: Any) -> Shape:
    if isinstance(value, Mapping):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = [shape(item) for item in value]
        return [shapes[0]] if shapes and all(s == shapes[0] for s in shapes) else shapes
    return None


def invented(value: Any, documented: Shape, path: str = "") -> list[str]:
    """Paths of keys in *value* the *documented* shape does not have."""
    if isinstance(value, Mapping):
        if not isinstance(documented, Mapping):
            return [path or "(root)"]
        found: list[str] = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key not in documented:
                found.append(where)
            else:
                found += invented(item, documented[key], where)
        return found
    if isinstance(value, list):
        item_shape = documented[0] if isinstance(documented, list) and documented else None
        return [p for n, item in enumerate(value)
                for p in invented(item, item_shape, f"{path}[{n}]")]
    return []


def lacking(value: Any, documented: Shape, path: str = "") -> list[str]:
    """Paths of documented keys *value* does not have (list items: each checked)."""
    if isinstance(documented, Mapping):
        if not isinstance(value, Mapping):
            return [path or "(root)"]
        return [p for key, sub in documented.items()
                for p in ([f"{path}.{key}" if path else key] if key not in value
                          else lacking(value[key], sub, f"{path}.{key}" if path else key))]
    if isinstance(documented, list) and isinstance(value, list):
        return [p for n, item in enumerate(value)
                for p in lacking(item, documented[0], f"{path}[{n}]")]
    return []


def merged(base: Shape, extra: Shape) -> Shape:
    out = dict(base)
    for key, sub in extra.items():
        out[key] = merged(out[key], sub) if isinstance(sub, Mapping) else sub
    return out


def check(answer: httpx.Response | Any, documented: Shape, *, complete: bool = True) -> None:
    body = answer.json() if isinstance(answer, httpx.Response) else answer
    assert invented(body, documented) == [], f"invented keys in {body}"
    if complete:
        assert lacking(body, documented) == [], f"documented keys missing in {body}"


# --- the sandbox's answers ------------------------------------------------------------


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        date = lima_timestamp(datetime.now(UTC))
        self.authorization = httpx.post(f"{url}/v1/authorizations", json={
            "accessKey": DEFAULT_ACCESS_KEY, "idService": DEFAULT_SERVICE_ID,
            "dateRequest": date, "hashString": auth_hash(
                DEFAULT_SERVICE_ID, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, date)})
        self.token = self.authorization.json()["data"]["token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Origin": "web"}

    def create(self, **changes: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "currency": "PEN", "amount": "149.90", "transactionCode": "01JDQ3V6Y8K2M4N6P8R0S2T4V6",
            "dateExpiry": lima_timestamp(datetime.now(UTC) + timedelta(hours=2)),
            "userEmail": "rosa@example.pe", "userCodeCountry": "+51", "userPhone": "987654321",
        }
        body.update(changes)
        return httpx.post(f"{self.url}/v1/cips", headers=self.headers(),
                          json={k: v for k, v in body.items() if v is not None})

    def search(self, *cips: str) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/cips/search", headers=self.headers(),
                          json={"data": [{"cip": int(c)} for c in cips]})


@pytest.fixture
def pe(served: Any) -> Client:
    return Client(served.url)


def test_authorization_answer(pe: Client) -> None:
    assert pe.authorization.status_code == 201
    check(pe.authorization, AUTHORIZATION)


def test_create_answer(pe: Client) -> None:
    answer = pe.create()
    assert answer.status_code == 201
    check(answer, CREATED)


def test_search_answers_in_every_state(served: Any, pe: Client) -> None:
    generated, paid, expired, deleted = (str(pe.create().json()["data"]["cip"])
                                         for _ in range(4))
    served.control("POST", f"/cips/{paid}/pay", json={"notify": False})
    served.control("POST", f"/cips/{expired}/expire")
    assert httpx.delete(f"{pe.url}/v1/cips/{deleted}", headers=pe.headers()).status_code == 200
    answer = pe.search(generated, paid, expired, deleted)
    assert answer.status_code == 200
    assert len(answer.json()["data"]) == 4
    check(answer, SEARCHED)
    check(pe.search("99999999"), {**SEARCHED, "data": []}, complete=True)


def test_update_and_delete_answers(pe: Client) -> None:
    cip = str(pe.create().json()["data"]["cip"])
    patched = httpx.patch(f"{pe.url}/v1/cips/{cip}", headers=pe.headers(), json={
        "dateExpiry": lima_timestamp(datetime.now(UTC) + timedelta(hours=5))})
    assert patched.status_code == 200
    check(patched, ACKNOWLEDGED)
    deleted = httpx.delete(f"{pe.url}/v1/cips/{cip}", headers=pe.headers())
    assert deleted.status_code == 200
    check(deleted, ACKNOWLEDGED)


def test_error_answers(served: Any, pe: Client) -> None:
    invalid = pe.create(userEmail=None, amount="abc")
    assert invalid.status_code == 400
    check(invalid, ERROR)
    assert len(invalid.json()["data"]) == 2
    errors = [
        httpx.post(f"{pe.url}/v1/cips", json={}, headers={"Authorization": "Bearer nope"}),
        httpx.post(f"{pe.url}/v1/authorizations", json={
            "accessKey": DEFAULT_ACCESS_KEY, "idService": DEFAULT_SERVICE_ID,
            "dateRequest": lima_timestamp(datetime.now(UTC)), "hashString": "0" * 64}),
        httpx.patch(f"{pe.url}/v1/cips/1", headers=pe.headers(), json={}),
        httpx.delete(f"{pe.url}/v1/cips/1", headers=pe.headers()),
    ]
    served.config(max_amount="PEN 100")
    errors.append(pe.create())  # 511
    for kind in ("500", "508"):
        served.fault("create", kind)
        errors.append(pe.create())
    assert sorted(e.status_code for e in errors) == [400, 400, 400, 400, 401, 401, 500]
    for answer in errors:
        # Entries only where a field is at fault; the envelope's keys always.
        check(answer, ERROR, complete=False)
        assert set(answer.json()) == set(ERROR)


def test_notification_body(served: Any, pe: Client, receiver: Any) -> None:
    served.control("POST", "/notification-url", json={"url": receiver.url})
    cip = str(pe.create().json()["data"]["cip"])
    served.control("POST", f"/cips/{cip}/pay")
    receiver.wait(1)
    body = json.loads(receiver.bodies[0])
    check(body, merged(NOTIFICATION, NOTIFICATION_EXTRAS))
    assert lacking(body, NOTIFICATION) == []


# --- the shapes against the reference ---------------------------------------------------


def _reference() -> str:
    root = Path(__file__).resolve().parents[3]
    path = root.parent / "shared" / "reference" / "providers.md"
    if not path.is_file():
        reason = ("PagoEfectivo's documented examples are not at ../shared/reference/"
                  "providers.md beside the repository")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must have them")
        pytest.skip(reason)
    text = path.read_text(encoding="utf-8")
    start = text.index("## 1. PagoEfectivo")
    return text[start:text.index("\n## 2.", start)]


def _examples(section: str) -> list[Any]:
    """Every JSON example of the section, read as JSON once the spec's typography is
    undone (``//`` status lines, a trailing comma, a curly quote, Postman variables)."""
    found = []
    for block in re.findall(r"```json\n(.*?)```", section, flags=re.S):
        text = "\n".join(line for line in block.splitlines()
                         if not line.strip().startswith("//"))
        text = text.replace("\u201d", '"')
        text = re.sub(r'"\{\{\w+\}\}"', '"x"', text)
        text = re.sub(r"\{\{\w+\}\}", "0", text)
        text = re.sub(r",(\s*[}\]])", r"\1", text)
        found.append(json.loads(text))
    return found


@pytest.mark.parametrize(("name", "documented"), [
    ("authorization (§1.3)", AUTHORIZATION),
    ("CIP creation (§1.4)", CREATED),
    ("search (§1.6)", SEARCHED),
    ("update (§1.6)", ACKNOWLEDGED),
    ("error (§1.5)", ERROR),
    ("notification (§1.7)", NOTIFICATION),
])
def test_the_shapes_are_those_of_the_reference(name: str, documented: Shape) -> None:
    shapes = [shape(example) for example in _examples(_reference())]
    assert documented in shapes, f"{name}: {documented} is not among {shapes}"


def test_the_notification_extras_are_named_in_the_reference() -> None:
    section = _reference()
    extras = section[section.index("**Extra body fields seen in practice**"):]
    for key in NOTIFICATION_EXTRAS["data"]:
        assert f"`data.{key}`" in extras[:600]
