"""The Django view wrapper, through Django's test client."""

from __future__ import annotations

import itertools
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest


django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from pasarela.lifecycle import Status  # noqa: E402
from pasarela.web.django import webhook_view  # noqa: E402

from .conftest import make_order  # noqa: E402


if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="pasarela-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF="pasarela_no_urls",
        INSTALLED_APPS=[],
        # CSRF is enforced: the view must be exempt to receive a provider's POST.
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        USE_TZ=True,
    )
    django.setup()

_names = itertools.count()


@pytest.fixture
def urls() -> Iterator[Any]:
    """Install a urlconf made for the test; yields a function that sets its patterns."""
    name = f"pasarela_test_urls_{next(_names)}"
    module = types.ModuleType(name)
    module.urlpatterns = []  # type: ignore[attr-defined]
    sys.modules[name] = module
    with override_settings(ROOT_URLCONF=name):
        yield module
    del sys.modules[name]


@pytest.fixture
def client(urls, make_sync) -> Any:
    p = make_sync()
    urls.urlpatterns = [
        path("pasarela/webhooks/<str:provider>/", webhook_view(p)),
        path("fake-only/", webhook_view(p, provider="fake", max_body=2048)),
    ]
    c = Client(enforce_csrf_checks=True)
    c.pasarela = p
    return c


def test_good_delivery_is_applied_and_duplicates_are_acknowledged(client, gateway):
    p = client.pasarela
    payment = p.pay(make_order("pedido-dj"), method="cash", idempotency_key="dj")
    headers, body = gateway.settle(payment.provider_reference)
    for _ in range(2):
        response = client.post("/pasarela/webhooks/fake/", data=body,
                               content_type=headers["Content-Type"],
                               headers={"Fake-Signature": headers["Fake-Signature"]})
        assert response.status_code == 200
        assert response.content == b'{"received":true}'
        assert response["Content-Type"] == "application/json"
    done = p.get(payment.id)
    assert done.status is Status.SUCCEEDED
    assert len(done.history) == 2


def test_forged_delivery_is_400(client, gateway):
    p = client.pasarela
    payment = p.pay(make_order("pedido-dj"), method="cash", idempotency_key="dj")
    headers, body = gateway.settle(payment.provider_reference)
    response = client.post("/pasarela/webhooks/fake/", data=body.replace(b"fp_", b"fx_"),
                           content_type="application/json",
                           headers={"Fake-Signature": headers["Fake-Signature"]})
    assert response.status_code == 400
    assert p.get(payment.id).status is Status.PENDING


def test_unknown_provider_is_404(client):
    response = client.post("/pasarela/webhooks/nope/", data=b"{}",
                           content_type="application/json")
    assert response.status_code == 404


def test_content_type_and_size_and_method(client, gateway):
    p = client.pasarela
    payment = p.pay(make_order("pedido-dj"), method="cash", idempotency_key="dj")
    headers, body = gateway.settle(payment.provider_reference)
    signature = {"Fake-Signature": headers["Fake-Signature"]}
    plain = client.post("/pasarela/webhooks/fake/", data=body, content_type="text/plain",
                        headers=signature)
    big = client.post("/fake-only/", data=b"{" + b" " * 4096 + b"}",
                      content_type="application/json", headers=signature)
    get = client.get("/pasarela/webhooks/fake/")
    assert (plain.status_code, big.status_code, get.status_code) == (415, 413, 405)
    assert get["Allow"] == "POST"
    fixed = client.post("/fake-only/", data=body, content_type="application/json",
                        headers=signature)
    assert fixed.status_code == 200
    assert p.get(payment.id).status is Status.SUCCEEDED


@pytest.mark.anyio
async def test_async_pasarela_is_refused(make_async):
    async_p = make_async()
    with pytest.raises(TypeError):
        webhook_view(async_p)
