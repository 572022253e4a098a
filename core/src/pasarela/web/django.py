"""Receiving provider webhooks in a Django project.

Django is optional: it is imported when :func:`webhook_view` is called, not when
this module is. The view does what the ASGI app's webhook route does (see
:mod:`pasarela.web.app`): it refuses a provider that is not installed (404), a content
type the provider does not send (415) and a body over ``max_body`` bytes (413),
passes the raw ``request.body`` and the headers to ``handle_webhook``, and returns
its reply. A failure to reach the provider or a busy store answers 503, so the
provider delivers again. The view is exempt from CSRF (providers sign their
deliveries instead)::

    # urls.py
    from django.urls import path
    from pasarela import Pasarela
    from pasarela.web.django import webhook_view

    pasarela = Pasarela.from_config("pasarela.toml")
    urlpatterns = [
        path("pasarela/webhooks/<str:provider>/", webhook_view(pasarela)),
    ]

Only the synchronous :class:`~pasarela.api.Pasarela` is accepted: Django serves
the view from a thread, as it does every sync view.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

from pasarela.api import Pasarela
from pasarela.extras import MissingExtraError
from pasarela.logs import get_logger
from pasarela.provider import Operation, WebhookHeaders


__all__ = ["webhook_view"]

log = get_logger("pasarela")


def webhook_view(
    pasarela: Pasarela, *, provider: str | None = None, max_body: int = 65536
) -> Callable[..., Any]:
    """A CSRF-exempt Django view receiving webhooks for *pasarela*.

    Route it with a ``provider`` URL parameter (``<str:provider>``), or fix the
    provider with ``provider="pagoefectivo"`` for a route of its own.
    """
    if not isinstance(pasarela, Pasarela):
        raise TypeError("webhook_view needs a (synchronous) pasarela.Pasarela")
    try:  # imported by name: Django ships no type information
        http = importlib.import_module("django.http")
        csrf = importlib.import_module("django.views.decorators.csrf")
    except ImportError as exc:  # pip install 'pasarela[django]'
        raise MissingExtraError("pasarela.web.django", "django", name=exc.name) from exc
    HttpResponse = http.HttpResponse

    # The rules every webhook route shares (content types, retryable errors).
    from pasarela.web.webhook_rules import RETRY_LATER, accepted_content_types  # noqa: PLC0415

    def refuse(status: int, message: str, name: str, reason: str) -> Any:
        log.warning("webhook_rejected", provider=name[:64], reason=reason, status=status)
        return HttpResponse(json.dumps({"error": message}), status=status,
                            content_type="application/json")

    def view(request: Any, provider: str | None = provider, **_: Any) -> Any:
        if request.method != "POST":
            response = refuse(405, "method not allowed", provider or "", "method_not_allowed")
            response["Allow"] = "POST"
            return response
        name = provider or ""
        adapter = pasarela.providers.get(name)
        if adapter is None or not adapter.supports(Operation.WEBHOOK):
            return refuse(404, "unknown provider", name, "unknown_provider")
        accepted = accepted_content_types(adapter)
        media_type = (request.content_type or "").lower()
        if media_type not in accepted:
            return refuse(415, f"content type must be one of {', '.join(sorted(accepted))}",
                          name, "unsupported_media_type")
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > max_body:
            return refuse(413, f"body larger than {max_body} bytes", name, "body_too_large")
        body = request.body
        if len(body) > max_body:
            return refuse(413, f"body larger than {max_body} bytes", name, "body_too_large")
        try:
            # The query string goes with the headers (Mercado Pago signs its data.id).
            headers = WebhookHeaders(request.headers.items(), query=[
                (key, value) for key, values in request.GET.lists() for value in values])
            reply = pasarela.handle_webhook(name, headers, body)
        except RETRY_LATER as exc:
            log.warning("webhook_deferred", provider=name, error=type(exc).__name__)
            response = HttpResponse(
                json.dumps({"error": "temporarily unavailable; deliver again"}), status=503,
                content_type="application/json")
            response["Retry-After"] = "5"
            return response
        return HttpResponse(reply.body, status=reply.status_code,
                            content_type=reply.content_type)

    exempt: Callable[..., Any] = csrf.csrf_exempt(view)
    return exempt
