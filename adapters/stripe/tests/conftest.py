"""Fixtures for the Stripe adapter's tests.

- ``stripe_spec``: Stripe's OpenAPI spec (2023-08-16) from ``../shared/peers``,
  loaded once per session with openapi-core and the two fixes peers/README.md
  describes (see :class:`StripeSpec`). Absent peers skip the tests that need them,
  except under ``CI=true``, where they fail.
- ``served``: the sandbox on real loopback HTTP (pasarela's ``pasarela_sandbox``
  fixture), reset for each test; ``sandbox`` is its :class:`StripeSandbox`.
- ``client``: an ``httpx.Client`` whose every request and response is checked
  against the spec.
- ``receiver``: a loopback HTTP server that records webhook deliveries
  (``pasarela_receiver``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pasarela_stripe.sandbox import StripeSandbox, create_app

from pasarela.testing.helpers import Served
from pasarela.testing.receiver import WebhookReceiver
from pasarela.testing.sandbox import ServedSandbox


ROOT = Path(__file__).resolve().parents[3]
PEERS = ROOT / ".." / "shared" / "peers" / "stripe"
SPEC_DIR = PEERS / "openapi-2023-08-16"
SANDBOX_KEY = "sk_test_pasarela_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK_SECRET = "whsec_test_pasarela_endpoint"


def require_peers() -> Path:
    """The peers folder beside the repository; skip (or fail under CI) without it."""
    if not (SPEC_DIR / "spec3.json").is_file():
        message = (f"Stripe's OpenAPI spec is not at {SPEC_DIR} (the shared/peers folder "
                   "beside the repository)")
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return SPEC_DIR


# --- the OpenAPI oracle -------------------------------------------------------------------


def accept_null_where_nullable(node: Any) -> None:
    """Fix 1: Stripe writes ``nullable: true`` beside ``anyOf`` (no ``type``) and beside
    ``enum`` lists that lack null; a strict OAS 3.0 validator then rejects those nulls."""
    if isinstance(node, dict):
        if node.get("nullable") is True:
            if "anyOf" in node and {"enum": [None]} not in node["anyOf"]:
                node["anyOf"].append({"enum": [None]})
            if "enum" in node and None not in node["enum"]:
                node["enum"].append(None)
        for value in node.values():
            accept_null_where_nullable(value)
    elif isinstance(node, list):
        for value in node:
            accept_null_where_nullable(value)


_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


def _bracket_path(key: str) -> tuple[str, list[str]]:
    start = key.find("[")
    if start < 0:
        return key, []
    rest = key[start:]
    parts = _BRACKETS.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:
        raise ValueError(f"malformed bracket key {key!r}")
    return key[:start], parts


def stripe_deep_object(explode: bool, name: str, schema_type: str,
                       location: Mapping[str, Any]) -> Any:
    """Fix 2: a deepObject deserializer for Stripe's bracket notation, on objects *and*
    arrays (``payment_method_types[]=card``, ``metadata[k]=v``, ``a[0][b]=c``)."""
    items = location.items(multi=True) if hasattr(location, "getlist") else location.items()
    root: dict[Any, Any] = {}
    found = False
    for key, value in items:
        base, parts = _bracket_path(key)
        if base != name or not parts:
            continue
        found = True
        node = root
        for depth, part in enumerate(parts):
            index: Any = part
            if part == "":
                index = sum(1 for k in node if isinstance(k, int))
            elif part.isdigit():
                index = int(part)
            if depth == len(parts) - 1:
                node[index] = value
            else:
                node = node.setdefault(index, {})
    if not found:
        raise KeyError(name)

    def finish(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if node and all(isinstance(k, int) for k in node):
            return [finish(node[k]) for k in sorted(node)]
        return {k: finish(v) for k, v in node.items()}

    return finish(root)


class SpecError(AssertionError):
    pass


class StripeSpec:
    """openapi-core over Stripe's spec, validating httpx requests and responses."""

    HOST = "https://api.stripe.com"

    def __init__(self, spec: dict[str, Any]) -> None:
        from openapi_core import Config, OpenAPI
        from openapi_core.casting.schemas import oas30_write_schema_casters_factory
        from openapi_core.deserializing.styles import (
            StyleDeserializersFactory,
            style_deserializers,
        )

        self.raw = spec
        factory = StyleDeserializersFactory(
            oas30_write_schema_casters_factory,
            style_deserializers={**style_deserializers, "deepObject": stripe_deep_object},
        )
        self.api = OpenAPI.from_dict(
            spec, config=Config(spec_validator_cls=None, style_deserializers_factory=factory)
        )

    def _mock_request(self, request: httpx.Request) -> Any:
        from openapi_core.testing import MockRequest

        content_type = request.headers.get("content-type", "application/json")
        return MockRequest(
            self.HOST, request.method.lower(), request.url.path,
            args=dict(request.url.params.multi_items()),
            headers=dict(request.headers), data=request.content or None,
            content_type=content_type.split(";")[0],
        )

    def form_properties(self, method: str, path_pattern: str) -> set[str]:
        operation = self.raw["paths"][path_pattern][method.lower()]
        body = operation.get("requestBody", {}).get("content", {})
        schema = body.get("application/x-www-form-urlencoded", {}).get("schema", {})
        return set(schema.get("properties", {}))

    def validate_request(self, request: httpx.Request) -> dict[str, Any]:
        """Validate *request*; return the body as openapi-core decoded it."""
        result = self.api.unmarshal_request(self._mock_request(request))
        if result.errors:
            details = [f"{e!r}: {getattr(e, '__cause__', None)!r}" for e in result.errors]
            raise SpecError(f"{request.method} {request.url.path} violates Stripe's spec: "
                            f"{details}")
        # openapi-core ignores form fields the schema does not name; Stripe refuses them
        # (additionalProperties: false), so check the parameter names too.
        if request.method == "POST" and request.content:
            pattern = self.path_pattern(request.method, request.url.path)
            allowed = self.form_properties(request.method, pattern)
            names = {_bracket_path(k)[0] for k, _ in parse_qsl(request.content.decode())}
            unknown = names - allowed
            if unknown:
                raise SpecError(f"{request.url.path}: parameters not in the spec: {unknown}")
        body = result.body
        return dict(body) if isinstance(body, Mapping) else {}

    def path_pattern(self, method: str, path: str) -> str:
        matches = []
        for pattern, item in self.raw["paths"].items():
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(pattern)) + "$"
            if method.lower() in item and re.match(regex, path):
                matches.append(pattern)
        if not matches:
            raise SpecError(f"{method} {path} is not in Stripe's spec")
        # a literal path beats a templated one (search before {intent})
        return min(matches, key=lambda p: p.count("{"))

    def validate_response(self, request: httpx.Request, response: httpx.Response) -> Any:
        from openapi_core.testing import MockResponse

        result = self.api.unmarshal_response(
            self._mock_request(request),
            MockResponse(response.content, status_code=response.status_code,
                         headers=dict(response.headers),
                         content_type=response.headers.get("content-type", "").split(";")[0]),
        )
        if result.errors:
            details = [f"{e!r}: {getattr(e, '__cause__', None)!r}" for e in result.errors]
            raise SpecError(f"answer {response.status_code} to {request.method} "
                            f"{request.url.path} violates Stripe's spec: {details}")
        return result.data

    # --- key sets: openapi-core lets unknown keys through (Stripe's schemas never say
    # additionalProperties), so what the spec does not name is found here

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """*node* with its ``$ref`` followed (``#/components/schemas/...``)."""
        while "$ref" in node:
            target: Any = self.raw
            for part in str(node["$ref"]).removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def invented_keys(self, schema: str | Mapping[str, Any], value: Any,
                      where: str = "") -> list[str]:
        """The keys of *value*, at any depth, that *schema* (a component's name or a
        schema node) does not name: ``["payment_intent.qr", ...]``. An object schema
        without ``properties`` (``metadata``, ``use_stripe_sdk``) takes any key; of an
        ``anyOf``, the branch whose ``object`` is the value's is used (else the branch
        that names the most of its keys)."""
        if isinstance(schema, str):
            where = where or schema
            schema = self.raw["components"]["schemas"][schema]
        node = self.resolve(schema)
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            if not isinstance(value, dict):
                return []
            kinds = [self.resolve(b) for b in branches]
            objects = [b for b in kinds if "properties" in b]
            if not objects:
                return []
            tagged = [b for b in objects
                      if value.get("object") in b["properties"].get("object", {}).get("enum", ())]
            found = [self.invented_keys(b, value, where) for b in tagged or objects]
            return min(found, key=len)
        if isinstance(value, dict):
            properties = node.get("properties")
            if properties is None:
                return []
            out: list[str] = []
            for key, item in value.items():
                if key not in properties:
                    out.append(f"{where}.{key}")
                else:
                    out.extend(self.invented_keys(properties[key], item, f"{where}.{key}"))
            return out
        if isinstance(value, list) and "items" in node:
            out = []
            for n, item in enumerate(value):
                out.extend(self.invented_keys(node["items"], item, f"{where}[{n}]"))
            return out
        return []

    def response_schema(self, method: str, path: str, status: int) -> Mapping[str, Any]:
        """The schema the spec gives the answer *status* to *method* *path*."""
        operation = self.raw["paths"][self.path_pattern(method, path)][method.lower()]
        responses = operation["responses"]
        answer = responses.get(str(status)) or responses["default"]
        schema: Mapping[str, Any] = answer["content"]["application/json"]["schema"]
        return schema

    def invented_in_response(self, response: httpx.Response) -> list[str]:
        """The keys of a Stripe answer that its schema in the spec does not name."""
        request = response.request
        name = f"{request.method} {request.url.path} {response.status_code}"
        return self.invented_keys(
            self.response_schema(request.method, request.url.path, response.status_code),
            response.json(), name)

    def validate_object(self, schema: str, obj: Mapping[str, Any]) -> None:
        """Validate *obj* against ``components/schemas/<schema>``."""
        from openapi_core.validation.schemas import oas30_read_schema_validators_factory

        path = self.api.spec / "components" / "schemas" / schema
        validator = oas30_read_schema_validators_factory.create(self.api.spec, path)
        validator.validate(obj)


