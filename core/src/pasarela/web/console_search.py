"""The console's payment search at ``{mount}/payments`` (a viewer may use it).

One box takes a payment id, an order reference, a provider reference (a CIP, a
charge id, a PaymentIntent) or a customer's phone or document number; filters add
status, account, method, network, an amount range and a date range. Phones and
documents are matched by their keyed hash only (:mod:`pasarela.store.search`) and
never shown in full. Pages follow by keyset (``after``), newest first.

Also the helpers the other console modules share: the merchant's API object, calling
it from a request (sync or async), and the masks for a customer's contact.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlencode

import anyio.to_thread
import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.errors import ConfigurationError, PasarelaError, ValidationError
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.store import PaymentQuery
from pasarela.timezones import LIMA
from pasarela.web.console_auth import ConsoleGuard, Role
from pasarela.web.pay_page import PageSettings, html


__all__ = ["PAGE", "api_of", "call", "mask_document", "mask_phone", "query_from", "routes"]

#: Payments on one page of results.
PAGE: Final = 50
#: What stands for a hidden character.
DOT: Final = "•"


def api_of(pasarela: AsyncPasarela | Pasarela, merchant: str) -> Any:
    """The public API of *merchant* (``""``: the implicit merchant's)."""
    return pasarela if not merchant else pasarela.merchants[merchant]


async def call(pasarela: AsyncPasarela | Pasarela, fn: Callable[..., Any], *args: Any,
               **kwargs: Any) -> Any:
    """*fn* of the public API from a request: awaited when the API is async, in a
    worker thread when it is not."""
    if isinstance(pasarela, AsyncPasarela):
        return await fn(*args, **kwargs)
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


def mask_phone(phone: str | None) -> str:
    """``+51987654321`` as ``+51 ••• ••• 321`` (its last three digits only)."""
    if not phone:
        return ""
    digits = "".join(c for c in phone if c.isdigit())
    country = "+51 " if phone.startswith("+51") else ""
    return f"{country}{DOT * 3} {DOT * 3} {digits[-3:]}"


def mask_document(document: Any) -> str:
    """``("DNI", "45678912")`` as ``DNI ••••8912``."""
    if not isinstance(document, list | tuple) or len(document) != 2:
        return ""
    kind, number = str(document[0]), str(document[1])
    return f"{kind} {DOT * max(0, len(number) - 4)}{number[-4:]}"


def _minor(value: str, currency: str, field: str) -> int | None:
    if not value.strip():
        return None
    try:
        amount = Decimal(value.strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError("must be an amount like 149.90", field=field) from None
    return Money.of(amount, currency or "PEN", field=field).minor


def _day(value: str, field: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        day = datetime.strptime(value.strip(), "%Y-%m-%d")  # noqa: DTZ007 - Lima below
    except ValueError:
        raise ValidationError("must be a date like 2026-12-02", field=field) from None
    return day.replace(tzinfo=LIMA)


def query_from(params: Mapping[str, str], statuses: list[str]) -> PaymentQuery:
    """The search a request's query string asks for (dates are days in Lima time,
    both included; amounts in major units of ``currency``, PEN when not given)."""
    currency = params.get("currency", "").strip().upper()
    start, end = _day(params.get("from", ""), "from"), _day(params.get("to", ""), "to")
    return PaymentQuery(
        text=params.get("q", "").strip(),
        statuses=tuple(s for s in statuses if s),
        provider=params.get("provider", "").strip(),
        method=params.get("method", "").strip(),
        network=params.get("network", "").strip(),
        currency=currency,
        min_minor=_minor(params.get("min", ""), currency, "min"),
        max_minor=_minor(params.get("max", ""), currency, "max"),
        created_from=start,
        created_to=end + timedelta(days=1) if end is not None else None,
        phone=params.get("phone", "").strip(),
        document=params.get("document", "").strip(),
    )


_FIELDS: Final = ("q", "provider", "method", "network", "currency", "min", "max", "from", "to",
                  "phone", "document")


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings, guard: ConsoleGuard,
           *, env: jinja2.Environment) -> list[BaseRoute]:
    """``GET {mount}/payments``: the search form and one page of results."""
    service = pasarela.service if not guard.merchant else pasarela.merchants.service(
        guard.merchant)
    store = pasarela.store

    async def search(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        params = {k: request.query_params.get(k, "") for k in _FIELDS}
        statuses = [s for s in request.query_params.getlist("status") if s]
        after = request.query_params.get("after") or None
        context: dict[str, Any] = {
            **guard.context(request), "form": params, "chosen": set(statuses),
            "statuses": [s.value for s in Status], "accounts": sorted(service.providers),
            "rows": [], "next": None, "error": None, "searched": False,
        }
        asked = any(params.values()) or bool(statuses) or after is not None
        try:
            query = query_from(params, statuses)
            if asked or request.query_params.get("list"):
                page = await anyio.to_thread.run_sync(
                    lambda: store.search_payments(query, merchant=guard.merchant, after=after,
                                                  limit=PAGE))
                context.update(rows=page.rows, searched=True)
                if page.after is not None:
                    kept = [(k, v) for k, v in params.items() if v]
                    kept += [("status", s) for s in statuses] + [("after", page.after)]
                    context["next"] = f"{context['admin']}/payments?{urlencode(kept)}"
        except (ValidationError, ConfigurationError) as exc:
            field = getattr(exc, "field", None) or getattr(exc, "path", None)
            context["error"] = f"{field}: {exc.message}" if field else exc.message
            return html(env, "admin_search.html", context, status=400)
        except PasarelaError as exc:  # pragma: no cover - a store failure
            context["error"] = exc.message
            return html(env, "admin_search.html", context, status=503)
        return html(env, "admin_search.html", context)

    return [Route(f"{guard.mount}/payments", search, methods=["GET"])]
