"""A payment's page in the console and what an operator may do to it.

``GET {mount}/payments/{id}`` (a viewer): the summary, the customer masked, the
refunds, the history, the provider exchanges (redacted), the lifecycle events with
their deliveries to relays, the webhook deliveries that named it, the routing
decision, and the actions with, for each one not allowed, why.

Actions (an operator): ``sync``, ``cancel``, ``refund`` (all or part), ``extend``
(a CIP's new expiry; providers declaring ``Operation.EXTEND``), ``resend`` (the
customer's page link, shown to copy and announced as a ``payment.link_resent``
event through the outbox, as every payment event, to the ``pasarela_payment_event``
observers and the relays, who send it; pasarela sends no email). Each is asked at
``GET {mount}/payments/{id}/actions/{action}`` (the confirmation, with its form) and
done by the POST of that form (CSRF-checked), always through the public API (one
transition path), and recorded in the operator audit log, done, failed or refused.
An action the lifecycle, the provider's capabilities or the operator's role does not
allow is refused with the reason, before anything is asked of the provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import anyio.to_thread
import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.engine.outbox import announce
from pasarela.errors import NotFoundError, PasarelaError, ValidationError
from pasarela.events import LINK_RESENT
from pasarela.lifecycle import Status
from pasarela.logs import get_logger
from pasarela.model import Payment
from pasarela.money import Money
from pasarela.provider import Operation, Provider
from pasarela.timezones import LIMA
from pasarela.web.console_auth import ConsoleGuard, Operator, Role, read_form
from pasarela.web.console_search import api_of, call, mask_document, mask_phone
from pasarela.web.pay_page import SECURITY_HEADERS, PageSettings, html, pay_link


__all__ = ["ACTIONS", "REDACTED", "action_refusals", "mask", "redacted_exchanges", "routes"]

log = get_logger("pasarela")

#: Every action of the payment page, in the order it shows them.
ACTIONS: Final = ("sync", "cancel", "refund", "extend", "resend")
_OPEN: Final = frozenset({Status.CREATED, Status.PENDING, Status.PROCESSING})
_REFUNDABLE: Final = frozenset({Status.SUCCEEDED, Status.PARTIALLY_REFUNDED})

#: Keys whose values the console masks even when the recorder let them through.
SECRET_KEY: Final = re.compile(
    r"secret|token|password|passwd|api[_-]?key|authorization|signature|cookie|cvc|cvv|"
    r"card[_-]?number|^pan$", re.IGNORECASE)
REDACTED: Final = "[redacted]"


def mask(value: Any) -> Any:
    """*value* with every secret-looking key's value replaced (JSON-like data)."""
    if isinstance(value, Mapping):
        return {k: REDACTED if SECRET_KEY.search(str(k)) and v not in (None, "", REDACTED)
                else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def redacted_exchanges(pasarela: AsyncPasarela | Pasarela, payment_id: str) -> list[dict[str, Any]]:
    """The stored exchanges, bodies pretty-printed. They were redacted when recorded;
    secret-looking keys (``client_secret``, ``token``...) are masked again here."""
    out = []
    for item in pasarela.store.exchanges_for(payment_id):
        for key in ("request_body", "response_body"):
            text = item.get(key) or ""
            try:
                item[key] = json.dumps(mask(json.loads(text)), indent=2, ensure_ascii=False)
            except ValueError:
                item[key] = text
        for key in ("request_headers", "response_headers"):
            headers = mask(item[key])
            item[key] = "\n".join(f"{k}: {v}" for k, v in sorted(headers.items()))
        out.append(item)
    return out


def remaining(payment: Payment) -> Money:
    """What is left to refund of *payment*."""
    refunded = payment.refunded.minor if payment.refunded is not None else 0
    return Money(max(0, payment.amount.minor - refunded), payment.amount.currency)


def action_refusals(payment: Payment, adapter: Provider, operator: Operator | None, *,
                    page_secret: str | None) -> dict[str, str | None]:
    """For each of :data:`ACTIONS`, why it is not allowed on *payment* now (by its
    lifecycle, its provider's capabilities, or *operator*'s role), or None."""
    status = Status(payment.status)
    who = adapter.display_name
    out: dict[str, str | None] = {}
    lifecycle: dict[str, str | None] = {
        "sync": None,
        "cancel": None if status in (Status.CREATED, Status.PENDING) else
        f"a {status.value} payment cannot be canceled; only a pending one can",
        "refund": (None if remaining(payment).minor > 0 else "nothing is left to refund")
        if status in _REFUNDABLE else
        f"a {status.value} payment cannot be refunded; only a succeeded one can",
        "extend": None if status in (Status.PENDING, Status.EXPIRED) else
        f"a {status.value} payment's expiry cannot be moved; only a pending or expired "
        "one's can",
        "resend": None if status in _OPEN else
        f"a {status.value} payment has nothing left for the customer to do",
    }
    needs: dict[str, Operation | None] = {"sync": Operation.GET, "cancel": Operation.CANCEL,
                                          "refund": Operation.REFUND,
                                          "extend": Operation.EXTEND, "resend": None}
    for action in ACTIONS:
        operation = needs[action]
        if operator is None or operator.role < Role.OPERATOR:
            name = operator.name if operator is not None else "nobody"
            out[action] = f"this needs the operator role; {name} is a viewer"
        elif operation is not None and not adapter.supports(operation):
            out[action] = (f"{who} ({payment.provider}) does not support {operation.value}: "
                           "the provider offers no way to do it through its API")
        elif action == "resend" and not page_secret:
            out[action] = "the customer page is off (no [pages] page_secret configured)"
        else:
            out[action] = lifecycle[action]
    return out


def _until(value: str) -> datetime:
    """A ``datetime-local`` field's value, in Lima time."""
    try:
        local = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")  # noqa: DTZ007 - Lima
    except ValueError:
        raise ValidationError("must be a date and time like 2026-12-03T18:00 (Lima)",
                              field="until") from None
    return local.replace(tzinfo=LIMA)


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings, guard: ConsoleGuard,
           *, env: jinja2.Environment, now: Callable[[], datetime],
           evidence: bool = False) -> list[BaseRoute]:
    """The payment page, its confirmations and actions, and the dashboard's one-click
    ``sync now`` (``POST {mount}/payments/{id}/sync``). With *evidence*, the page links
    the payment's evidence bundle (``{mount}/payments/{id}/evidence``)."""
    merchant = guard.merchant
    service = pasarela.service if not merchant else pasarela.merchants.service(merchant)
    api = api_of(pasarela, merchant)
    store = pasarela.store

    def error(request: Request, message: str, status: int) -> Response:
        return html(env, "admin_error.html", {**guard.context(request), "message": message},
                    status=status)

    def confirm_page(request: Request, payment: Payment, action: str, *, status: int = 200,
                     **shown: Any) -> Response:
        """The confirmation of *action*, or what became of it (*shown*: ``refusal``,
        ``failure`` and ``code``, ``link``, ``observers_failed``)."""
        return html(env, "admin_confirm.html", {
            **guard.context(request), "payment": payment, "action": action,
            "remaining": remaining(payment), "refusal": None, "failure": None, "code": None,
            "link": None, "observers_failed": [], **shown}, status=status)

    def load(payment_id: str) -> tuple[Payment, Provider]:
        payment = service.get(payment_id)
        return payment, service.provider_of(payment)

    def page_url(request: Request, payment_id: str) -> str:
        return f"{guard.context(request)['admin']}/payments/{quote(payment_id, safe='')}"

    async def payment_page(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        payment_id = request.path_params["payment_id"]

        def read() -> dict[str, Any]:
            payment, adapter = load(payment_id)
            customer = store.customer_contact(payment_id) or {}
            return {
                "payment": payment, "adapter": adapter,
                "customer": {"phone": mask_phone(customer.get("phone")),
                             "document": mask_document(customer.get("document")),
                             "present": bool(customer)},
                "refunds": store.refunds_for(payment_id),
                "exchanges": redacted_exchanges(pasarela, payment_id),
                "events": store.payment_events(payment_id),
                "deliveries": store.payment_deliveries(payment_id),
                "decisions": store.routing_decisions_for(payment_id),
                "refusals": action_refusals(payment, adapter, operator,
                                            page_secret=settings.page_secret),
                "remaining": remaining(payment),
            }

        try:
            data = await anyio.to_thread.run_sync(read)
        except NotFoundError:
            return error(request, "No such payment.", 404)
        data["decisions"] = [{**d, "text": json.dumps(mask(d["decision"]), indent=2,
                                                      ensure_ascii=False, default=str)}
                             for d in data["decisions"]]
        return html(env, "admin_payment.html", {
            **guard.context(request), **data, "actions": ACTIONS,
            "done": request.query_params.get("done"),
            "synced": request.query_params.get("synced"),
            "sync_error": request.query_params.get("sync_error"),
            "evidence": f"{page_url(request, payment_id)}/evidence" if evidence else None,
        })

    async def confirm(request: Request) -> Response:
        operator = guard.require(request, Role.OPERATOR)
        if isinstance(operator, Response):
            return operator
        payment_id, action = request.path_params["payment_id"], request.path_params["action"]
        if action not in ACTIONS:
            return error(request, "No such action.", 404)
        try:
            payment, adapter = await anyio.to_thread.run_sync(load, payment_id)
        except NotFoundError:
            return error(request, "No such payment.", 404)
        refusal = action_refusals(payment, adapter, operator,
                                  page_secret=settings.page_secret)[action]
        return confirm_page(request, payment, action, status=409 if refusal else 200,
                            refusal=refusal)

    async def perform(request: Request, action: str, *, confirmed: bool) -> Response:
        form = await read_form(request)
        operator = guard.require(request, Role.OPERATOR)
        if isinstance(operator, Response):
            return operator
        payment_id = request.path_params["payment_id"]
        if not guard.check_csrf(request, form):
            log.warning("admin_csrf_failed")
            guard.audit(operator, action, payment_id, request, outcome="refused",
                        detail={"reason": "CSRF check failed"})
            return error(request, "CSRF check failed: reload the page and try again.", 403)
        if action not in ACTIONS:
            return error(request, "No such action.", 404)
        try:
            payment, adapter = await anyio.to_thread.run_sync(load, payment_id)
        except NotFoundError:
            return error(request, "No such payment.", 404)
        refusal = action_refusals(payment, adapter, operator,
                                  page_secret=settings.page_secret)[action]
        if refusal is None and not confirmed and form.get("confirm") != "yes":
            refusal = "the action was not confirmed"
        if refusal is not None:
            guard.audit(operator, action, payment_id, request, outcome="refused",
                        detail={"reason": refusal})
            return confirm_page(request, payment, action, status=409, refusal=refusal)
        detail: dict[str, object] = {}
        try:
            if action == "sync":
                await call(pasarela, api.sync, payment_id)
            elif action == "cancel":
                await call(pasarela, api.cancel, payment_id)
            elif action == "refund":
                text = form.get("amount", "").strip().replace(",", ".")
                amount = (Money.of(text, payment.amount.currency) if text else None)
                reason = form.get("reason", "").strip()
                refund = await call(pasarela, api.refund, payment_id, amount,
                                    reason=reason or f"console: {operator.name}")
                detail = {"refund_id": refund.id, "amount": str(refund.amount.amount),
                          "currency": refund.amount.currency, "status": str(refund.status)}
            elif action == "extend":
                until = _until(form.get("until", ""))
                await call(pasarela, api.extend, payment_id, until)
                detail = {"until": until.isoformat()}
            else:
                return await resend(request, operator, payment)
        except PasarelaError as exc:
            code = str(getattr(exc, "code", "error"))
            guard.audit(operator, action, payment_id, request, outcome="failed",
                        detail={**detail, "error": code, "message": exc.message})
            log.warning("console_action_failed", action=action, payment_id=payment_id,
                        error=type(exc).__name__)
            if action == "sync" and confirmed:  # the dashboard's button
                return RedirectResponse(f"{page_url(request, payment_id)}?sync_error="
                                        f"{quote(code, safe='')}", 303,
                                        headers=SECURITY_HEADERS)
            return confirm_page(request, payment, action, failure=exc.message, code=code,
                                status=409 if isinstance(exc, ValidationError) else 502)
        guard.audit(operator, action, payment_id, request, outcome="done", detail=detail)
        log.info("console_action", action=action, payment_id=payment_id)
        suffix = "?synced=1" if action == "sync" and confirmed else f"?done={action}"
        return RedirectResponse(page_url(request, payment_id) + suffix, 303,
                                headers=SECURITY_HEADERS)

    async def resend(request: Request, operator: Operator, payment: Payment) -> Response:
        secret = settings.page_secret or ""
        link = pay_link(payment.id, secret, base_url=str(request.base_url), now=now())
        # Through the outbox, as every payment event: the observers (and the relays)
        # get it at least once, from this request's dispatch or the worker's.
        event_id = await anyio.to_thread.run_sync(
            lambda: announce(service, payment.id, LINK_RESENT,
                             {"link": link, "operator": operator.name}))
        guard.audit(operator, "resend", payment.id, request, outcome="done",
                    detail={"event_id": event_id})
        if pasarela.config.events.dispatch == "inline":
            await call(pasarela, pasarela.dispatch_outbox)
        return confirm_page(request, payment, "resend", link=link)

    async def act(request: Request) -> Response:
        return await perform(request, request.path_params["action"], confirmed=False)

    async def sync_now(request: Request) -> Response:
        return await perform(request, "sync", confirmed=True)

    mount = guard.mount
    return [
        Route(mount + "/payments/{payment_id}", payment_page, methods=["GET"]),
        Route(mount + "/payments/{payment_id}/sync", sync_now, methods=["POST"]),
        Route(mount + "/payments/{payment_id}/actions/{action}", confirm, methods=["GET"]),
        Route(mount + "/payments/{payment_id}/actions/{action}", act, methods=["POST"]),
    ]