@pytest.fixture(scope="session")
def stripe_fixtures() -> dict[str, Any]:
    """Stripe's sample objects for API version 2023-08-16 (``resources``)."""
    data = json.loads((require_peers() / "fixtures3.json").read_text())
    resources: dict[str, Any] = data["resources"]
    return resources


@pytest.fixture(scope="session")
def current_stripe_fixtures() -> dict[str, Any]:
    """Stripe's current (2026) sample objects."""
    require_peers()
    path = PEERS / "openapi-v2436-2026-08-21" / "fixtures3.json"
    resources: dict[str, Any] = json.loads(path.read_text())["resources"]
    return resources


@pytest.fixture(scope="session")
def spec_factory() -> Callable[[bool], StripeSpec]:
    """Build a StripeSpec with or without the null fix (slow-ish: for one test)."""
    def build(fix_nulls: bool) -> StripeSpec:
        spec = json.loads((require_peers() / "spec3.json").read_text())
        if fix_nulls:
            accept_null_where_nullable(spec)
        return StripeSpec(spec)
    return build


@pytest.fixture(scope="session")
def stripe_spec() -> StripeSpec:
    spec = json.loads((require_peers() / "spec3.json").read_text())
    accept_null_where_nullable(spec)
    return StripeSpec(spec)


