"""Access to the operator console: operator accounts with roles, signed sessions,
sign-in throttled per account and per address, sign out everywhere, CSRF on every
POST, the operator audit log, passwords never kept or logged in clear, and consoles
built on their first request. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from starlette.requests import Request

from pasarela.api import AsyncPasarela
from pasarela.errors import ValidationError
from pasarela.lifecycle import Status
from pasarela.model import Customer, Order
from pasarela.money import Money
from pasarela.store import Store
from pasarela.store.engine import normalize_url
from pasarela.testing.fake import FakeGateway, FakePlugin
from pasarela.web.admin import LazyConsoles
from pasarela.web.app import create_app
from pasarela.web.console_auth import (
    BREAK_GLASS,
    ConsoleGuard,
    Operator,
    Role,
    hash_password,
    parse_role,
    verify_password,
)
from pasarela.web.pay_page import PageSettings, template_environment


pytestmark = pytest.mark.anyio

SECRET = "page-secret-for-access-tests-0123456"
ADMIN = "admin-token-for-access-tests-654321"
PASSWORD = "colibrí-de-los-andes-42"
#: Cheap argon2 parameters for the accounts the tests make (verification reads the
#: parameters from the hash, so signing in stays fast).
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def pasarela(store_url: str, clock: Clock) -> AsyncIterator[AsyncPasarela]:
    gateway = FakeGateway(clock=clock)
    config: dict[str, Any] = {"store": {"url": store_url},
                              "providers": {"fake": {"max_retries": 0}},
                              "events": {"dispatch": "worker"}}
    p = AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                      transport=gateway.transport(), clock=clock,
                      store=Store(store_url, upgrade=True))
    p.service.sleep_scale = 0
    yield p
    await p.aclose()


@pytest.fixture
def app(pasarela: AsyncPasarela) -> Any:
    return create_app(pasarela, pages=PageSettings(page_secret=SECRET, admin_token=ADMIN))


@asynccontextmanager
async def client_for(app: Any, address: str = "127.0.0.1", *,
                     base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


def add(pasarela: AsyncPasarela, name: str, role: Role, merchant: str = "") -> None:
    pasarela.store.add_operator(merchant, name, int(role), hash_password(PASSWORD, CHEAP))


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD,
                  mount: str = "/admin") -> httpx.Response:
    return await client.post(f"{mount}/login", data={"name": name, "password": password})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def pay(pasarela: AsyncPasarela, ref: str) -> Any:
    customer = Customer(first_name="Rosa", last_name="Quispe", email="rosa@example.pe",
                        phone="+51 987 654 321", document=("DNI", "45678912"))
    order = Order(reference=ref, amount=Money.of("149.90", "PEN"), description="Audífonos",
                  customer=customer, metadata={"scenario": "timeout"})
    return await pasarela.pay(order, method="cash", idempotency_key=ref)


def audit(pasarela: AsyncPasarela, merchant: str = "", **where: str) -> list[dict[str, Any]]:
    rows = pasarela.store.operator_audit_log(merchant, limit=1000)
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


# --- roles and passwords --------------------------------------------------------------


def test_roles_are_ordered_and_named() -> None:
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN
    assert [parse_role(n) for n in ("viewer", "Operator", " ADMIN ")] == list(Role)
    with pytest.raises(ValidationError) as caught:
        parse_role("boss")
    assert caught.value.field == "role"


def test_passwords_are_argon2id_hashes_checked_in_constant_shape() -> None:
    stored = hash_password(PASSWORD, CHEAP)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "x")
    assert not verify_password(None, PASSWORD)        # no account: false, never an error
    assert not verify_password("not a hash", PASSWORD)
    with pytest.raises(ValidationError) as caught:
        hash_password("short", CHEAP)
    assert caught.value.field == "password"
    assert "short" not in str(caught.value)


# --- sign-in and sessions -------------------------------------------------------------


async def test_an_operator_signs_in_to_a_strict_session(pasarela, app) -> None:
    add(pasarela, "rosa", Role.VIEWER)
    async with client_for(app) as client:
        assert (await client.get("/admin")).status_code == 401
        signed = await sign_in(client, "Rosa ")                  # names are case-folded
        assert signed.status_code == 303
        assert signed.headers["location"] == "/admin"
        cookie = signed.headers["set-cookie"].lower()
        for part in ("httponly", "samesite=strict", "path=/admin", "max-age=43200"):
            assert part in cookie
        assert "secure" not in cookie                             # plain http
        assert PASSWORD.lower() not in cookie
        assert (await client.get("/admin")).status_code == 200
        account = await client.get("/admin/account")
        assert '<strong id="me">rosa</strong>' in account.text
        assert '<span id="my-role">viewer</span>' in account.text
        assert 'id="audit"' not in account.text                   # the log is an admin's
    async with client_for(app, base_url="https://testserver") as client:
        assert "secure" in (await sign_in(client, "rosa")).headers["set-cookie"].lower()
    assert [r["operator"] for r in audit(pasarela, action="sign_in", outcome="done")] == [
        "rosa", "rosa"]


async def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(pasarela, app) -> None:
    add(pasarela, "rosa", Role.OPERATOR)
    async with client_for(app) as client:
        wrong = await sign_in(client, "rosa", "not-the-password-at-all")
        unknown = await sign_in(client, "nadie", PASSWORD)
        for response in (wrong, unknown):
            assert response.status_code == 401
            assert "That name or password is not right." in response.text
            assert "set-cookie" not in response.headers
        assert (await client.get("/admin")).status_code == 401
    refused = audit(pasarela, action="sign_in", outcome="refused")
    assert [(r["operator"], r["detail"]["reason"]) for r in refused] == [
        ("?", "no such operator"), ("rosa", "wrong password")]
    assert all("nadie" not in str(r) for r in refused)            # may be a stray password


async def test_the_session_names_its_generation_and_cannot_be_forged(pasarela, app,
                                                                      clock) -> None:
    add(pasarela, "rosa", Role.VIEWER)
    add(pasarela, "ana", Role.ADMIN)
    async with client_for(app) as client:
        await sign_in(client, "rosa")
        value = client.cookies["pasarela_admin"]
        name, generation, expiry, mac = value.split(".")
        assert (name, generation) == ("rosa", "0")
        for forged in (f"ana.{generation}.{expiry}.{mac}",           # another operator
                       f"{name}.{generation}.{int(expiry) + 3600}.{mac}",  # a later expiry
                       f"{name}.{generation}.{expiry}.{'0' * 64}"):
            client.cookies.clear()
            client.cookies.set("pasarela_admin", forged, path="/admin")
            assert (await client.get("/admin")).status_code == 401, forged
        client.cookies.clear()
        client.cookies.set("pasarela_admin", value, path="/admin")
        assert (await client.get("/admin")).status_code == 200
        clock.now += timedelta(hours=12, seconds=1)
        assert (await client.get("/admin")).status_code == 401        # expired


# --- roles on actions -----------------------------------------------------------------


async def test_a_viewer_is_refused_an_action_with_the_reason(pasarela, app) -> None:
    payment = await pay(pasarela, "pedido-v1")
    assert payment.status is Status.UNKNOWN
    add(pasarela, "vera", Role.VIEWER)
    add(pasarela, "omar", Role.OPERATOR)
    async with client_for(app) as client:
        await sign_in(client, "vera")
        assert (await client.get(f"/admin/payments/{payment.id}")).status_code == 200
        page = await client.get("/admin/account")                  # a viewer reads
        refused = await client.post(f"/admin/payments/{payment.id}/sync",
                                    data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 403
        assert "This needs the operator role; vera is a viewer." in refused.text
    assert (await pasarela.get(payment.id)).status is Status.UNKNOWN
    [row] = audit(pasarela, operator="vera", outcome="refused")
    assert row["role"] == "viewer"
    assert row["target"] == f"/admin/payments/{payment.id}/sync"
    assert row["detail"] == {"needed": "operator",
                             "reason": "This needs the operator role; vera is a viewer."}
    assert row["address"] == "127.0.0.1"
    async with client_for(app, "10.0.0.7") as client:
        await sign_in(client, "omar")
        page = await client.get("/admin/account")
        done = await client.post(f"/admin/payments/{payment.id}/sync",
                                 data={"csrf": csrf_of(page.text)})
        assert done.status_code == 303
    [row] = audit(pasarela, operator="omar", action="sync")
    assert (row["outcome"], row["target"], row["address"], row["role"]) == (
        "done", payment.id, "10.0.0.7", "operator")


async def test_a_new_role_or_a_removed_account_counts_at_once(pasarela, app) -> None:
    payment = await pay(pasarela, "pedido-v2")
    add(pasarela, "omar", Role.OPERATOR)
    async with client_for(app) as client:
        await sign_in(client, "omar")
        csrf = csrf_of((await client.get("/admin/account")).text)
        pasarela.store.set_operator_role("", "omar", int(Role.VIEWER))
        refused = await client.post(f"/admin/payments/{payment.id}/sync", data={"csrf": csrf})
        assert refused.status_code == 403
        assert "omar is a viewer" in refused.text
        pasarela.store.remove_operator("", "omar")
        assert (await client.get("/admin")).status_code == 401


async def test_only_an_admin_sees_the_operators_and_the_audit_log(pasarela, app) -> None:
    add(pasarela, "ana", Role.ADMIN)
    add(pasarela, "omar", Role.OPERATOR)
    async with client_for(app) as client:
        await sign_in(client, "ana")
        page = (await client.get("/admin/account")).text
        assert 'id="audit"' in page
        assert "<td>omar</td><td>operator</td>" in page
        assert "<td>sign_in</td><td>ana</td>" in page
    async with client_for(app) as client:
        assert (await client.get("/admin/account", headers={
            "Authorization": f"Bearer {ADMIN}"})).status_code == 200   # break-glass: admin


# --- throttling -----------------------------------------------------------------------


async def test_sign_in_is_throttled_per_address(pasarela, app) -> None:
    add(pasarela, "rosa", Role.VIEWER)
    async with client_for(app, "203.0.113.9") as client:
        for name in ("ana", "luis", "rosa", "omar", "rosa"):        # any accounts
            assert (await sign_in(client, name, "guess-guess-guess")).status_code == 401
        refused = await sign_in(client, "rosa")                    # even the right password
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "set-cookie" not in refused.headers
    async with client_for(app, "203.0.113.10") as client:          # another address may
        assert (await sign_in(client, "rosa")).status_code == 303


async def test_sign_in_is_throttled_per_account_from_any_address(pasarela, app) -> None:
    add(pasarela, "rosa", Role.VIEWER)
    add(pasarela, "ana", Role.VIEWER)
    for i in range(50):                         # 50 failures on rosa, from 25 addresses
        async with client_for(app, f"198.51.100.{i // 2}") as client:
            assert (await sign_in(client, "rosa", "guess-guess-guess")).status_code == 401
    async with client_for(app, "192.0.2.1") as client:             # a fresh address
        refused = await sign_in(client, "rosa")
        assert refused.status_code == 429
        assert (await sign_in(client, "ana")).status_code == 303   # another account may


# --- sign out, sign out everywhere, CSRF ----------------------------------------------


async def test_sign_out_everywhere_ends_every_session_of_the_operator(pasarela, app) -> None:
    add(pasarela, "rosa", Role.OPERATOR)
    add(pasarela, "omar", Role.OPERATOR)
    async with (client_for(app) as laptop, client_for(app, "10.1.1.1") as phone,
                client_for(app) as other):
        for client, name in ((laptop, "rosa"), (phone, "rosa"), (other, "omar")):
            assert (await sign_in(client, name)).status_code == 303
        page = (await phone.get("/admin/account")).text
        assert (await phone.post("/admin/sign-out-everywhere",
                                 data={"csrf": "0" * 64})).status_code == 403
        out = await phone.post("/admin/sign-out-everywhere", data={"csrf": csrf_of(page)})
        assert out.status_code == 303
        assert out.headers["location"] == "/admin/login"
        assert (await laptop.get("/admin")).status_code == 401     # the other session too
        assert (await phone.get("/admin")).status_code == 401
        assert (await other.get("/admin")).status_code == 200      # another operator's stays
        assert (await sign_in(laptop, "rosa")).status_code == 303  # signing in again works
        assert (await laptop.get("/admin")).status_code == 200
        pasarela.store.end_operator_sessions("", "rosa")            # the CLI's way
        assert (await laptop.get("/admin")).status_code == 401
    assert [r["address"] for r in audit(pasarela, action="sign_out_everywhere")] == [
        "10.1.1.1"]


async def test_a_new_password_ends_the_sessions(pasarela, app) -> None:
    add(pasarela, "rosa", Role.VIEWER)
    async with client_for(app) as client:
        await sign_in(client, "rosa")
        pasarela.store.set_operator_password("", "rosa", hash_password("otra-clave-larga-9",
                                                                        CHEAP))
        assert (await client.get("/admin")).status_code == 401
        assert (await sign_in(client, "rosa")).status_code == 401
        assert (await sign_in(client, "rosa", "otra-clave-larga-9")).status_code == 303


async def test_every_post_needs_the_sessions_own_csrf_token(pasarela, app) -> None:
    payment = await pay(pasarela, "pedido-c1")
    add(pasarela, "rosa", Role.OPERATOR)
    add(pasarela, "omar", Role.OPERATOR)
    async with client_for(app) as rosa, client_for(app) as omar:
        await sign_in(rosa, "rosa")
        await sign_in(omar, "omar")
        theirs = csrf_of((await omar.get("/admin/account")).text)
        mine = csrf_of((await rosa.get("/admin/account")).text)
        assert mine != theirs
        altered = mine[:-1] + ("1" if mine.endswith("0") else "0")     # one digit off
        for form in ({}, {"csrf": ""}, {"csrf": theirs}, {"csrf": altered}):
            refused = await rosa.post(f"/admin/payments/{payment.id}/sync", data=form)
            assert refused.status_code == 403, form
            assert (await rosa.post("/admin/logout", data=form)).status_code == 403
        assert (await rosa.get("/admin")).status_code == 200       # still signed in
        assert (await rosa.post("/admin/logout", data={"csrf": mine})).status_code == 303
        assert (await rosa.get("/admin")).status_code == 401
    assert audit(pasarela, operator="rosa", action="csrf_refused", outcome="refused")
    assert not audit(pasarela, action="sync", outcome="done")


# --- the break-glass token ------------------------------------------------------------


async def test_the_admin_token_is_a_break_glass_admin(pasarela, app) -> None:
    payment = await pay(pasarela, "pedido-t1")
    async with client_for(app) as client:
        assert (await client.post("/admin/login", data={"token": ADMIN})).status_code == 303
        page = await client.get("/admin/account")
        done = await client.post(f"/admin/payments/{payment.id}/sync",
                                 data={"csrf": csrf_of(page.text)})
        assert done.status_code == 303
        everywhere = await client.post("/admin/sign-out-everywhere",
                                       data={"csrf": csrf_of(page.text)})
        assert everywhere.status_code == 409                      # the token's can't be
    [row] = audit(pasarela, action="sync")
    assert (row["operator"], row["role"]) == (BREAK_GLASS, "admin")


# --- the audit log keeps no personal data or secret -----------------------------------


def _request(address: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/admin/x", "headers": [],
                    "client": (address, 1234), "query_string": b""})


def test_audit_rows_mask_personal_data_and_secrets(store: Store) -> None:
    guard = ConsoleGuard(merchant="", mount="/admin", token=None, env=template_environment(),
                         now=lambda: datetime.now(UTC), store=store)
    guard.audit(Operator("rosa", Role.OPERATOR, ""), "resend", "01PAYMENT", _request("10.9.8.7"),
                detail={"phone": "+51 987 654 321", "email": "rosa.quispe@example.pe",
                        "document": "45678912", "api_token": "tok_live_123",
                        "amount": "30.00"})
    [row] = store.operator_audit_log("")
    assert row["detail"] == {"phone": "***321", "email": "r***@example.pe",
                             "document": "****912", "api_token": "[redacted]",
                             "amount": "30.00"}
    assert (row["operator"], row["role"], row["action"], row["target"], row["address"],
            row["outcome"]) == ("rosa", "operator", "resend", "01PAYMENT", "10.9.8.7", "done")
    assert store.operator_audit_log("acme") == []                  # per merchant


async def test_passwords_are_never_stored_or_logged_in_clear(pasarela, app, store_url,
                                                              caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="pasarela")
    add(pasarela, "rosa", Role.VIEWER)
    async with client_for(app) as client:
        await sign_in(client, "rosa")
        await sign_in(client, "rosa", PASSWORD + "-wrong")
        await sign_in(client, PASSWORD)                           # typed in the name box
    engine = sa.create_engine(normalize_url(store_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)                                   # every table of the store
            dump = [str(tuple(row)) for table in tables.sorted_tables
                    for row in conn.execute(sa.select(table))]
    finally:
        engine.dispose()
    assert any("$argon2id$" in line for line in dump)
    assert not [line for line in dump if PASSWORD in line]
    assert PASSWORD not in caplog.text
    assert caplog.records                                          # the sign-ins were logged


# --- consoles built on first request ----------------------------------------------------


async def test_consoles_are_built_on_their_first_request(sqlite_url: str, clock) -> None:
    config: dict[str, Any] = {
        "store": {"url": sqlite_url}, "events": {"dispatch": "worker"},
        "merchants": {name: {"display_name": name.upper(),
                             **({"admin_token": f"{name}-token-0123456789abcdef"}
                                if name == "a" else {}),
                             "providers": {"fake": {"max_retries": 0}}}
                      for name in ("a", "b", "c")}}
    p = AsyncPasarela(config, plugins=[FakePlugin()], load_entrypoints=False,
                      transport=FakeGateway(clock=clock).transport(), clock=clock,
                      store=Store(sqlite_url, upgrade=True))
    try:
        app = create_app(p, pages=PageSettings(page_secret=SECRET))
        [consoles] = {id(r.app): r.app for r in app.routes
                      if isinstance(getattr(r, "app", None), LazyConsoles)}.values()
        assert len(consoles) == 0                                  # nothing at start-up
        async with client_for(app) as client:
            assert (await client.get("/admin")).status_code == 404  # no token, no operator
            a = await client.get("/m/a/admin", headers={
                "Authorization": "Bearer a-token-0123456789abcdef"})
            assert a.status_code == 200
            assert len(consoles) == 1
            assert (await client.get("/m/b/admin")).status_code == 404
            assert (await client.get("/m/zz/admin")).status_code == 404
            add(p, "berta", Role.VIEWER, merchant="b")              # b's console turns on
            login = await client.get("/m/b/admin")
            assert login.status_code == 401
            assert 'name="password"' in login.text
            assert 'name="token"' not in login.text                # b has no admin token
            assert 'name="token"' in (await client.get("/m/a/admin/login")).text
            assert (await sign_in(client, "berta", mount="/m/b/admin")).status_code == 303
            assert (await client.get("/m/b/admin")).status_code == 200
            assert len(consoles) == 2
            assert (await sign_in(client, "berta", mount="/m/c/admin")).status_code == 404
            assert (await client.get("/m/a/admin")).status_code == 401  # b's session is b's
    finally:
        await p.aclose()
