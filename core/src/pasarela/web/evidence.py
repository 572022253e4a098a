"""The console's evidence download: ``GET {mount}/payments/{id}/evidence.zip`` (and
``{mount}/payments/{id}/evidence``, the payment page's link) hands a signed-in
operator (any role) the payment's evidence bundle, the same zip as ``pasarela
payments evidence ID`` (:mod:`pasarela.engine.evidence`). Another merchant's payment
is 404, as a missing one; each download is written to the console's audit log."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pasarela.api import AsyncPasarela, Pasarela
from pasarela.engine import evidence as bundle
from pasarela.errors import NotFoundError
from pasarela.logs import get_logger
from pasarela.web.console_auth import ConsoleGuard, Role
from pasarela.web.pay_page import SECURITY_HEADERS, PageSettings


__all__ = ["routes"]

log = get_logger("pasarela.web.evidence")


def routes(pasarela: AsyncPasarela | Pasarela, settings: PageSettings,
           guard: ConsoleGuard) -> list[BaseRoute]:
    """The evidence download of *guard*'s console (its merchant's payments only).
    *settings* are the pages' (the bundle needs none of them today)."""
    del settings
    merchant = guard.merchant
    service: Any = pasarela.service if not merchant else pasarela.merchants.service(merchant)

    def build(payment_id: str) -> bytes:
        return bundle.archive(bundle.document(bundle.read_facts(service, payment_id)))

    async def download(request: Request) -> Response:
        operator = guard.require(request, Role.VIEWER)
        if isinstance(operator, Response):
            return operator
        payment_id = request.path_params["payment_id"]
        try:
            data = await anyio.to_thread.run_sync(build, payment_id)
        except NotFoundError:
            return Response("No such payment.\n", status_code=404, media_type="text/plain",
                            headers=dict(SECURITY_HEADERS))
        guard.audit(operator, "evidence", payment_id, request,
                    detail={"bytes": len(data)})
        log.info("console_evidence", payment_id=payment_id, size=len(data))
        return Response(data, media_type="application/zip", headers={
            **SECURITY_HEADERS, "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="evidence-{payment_id}.zip"'})

    base = f"{guard.mount}/payments/{{payment_id}}"
    return [Route(f"{base}/evidence.zip", download, methods=["GET"]),
            Route(f"{base}/evidence", download, methods=["GET"])]