# --- the sandbox and a receiver on loopback (pasarela's pytest plugin) -------------------


@pytest.fixture
def serve(pasarela_serve: Callable[[Any], Served]) -> Callable[[Any], Served]:
    """Serve an ASGI app on loopback for one test (``.url`` is its base URL)."""
    return pasarela_serve


@pytest.fixture
def webhook_secret() -> str:
    return WEBHOOK_SECRET


@pytest.fixture
def sandbox_key() -> str:
    return SANDBOX_KEY


@pytest.fixture
def served(pasarela_sandbox: Callable[..., ServedSandbox]) -> ServedSandbox:
    """The sandbox on loopback (one server per session), reset to its start: only
    SANDBOX_KEY is accepted, events are signed with WEBHOOK_SECRET."""
    return pasarela_sandbox(create_app, api_key=SANDBOX_KEY, seed=7,
                            webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def sandbox(served: ServedSandbox) -> StripeSandbox:
    """The running sandbox itself (``sandbox.url`` is where it is served)."""
    sandbox = served.sandbox
    assert isinstance(sandbox, StripeSandbox)
    return sandbox


@pytest.fixture
def sandbox_url(served: ServedSandbox) -> str:
    return served.url


class Checked:
    """What went over the wire, checked against the spec."""

    def __init__(self, spec: StripeSpec) -> None:
        self.spec = spec
        self.requests: list[httpx.Request] = []

    def on_request(self, request: httpx.Request) -> None:
        if request.url.path.startswith("/v1/"):
            self.spec.validate_request(request)
        self.requests.append(request)

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        if response.request.url.path.startswith("/v1/"):
            self.spec.validate_response(response.request, response)
            invented = self.spec.invented_in_response(response)
            if invented:
                raise SpecError(f"keys Stripe's spec does not name: {invented}")


@pytest.fixture
def wire(stripe_spec: StripeSpec) -> Checked:
    return Checked(stripe_spec)


@pytest.fixture
def client(wire: Checked) -> Iterator[httpx.Client]:
    with httpx.Client(event_hooks={"request": [wire.on_request],
                                   "response": [wire.on_response]}) as c:
        yield c


class CheckingTransport(httpx.BaseTransport):
    """A transport that checks each exchange against the spec (for ``Pasarela``)."""

    def __init__(self, wire: Checked) -> None:
        self.wire = wire
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.wire.on_request(request)
        response = self.inner.handle_request(request)
        response.read()
        response.request = request
        self.wire.on_response(response)
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def checking_transport(wire: Checked) -> Iterator[CheckingTransport]:
    transport = CheckingTransport(wire)
    yield transport
    transport.close()


@pytest.fixture
def receiver(pasarela_receiver: WebhookReceiver) -> WebhookReceiver:
    """A loopback server that records webhook deliveries (``deliveries``, ``wait``)."""
    return pasarela_receiver
