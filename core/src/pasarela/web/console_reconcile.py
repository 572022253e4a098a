"""The console's reconciliation pages.

``GET {mount}/reconciliation`` (a viewer): the recorded runs with their counts
(lines read, differences, still open, healed). ``GET {mount}/reconciliation/{run}``:
the run's differences, filtered by category, account and state, by keyset
(``after``). ``GET {mount}/reconciliation/differences/{id}/{action}`` asks to resolve
one (an operator), and the POST of its form (CSRF-checked) does it:

- ``healed``: the payment is synced with its provider through the public API (the
  provider's word applied through the one transition path), then marked healed;
- ``accepted``: kept as it is, with the operator's note saying why;
- ``refunded``: a refund is opened through the public API (all, or the amount
  given), and its id recorded with the resolution.

Every resolution, and every refusal, goes to the operator audit log.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote, urlencode

import anyio.to_thread
import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.errors import NotFoundError, PasarelaError, ValidationError
from pasarela.lifecycle import Status
from pasarela.money import Money
from pasarela.store import DifferenceQuery
from pasarela.web.console_auth import ConsoleGuard, Role, read_form
from pasarela.web.console_search import api_of, call
from pasarela.web.pay_page import SECURITY_HEADERS, PageSettings, html


__all__ = ["RESOLVE", "routes"]

#: Differences on one page.
PAGE: Final = 100
#: What a difference may be resolved by, as the console names them.
RESOLVE: Final = ("healed", "accepted", "refunded")


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings, guard: ConsoleGuard,
           *, env: jinja2.Environment) -> list[BaseRoute]:
    """The runs, a run's differences, and resolving one."""
    merchant = guard.merchant
    service = pasarela.service if not merchant else pasarela.merchants.service(merchant)
    api = api_of(pasarela, merchant)
    store = pasarela.store

    def accounts() -> set[str]:
        return set(service.providers)

    def error(request: Request, message: str, status: int) -> Response:
        return html(env, "admin_error.html", {**guard.context(request), "message": message},
                    status=status)

    async def runs(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        found = await anyio.to_thread.run_sync(
            lambda: store.reconciliation_runs(providers=accounts()))
        return html(env, "admin_reconcile.html", {**guard.context(request), "runs": found})

    async def run(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        key = request.path_params["run_key"]
        form = {k: request.query_params.get(k, "") for k in ("category", "provider", "state")}
        after = request.query_params.get("after", "0")
        try:
            query = DifferenceQuery(**form)
            after_id = int(after) if after.isdigit() else 0
            rows = await anyio.to_thread.run_sync(lambda: store.differences(
                key, query, providers=accounts(), after_id=after_id, limit=PAGE + 1))
        except ValidationError as exc:
            return error(request, f"{exc.field}: {exc.message}", 400)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        kept = [(k, v) for k, v in form.items() if v]
        following = (f"{guard.context(request)['admin']}/reconciliation/{quote(key, safe='')}?"
                     + urlencode([*kept, ("after", str(rows[-1].id))])) if more else None
        return html(env, "admin_differences.html", {
            **guard.context(request), "run_key": key, "rows": rows, "form": form,
            "next": following, "accounts": sorted(accounts()),
            "done": request.query_params.get("done"),
        })

    def load(result_id: int) -> Any:
        found = store.difference(result_id)
        if found.provider not in accounts():
            raise NotFoundError(f"difference {result_id} not found")
        return found

    def refusal(difference: Any, action: str, payment: Any) -> str | None:
        if difference.action is not None:
            return f"it was resolved already ({difference.action} by {difference.operator})"
        if action in ("healed", "refunded") and not difference.payment_id:
            return "no payment of ours matches this line: it can only be accepted with a note"
        if action == "refunded" and payment is not None and Status(payment.status) not in (
                Status.SUCCEEDED, Status.PARTIALLY_REFUNDED):
            return (f"payment {payment.id} is {payment.status.value}; only a succeeded "
                    "payment can be refunded")
        return None

    async def prepare(request: Request) -> tuple[Any, Any, str, int] | Response:
        action = request.path_params["action"]
        if action not in RESOLVE:
            return error(request, "No such resolution.", 404)
        raw = request.path_params["result_id"]
        if not raw.isdigit():
            return error(request, "No such difference.", 404)
        try:
            difference = await anyio.to_thread.run_sync(load, int(raw))
            payment = (await anyio.to_thread.run_sync(service.get, difference.payment_id)
                       if difference.payment_id else None)
        except NotFoundError:
            return error(request, "No such difference.", 404)
        return difference, payment, action, int(raw)

    def page(request: Request, difference: Any, payment: Any, action: str, *,
             refused: str | None = None, failure: str | None = None, status: int = 200
             ) -> Response:
        return html(env, "admin_resolve.html", {
            **guard.context(request), "d": difference, "payment": payment, "action": action,
            "refusal": refused, "failure": failure}, status=status)

    async def confirm(request: Request) -> Response:
        operator = guard.require(request, Role.OPERATOR)
        if isinstance(operator, Response):
            return operator
        prepared = await prepare(request)
        if isinstance(prepared, Response):
            return prepared
        difference, payment, action, _ = prepared
        refused = refusal(difference, action, payment)
        return page(request, difference, payment, action, refused=refused,
                    status=409 if refused else 200)

    async def resolve(request: Request) -> Response:
        form = await read_form(request)
        operator = guard.require(request, Role.OPERATOR)
        if isinstance(operator, Response):
            return operator
        target = f"difference {request.path_params['result_id']}"
        if not guard.check_csrf(request, form):
            guard.audit(operator, "resolve", target, request, outcome="refused",
                        detail={"reason": "CSRF check failed"})
            return error(request, "CSRF check failed: reload the page and try again.", 403)
        prepared = await prepare(request)
        if isinstance(prepared, Response):
            return prepared
        difference, payment, action, result_id = prepared
        note = form.get("note", "").strip()
        refused = refusal(difference, action, payment)
        if refused is None and form.get("confirm") != "yes":
            refused = "the resolution was not confirmed"
        if refused is None and action == "accepted" and not note:
            refused = "accepting a difference needs a note saying why"
        if refused is not None:
            guard.audit(operator, f"resolve:{action}", target, request, outcome="refused",
                        detail={"reason": refused})
            return page(request, difference, payment, action, refused=refused, status=409)
        refund_id = None
        try:
            if action == "healed":
                await call(pasarela, api.sync, difference.payment_id)
            elif action == "refunded":
                text = form.get("amount", "").strip().replace(",", ".")
                amount = Money.of(text, payment.amount.currency) if text else None
                refund = await call(pasarela, api.refund, difference.payment_id, amount,
                                    reason=note or f"reconciliation: {difference.item_key}")
                refund_id = refund.id
            await anyio.to_thread.run_sync(lambda: store.resolve_difference(
                result_id, action=action, operator=operator.name, note=note,
                refund_id=refund_id))
        except PasarelaError as exc:
            guard.audit(operator, f"resolve:{action}", target, request, outcome="failed",
                        detail={"error": str(getattr(exc, "code", "error")),
                                "message": exc.message})
            return page(request, difference, payment, action, failure=exc.message,
                        status=409 if isinstance(exc, ValidationError) else 502)
        guard.audit(operator, f"resolve:{action}", target, request, outcome="done",
                    detail={"run": difference.run_key, "payment_id": difference.payment_id or "",
                            "refund_id": refund_id or "", "note": note})
        back = (f"{guard.context(request)['admin']}/reconciliation/"
                f"{quote(difference.run_key, safe='')}?done={result_id}")
        return RedirectResponse(back, 303, headers=SECURITY_HEADERS)

    mount = guard.mount
    return [
        Route(f"{mount}/reconciliation", runs, methods=["GET"]),
        Route(mount + "/reconciliation/differences/{result_id}/{action}", confirm,
              methods=["GET"]),
        Route(mount + "/reconciliation/differences/{result_id}/{action}", resolve,
              methods=["POST"]),
        Route(mount + "/reconciliation/{run_key}", run, methods=["GET"]),
    ]
