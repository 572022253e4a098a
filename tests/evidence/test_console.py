"""The console's evidence download (``pasarela.web.evidence``): a signed-in operator
gets the same bundle as the command; nobody signed in gets the sign-in page; another
merchant's payment is 404; each download is in the console's audit log."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from pasarela.web.app import create_app
from pasarela.web.console_auth import ConsoleGuard
from pasarela.web.console_i18n import console_environment
from pasarela.web.evidence import routes
from pasarela.web.pay_page import PageSettings, template_environment
from tests.evidence.conftest import RAW, Setup, bundle_of, open_bundle


TOKEN = "admin-token-for-evidence-tests-31415"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Console:
    """The evidence routes of one console (*merchant*'s), served in process."""

    def __init__(self, setup: Setup, merchant: str = "") -> None:
        self.app = setup.app()
        mount = "/admin" if not merchant else f"/m/{merchant}/admin"
        guard = ConsoleGuard(merchant=merchant, mount=mount, token=TOKEN,
                             env=console_environment(template_environment()),
                             now=lambda: datetime.now(UTC),
                             store=self.app.store)
        self.web = Starlette(routes=routes(self.app, PageSettings(), guard))

    async def get(self, path: str, token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=self.web)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path, headers=headers)


@pytest.mark.parametrize("suffix", ["evidence.zip", "evidence"])
async def test_an_operator_downloads_the_bundle(setup: Setup, tmp_path: Path,
                                               suffix: str) -> None:
    console = Console(setup)
    with console.app as app:
        answer = await console.get(f"/admin/payments/{setup.paid.id}/{suffix}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/zip"
        assert f'filename="evidence-{setup.paid.id}.zip"' in answer.headers[
            "content-disposition"]
        assert answer.headers["cache-control"] == "no-store"
        members = open_bundle(answer.content)
        audit = app.store.operator_audit_log("")
    doc = json.loads(members["evidence.json"])
    _, from_cli, _ = bundle_of(setup, setup.paid.id, tmp_path)
    doc.pop("generated_at")
    from_cli.pop("generated_at")
    assert doc == from_cli
    for blob in (answer.content, *members.values()):
        for raw in RAW:
            assert raw.encode() not in blob
    assert [(a["action"], a["target"]) for a in audit][:1] == [("evidence", setup.paid.id)]


async def test_nobody_signed_in_gets_no_bundle(setup: Setup) -> None:
    console = Console(setup)
    with console.app:
        answer = await console.get(f"/admin/payments/{setup.paid.id}/evidence.zip", None)
        wrong = await console.get(f"/admin/payments/{setup.paid.id}/evidence.zip",
                                  "not-the-token")
    for refused in (answer, wrong):
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("text/html")
        assert b"PK\x03\x04" not in refused.content


async def test_another_merchants_payment_is_404(setup: Setup) -> None:
    console = Console(setup)
    with console.app:
        theirs = await console.get(f"/admin/payments/{setup.other.id}/evidence.zip")
        missing = await console.get("/admin/payments/01JNOSUCHPAYMENT0000000000/evidence.zip")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    console = Console(setup, "other")
    with console.app:
        mine = await console.get(f"/m/other/admin/payments/{setup.other.id}/evidence.zip")
        root = await console.get(f"/m/other/admin/payments/{setup.paid.id}/evidence.zip")
    assert mine.status_code == 200
    assert json.loads(open_bundle(mine.content)["evidence.json"])["merchant"] == "other"
    assert root.status_code == 404


async def test_the_consoles_payment_page_links_the_download(setup: Setup) -> None:
    with setup.app() as app:
        web = create_app(app, pages=PageSettings(page_secret="page-secret-" + "x" * 24,
                                                 admin_token=TOKEN))
        transport = httpx.ASGITransport(app=web)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            page = await c.get(f"/admin/payments/{setup.paid.id}", headers=headers)
            assert page.status_code == 200, page.text
            link = re.search(r'<a id="evidence" href="([^"]+)"', page.text)
            assert link, "the payment page offers the bundle"
            got = await c.get(link.group(1), headers=headers)
            zipped = await c.get(f"/admin/payments/{setup.paid.id}/evidence.zip",
                                 headers=headers)
            theirs = await c.get(f"/admin/payments/{setup.other.id}/evidence.zip",
                                 headers=headers)
            anonymous = await c.get(f"/admin/payments/{setup.paid.id}/evidence.zip")
    for answer in (got, zipped):
        assert answer.status_code == 200
        doc = json.loads(open_bundle(answer.content)["evidence.json"])
        assert doc["payment"]["id"] == setup.paid.id
    assert theirs.status_code == 404
    assert anonymous.status_code == 401
